/**
 * The JDT loss family (method.md §2.4, §3): Jaccard Metric Loss (JML1), Dice Metric Loss (DML1),
 * soft Tversky, and the squared-L2 forms, with active-class filtering and the three reductions.
 *
 * Layout: logits and soft labels are NHWC `[N, H, W, C]` (what TF.js models emit); hard labels and
 * keep masks are `[N, H, W]`.
 */
import * as tf from '@tensorflow/tfjs';
import { SoftsegError } from '../errors.js';
import { fusedJdtAvailable, fusedJdtStats } from './fused.js';

/** Which classes a loss term averages over (method.md §3.4). `PROB`, `LABEL`, `BOTH` are the 2023-11 legacy modes. */
export type ActiveClassesMode = 'ALL' | 'PRESENT' | 'PROB' | 'LABEL' | 'BOTH';

export interface JdtLossOptions {
  /** Weight of false positives (1 = Jaccard, 0.5 = Dice). */
  alpha?: number;
  /** Weight of false negatives (1 = Jaccard, 0.5 = Dice). */
  beta?: number;
  /** Focal exponent, loss := loss^gamma; must be ≥ 1. */
  gamma?: number;
  /** Added to numerator and denominator of every score. Default 1.0, as in every training config of the reference (its class default is 1e-3). */
  smooth?: number;
  /** Active-class threshold for PRESENT (and the legacy modes). */
  threshold?: number;
  /** Cardinality norm: 1 (JML/DML) or 2 (soft Jaccard/Dice on squared L2; not a metric). */
  norm?: number;
  /** Use −ln(score) instead of 1 − score. */
  logLoss?: boolean;
  /** Hard-label value to ignore; null for none. Soft labels are only masked through an explicit keep mask. */
  ignoreIndex?: number | null;
  /** Per-class multipliers of the loss (length C); not renormalised. */
  classWeights?: number[] | null;
  /** Active-class mode for hard labels. */
  activeClassesHard?: ActiveClassesMode;
  /** Active-class mode for soft labels. */
  activeClassesSoft?: ActiveClassesMode;
  /** Weight of the per-batch ("dataset-level", mIoU^D) term. */
  weightPerBatch?: number;
  /** Weight of the per-image (mIoU^I) term. */
  weightPerImage?: number;
  /** Weight of the per-class-over-images (mIoU^C) term. */
  weightPerClass?: number;
  /** The prediction is logits (softmax is applied); false: it already holds probabilities in [0, 1]. */
  fromLogits?: boolean;
}

export type ResolvedJdtOptions = Required<JdtLossOptions>;

export const JDT_DEFAULTS: ResolvedJdtOptions = {
  alpha: 1,
  beta: 1,
  gamma: 1,
  smooth: 1,
  threshold: 0.01,
  norm: 1,
  logLoss: false,
  ignoreIndex: 255,
  classWeights: null,
  activeClassesHard: 'PRESENT',
  activeClassesSoft: 'ALL',
  weightPerBatch: 1,
  weightPerImage: 0,
  weightPerClass: 0,
  fromLogits: true,
};

const MODES: readonly ActiveClassesMode[] = ['ALL', 'PRESENT', 'PROB', 'LABEL', 'BOTH'];

