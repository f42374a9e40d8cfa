// SoftsegBatchNormTrain / SoftsegBatchNormTrainGrad (wasm): training-mode batch normalisation over every axis
// but the last (NHWC activations, per-channel statistics) in two passes forward and two backward, instead of
// moments (Mean, Sub, Square, Mean) + FusedBatchNorm and their ~20 gradient ops.
//   forward: inputs x [..., C], gamma [C], beta [C], optionally movingMean [C] and movingVariance [C]; attrs
//     epsilon, momentum; outputs [y, mean, variance] with the biased variance (as tf.moments),
//     y = (x − mean)/√(variance + ε)·γ + β, plus, with the moving statistics, their updates
//     moving − (moving − batch)·(1 − momentum) in float32 step by step exactly as tfjs-layers' ops compute them.
//   backward: inputs dy, x, mean, variance, gamma; outputs [dx, dγ, dβ]:
//     x̂ = (x − mean)/√(variance + ε), dβ = Σ dy, dγ = Σ dy·x̂, dx = γ/√(variance + ε) · (dy − dβ/M − x̂·dγ/M)
//     (the gradient through the batch statistics included; M = elements per channel).
// The mean and variance outputs feed only the moving averages: they get no gradient.
import * as tf from '@tensorflow/tfjs';
import type { WasmBackendLike } from './wasm-util.js';

export const BATCH_NORM_TRAIN = 'SoftsegBatchNormTrain';
export const BATCH_NORM_TRAIN_GRAD = 'SoftsegBatchNormTrainGrad';

export interface BatchNormTrainAttrs {
  epsilon: number;
  /** Momentum of the moving averages (forward kernel, when movingMean and movingVariance are given). */
  momentum?: number;
}

/** A float32 heap view (monomorphic, so the loops below stay fast). Take views only after the last allocation. */
function f32(backend: WasmBackendLike, info: tf.TensorInfo): Float32Array {
  if (info.dtype !== 'float32') throw new Error(`${BATCH_NORM_TRAIN}: inputs must be float32, got ${info.dtype}`);
  return backend.typedArrayFromHeap(info) as Float32Array;
}

/** Floats per row tile of the passes below (16 KB: a tile and its output stay in L1). */
const TILE_FLOATS = 4096;

type Args = { inputs: tf.NamedTensorInfoMap; backend: unknown; attrs: unknown };

function channels(x: tf.TensorInfo, kernel: string): { c: number; rows: number } {
  const c = x.shape[x.shape.length - 1];
  if (x.shape.length < 2 || c === undefined || c === 0) throw new Error(`${kernel}: x must have rank ≥ 2 and channels last`);
  return { c, rows: x.shape.slice(0, -1).reduce((a, b) => a * b, 1) };
}

