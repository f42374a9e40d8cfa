// SoftsegAdamW (wasm): one AdamW update of one variable in a single pass, instead of the ~13 elementwise ops
// (decay, two moment updates, two bias corrections, sqrt, add, div, mul, add) that tf.train.adam plus a
// decoupled decay dispatch per variable. Inputs x (the variable), m, v (Adam's moments), g (the gradient), all
// float32 of one shape; outputs [x', m', v']:
//   x₀ = x·(1 − decay)            (decoupled weight decay, decay = lr·weightDecay or 0)
//   m' = β₁m + (1 − β₁)g,  v' = β₂v + (1 − β₂)g²
//   x' = x₀ − lr · (m'/bc₁) / (√(v'/bc₂) + ε)      with bc₁ = 1 − β₁ᵗ, bc₂ = 1 − β₂ᵗ
// (the same formula, in the same order, as tf.train.adam; the optimizer falls back to those ops elsewhere).
import * as tf from '@tensorflow/tfjs';
import { readValues } from './kernel-io.js';
import type { WasmBackendLike } from './wasm-util.js';

export const ADAMW = 'SoftsegAdamW';

export interface AdamWAttrs {
  lr: number;
  beta1: number;
  beta2: number;
  epsilon: number;
  /** Multiplicative decay of the variable before the update (lr · weightDecay), 0 for none. */
  decay: number;
  /** Bias corrections 1 − β₁ᵗ and 1 − β₂ᵗ of this step. */
  bias1: number;
  bias2: number;
}

/** The kernel's inputs, checked to share the variable's shape (both backends' kernels). */
export function adamWInputs(inputs: tf.NamedTensorInfoMap): { x: tf.TensorInfo; m: tf.TensorInfo; v: tf.TensorInfo; g: tf.TensorInfo } {
  const { x, m, v, g } = inputs as { x: tf.TensorInfo; m: tf.TensorInfo; v: tf.TensorInfo; g: tf.TensorInfo };
  for (const t of [m, v, g]) {
    if (t.shape.length !== x.shape.length || t.shape.some((d, i) => d !== x.shape[i])) throw new Error(`${ADAMW}: inputs must share the variable's shape [${x.shape.join(', ')}]`);
  }
  return { x, m, v, g };
}

function adamW(args: { inputs: tf.NamedTensorInfoMap; backend: unknown; attrs: unknown }): tf.TensorInfo[] {
  const backend = args.backend as WasmBackendLike;
  const { x, m, v, g } = adamWInputs(args.inputs);
  const a = args.attrs as unknown as AdamWAttrs;
  const xo = backend.makeOutput(x.shape.slice(), 'float32');
  const mo = backend.makeOutput(x.shape.slice(), 'float32');
  const vo = backend.makeOutput(x.shape.slice(), 'float32');
  // Views only after the last allocation (allocating may grow, and so move, the heap).
  const xs = readValues(backend, x), ms = readValues(backend, m), vs = readValues(backend, v), gs = readValues(backend, g);
  const xd = readValues(backend, xo), md = readValues(backend, mo), vd = readValues(backend, vo);
  const keep = 1 - a.decay, b1 = a.beta1, b2 = a.beta2, c1 = 1 - b1, c2 = 1 - b2;
  const step = a.lr / a.bias1, inv2 = 1 / a.bias2, eps = a.epsilon;
  const n = xs.length;
  for (let i = 0; i < n; i++) {
    const gi = gs[i]!;
    const mi = b1 * ms[i]! + c1 * gi;
    const vi = b2 * vs[i]! + c2 * gi * gi;
    md[i] = mi;
    vd[i] = vi;
    xd[i] = xs[i]! * keep - (step * mi) / (Math.sqrt(vi * inv2) + eps);
  }
  return [xo, mo, vo];
}

export const adamWWasm: tf.KernelConfig = { kernelName: ADAMW, backendName: 'wasm', kernelFunc: adamW as unknown as tf.KernelFunc };