/** Fills defaults and rejects options the method does not define (same assertions as the reference). */
export function resolveJdtOptions(options: JdtLossOptions = {}): ResolvedJdtOptions {
  const o: ResolvedJdtOptions = { ...JDT_DEFAULTS };
  for (const [key, value] of Object.entries(options)) {
    if (value !== undefined) (o as unknown as Record<string, unknown>)[key] = value;
  }
  const nonNegative: (keyof ResolvedJdtOptions)[] = ['alpha', 'beta', 'smooth', 'threshold', 'weightPerBatch', 'weightPerImage', 'weightPerClass'];
  for (const key of nonNegative) {
    const v = o[key] as number;
    if (!Number.isFinite(v) || v < 0) throw new SoftsegError(`JDT loss option ${key} must be a finite number ≥ 0, got ${v}`);
  }
  if (!Number.isFinite(o.gamma) || o.gamma < 1) throw new SoftsegError(`JDT loss option gamma must be ≥ 1, got ${o.gamma}`);
  if (!Number.isInteger(o.norm) || o.norm < 1) throw new SoftsegError(`JDT loss option norm must be a positive integer, got ${o.norm}`);
  if (o.weightPerBatch + o.weightPerImage + o.weightPerClass <= 0) {
    throw new SoftsegError('JDT loss needs at least one of weightPerBatch, weightPerImage, weightPerClass > 0');
  }
  for (const key of ['activeClassesHard', 'activeClassesSoft'] as const) {
    if (!MODES.includes(o[key])) throw new SoftsegError(`JDT loss option ${key} must be one of ${MODES.join(', ')}, got ${o[key]}`);
  }
  if (o.classWeights !== null) {
    if (!Array.isArray(o.classWeights) || o.classWeights.some((w) => !Number.isFinite(w) || w < 0)) {
      throw new SoftsegError(`JDT loss option classWeights must be a list of numbers ≥ 0`);
    }
  }
  if (o.ignoreIndex !== null && !Number.isInteger(o.ignoreIndex)) throw new SoftsegError(`ignoreIndex must be an integer or null, got ${o.ignoreIndex}`);
  return o;
}

/** Everything the loss computed, for tests and diagnostics. Tensors are owned by the caller. */
export interface JdtLossParts {
  loss: tf.Scalar;
  /** Soft true positives per image and class after masking, before smoothing: [N, C]. */
  tp: tf.Tensor2D;
  fp: tf.Tensor2D;
  fn: tf.Tensor2D;
  /** Active-class mask of the per-batch term: [C] (1 = active). */
  activePerBatch: tf.Tensor1D;
  /** Active-class mask of the per-image/per-class terms: [N, C]. */
  activePerImage: tf.Tensor2D;
}

/** A label is hard when it is an integer tensor [N,H,W]; soft when it is a float tensor [N,H,W,C]. */
export function isHardLabel(label: tf.Tensor): boolean {
  return label.dtype === 'int32' || label.dtype === 'bool' || label.rank === 3;
}

/** Identity in the forward pass, zero gradient in the backward pass (TF.js has no stopGradient op). */
export const stopGradient = tf.customGrad((...inputs) => ({
  value: tf.clone(inputs[0] as tf.Tensor),
  gradFunc: (dy: tf.Tensor) => tf.zerosLike(dy),
})) as <T extends tf.Tensor>(x: T) => T;

/** |d| whose derivative at 0 is 0, as in the reference (TF.js's abs has derivative −1 at 0): d·sign(d), sign having a zero gradient. */
export function absZeroGrad(d: tf.Tensor): tf.Tensor {
  return tf.mul(d, tf.sign(d));
}

/** One-hot of a hard label map [N,H,W] → [N,H,W,C] float, values clamped to [0, C−1] as the reference does. */
export function oneHotLabels(label: tf.Tensor, numClasses: number): tf.Tensor4D {
  return tf.tidy(() => {
    const clamped = tf.clipByValue(tf.cast(label, 'int32'), 0, numClasses - 1);
    return tf.cast(tf.oneHot(clamped as tf.Tensor, numClasses), 'float32') as tf.Tensor4D;
  });
}

/** Keep mask [N,H,W] float (1 = pixel counts) from a hard label and an ignore index. */
export function keepMaskFromLabel(label: tf.Tensor, ignoreIndex: number): tf.Tensor3D {
  return tf.tidy(() => tf.cast(tf.notEqual(tf.cast(label, 'int32'), ignoreIndex), 'float32') as tf.Tensor3D);
}

