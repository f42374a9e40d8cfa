/**
 * One training step of the engine: forward, objective, backward, optimizer update — with gradient
 * accumulation over micro-batches, a NaN/Inf guard, and a wasm memory check before the first step.
 * `train`, `distill` and `ssl` all run this same step with different objectives.
 */
import * as tf from '@tensorflow/tfjs';
import { SoftsegError } from '../errors.js';
import type { SegModel, SegOutputs } from '../models/base.js';
import { createModel } from '../models/registry.js';
import type { ObjectiveResult } from '../losses/objectives.js';
import type { SegOptimizer } from './optimizer.js';

/** A batch as tensors: NHWC images and whatever the objective needs (labels, teacher probabilities, keep masks). */
export type TensorBatch = {
  images: tf.Tensor4D;
  /** The optimizer step this batch is for (0-based), for objectives that ramp a weight in. */
  step?: number;
  labels?: tf.Tensor3D;
  teacherProb?: tf.Tensor4D;
  keep?: tf.Tensor3D;
};

/** What a recipe plugs into the engine: the loss of the model's outputs on a batch. */
export type Objective = (outputs: SegOutputs, batch: TensorBatch) => ObjectiveResult;

export interface StepResult {
  loss: number;
  /** Every named component of the objective, averaged over micro-batches. */
  parts: Record<string, number>;
}

export interface TrainStepOptions {
  /** Split each batch into this many micro-batches and sum their gradients before one update (saves memory). */
  accumulate?: number;
}

/** The wasm heap cannot grow past 4 GiB (32-bit addressing). */
export const WASM_HEAP_LIMIT = 4 * 1024 ** 3;

/** Activation elements (all layer outputs) per input pixel of a model, counted on its layer graph. */
export function activationsPerPixel(model: SegModel): number {
  const probe = model.options.inputSize ? model : createModel(model.name, { ...model.options, inputSize: [model.sizeMultiple * 4, model.sizeMultiple * 4] });
  try {
    const [h, w] = probe.options.inputSize!;
    let elements = 0;
    for (const layer of probe.model.layers) {
      const shapes = (Array.isArray(layer.outputShape[0]) ? layer.outputShape : [layer.outputShape]) as (number | null)[][];
      for (const shape of shapes) elements += shape.slice(1).reduce<number>((p, d) => p * (d ?? 1), 1);
    }
    return elements / (h * w);
  } finally {
    if (probe !== model) probe.dispose();
  }
}

/**
 * Bytes of backend memory a training step on `batch × height × width` needs: every activation is kept
 * for the backward pass and gets a gradient, plus temporaries (factor measured on wasm, see bench/engine).
 */
export function estimateStepBytes(model: SegModel, batch: number, height: number, width: number): number {
  return STEP_BYTES_PER_ACTIVATION * activationsPerPixel(model) * batch * height * width;
}

/** Bytes of wasm heap per activation element in a training step (value, gradient, temporaries, allocator slack): measured 23–50 on the zoo models at batch 8. */
export const STEP_BYTES_PER_ACTIVATION = 32;

function wasmHeapBytes(): number | null {
  if (tf.getBackend() !== 'wasm') return null;
  const b = tf.backend() as unknown as { wasm?: { HEAPU8?: Uint8Array } };
  return b.wasm?.HEAPU8?.byteLength ?? null;
}

/** Throws a clear error when a step of `batch × h × w` would not fit in the wasm heap. */
export function checkStepFits(model: SegModel, batch: number, height: number, width: number, accumulate = 1): void {
  if (tf.getBackend() !== 'wasm') return;
  const micro = Math.ceil(batch / accumulate);
  const fixed = model.model.countParams() * 4 * 4; // weights, gradients, two Adam moments
  const perImage = estimateStepBytes(model, 1, height, width);
  const need = perImage * micro + fixed;
  if (need <= WASM_HEAP_LIMIT) return;
  const gb = (need / 1024 ** 3).toFixed(1);
  const fitting = Math.floor((0.9 * WASM_HEAP_LIMIT - fixed) / perImage);
  const hint = fitting >= 1
    ? `use --batch-size ${fitting} or less, or --accumulate ${Math.ceil(batch / fitting)} (gradient accumulation) to keep batch ${batch}, or install @tensorflow/tfjs-node`
    : `even one ${height}×${width} image does not fit: use a smaller --crop, or install @tensorflow/tfjs-node`;
  throw new SoftsegError(`a ${model.name} training step on ${micro} × ${height}×${width} needs about ${gb} GB, more than the wasm backend's 4 GB heap`, { hint });
}