function bnTrainKernel(args: Args): tf.TensorInfo[] {
  const backend = args.backend as WasmBackendLike;
  const { x, gamma, beta, movingMean, movingVariance } = args.inputs as Record<'x' | 'gamma' | 'beta', tf.TensorInfo> & Partial<Record<'movingMean' | 'movingVariance', tf.TensorInfo>>;
  const { epsilon, momentum } = args.attrs as unknown as BatchNormTrainAttrs;
  const { c, rows } = channels(x, BATCH_NORM_TRAIN);
  const moving = movingMean !== undefined && movingVariance !== undefined;
  const yInfo = backend.makeOutput(x.shape.slice(), 'float32');
  const meanInfo = backend.makeOutput([c], 'float32');
  const varInfo = backend.makeOutput([c], 'float32');
  const mmInfo = moving ? backend.makeOutput([c], 'float32') : null;
  const mvInfo = moving ? backend.makeOutput([c], 'float32') : null;
  const xs = f32(backend, x), gs = f32(backend, gamma), bs = f32(backend, beta);
  const ys = f32(backend, yInfo), ms = f32(backend, meanInfo), vs = f32(backend, varInfo);
  // Pass 1: sums of d = x − x[0, c] and d² per channel (shifted by the first row, in double precision).
  // Every pass walks row tiles that fit in L1 and, inside a tile, one channel at a time with its sums in locals.
  const shift = new Float64Array(c), s1 = new Float64Array(c), s2 = new Float64Array(c);
  for (let j = 0; j < c; j++) shift[j] = xs[j]!;
  const tile = Math.max(1, Math.floor(TILE_FLOATS / c));
  const c4 = c - (c % 4);
  for (let r0 = 0; r0 < rows; r0 += tile) {
    const start = r0 * c, end = Math.min(rows, r0 + tile) * c;
    // Four channels at a time (more independent sums per iteration), then the remainder one by one.
    for (let j = 0; j < c4; j += 4) {
      const h0 = shift[j]!, h1 = shift[j + 1]!, h2 = shift[j + 2]!, h3 = shift[j + 3]!;
      let a0 = 0, a1 = 0, a2 = 0, a3 = 0, b0 = 0, b1 = 0, b2 = 0, b3 = 0;
      for (let i = start + j; i < end; i += c) {
        const d0 = xs[i]! - h0, d1 = xs[i + 1]! - h1, d2 = xs[i + 2]! - h2, d3 = xs[i + 3]! - h3;
        a0 += d0; a1 += d1; a2 += d2; a3 += d3;
        b0 += d0 * d0; b1 += d1 * d1; b2 += d2 * d2; b3 += d3 * d3;
      }
      s1[j] += a0; s1[j + 1] += a1; s1[j + 2] += a2; s1[j + 3] += a3;
      s2[j] += b0; s2[j + 1] += b1; s2[j + 2] += b2; s2[j + 3] += b3;
    }
    for (let j = c4; j < c; j++) {
      const sh = shift[j]!;
      let a = 0, b = 0;
      for (let i = start + j; i < end; i += c) {
        const d = xs[i]! - sh;
        a += d;
        b += d * d;
      }
      s1[j] += a;
      s2[j] += b;
    }
  }
  const scale = new Float64Array(c), offset = new Float64Array(c);
  for (let j = 0; j < c; j++) {
    const dm = s1[j]! / rows;
    const mean = shift[j]! + dm;
    const variance = Math.max(0, s2[j]! / rows - dm * dm);
    ms[j] = mean;
    vs[j] = variance;
    scale[j] = gs[j]! / Math.sqrt(variance + epsilon);
    offset[j] = bs[j]! - mean * scale[j]!;
  }
  // Pass 2: y = x·scale + offset.
  for (let r0 = 0; r0 < rows; r0 += tile) {
    const start = r0 * c, end = Math.min(rows, r0 + tile) * c;
    for (let j = 0; j < c4; j += 4) {
      const k0 = scale[j]!, k1 = scale[j + 1]!, k2 = scale[j + 2]!, k3 = scale[j + 3]!;
      const o0 = offset[j]!, o1 = offset[j + 1]!, o2 = offset[j + 2]!, o3 = offset[j + 3]!;
      for (let i = start + j; i < end; i += c) {
        ys[i] = xs[i]! * k0 + o0;
        ys[i + 1] = xs[i + 1]! * k1 + o1;
        ys[i + 2] = xs[i + 2]! * k2 + o2;
        ys[i + 3] = xs[i + 3]! * k3 + o3;
      }
    }
    for (let j = c4; j < c; j++) {
      const sc = scale[j]!, of = offset[j]!;
      for (let i = start + j; i < end; i += c) ys[i] = xs[i]! * sc + of;
    }
  }
  if (mmInfo !== null && mvInfo !== null) {
    // tfjs-layers: decay = 1 − momentum (a float32 scalar); moving − (moving − value)·decay, each op in float32.
    const decay = Math.fround(1 - (momentum ?? 0.99));
    const update = (mv: Float32Array, value: Float32Array, out: Float32Array): void => {
      for (let j = 0; j < c; j++) out[j] = Math.fround(mv[j]! - Math.fround(Math.fround(mv[j]! - value[j]!) * decay));
    };
    update(f32(backend, movingMean!), ms, f32(backend, mmInfo));
    update(f32(backend, movingVariance!), vs, f32(backend, mvInfo));
    return [yInfo, meanInfo, varInfo, mmInfo, mvInfo];
  }
  return [yInfo, meanInfo, varInfo];
}