export function checkLabelShape(logits: tf.Tensor, label: tf.Tensor, what = 'label'): void {
  if (logits.rank !== 4) throw new SoftsegError(`logits must be [N,H,W,C], got shape [${logits.shape}]`);
  const [n, h, w, c] = logits.shape;
  const hard = isHardLabel(label);
  const want = hard ? [n, h, w] : [n, h, w, c];
  if (label.shape.length !== want.length || label.shape.some((d, i) => d !== want[i])) {
    throw new SoftsegError(`${what} shape [${label.shape}] does not match logits [${logits.shape}] (expected [${want}])`);
  }
}

/** max > threshold as a float mask. step() has a zero gradient, so the mask never carries one (comparison ops have no gradient in TF.js). */
function above(t: tf.Tensor, threshold: number): tf.Tensor {
  return tf.step(tf.sub(t, threshold));
}

function activeMask(mode: ActiveClassesMode, maskedLabel: tf.Tensor3D, maskedProb: tf.Tensor3D, threshold: number, perImage: boolean): tf.Tensor {
  // maskedLabel/maskedProb: [N, P, C]; max over pixels (and images for the per-batch term).
  const axes = perImage ? [1] : [0, 1];
  switch (mode) {
    case 'ALL':
      return tf.onesLike(tf.max(maskedLabel, axes));
    case 'PRESENT':
    case 'LABEL':
      return above(tf.max(maskedLabel, axes), threshold);
    case 'PROB':
      return above(tf.max(maskedProb, axes), threshold);
    case 'BOTH':
      return above(tf.max(tf.add(maskedProb, maskedLabel), axes), threshold);
  }
}

/**
 * The JDT loss with all its intermediate quantities. `label` is hard ([N,H,W] int32) or soft
 * ([N,H,W,C] float32); `keepMask` ([N,H,W], 1 = counts) overrides the ignore index when given. `logProbs`:
 * tf.logSoftmax(logits) when the caller already computed it (the hard-label objective shares it with its CE term);
 * `probs`: exp(logProbs) when the caller has those too (the fused log-softmax kernel yields both).
 */
