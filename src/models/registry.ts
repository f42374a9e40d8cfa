// The model zoo's registry: names → architectures, plus parameter and multiply-add counts for
// `softseg models`. Adding a model = one file exporting an Architecture + one line in ARCHITECTURES.
import * as tf from '@tensorflow/tfjs';
import { SoftsegError } from '../errors.js';
import { buildSegModel, resolveOptions, type Architecture, type ModelOptions, type SegModel } from './base.js';
import { deeplabv3 } from './deeplabv3.js';
import { mobileUnet } from './mobile-unet.js';
import { unet, unetLite } from './unet.js';

const ARCHITECTURES: readonly Architecture[] = [unet, unetLite, mobileUnet, deeplabv3];

/** Names of every zoo model, in listing order. */
export function listModels(): string[] {
  return ARCHITECTURES.map((a) => a.name);
}

/** The architecture registered under `name`; SoftsegError listing the known names otherwise. */
export function getArchitecture(name: string): Architecture {
  const arch = ARCHITECTURES.find((a) => a.name === name);
  if (!arch) throw new SoftsegError(`unknown model '${name}'`, { hint: `known models: ${listModels().join(', ')}` });
  return arch;
}

/** Input height and width of `name` must be multiples of this (its total downsampling). */
export function sizeMultiple(name: string, options: Partial<ModelOptions> = {}): number {
  return getArchitecture(name).sizeMultiple(resolveOptions(name, { numClasses: 1, ...options }));
}

/**
 * Builds a zoo model. Outputs are logits NHWC at input resolution; with `aux` the tf.LayersModel has
 * two outputs [main, aux]. With `seed`, every initializer is seeded (same seed → identical weights).
 */
export function createModel(name: string, options: ModelOptions): SegModel {
  const arch = getArchitecture(name);
  return buildSegModel(arch, resolveOptions(name, options));
}

/** What `softseg models` prints for one model at one input size. */
export interface ModelInfo {
  name: string;
  description: string;
  /** Input [height, width] the counts are for. */
  inputSize: [number, number];
  sizeMultiple: number;
  /** All weights, including batch-norm moving statistics. */
  params: number;
  trainableParams: number;
  /** Multiply-adds of one forward pass of one image (see {@link countMultiplyAdds}). */
  multiplyAdds: number;
}

/**
 * Multiply-adds of one image's forward pass, counted from the layers' weight and output shapes:
 * every layer with a `kernel` (conv2d, atrous conv, 1×1 heads, dense) or `depthwise_kernel` costs
 * kernel size × output positions (output elements ÷ output channels; for a full conv the kernel
 * size already contains cin × cout, for a depthwise conv cin × multiplier). Biases, batch norm,
 * activations, pooling, upsampling, concat and the broadcast are not counted (they are O(output)
 * element-wise work, a few percent of the total).
 */
export function countMultiplyAdds(model: tf.LayersModel): number {
  let total = 0;
  for (const layer of model.layers) {
    const kernel = layer.weights.find((w) => /(^|\/)(depthwise_)?kernel$/.test(w.originalName));
    if (!kernel) continue;
    const out = layer.outputShape as (number | null)[];
    if (out.some((d, i) => i > 0 && d == null)) throw new Error(`countMultiplyAdds: layer ${layer.name} has an unknown output size`);
    const positions = out.slice(1, -1).reduce<number>((p, d) => p * (d as number), 1);
    total += positions * kernel.shape.reduce<number>((p, d) => p * (d as number), 1);
  }
  return total;
}

/** Parameters and multiply-adds of `name` at an input `size` (square number or [h, w]). */
export function modelInfo(name: string, size: number | [number, number], options: Partial<ModelOptions> = {}): ModelInfo {
  const arch = getArchitecture(name);
  const inputSize: [number, number] = typeof size === 'number' ? [size, size] : size;
  const seg = buildSegModel(arch, resolveOptions(name, { numClasses: 1, ...options, inputSize }));
  try {
    const m = seg.model;
    const trainableParams = m.trainableWeights.reduce((s, w) => s + w.shape.reduce<number>((p, d) => p * (d as number), 1), 0);
    return {
      name,
      description: arch.description,
      inputSize,
      sizeMultiple: seg.sizeMultiple,
      params: m.countParams(),
      trainableParams,
      multiplyAdds: countMultiplyAdds(m),
    };
  } finally {
    seg.dispose();
  }
}
