// SoftsegBatchNormTrain / SoftsegBatchNormTrainGrad (webgpu): training-mode batch norm over every axis but the
// last, the formulas of ../batch-norm-train.ts (the wasm kernels), in a few dispatches instead of the ~10 ops of
// moments + FusedBatchNorm + moving-average updates forward and ~25 backward (the stock FusedBatchNorm gradient,
// with its Tile and outer-axis Sums, plus the gradient through moments).
//   Per-channel sums over the M = N·H·W rows are a two-level reduction, as a GPU wants it: pass 1 has one
//   invocation per (row chunk, channel) — adjacent invocations read adjacent channels of the same rows — and writes
//   partial sums [2, chunks, C]; a per-channel pass adds the chunks and finishes the statistic. Then one
//   elementwise pass. Forward: partial sums of d = x − x[0, c] and d² (shifted, as the wasm kernel; float32 here),
//   then mean, variance (and the two moving averages) per channel, then y. Backward: partial sums of dy and
//   dy·(x − mean), then dβ and dγ, then dx = γ/√(var + ε)·(dy − (dβ + x̂·dγ)/M).
import * as tf from '@tensorflow/tfjs';
import { BATCH_NORM_TRAIN, BATCH_NORM_TRAIN_GRAD, type BatchNormTrainAttrs } from '../batch-norm-train.js';
import { flatDispatch, type WebGpuBackendLike, type WebGpuProgram } from './program.js';

type Args = { inputs: tf.NamedTensorInfoMap; backend: unknown; attrs: unknown };
type Uniform = { type: 'int32' | 'float32'; data: number[] };

/** Invocations pass 1 aims for (chunks · C), and the fewest rows a chunk gets. */
const TARGET_INVOCATIONS = 8192;
const MIN_CHUNK_ROWS = 16;

interface Geometry { rows: number; c: number; chunks: number; chunkRows: number }

function geometry(x: tf.TensorInfo, kernel: string): Geometry {
  const c = x.shape[x.shape.length - 1];
  if (x.shape.length < 2 || c === undefined || c === 0) throw new Error(`${kernel}: x must have rank ≥ 2 and channels last`);
  if (x.dtype !== 'float32') throw new Error(`${kernel}: inputs must be float32, got ${x.dtype}`);
  const rows = x.shape.slice(0, -1).reduce((a, b) => a * b, 1);
  const wanted = Math.max(1, Math.ceil(TARGET_INVOCATIONS / c));
  const chunkRows = Math.max(MIN_CHUNK_ROWS, Math.ceil(rows / wanted));
  return { rows, c, chunks: Math.max(1, Math.ceil(rows / chunkRows)), chunkRows };
}

const GEOMETRY_UNIFORMS = 'rows : i32, channels : i32, chunks : i32, chunkRows : i32,';
const geometryUniforms = (g: Geometry): Uniform[] => [g.rows, g.c, g.chunks, g.chunkRows].map((v) => ({ type: 'int32', data: [v] }));

/**
 * Pass 1: partial sums [2, chunks, C] over each chunk of rows. Forward (inputs bnX): of d = x − x[0, c] and d².
 * Backward (inputs bnDy, bnX, bnMean): of dy and dy·(x − mean).
 */
function partialProgram(g: Geometry, backward: boolean): WebGpuProgram {
  const terms = backward
    ? { init: 'let m = bnMean[c];', load: 'let e = bnDy[i]; let f = e * (bnX[i] - m);' }
    : { init: 'let m = bnX[c];', load: 'let e = bnX[i] - m; let f = e * e;' };
  return {
    variableNames: backward ? ['bnDy', 'bnX', 'bnMean'] : ['bnX'],
    outputShape: [2, g.chunks, g.c],
    shaderKey: `softseg_bn_partial_${backward ? 'grad' : 'fwd'}`,
    uniforms: GEOMETRY_UNIFORMS,
    ...flatDispatch([g.chunks * g.c]),
    dispatchLayout: { x: [0, 1, 2] },
    getUserCode: () => `
      fn main(index : i32) {
        let n = uniforms.chunks * uniforms.channels;
        if (index < n) {
          let c = index % uniforms.channels;
          let r0 = (index / uniforms.channels) * uniforms.chunkRows;
          let r1 = min(uniforms.rows, r0 + uniforms.chunkRows);
          ${terms.init}
          var a = 0.0;
          var b = 0.0;
          for (var r = r0; r < r1; r++) {
            let i = r * uniforms.channels + c;
            ${terms.load}
            a += e;
            b += f;
          }
          setOutputAtIndex(index, a);
          setOutputAtIndex(n + index, b);
        }
      }`,
  };
}

