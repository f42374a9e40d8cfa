// What every zoo architecture shares: the option vocabulary, the SegModel wrapper the training loop
// calls, and a LayerBuilder that names layers deterministically, scales channels by the width
// multiplier and hands out seeded initializers.
import * as tf from '@tensorflow/tfjs';
import { SoftsegError } from '../errors.js';
import { batchNormalization } from './batch-norm.js';
import { convInitializer, depthwiseInitializer, biasInitializer, type Initializer } from './init.js';
import { AtrousConv2D } from './layers.js';
import { halfPixelUpsample } from './upsample.js';

/** Options every architecture accepts (the same constructor vocabulary for all). */
export interface ModelOptions {
  /** Number of output classes (logit channels), ≥ 1. */
  numClasses: number;
  /** Width multiplier for every hidden layer's channels (default 1); see {@link scaleChannels}. */
  width?: number;
  /** Add an auxiliary head on an intermediate feature: the model then has two outputs [main, aux]. */
  aux?: boolean;
  /** Fix the input size (square number or [height, width]); omitted = any size that is a multiple of `sizeMultiple`. */
  inputSize?: number | [number, number];
  /** Input channels (default 3). */
  channels?: number;
  /** Seed for the weight initializers: the same seed gives identical weights. Omitted = random. */
  seed?: number;
  /** DeepLabV3 only: backbone output stride, 8 (default) or 16. Ignored by the other architectures. */
  outputStride?: 8 | 16;
  /**
   * How bilinear upsampling samples: 'aligned' (default; TF.js's UpSampling2D, output i reads feature i/f, where the
   * zoo's symmetrically padded stride-f features are centred) or 'half-pixel' (PyTorch's F.interpolate with
   * align_corners=False, output i reads (i + ½)/f − ½; built from stock layers, see upsample.ts).
   */
  upsampling?: Upsampling;
}

export type Upsampling = 'aligned' | 'half-pixel';
export const UPSAMPLINGS: readonly Upsampling[] = ['aligned', 'half-pixel'];

/** ModelOptions with defaults filled in and sizes normalised. */
export interface ResolvedOptions {
  numClasses: number;
  width: number;
  aux: boolean;
  inputSize: [number, number] | null;
  channels: number;
  seed?: number;
  outputStride: 8 | 16;
  upsampling: Upsampling;
}

/**
 * The outputs of one forward pass: logits NHWC [N, H, W, numClasses] at input resolution. (A type
 * alias, not an interface, so it is a tf.TensorContainer and can be returned from tf.tidy.)
 */
export type SegOutputs = {
  main: tf.Tensor4D;
  aux?: tf.Tensor4D;
};

/** A built zoo model: what the training loop, the saver and the CLI use. */
export interface SegModel {
  /** Registry name, e.g. 'unet-lite'. */
  readonly name: string;
  readonly options: ResolvedOptions;
  /** Input height and width must be multiples of this. */
  readonly sizeMultiple: number;
  /** The underlying TensorFlow.js model: one output, or two [main, aux] with `options.aux`. */
  readonly model: tf.LayersModel;
  /** Forward pass on NHWC float32 images; `training` switches batch norm to batch statistics (and updates its moving averages). */
  apply(x: tf.Tensor4D, training: boolean): SegOutputs;
  /** Releases the model's weights. */
  dispose(): void;
}

/** Symbolic outputs an architecture's builder returns. */
export interface ArchitectureOutputs {
  main: tf.SymbolicTensor;
  aux?: tf.SymbolicTensor;
}

/** One zoo entry: adding a model means one file exporting one of these and one registry line. */
export interface Architecture {
  readonly name: string;
  readonly description: string;
  /** Input height and width must be multiples of this (the network's total downsampling). */
  sizeMultiple(options: ResolvedOptions): number;
  build(input: tf.SymbolicTensor, b: LayerBuilder, options: ResolvedOptions): ArchitectureOutputs;
}

/**
 * Channels after the width multiplier: `max(4, round(base × width / 4) × 4)`, i.e. the nearest
 * multiple of 4 and never below 4. At width 1 every zoo channel count (all multiples of 4) is unchanged.
 */
export function scaleChannels(base: number, width: number): number {
  return Math.max(4, Math.round((base * width) / 4) * 4);
}

/** A 31-bit seed for the `index`-th initializer of a model seeded with `seed` (a splitmix-style hash). */
export function deriveSeed(seed: number, index: number): number {
  let h = (Math.imul(seed | 0, 0x9e3779b1) ^ Math.imul(index + 1, 0x85ebca6b)) >>> 0;
  h = Math.imul(h ^ (h >>> 16), 0x7feb352d) >>> 0;
  h = Math.imul(h ^ (h >>> 15), 0x846ca68b) >>> 0;
  return (h ^ (h >>> 16)) & 0x7fffffff;
}