function bnTrainGradKernel(args: Args): tf.TensorInfo[] {
  const backend = args.backend as WasmBackendLike;
  const { dy, x, mean, variance, gamma } = args.inputs as Record<'dy' | 'x' | 'mean' | 'variance' | 'gamma', tf.TensorInfo>;
  const { epsilon } = args.attrs as unknown as BatchNormTrainAttrs;
  const { c, rows } = channels(x, BATCH_NORM_TRAIN_GRAD);
  const dxInfo = backend.makeOutput(x.shape.slice(), 'float32');
  const dgInfo = backend.makeOutput([c], 'float32');
  const dbInfo = backend.makeOutput([c], 'float32');
  const dys = f32(backend, dy), xs = f32(backend, x), ms = f32(backend, mean), vs = f32(backend, variance), gs = f32(backend, gamma);
  const dxs = f32(backend, dxInfo), dgs = f32(backend, dgInfo), dbs = f32(backend, dbInfo);
  const mu = new Float64Array(c), inv = new Float64Array(c), sdy = new Float64Array(c), sdyx = new Float64Array(c);
  for (let j = 0; j < c; j++) {
    mu[j] = ms[j]!;
    inv[j] = 1 / Math.sqrt(vs[j]! + epsilon);
  }
  const tile = Math.max(1, Math.floor(TILE_FLOATS / c));
  // Pass 1: Σ dy and Σ dy·(x − mean) per channel (four channels at a time, then the remainder).
  const c4 = c - (c % 4);
  for (let r0 = 0; r0 < rows; r0 += tile) {
    const start = r0 * c, end = Math.min(rows, r0 + tile) * c;
    for (let j = 0; j < c4; j += 4) {
      const m0 = mu[j]!, m1 = mu[j + 1]!, m2 = mu[j + 2]!, m3 = mu[j + 3]!;
      let a0 = 0, a1 = 0, a2 = 0, a3 = 0, b0 = 0, b1 = 0, b2 = 0, b3 = 0;
      for (let i = start + j; i < end; i += c) {
        const g0 = dys[i]!, g1 = dys[i + 1]!, g2 = dys[i + 2]!, g3 = dys[i + 3]!;
        a0 += g0; a1 += g1; a2 += g2; a3 += g3;
        b0 += g0 * (xs[i]! - m0); b1 += g1 * (xs[i + 1]! - m1); b2 += g2 * (xs[i + 2]! - m2); b3 += g3 * (xs[i + 3]! - m3);
      }
      sdy[j] += a0; sdy[j + 1] += a1; sdy[j + 2] += a2; sdy[j + 3] += a3;
      sdyx[j] += b0; sdyx[j + 1] += b1; sdyx[j + 2] += b2; sdyx[j + 3] += b3;
    }
    for (let j = c4; j < c; j++) {
      const m = mu[j]!;
      let a = 0, b = 0;
      for (let i = start + j; i < end; i += c) {
        const g = dys[i]!;
        a += g;
        b += g * (xs[i]! - m);
      }
      sdy[j] += a;
      sdyx[j] += b;
    }
  }
  // dx = k·dy + a·x + b per channel, with k = γ·inv, a = −k·inv²·Σdy(x − mean)/M, b = −k·Σdy/M − a·mean.
  const k = new Float64Array(c), a = new Float64Array(c), b = new Float64Array(c);
  for (let j = 0; j < c; j++) {
    dbs[j] = sdy[j]!;
    dgs[j] = sdyx[j]! * inv[j]!;
    k[j] = gs[j]! * inv[j]!;
    a[j] = (-k[j]! * inv[j]! * inv[j]! * sdyx[j]!) / rows;
    b[j] = (-k[j]! * sdy[j]!) / rows - a[j]! * mu[j]!;
  }
  // Pass 2.
  for (let r0 = 0; r0 < rows; r0 += tile) {
    const start = r0 * c, end = Math.min(rows, r0 + tile) * c;
    for (let j = 0; j < c4; j += 4) {
      const k0 = k[j]!, k1 = k[j + 1]!, k2 = k[j + 2]!, k3 = k[j + 3]!;
      const a0 = a[j]!, a1 = a[j + 1]!, a2 = a[j + 2]!, a3 = a[j + 3]!;
      const b0 = b[j]!, b1 = b[j + 1]!, b2 = b[j + 2]!, b3 = b[j + 3]!;
      for (let i = start + j; i < end; i += c) {
        dxs[i] = k0 * dys[i]! + a0 * xs[i]! + b0;
        dxs[i + 1] = k1 * dys[i + 1]! + a1 * xs[i + 1]! + b1;
        dxs[i + 2] = k2 * dys[i + 2]! + a2 * xs[i + 2]! + b2;
        dxs[i + 3] = k3 * dys[i + 3]! + a3 * xs[i + 3]! + b3;
      }
    }
    for (let j = c4; j < c; j++) {
      const kj = k[j]!, aj = a[j]!, bj = b[j]!;
      for (let i = start + j; i < end; i += c) dxs[i] = kj * dys[i]! + aj * xs[i]! + bj;
    }
  }
  return [dxInfo, dgInfo, dbInfo];
}

