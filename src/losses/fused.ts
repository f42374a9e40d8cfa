/**
 * Fused loss primitives: ops backed by the project's SoftsegJdtStats / SoftsegHardNll kernels (one pass forward
 * and one backward over the probabilities, instead of dozens of elementwise ops). They are used only where the
 * current backend has those kernels (wasm and cpu once the project kernels are registered; webgpu once its backend
 * is initialised); elsewhere the losses compute the same quantities with plain TF.js ops.
 */
import * as tf from '@tensorflow/tfjs';
import { HARD_NLL, HARD_NLL_GRAD, type HardNllAttrs } from '../backends/kernels/hard-nll.js';
import { JDT_STATS, JDT_STATS_GRAD, type JdtStatsAttrs } from '../backends/kernels/jdt-stats.js';

function available(...kernelNames: string[]): boolean {
  const backend = tf.getBackend();
  return kernelNames.every((k) => tf.getKernel(k, backend) !== undefined);
}

export function fusedJdtAvailable(): boolean {
  return available(JDT_STATS, JDT_STATS_GRAD);
}

export function fusedNllAvailable(): boolean {
  return available(HARD_NLL, HARD_NLL_GRAD);
}

export interface JdtStats {
  /** [N, C] sums over kept pixels; differentiable with respect to the probabilities. */
  tp: tf.Tensor2D;
  fp: tf.Tensor2D;
  fn: tf.Tensor2D;
  /** [N, C] maxima over pixels of the masked label, probability and their sum (no gradient). */
  maxLabel: tf.Tensor2D;
  maxProb: tf.Tensor2D;
  maxBoth: tf.Tensor2D;
}

/**
 * TP/FP/FN (L1) of probabilities [N,P,C] against a hard ([N,P] int) or soft ([N,P,C]) label, with an optional keep
 * mask [N,P] (overrides `ignoreIndex`).
 */
export function fusedJdtStats(prob: tf.Tensor3D, label: tf.Tensor, keep: tf.Tensor | null, hard: boolean, ignoreIndex: number | null): JdtStats {
  const attrs = { hard, ignoreIndex } satisfies JdtStatsAttrs as unknown as tf.NamedAttrMap;
  const lab = hard ? tf.cast(label, 'int32') : tf.cast(label, 'float32');
  const kp = keep ? tf.cast(keep, 'float32') : null;
  const op = tf.customGrad((...args: unknown[]) => {
    const [pr, l] = args as [tf.Tensor, tf.Tensor];
    const k = kp ? (args[2] as tf.Tensor) : null;
    const save = args[args.length - 1] as tf.GradSaveFunc;
    const inputs: tf.NamedTensorMap = { prob: pr, label: l };
    if (k) inputs.keep = k;
    save(k ? [pr, l, k] : [pr, l]);
    const value = tf.engine().runKernel(JDT_STATS, inputs, attrs) as tf.Tensor;
    return {
      value,
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
        const [sp, sl, sk] = saved as [tf.Tensor, tf.Tensor, tf.Tensor | undefined];
        const gin: tf.NamedTensorMap = { prob: sp, label: sl, dy };
        if (sk) gin.keep = sk;
        const g = tf.engine().runKernel(JDT_STATS_GRAD, gin, attrs) as tf.Tensor;
        return [g, tf.zeros(sl.shape), ...(sk ? [tf.zeros(sk.shape)] : [])];
      },
    };
  });
  const packed = (kp ? op(prob, lab, kp) : op(prob, lab)) as tf.Tensor3D;
  const [tp, fp, fn, maxLabel, maxProb, maxBoth] = tf.unstack(packed, 0) as tf.Tensor2D[];
  return { tp: tp!, fp: fp!, fn: fn!, maxLabel: maxLabel!, maxProb: maxProb!, maxBoth: maxBoth! };
}

/** [Σ kept −logp[y], number kept] of log-probabilities [M, C] and hard labels [M]; only the first has a gradient. */
export function fusedHardNll(logp: tf.Tensor2D, label: tf.Tensor, ignoreIndex: number | null): tf.Tensor1D {
  const attrs = { ignoreIndex } satisfies HardNllAttrs as unknown as tf.NamedAttrMap;
  const lab = tf.cast(label, 'int32');
  const op = tf.customGrad((...args: unknown[]) => {
    const [z, l, save] = args as [tf.Tensor, tf.Tensor, tf.GradSaveFunc];
    save([z, l]);
    const value = tf.engine().runKernel(HARD_NLL, { logp: z, label: l }, attrs) as tf.Tensor;
    return {
      value,
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
        const [sz, sl] = saved as [tf.Tensor, tf.Tensor];
        const g = tf.engine().runKernel(HARD_NLL_GRAD, { logp: sz, label: sl, dy }, attrs) as tf.Tensor;
        return [g, tf.zeros(sl.shape)];
      },
    };
  });
  return op(logp, lab) as tf.Tensor1D;
}