type SymbolicOrArray = tf.SymbolicTensor | tf.SymbolicTensor[];
const apply1 = (layer: tf.layers.Layer, x: SymbolicOrArray): tf.SymbolicTensor => layer.apply(x) as tf.SymbolicTensor;

/**
 * Builds the zoo's layer patterns with deterministic names and seeds. Convolutions followed by batch
 * norm have no bias; classifiers (1×1 heads) have a bias. Every kernel and bias starts as PyTorch's defaults
 * would ({@link convInitializer}, {@link biasInitializer}). Batch norm uses momentum 0.9 and epsilon 1e-5
 * (PyTorch's defaults).
 */
export class LayerBuilder {
  private initIndex = 0;

  constructor(
    readonly width: number,
    readonly seed?: number,
    readonly upsampling: Upsampling = 'aligned',
  ) {}

  /** Base channel count scaled by the width multiplier. */
  ch(base: number): number {
    return scaleChannels(base, this.width);
  }

  /** The next derived seed (undefined when the model is unseeded). */
  nextSeed(): number | undefined {
    const i = this.initIndex++;
    return this.seed === undefined ? undefined : deriveSeed(this.seed, i);
  }

  /** A convolution kernel's initialiser ({@link convInitializer}). */
  convInit(): Initializer {
    return convInitializer(this.nextSeed());
  }

  /** A depthwise kernel's initialiser ({@link depthwiseInitializer}). */
  depthwiseInit(): Initializer {
    return depthwiseInitializer(this.nextSeed());
  }

  /** A classifier's kernel initialiser. */
  classifierInit(): Initializer {
    return convInitializer(this.nextSeed());
  }

  /** A bias initialiser for a layer with `fanIn` inputs ({@link biasInitializer}). */
  biasInit(fanIn: number): Initializer {
    return biasInitializer(fanIn, this.nextSeed());
  }

  bnRelu(x: tf.SymbolicTensor, name: string): tf.SymbolicTensor {
    const y = apply1(batchNormalization({ axis: -1, momentum: 0.9, epsilon: 1e-5, name: `${name}_bn` }), x);
    return apply1(tf.layers.reLU({ name: `${name}_relu` }), y);
  }

  /** k×k convolution (dilation `rate`, via {@link AtrousConv2D} when > 1) + BN + ReLU. */
  convBnRelu(x: tf.SymbolicTensor, filters: number, name: string, opts: { kernel?: number; strides?: number; rate?: number } = {}): tf.SymbolicTensor {
    const kernel = opts.kernel ?? 3;
    const rate = opts.rate ?? 1;
    let y: tf.SymbolicTensor;
    if (rate > 1) {
      if ((opts.strides ?? 1) !== 1) throw new Error('convBnRelu: dilation needs stride 1');
      y = apply1(new AtrousConv2D({ filters, kernelSize: kernel, rate, useBias: false, seed: this.nextSeed(), name: `${name}_conv` }), x);
    } else {
      const strides = opts.strides ?? 1;
      y = apply1(
        tf.layers.conv2d({ filters, kernelSize: kernel, strides, padding: strides > 1 ? 'valid' : 'same', useBias: false, kernelInitializer: this.convInit(), name: `${name}_conv` }),
        this.padForStride(x, kernel, strides, name),
      );
    }
    return this.bnRelu(y, name);
  }

  /** Depthwise-separable block: depthwise 3×3 (stride, dilation) + BN + ReLU, pointwise 1×1 + BN + ReLU. */
  dwSep(x: tf.SymbolicTensor, filters: number, name: string, opts: { strides?: number; rate?: number } = {}): tf.SymbolicTensor {
    const rate = opts.rate ?? 1;
    let y: tf.SymbolicTensor;
    if (rate > 1) {
      if ((opts.strides ?? 1) !== 1) throw new Error('dwSep: dilation needs stride 1');
      y = apply1(new AtrousConv2D({ filters: 0, kernelSize: 3, rate, depthwise: true, useBias: false, seed: this.nextSeed(), name: `${name}_dw` }), x);
    } else {
      const strides = opts.strides ?? 1;
      y = apply1(
        tf.layers.depthwiseConv2d({ kernelSize: 3, strides, padding: strides > 1 ? 'valid' : 'same', useBias: false, depthwiseInitializer: this.depthwiseInit(), name: `${name}_dw` }),
        this.padForStride(x, 3, strides, `${name}_dw`),
      );
    }
    y = this.bnRelu(y, `${name}_dw`);
    return this.convBnRelu(y, filters, `${name}_pw`, { kernel: 1 });
  }