/** WGSL: the chunk sums of channel c → vec2(Σ first, Σ second). */
const CHUNK_SUMS = `
      fn chunkSums(c : i32) -> vec2<f32> {
        let n = uniforms.chunks * uniforms.channels;
        var s = vec2<f32>(0.0, 0.0);
        for (var k = 0; k < uniforms.chunks; k++) {
          let o = k * uniforms.channels + c;
          s += vec2<f32>(bnPart[o], bnPart[n + o]);
        }
        return s;
      }`;

type ForwardStat = 'mean' | 'variance' | 'movingMean' | 'movingVariance';

/** Pass 2, forward: one per-channel statistic [C] from the partial sums (and x[0, c], the shift). */
function forwardStatProgram(g: Geometry, which: ForwardStat): WebGpuProgram {
  const moving = which === 'movingMean' || which === 'movingVariance';
  const value = which === 'mean' || which === 'movingMean' ? 'mean' : 'variance';
  return {
    variableNames: moving ? ['bnPart', 'bnX', 'bnMoving'] : ['bnPart', 'bnX'],
    outputShape: [g.c],
    shaderKey: `softseg_bn_stat_${which}`,
    uniforms: `${GEOMETRY_UNIFORMS} decay : f32,`,
    ...flatDispatch([g.c]),
    getUserCode: () => `${CHUNK_SUMS}
      fn main(index : i32) {
        if (index < uniforms.channels) {
          let s = chunkSums(index);
          let dm = s.x / f32(uniforms.rows);
          let mean = bnX[index] + dm;
          let variance = max(0.0, s.y / f32(uniforms.rows) - dm * dm);
          ${moving
            // tfjs-layers' update: moving − (moving − value)·(1 − momentum).
            ? `let mv = bnMoving[index];
          setOutputAtIndex(index, mv - (mv - ${value}) * uniforms.decay);`
            : `setOutputAtIndex(index, ${value});`}
        }
      }`,
  };
}

/** Pass 3, forward: y = (x − mean)·γ/√(var + ε) + β. */
function normalizeProgram(shape: number[]): WebGpuProgram {
  return {
    variableNames: ['bnX', 'bnMean', 'bnVar', 'bnGamma', 'bnBeta'],
    outputShape: shape,
    shaderKey: 'softseg_bn_normalize',
    size: true,
    uniforms: 'channels : i32, eps : f32,',
    ...flatDispatch(shape),
    getUserCode: () => `
      fn main(index : i32) {
        if (index < uniforms.size) {
          let c = index % uniforms.channels;
          let k = bnGamma[c] * inverseSqrt(bnVar[c] + uniforms.eps);
          setOutputAtIndex(index, (bnX[index] - bnMean[c]) * k + bnBeta[c]);
        }
      }`,
  };
}

/** Pass 2, backward: dβ = Σ dy, or dγ = Σ dy·(x − mean) / √(var + ε). */
function gradStatProgram(g: Geometry, which: 'dbeta' | 'dgamma'): WebGpuProgram {
  return {
    variableNames: which === 'dgamma' ? ['bnPart', 'bnVar'] : ['bnPart'],
    outputShape: [g.c],
    shaderKey: `softseg_bn_stat_${which}`,
    uniforms: `${GEOMETRY_UNIFORMS} eps : f32,`,
    ...flatDispatch([g.c]),
    getUserCode: () => `${CHUNK_SUMS}
      fn main(index : i32) {
        if (index < uniforms.channels) {
          let s = chunkSums(index);
          setOutputAtIndex(index, ${which === 'dgamma' ? 's.y * inverseSqrt(bnVar[index] + uniforms.eps)' : 's.x'});
        }
      }`,
  };
}