export function jdtLossParts(logits: tf.Tensor, label: tf.Tensor, options: JdtLossOptions = {}, keepMask?: tf.Tensor | null, logProbs?: tf.Tensor, probs?: tf.Tensor): JdtLossParts {
  const o = resolveJdtOptions(options);
  checkLabelShape(logits, label);
  const [n, h, w, c] = logits.shape;
  if (o.classWeights !== null && o.classWeights.length !== c) {
    throw new SoftsegError(`classWeights has ${o.classWeights.length} entries but logits have ${c} classes`);
  }
  if (keepMask && (keepMask.rank !== 3 || keepMask.shape.some((d, i) => d !== [n, h, w][i]))) {
    throw new SoftsegError(`keep mask shape [${keepMask.shape}] does not match logits [${logits.shape}] (expected [${[n, h, w]}])`);
  }
  const hard = isHardLabel(label);
  const mode = hard ? o.activeClassesHard : o.activeClassesSoft;
  const p = h * w;

  if (o.norm === 1 && fusedJdtAvailable()) {
    return tf.tidy(() => {
      const keep = keepMask ? keepMask : null;
      const flatLabel = hard ? tf.reshape(label, [n, p]) : tf.reshape(label, [n, p, c]);
      // exp(log_softmax) as the reference computes it (wasm's fused Softmax is less accurate in float32).
      const flat = tf.reshape(logits, [n, p, c]) as tf.Tensor3D;
      let prob: tf.Tensor3D;
      if (!o.fromLogits) prob = tf.cast(flat, 'float32');
      else if (probs) prob = tf.reshape(probs, [n, p, c]);
      else prob = tf.exp(logProbs ? tf.reshape(logProbs, [n, p, c]) : tf.logSoftmax(flat));
      const s = fusedJdtStats(prob, flatLabel, keep ? tf.reshape(keep, [n, p]) : null, hard, o.ignoreIndex);
      const maxes = (perImage: boolean): tf.Tensor => {
        const pick = mode === 'PROB' ? s.maxProb : mode === 'BOTH' ? s.maxBoth : s.maxLabel;
        return perImage ? pick : tf.max(pick, 0);
      };
      const active = (perImage: boolean): tf.Tensor => (mode === 'ALL' ? tf.onesLike(maxes(perImage)) : above(maxes(perImage), o.threshold));
      return finishJdt(o, s.tp, s.fp, s.fn, active(false) as tf.Tensor1D, active(true) as tf.Tensor2D) as unknown as tf.TensorContainer;
    }) as unknown as JdtLossParts;
  }

  return tf.tidy(() => {
    // exp(log_softmax) as the reference computes it (wasm's fused Softmax is less accurate in float32).
    const flat = tf.reshape(logits, [n, p, c]) as tf.Tensor3D;
    let prob = o.fromLogits
      ? (probs ? tf.reshape(probs, [n, p, c]) as tf.Tensor3D : tf.exp(logProbs ? tf.reshape(logProbs, [n, p, c]) : tf.logSoftmax(flat)) as tf.Tensor3D)
      : flat;
    let y = (hard ? tf.reshape(oneHotLabels(label, c), [n, p, c]) : tf.reshape(tf.cast(label, 'float32'), [n, p, c])) as tf.Tensor3D;
    let keep: tf.Tensor | null = null;
    if (keepMask) keep = tf.cast(keepMask, 'float32');
    else if (hard && o.ignoreIndex !== null) keep = keepMaskFromLabel(label, o.ignoreIndex);
    if (keep) {
      const k = tf.reshape(keep, [n, p, 1]);
      prob = tf.mul(prob, k);
      y = tf.mul(y, k);
    }

    // TP, FP, FN per image and class (§2.4), summed per pixel rather than as (Cx + Cy − Cd)/2 so that
    // float32 keeps FP and FN accurate when prediction and label nearly agree. Same values and gradients.
    const diff = tf.sub(prob, y);
    let tp: tf.Tensor2D, fp: tf.Tensor2D, fn: tf.Tensor2D;
    if (o.norm === 1) {
      const a = absZeroGrad(diff);
      tp = tf.div(tf.sum(tf.sub(tf.add(prob, y), a), 1), 2);
      fp = tf.div(tf.sum(tf.add(diff, a), 1), 2);
      fn = tf.div(tf.sum(tf.sub(a, diff), 1), 2);
    } else if (o.norm === 2) {
      tp = tf.sum(tf.mul(prob, y), 1) as tf.Tensor2D;
      fp = tf.sum(tf.mul(prob, diff), 1);
      fn = tf.neg(tf.sum(tf.mul(y, diff), 1)) as tf.Tensor2D;
    } else {
      const card = (t: tf.Tensor): tf.Tensor2D => tf.sum(tf.pow(absZeroGrad(t), o.norm), 1);
      const cx = card(prob), cy = card(y);
      tp = tf.div(tf.sub(tf.add(cx, cy), card(diff)), 2);
      fp = tf.sub(cx, tp);
      fn = tf.sub(cy, tp);
    }

    const activeBatch = activeMask(mode, y, prob, o.threshold, false) as tf.Tensor1D;
    const activeImage = activeMask(mode, y, prob, o.threshold, true) as tf.Tensor2D;
    return finishJdt(o, tp, fp, fn, activeBatch, activeImage) as unknown as tf.TensorContainer;
  }) as unknown as JdtLossParts;
}