  /**
   * Symmetric zero padding of (k − 1)/2 before a strided convolution, which then runs 'valid' (PyTorch's
   * `padding=k//2`). TF's 'same' padding puts the extra row and column of a stride-2 convolution at the
   * bottom/right, which moves every feature by half an input step per stride-2 layer: at stride 8 the features
   * sat 7 px down-right of their content, and UpSampling2D's sampling (output i reads feature i/8) painted them
   * 7 px up-left of it. With symmetric padding feature m is centred on input 8m and lands there (measured on the
   * parity set with augmentation: see bench/README.md). Stride 1 keeps 'same' (symmetric for odd kernels).
   */
  private padForStride(x: tf.SymbolicTensor, kernel: number, strides: number, name: string): tf.SymbolicTensor {
    if (strides === 1 || kernel === 1) return x;
    const p = (kernel - 1) / 2;
    return apply1(tf.layers.zeroPadding2d({ padding: [[p, p], [p, p]], name: `${name}_pad` }), x);
  }

  /**
   * 3×3 max pooling, stride 2, one pixel of zero padding on every side (PyTorch's `max_pool2d(x, 3, 2, 1)`; the
   * zeros never win after a ReLU). Halves even sizes like a 2×2 pool, but pooled pixel m is centred on input 2m,
   * where {@link upsample}'s UpSampling2D reads it back (output i samples input i/2). A 2×2 pool centres m on
   * 2m + 0.5, so each pool/upsample pair moved a U-Net's deep features half a pixel: output pixels looked 1.3 px
   * down-right of themselves (test/models/alignment.test.ts); by geometry the bottleneck's path sat 3.5 px off.
   */
  maxPool(x: tf.SymbolicTensor, name: string): tf.SymbolicTensor {
    const padded = apply1(tf.layers.zeroPadding2d({ padding: [[1, 1], [1, 1]], name: `${name}_pad` }), x);
    return apply1(tf.layers.maxPooling2d({ poolSize: 3, strides: 2, padding: 'valid', name }), padded);
  }

  /** Bilinear upsampling by an integer factor, sampled as {@link ModelOptions.upsampling} says. */
  upsample(x: tf.SymbolicTensor, factor: number, name: string): tf.SymbolicTensor {
    if (factor === 1) return x;
    if (this.upsampling === 'half-pixel') return halfPixelUpsample(x, factor, name);
    return apply1(tf.layers.upSampling2d({ size: [factor, factor], interpolation: 'bilinear', name }), x);
  }

  concat(xs: tf.SymbolicTensor[], name: string): tf.SymbolicTensor {
    return apply1(tf.layers.concatenate({ axis: -1, name }), xs);
  }

  /** 1×1 classifier with bias (logits). */
  classifier(x: tf.SymbolicTensor, numClasses: number, name: string): tf.SymbolicTensor {
    const fanIn = x.shape[3] ?? 1;
    const kernelInitializer = this.classifierInit();
    return apply1(
      tf.layers.conv2d({ filters: numClasses, kernelSize: 1, padding: 'same', useBias: true, kernelInitializer, biasInitializer: this.biasInit(fanIn), name }),
      x,
    );
  }

  /**
   * Auxiliary head on an intermediate feature at stride `stride`: conv3×3 + BN + ReLU to
   * ch(32) channels, 1×1 classifier, bilinear up by `stride` to input resolution.
   */
  auxHead(x: tf.SymbolicTensor, numClasses: number, stride: number): tf.SymbolicTensor {
    const y = this.convBnRelu(x, this.ch(32), 'aux');
    return this.upsample(this.classifier(y, numClasses, 'aux_logits'), stride, 'aux_up');
  }
}

function checkSize(name: string, h: number, w: number, multiple: number): void {
  if (!(h > 0 && w > 0 && h % multiple === 0 && w % multiple === 0)) {
    throw new SoftsegError(`${name}: input size ${h}×${w} is not a multiple of ${multiple}`, {
      hint: `use a height and width divisible by ${multiple} (e.g. ${Math.max(multiple, Math.round(h / multiple) * multiple)})`,
    });
  }
}