/** Pass 3, backward: dx = γ/√(var + ε)·(dy − (dβ + x̂·dγ)/M), x̂ = (x − mean)/√(var + ε). */
function dxProgram(shape: number[]): WebGpuProgram {
  return {
    variableNames: ['bnDy', 'bnX', 'bnMean', 'bnVar', 'bnGamma', 'bnDg', 'bnDb'],
    outputShape: shape,
    shaderKey: 'softseg_bn_dx',
    size: true,
    uniforms: 'channels : i32, eps : f32, invRows : f32,',
    ...flatDispatch(shape),
    getUserCode: () => `
      fn main(index : i32) {
        if (index < uniforms.size) {
          let c = index % uniforms.channels;
          let inv = inverseSqrt(bnVar[c] + uniforms.eps);
          let xhat = (bnX[index] - bnMean[c]) * inv;
          setOutputAtIndex(index, bnGamma[c] * inv * (bnDy[index] - (bnDb[c] + xhat * bnDg[c]) * uniforms.invRows));
        }
      }`,
  };
}

const f32Uniform = (v: number): Uniform => ({ type: 'float32', data: [v] });
const i32Uniform = (v: number): Uniform => ({ type: 'int32', data: [v] });

function bnTrain(args: Args): tf.TensorInfo[] {
  const backend = args.backend as WebGpuBackendLike;
  const { x, gamma, beta, movingMean, movingVariance } = args.inputs as Record<'x' | 'gamma' | 'beta', tf.TensorInfo> & Partial<Record<'movingMean' | 'movingVariance', tf.TensorInfo>>;
  const { epsilon, momentum } = args.attrs as unknown as BatchNormTrainAttrs;
  const g = geometry(x, BATCH_NORM_TRAIN);
  const part = backend.runWebGPUProgram(partialProgram(g, false), [x], 'float32', geometryUniforms(g));
  try {
    const stat = (which: ForwardStat, moving?: tf.TensorInfo): tf.TensorInfo =>
      backend.runWebGPUProgram(forwardStatProgram(g, which), moving ? [part, x, moving] : [part, x], 'float32', [...geometryUniforms(g), f32Uniform(Math.fround(1 - (momentum ?? 0.99)))]);
    const mean = stat('mean'), variance = stat('variance');
    const y = backend.runWebGPUProgram(normalizeProgram(x.shape), [x, mean, variance, gamma, beta], 'float32', [i32Uniform(g.c), f32Uniform(epsilon)]);
    if (movingMean === undefined || movingVariance === undefined) return [y, mean, variance];
    return [y, mean, variance, stat('movingMean', movingMean), stat('movingVariance', movingVariance)];
  } finally {
    backend.disposeData(part.dataId);
  }
}

function bnTrainGrad(args: Args): tf.TensorInfo[] {
  const backend = args.backend as WebGpuBackendLike;
  const { dy, x, mean, variance, gamma } = args.inputs as Record<'dy' | 'x' | 'mean' | 'variance' | 'gamma', tf.TensorInfo>;
  const { epsilon } = args.attrs as unknown as BatchNormTrainAttrs;
  const g = geometry(x, BATCH_NORM_TRAIN_GRAD);
  const part = backend.runWebGPUProgram(partialProgram(g, true), [dy, x, mean], 'float32', geometryUniforms(g));
  try {
    const uniforms = [...geometryUniforms(g), f32Uniform(epsilon)];
    const dbeta = backend.runWebGPUProgram(gradStatProgram(g, 'dbeta'), [part], 'float32', uniforms);
    const dgamma = backend.runWebGPUProgram(gradStatProgram(g, 'dgamma'), [part, variance], 'float32', uniforms);
    const dx = backend.runWebGPUProgram(dxProgram(x.shape), [dy, x, mean, variance, gamma, dgamma, dbeta], 'float32', [i32Uniform(g.c), f32Uniform(epsilon), f32Uniform(1 / g.rows)]);
    return [dx, dgamma, dbeta];
  } finally {
    backend.disposeData(part.dataId);
  }
}

export const batchNormTrainWebGpuKernels: readonly tf.KernelConfig[] = [
  { kernelName: BATCH_NORM_TRAIN, backendName: 'webgpu', kernelFunc: bnTrain as unknown as tf.KernelFunc },
  { kernelName: BATCH_NORM_TRAIN_GRAD, backendName: 'webgpu', kernelFunc: bnTrainGrad as unknown as tf.KernelFunc },
];