/** The loss from TP/FP/FN [N, C] and the active-class masks: scores, reductions and weights. */
function finishJdt(o: ResolvedJdtOptions, tp: tf.Tensor2D, fp: tf.Tensor2D, fn: tf.Tensor2D, activeBatch: tf.Tensor1D, activeImage: tf.Tensor2D): JdtLossParts {
  {
    const weights = o.classWeights ? tf.tensor1d(o.classWeights, 'float32') : null;

    const classLoss = (tpv: tf.Tensor, fpv: tf.Tensor, fnv: tf.Tensor): tf.Tensor => {
      const score = tf.div(tf.add(tpv, o.smooth), tf.add(tf.add(tf.add(tpv, tf.mul(o.alpha, fpv)), tf.mul(o.beta, fnv)), o.smooth));
      let l = o.logLoss ? tf.neg(tf.log(score)) : tf.sub(1, score);
      if (o.gamma > 1) l = tf.pow(l, o.gamma);
      if (weights) l = tf.mul(l, weights);
      return l;
    };

    let total: tf.Tensor = tf.scalar(0);
    if (o.weightPerBatch > 0) {
      const l = classLoss(tf.sum(tp, 0), tf.sum(fp, 0), tf.sum(fn, 0));
      // Plain mean over active classes; with none active this is 0 with a zero gradient.
      const lossBatch = tf.div(tf.sum(tf.mul(l, activeBatch)), tf.maximum(tf.sum(activeBatch), 1));
      total = tf.add(total, tf.mul(o.weightPerBatch, lossBatch));
    }
    if (o.weightPerImage > 0 || o.weightPerClass > 0) {
      const l = tf.mul(classLoss(tp, fp, fn), activeImage);
      if (o.weightPerImage > 0) {
        const activePerImg = tf.sum(activeImage, 1);
        const perImg = tf.div(tf.sum(l, 1), tf.maximum(activePerImg, 1));
        const images = tf.sum(above(activePerImg, 0));
        total = tf.add(total, tf.mul(o.weightPerImage, tf.div(tf.sum(perImg), tf.maximum(images, 1))));
      }
      if (o.weightPerClass > 0) {
        const imagesPerClass = tf.sum(activeImage, 0);
        const perCls = tf.div(tf.sum(l, 0), tf.maximum(imagesPerClass, 1));
        const classes = tf.sum(above(imagesPerClass, 0));
        total = tf.add(total, tf.mul(o.weightPerClass, tf.div(tf.sum(perCls), tf.maximum(classes, 1))));
      }
    }
    return { loss: total as tf.Scalar, tp, fp, fn, activePerBatch: activeBatch, activePerImage: activeImage };
  }
}

/** The JDT loss (scalar). See {@link JdtLossOptions}; defaults give JML1, per-batch, PRESENT for hard labels. */
export function jdtLoss(logits: tf.Tensor, label: tf.Tensor, options: JdtLossOptions = {}, keepMask?: tf.Tensor | null, logProbs?: tf.Tensor, probs?: tf.Tensor): tf.Scalar {
  return tf.tidy(() => jdtLossParts(logits, label, options, keepMask, logProbs, probs).loss);
}

/** Jaccard Metric Loss with L1 norms (alpha = beta = 1, norm 1). */
export function jml1(logits: tf.Tensor, label: tf.Tensor, options: Omit<JdtLossOptions, 'alpha' | 'beta' | 'norm'> = {}, keepMask?: tf.Tensor | null): tf.Scalar {
  return jdtLoss(logits, label, { ...options, alpha: 1, beta: 1, norm: 1 }, keepMask);
}

/** Dice Metric Loss with L1 norms (alpha = beta = 0.5, norm 1). */
export function dml1(logits: tf.Tensor, label: tf.Tensor, options: Omit<JdtLossOptions, 'alpha' | 'beta' | 'norm'> = {}, keepMask?: tf.Tensor | null): tf.Scalar {
  return jdtLoss(logits, label, { ...options, alpha: 0.5, beta: 0.5, norm: 1 }, keepMask);
}

/** Soft Tversky loss: alpha weights false positives, beta false negatives (L1 norm unless `norm` is given). */
export function tverskyLoss(logits: tf.Tensor, label: tf.Tensor, alpha: number, beta: number, options: Omit<JdtLossOptions, 'alpha' | 'beta'> = {}, keepMask?: tf.Tensor | null): tf.Scalar {
  return jdtLoss(logits, label, { ...options, alpha, beta }, keepMask);
}
