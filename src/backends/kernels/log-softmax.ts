// SoftsegLogSoftmax / SoftsegLogSoftmaxGrad (wasm): log-softmax over the last axis and the probabilities
// exp(log-softmax) together, in one pass with one exp per element (double precision, see expNonPositive), instead of
// Max, Sub, Exp, Sum, Log, Sub and a second Exp for the probabilities — and a gradient that needs no exp at all:
//   dz = dlogp − p·Σ dlogp + p ⊙ (dprob − Σ p·dprob)      (sums over the last axis)
// The hard-label objective uses both outputs (log-probabilities for the CE term, probabilities for JDT).
import * as tf from '@tensorflow/tfjs';
import type { WasmBackendLike } from './wasm-util.js';

export const LOG_SOFTMAX = 'SoftsegLogSoftmax';
export const LOG_SOFTMAX_GRAD = 'SoftsegLogSoftmaxGrad';

type Args = { inputs: tf.NamedTensorInfoMap; backend: unknown; attrs: unknown };

function f32(backend: WasmBackendLike, info: tf.TensorInfo): Float32Array {
  if (info.dtype !== 'float32') throw new Error(`${LOG_SOFTMAX}: inputs must be float32, got ${info.dtype}`);
  return backend.typedArrayFromHeap(info) as Float32Array;
}

const POW2_MIN = -160;
/** 2^k for k = POW2_MIN … 0. */
const POW2 = Float64Array.from({ length: 1 - POW2_MIN }, (_, i) => 2 ** (i + POW2_MIN));

/**
 * e^x for x ≤ 0 (arguments shifted by their row maximum), relative error ≤ 2e-7 — about float32's rounding, and
 * ~2x faster than Math.exp: e^x = 2^k · e^r with k = round(x·log₂e), |r| ≤ ln2/2, e^r by its degree-6 Taylor
 * polynomial. Below −103 the float32 result is 0 anyway.
 */
function expNonPositive(x: number): number {
  if (x < -103) return 0;
  const t = x * Math.LOG2E;
  const k = Math.floor(t + 0.5);
  const r = (t - k) * Math.LN2;
  const p = 1 + r * (1 + r * (1 / 2 + r * (1 / 6 + r * (1 / 24 + r * (1 / 120 + r * (1 / 720))))));
  return p * POW2[k - POW2_MIN]!;
}

function logSoftmaxKernel(args: Args): tf.TensorInfo[] {
  const backend = args.backend as WasmBackendLike;
  const { logits } = args.inputs as { logits: tf.TensorInfo };
  const c = logits.shape[logits.shape.length - 1] ?? 0;
  const logpInfo = backend.makeOutput(logits.shape.slice(), 'float32');
  const probInfo = backend.makeOutput(logits.shape.slice(), 'float32');
  const z = f32(backend, logits), lp = f32(backend, logpInfo), pr = f32(backend, probInfo);
  const n = z.length;
  if (c === 0) return [logpInfo, probInfo];
  for (let base = 0; base < n; base += c) {
    const end = base + c;
    let m = -Infinity;
    for (let i = base; i < end; i++) {
      const v = z[i]!;
      if (v > m) m = v;
    }
    if (m === -Infinity || !Number.isFinite(m)) {
      // A row of −∞ (or with +∞/NaN): leave it to exact arithmetic.
      let s = 0;
      for (let i = base; i < end; i++) s += Math.exp(z[i]! - m);
      for (let i = base; i < end; i++) {
        lp[i] = z[i]! - m - Math.log(s);
        pr[i] = Math.exp(z[i]! - m) / s;
      }
      continue;
    }
    let s = 0;
    for (let i = base; i < end; i++) {
      const v = expNonPositive(z[i]! - m);
      pr[i] = v;
      s += v;
    }
    const lse = m + Math.log(s), inv = 1 / s;
    for (let i = base; i < end; i++) {
      lp[i] = z[i]! - lse;
      pr[i] = pr[i]! * inv;
    }
  }
  return [logpInfo, probInfo];
}

function logSoftmaxGradKernel(args: Args): tf.TensorInfo {
  const backend = args.backend as WasmBackendLike;
  const { dlogp, dprob, prob } = args.inputs as { dlogp: tf.TensorInfo; dprob: tf.TensorInfo; prob: tf.TensorInfo };
  const c = prob.shape[prob.shape.length - 1] ?? 0;
  const out = backend.makeOutput(prob.shape.slice(), 'float32');
  const gl = f32(backend, dlogp), gp = f32(backend, dprob), p = f32(backend, prob), dz = f32(backend, out);
  const n = p.length;
  for (let base = 0; base < n; base += c) {
    let sl = 0, sp = 0;
    for (let j = 0; j < c; j++) {
      sl += gl[base + j]!;
      sp += p[base + j]! * gp[base + j]!;
    }
    for (let j = 0; j < c; j++) {
      const pj = p[base + j]!;
      dz[base + j] = gl[base + j]! - pj * sl + pj * (gp[base + j]! - sp);
    }
  }
  return out;
}

export const logSoftmaxKernels: readonly tf.KernelConfig[] = [
  { kernelName: LOG_SOFTMAX, backendName: 'wasm', kernelFunc: logSoftmaxKernel as unknown as tf.KernelFunc },
  { kernelName: LOG_SOFTMAX_GRAD, backendName: 'wasm', kernelFunc: logSoftmaxGradKernel as unknown as tf.KernelFunc },
];

tf.registerGradient({
  kernelName: LOG_SOFTMAX,
  outputsToSave: [false, true],
  gradFunc: (dy: tf.Tensor | tf.Tensor[], saved: tf.Tensor[]) => {
    const [prob] = saved as [tf.Tensor];
    const [dlogp, dprob] = (Array.isArray(dy) ? dy : [dy, tf.zerosLike(prob)]) as [tf.Tensor, tf.Tensor];
    return { logits: () => tf.engine().runKernel(LOG_SOFTMAX_GRAD, { dlogp, dprob, prob }) as tf.Tensor };
  },
});

/** Whether the current backend has the fused log-softmax. */
function fusedLogSoftmaxAvailable(): boolean {
  const backend = tf.getBackend();
  return tf.getKernel(LOG_SOFTMAX, backend) !== undefined && tf.getKernel(LOG_SOFTMAX_GRAD, backend) !== undefined;
}

/**
 * log softmax(z) over the last axis and softmax(z) = exp(log softmax(z)), differentiable through both. One fused
 * kernel each way where available (wasm, webgpu); elsewhere tf.logSoftmax and tf.exp.
 */
export function logSoftmaxWithProbs<T extends tf.Tensor>(logits: T): { logp: T; prob: T } {
  if (logits.dtype === 'float32' && logits.rank >= 1 && fusedLogSoftmaxAvailable()) {
    const [logp, prob] = tf.engine().runKernel(LOG_SOFTMAX, { logits }) as tf.Tensor[];
    return { logp: logp as T, prob: prob as T };
  }
  return tf.tidy(() => {
    const logp = tf.logSoftmax(logits) as T;
    return { logp, prob: tf.exp(logp) as T };
  });
}
