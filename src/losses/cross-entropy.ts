/** Cross-entropy on hard labels and temperature KL divergence to soft labels (method.md §4.3, §5.1). */
import * as tf from '@tensorflow/tfjs';
import { fusedHardNll, fusedNllAvailable } from './fused.js';
import { checkLabelShape, keepMaskFromLabel, oneHotLabels, stopGradient } from './jdt.js';

/** Mean over kept pixels; 0 (with a zero gradient) when no pixel is kept, where the reference would give NaN. */
function maskedMean(perPixel: tf.Tensor, keep: tf.Tensor | null): tf.Scalar {
  if (!keep) return tf.mean(perPixel);
  return tf.div(tf.sum(tf.mul(perPixel, keep)), tf.maximum(tf.sum(keep), 1));
}

/**
 * Pixel-wise softmax cross-entropy: mean over non-ignored pixels of −ln softmax(z)[y].
 * logits [N,H,W,C], label [N,H,W] int. `logProbs` = tf.logSoftmax(logits) when the caller already has it.
 */
export function crossEntropy(logits: tf.Tensor, label: tf.Tensor, options: { ignoreIndex?: number | null; logProbs?: tf.Tensor } = {}): tf.Scalar {
  checkLabelShape(logits, label);
  const ignoreIndex = options.ignoreIndex === undefined ? 255 : options.ignoreIndex;
  return tf.tidy(() => {
    const c = logits.shape[3]!;
    const logp = options.logProbs ?? tf.logSoftmax(logits);
    if (fusedNllAvailable()) {
      // One kernel pass instead of one-hot, multiply, sum and masking: [Σ kept nll, kept count].
      const sums = fusedHardNll(tf.reshape(logp, [-1, c]) as tf.Tensor2D, tf.reshape(label, [-1]), ignoreIndex);
      const [nll, count] = tf.unstack(sums);
      return tf.div(nll!, tf.maximum(count!, 1)) as tf.Scalar;
    }
    const nll = tf.neg(tf.sum(tf.mul(logp, oneHotLabels(label, c)), -1));
    return maskedMean(nll, ignoreIndex === null ? null : keepMaskFromLabel(label, ignoreIndex));
  });
}

/**
 * KL_T(z, p; K) = T² · mean over kept pixels of Σ_c p_c (ln p_c − ln softmax(z/T)_c), with 0·ln 0 = 0.
 * logits and target [N,H,W,C]; keep [N,H,W] (1 = counts) or null for all pixels. The target gets no gradient.
 */
export function klDivergence(logits: tf.Tensor, target: tf.Tensor, options: { keepMask?: tf.Tensor | null; temperature?: number } = {}): tf.Scalar {
  checkLabelShape(logits, target, 'soft label');
  const t = options.temperature ?? 1;
  return tf.tidy(() => {
    const p = stopGradient(tf.cast(target, 'float32'));
    const logq = tf.logSoftmax(t === 1 ? logits : tf.div(logits, t));
    const plogp = tf.where(tf.greater(p, 0), tf.mul(p, tf.log(tf.maximum(p, 1e-30))), tf.zerosLike(p));
    const kl = tf.sum(tf.sub(plogp, tf.mul(p, logq)), -1);
    const mean = maskedMean(kl, options.keepMask ? tf.cast(options.keepMask, 'float32') : null);
    return t === 1 ? mean : tf.mul(mean, t * t);
  });
}