/** Runs training steps of one model with one objective and optimizer. */
export class TrainStep {
  readonly accumulate: number;

  constructor(
    readonly model: SegModel,
    readonly objective: Objective,
    readonly optimizer: SegOptimizer,
    options: TrainStepOptions = {},
  ) {
    this.accumulate = options.accumulate ?? 1;
    if (!Number.isInteger(this.accumulate) || this.accumulate < 1) throw new SoftsegError(`accumulate must be a positive integer, got ${this.accumulate}`);
  }

  /** One optimizer update on `batch` (the caller keeps and disposes the batch tensors). */
  async run(batch: TensorBatch): Promise<StepResult> {
    const n = batch.images.shape[0];
    const k = Math.min(this.accumulate, n);
    const vars = this.model.model.trainableWeights.map((w) => w.read() as tf.Variable);
    let summed: tf.NamedTensorMap | null = null;
    const partSums: Record<string, number> = {};
    let lossSum = 0;
    for (let i = 0; i < k; i++) {
      const lo = Math.floor((i * n) / k), hi = Math.floor(((i + 1) * n) / k);
      const micro = k === 1 ? batch : sliceBatch(batch, lo, hi - lo);
      let parts: Record<string, tf.Scalar> = {};
      const { value, grads } = tf.variableGrads(() => {
        const out = this.objective(this.model.apply(micro.images, true), micro);
        parts = Object.fromEntries(Object.entries(out.parts).map(([name, t]) => [name, tf.keep(t)]));
        return out.total;
      }, vars);
      if (micro !== batch) disposeBatch(micro);
      // One read-back per micro-batch: the loss and its parts together.
      const names = Object.keys(parts);
      const stacked = tf.stack([value, ...names.map((name) => parts[name]!)]);
      const values = await stacked.data();
      tf.dispose([stacked, value, ...Object.values(parts)]);
      if (!Number.isFinite(values[0]!)) {
        tf.dispose(Object.values(grads));
        if (summed) tf.dispose(Object.values(summed));
        throw new NonFiniteLossError(values[0]!, Object.fromEntries(names.map((name, j) => [name, values[j + 1]!])));
      }
      lossSum += values[0]!;
      names.forEach((name, j) => (partSums[name] = (partSums[name] ?? 0) + values[j + 1]!));
      if (summed === null) summed = grads;
      else {
        const prev: tf.NamedTensorMap = summed;
        summed = tf.tidy(() => Object.fromEntries(Object.keys(prev).map((name) => [name, tf.add(prev[name]!, grads[name]!)])));
        tf.dispose([...Object.values(prev), ...Object.values(grads)]);
      }
    }
    const final: tf.NamedTensorMap = k === 1 ? summed! : tf.tidy(() => Object.fromEntries(Object.entries(summed!).map(([name, g]) => [name, tf.div(g, k)])));
    if (k > 1) tf.dispose(Object.values(summed!));
    this.optimizer.apply(final);
    tf.dispose(Object.values(final));
    return { loss: lossSum / k, parts: Object.fromEntries(Object.entries(partSums).map(([name, v]) => [name, v / k])) };
  }
}

/** The loss became NaN or Inf: the run must stop and keep its last good checkpoint. */
export class NonFiniteLossError extends SoftsegError {
  constructor(readonly loss: number, readonly parts: Record<string, number>) {
    const bad = Object.entries(parts).filter(([, v]) => !Number.isFinite(v)).map(([name]) => name);
    super(`the loss became ${loss}${bad.length ? ` (non-finite: ${bad.join(', ')})` : ''}`, {
      hint: 'lower --lr, check the data for corrupt labels, or keep smooth > 0 with ALL active classes',
    });
  }
}

/** Disposes the tensors of a batch. */
export function disposeBatch(batch: TensorBatch): void {
  const tensors: (tf.Tensor | undefined)[] = [batch.images, batch.labels, batch.teacherProb, batch.keep];
  tf.dispose(tensors.filter((t): t is tf.Tensor => t !== undefined));
}

function sliceBatch(batch: TensorBatch, start: number, size: number): TensorBatch {
  const out: TensorBatch = { images: tf.slice(batch.images, start, size), step: batch.step };
  if (batch.labels) out.labels = tf.slice(batch.labels, start, size);
  if (batch.teacherProb) out.teacherProb = tf.slice(batch.teacherProb, start, size);
  if (batch.keep) out.keep = tf.slice(batch.keep, start, size);
  return out;
}

export { wasmHeapBytes };