export const batchNormTrainKernels: readonly tf.KernelConfig[] = [
  { kernelName: BATCH_NORM_TRAIN, backendName: 'wasm', kernelFunc: bnTrainKernel as unknown as tf.KernelFunc },
  { kernelName: BATCH_NORM_TRAIN_GRAD, backendName: 'wasm', kernelFunc: bnTrainGradKernel as unknown as tf.KernelFunc },
];

tf.registerGradient({
  kernelName: BATCH_NORM_TRAIN,
  inputsToSave: ['x', 'gamma'],
  outputsToSave: [false, true, true, false, false],
  gradFunc: (dy: tf.Tensor | tf.Tensor[], saved: tf.Tensor[], attrs: tf.NamedAttrMap) => {
    const [x, gamma, mean, variance] = saved as [tf.Tensor, tf.Tensor, tf.Tensor, tf.Tensor];
    const dyY = Array.isArray(dy) ? dy[0]! : dy;
    const [dx, dgamma, dbeta] = tf.engine().runKernel(BATCH_NORM_TRAIN_GRAD, { dy: dyY, x, mean, variance, gamma }, attrs) as tf.Tensor[];
    // The moving statistics only feed their own updates: no gradient.
    return { x: () => dx!, gamma: () => dgamma!, beta: () => dbeta!, movingMean: () => tf.zerosLike(mean), movingVariance: () => tf.zerosLike(variance) };
  },
});

/** Whether the current backend has the fused training batch norm. */
export function batchNormTrainAvailable(): boolean {
  const backend = tf.getBackend();
  return tf.getKernel(BATCH_NORM_TRAIN, backend) !== undefined && tf.getKernel(BATCH_NORM_TRAIN_GRAD, backend) !== undefined;
}

/**
 * Training-mode batch norm over all axes but the last, with its gradient (needs {@link batchNormTrainAvailable}).
 * With `moving` it also returns the updated moving mean and variance (momentum as tfjs-layers' BatchNormalization).
 */
export function batchNormTrain(
  x: tf.Tensor,
  gamma: tf.Tensor1D,
  beta: tf.Tensor1D,
  epsilon: number,
  moving?: { mean: tf.Tensor1D; variance: tf.Tensor1D; momentum: number },
): { y: tf.Tensor; mean: tf.Tensor1D; variance: tf.Tensor1D; movingMean?: tf.Tensor1D; movingVariance?: tf.Tensor1D } {
  const inputs: tf.NamedTensorMap = { x, gamma, beta };
  if (moving) {
    inputs['movingMean'] = moving.mean;
    inputs['movingVariance'] = moving.variance;
  }
  const attrs: BatchNormTrainAttrs = { epsilon, momentum: moving?.momentum };
  const [y, mean, variance, movingMean, movingVariance] = tf.engine().runKernel(BATCH_NORM_TRAIN, inputs, attrs as unknown as tf.NamedAttrMap) as tf.Tensor[];
  return { y: y!, mean: mean as tf.Tensor1D, variance: variance as tf.Tensor1D, movingMean: movingMean as tf.Tensor1D | undefined, movingVariance: movingVariance as tf.Tensor1D | undefined };
}