/** Fills defaults in and validates user options (SoftsegError for anything a user can fix). */
export function resolveOptions(name: string, options: ModelOptions): ResolvedOptions {
  const { numClasses } = options;
  const width = options.width ?? 1;
  const channels = options.channels ?? 3;
  const outputStride = options.outputStride ?? 8;
  if (!(Number.isInteger(numClasses) && numClasses >= 1)) throw new SoftsegError(`${name}: numClasses must be an integer ≥ 1, got ${numClasses}`);
  if (!(Number.isFinite(width) && width > 0)) throw new SoftsegError(`${name}: width multiplier must be > 0, got ${width}`);
  if (!(Number.isInteger(channels) && channels >= 1)) throw new SoftsegError(`${name}: channels must be an integer ≥ 1, got ${channels}`);
  if (outputStride !== 8 && outputStride !== 16) throw new SoftsegError(`${name}: outputStride must be 8 or 16, got ${String(outputStride)}`);
  const upsampling = options.upsampling ?? 'aligned';
  if (!UPSAMPLINGS.includes(upsampling)) throw new SoftsegError(`${name}: upsampling must be ${UPSAMPLINGS.join(' or ')}, got ${String(upsampling)}`);
  if (options.seed !== undefined && !Number.isInteger(options.seed)) throw new SoftsegError(`${name}: seed must be an integer, got ${options.seed}`);
  let inputSize: [number, number] | null = null;
  if (options.inputSize !== undefined) {
    inputSize = typeof options.inputSize === 'number' ? [options.inputSize, options.inputSize] : [options.inputSize[0], options.inputSize[1]];
  }
  return { numClasses, width, aux: options.aux ?? false, inputSize, channels, seed: options.seed, outputStride, upsampling };
}

/** Builds an architecture into a SegModel. */
export function buildSegModel(arch: Architecture, options: ResolvedOptions): SegModel {
  const sizeMultiple = arch.sizeMultiple(options);
  if (options.inputSize) checkSize(arch.name, options.inputSize[0], options.inputSize[1], sizeMultiple);
  const [h, w] = options.inputSize ?? [null, null];
  const input = tf.input({ shape: [h, w, options.channels], name: 'image' });
  const b = new LayerBuilder(options.width, options.seed, options.upsampling);
  const out = arch.build(input, b, options);
  const outputs = options.aux && out.aux ? [out.main, out.aux] : out.main;
  const model = tf.model({ inputs: input, outputs, name: arch.name.replace(/[^A-Za-z0-9_]/g, '_') });
  model.setUserDefinedMetadata(JSON.parse(JSON.stringify({ softseg: { name: arch.name, options } })) as object);
  return wrapLayersModel(arch.name, options, sizeMultiple, model);
}

/** Wraps a built or loaded tf.LayersModel as a SegModel. */
export function wrapLayersModel(name: string, options: ResolvedOptions, sizeMultiple: number, model: tf.LayersModel): SegModel {
  return {
    name,
    options,
    sizeMultiple,
    model,
    apply(x: tf.Tensor4D, training: boolean): SegOutputs {
      if (x.rank !== 4) throw new SoftsegError(`${name}: expected NHWC images of rank 4, got shape [${x.shape.join(', ')}]`);
      const [, xh, xw, xc] = x.shape;
      if (xc !== options.channels) throw new SoftsegError(`${name}: expected ${options.channels} input channels, got ${xc}`);
      if (options.inputSize && (xh !== options.inputSize[0] || xw !== options.inputSize[1])) {
        throw new SoftsegError(`${name}: this model was built for ${options.inputSize[0]}×${options.inputSize[1]} inputs, got ${xh}×${xw}`);
      }
      checkSize(name, xh, xw, sizeMultiple);
      const y = model.apply(x, { training });
      if (Array.isArray(y)) return { main: y[0] as tf.Tensor4D, aux: y[1] as tf.Tensor4D | undefined };
      return { main: y as tf.Tensor4D };
    },
    dispose(): void {
      model.dispose();
    },
  };
}

/**
 * The same network without its auxiliary head (weights shared, not copied), e.g. to save a trained
 * student for inference. A model without aux is returned as it is. Dispose only one of the two.
 */
export function withoutAux(seg: SegModel): SegModel {
  if (seg.model.outputs.length === 1) return seg;
  const model = tf.model({ inputs: seg.model.inputs, outputs: seg.model.outputs[0]!, name: seg.model.name });
  const options = { ...seg.options, aux: false };
  model.setUserDefinedMetadata(JSON.parse(JSON.stringify({ softseg: { name: seg.name, options } })) as object);
  return wrapLayersModel(seg.name, options, seg.sizeMultiple, model);
}
