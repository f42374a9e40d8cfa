/**
 * The training objectives of method.md: hard labels (§3.3), soft labels from label smoothing / BLS (§4.3)
 * and knowledge distillation (§5.1). Each returns its total and its named, unweighted components, so the
 * engine can log every term, under one name per term in every objective: `ce_main`/`ce_aux` (cross-entropy on
 * labels), `kl_main`/`kl_aux` (KL to soft targets), `jml_main` (JML on the labels, hard or smoothed),
 * `jml_teacher_main` (JML on the teacher's soft labels), and the weighted sums `ce_kl_part` (every CE and KL
 * term, weighted by ceWeight) and `jml_part` (every JML term, weighted by jmlWeight).
 */
import * as tf from '@tensorflow/tfjs';
import { SoftsegError } from '../errors.js';
import { boundaryLabelSmoothing, uniformLabelSmoothing } from '../labels/smoothing.js';
import { logSoftmaxWithProbs } from '../backends/kernels/log-softmax.js';
import { crossEntropy, klDivergence } from './cross-entropy.js';
import { jdtLoss, keepMaskFromLabel, type ActiveClassesMode, type JdtLossOptions } from './jdt.js';

/** What a segmentation model emits: main-head logits and, optionally, auxiliary-head logits, both [N,H,W,C]. */
export interface HeadOutputs {
  main: tf.Tensor4D;
  aux?: tf.Tensor4D | null;
}

// A type alias (not an interface) so that it is a TensorContainer that tf.tidy can return.
export type ObjectiveResult = {
  total: tf.Scalar;
  /** Unweighted components plus the weighted `ce_kl_part` / `jml_part` sums. */
  parts: Record<string, tf.Scalar>;
};

export interface LossWeights {
  /** Weight of the CE/KL terms (reference 0.25; `--ce-weight`). */
  ceWeight?: number;
  /** Weight of the JML terms (reference 0.75; `--jml-weight`). */
  jmlWeight?: number;
  /** Weight of the main head in CE/KL terms (reference 0.5). */
  mainWeight?: number;
  /** Weight of the auxiliary head in CE/KL terms (reference 0.5); unused without an aux head. */
  auxWeight?: number;
  /** Options of the JDT term(s). */
  jdt?: JdtLossOptions;
}

const WEIGHT_DEFAULTS = { ceWeight: 0.25, jmlWeight: 0.75, mainWeight: 0.5, auxWeight: 0.5 };

function resolveWeights<T extends object>(options: T, extra: Record<string, number> = {}): Required<Omit<LossWeights, 'jdt'>> & Record<string, number> {
  const w: Record<string, number> = { ...WEIGHT_DEFAULTS, ...extra };
  for (const [k, v] of Object.entries(options)) if (typeof v === 'number') w[k] = v;
  for (const [k, v] of Object.entries(w)) {
    if (!Number.isFinite(v) || v < 0) throw new SoftsegError(`objective weight ${k} must be a finite number ≥ 0, got ${v}`);
  }
  return w as Required<Omit<LossWeights, 'jdt'>> & Record<string, number>;
}

/** Sums weighted terms, skipping zero weights; returns 0 when nothing is left. */
function weightedSum(terms: [number, tf.Scalar | undefined][]): tf.Scalar {
  let s: tf.Scalar = tf.scalar(0);
  for (const [w, t] of terms) if (w !== 0 && t) s = tf.add(s, tf.mul(w, t));
  return s;
}

/**
 * Hard-label objective: ceWeight·(main·CE(z) + aux·CE(z_aux)) + jmlWeight·JDT(z, y).
 * Components: ce_main, ce_aux (with an aux head), jml_main.
 */
export function hardLabelObjective(outputs: HeadOutputs, label: tf.Tensor, options: LossWeights = {}): ObjectiveResult {
  const w = resolveWeights(options);
  const jdt = options.jdt ?? {};
  const ignoreIndex = jdt.ignoreIndex === undefined ? 255 : jdt.ignoreIndex;
  return tf.tidy(() => {
    const parts: Record<string, tf.Scalar> = {};
    // One log-softmax of the main head (and its probabilities, fused on wasm) for both its CE and JDT terms.
    const shared = w.ceWeight > 0 && w.jmlWeight > 0 ? logSoftmaxWithProbs(outputs.main) : undefined;
    const logProbs = shared?.logp;
    if (w.ceWeight > 0) {
      parts.ce_main = crossEntropy(outputs.main, label, { ignoreIndex, logProbs });
      if (outputs.aux) parts.ce_aux = crossEntropy(outputs.aux, label, { ignoreIndex });
    }
    if (w.jmlWeight > 0) parts.jml_main = jdtLoss(outputs.main, label, jdt, undefined, logProbs, shared?.prob);
    parts.ce_kl_part = tf.mul(w.ceWeight, weightedSum([[w.mainWeight, parts.ce_main], [w.auxWeight, parts.ce_aux]]));
    parts.jml_part = tf.mul(w.jmlWeight, parts.jml_main ?? tf.scalar(0));
    return { total: tf.add(parts.ce_kl_part, parts.jml_part) as tf.Scalar, parts };
  });
}

/**
 * Soft-label objective on kept pixels: ceWeight·(main·KL(z, Y; K) + aux·KL(z_aux, Y; K)) + jmlWeight·JDT(z, Y; K).
 * Components: kl_main, kl_aux, jml_main. The JDT term uses the soft active-class mode.
 */
export function softLabelObjective(outputs: HeadOutputs, softLabel: tf.Tensor, keepMask: tf.Tensor | null, options: LossWeights = {}): ObjectiveResult {
  const w = resolveWeights(options);
  return tf.tidy(() => {
    const parts: Record<string, tf.Scalar> = {};
    if (w.ceWeight > 0) {
      parts.kl_main = klDivergence(outputs.main, softLabel, { keepMask });
      if (outputs.aux) parts.kl_aux = klDivergence(outputs.aux, softLabel, { keepMask });
    }
    if (w.jmlWeight > 0) parts.jml_main = jdtLoss(outputs.main, softLabel, options.jdt ?? {}, keepMask);
    parts.ce_kl_part = tf.mul(w.ceWeight, weightedSum([[w.mainWeight, parts.kl_main], [w.auxWeight, parts.kl_aux]]));
    parts.jml_part = tf.mul(w.jmlWeight, parts.jml_main ?? tf.scalar(0));
    return { total: tf.add(parts.ce_kl_part, parts.jml_part) as tf.Scalar, parts };
  });
}

export interface SmoothingObjectiveOptions extends LossWeights {
  /** 'bls' = boundary label smoothing (method.md §4.2), 'uniform' = (1 − ε)·onehot + ε/C everywhere. */
  kind?: 'bls' | 'uniform';
  /** BLS window (odd, default 3). */
  kernelSize?: number;
  /** Smoothing ε (BLS default 0.5). */
  epsilon?: number;
}

/** Hard labels turned into smoothed soft labels, then {@link softLabelObjective} with keep = (label ≠ ignore). */
export function smoothedLabelObjective(outputs: HeadOutputs, label: tf.Tensor, options: SmoothingObjectiveOptions = {}): ObjectiveResult {
  const numClasses = outputs.main.shape[3];
  const ignoreIndex = options.jdt?.ignoreIndex ?? 255;
  return tf.tidy(() => {
    const soft = options.kind === 'uniform'
      ? uniformLabelSmoothing(label, numClasses, options.epsilon ?? 0.1, ignoreIndex)
      : boundaryLabelSmoothing(label, { numClasses, kernelSize: options.kernelSize, epsilon: options.epsilon, ignoreIndex }).softLabel;
    return softLabelObjective(outputs, soft, keepMaskFromLabel(label, ignoreIndex), options);
  });
}

export interface KdObjectiveOptions extends LossWeights {
  /** Distillation temperature T (teacher probabilities must already be softmax(t/T)). */
  temperature?: number;
  /** Weight of the ground-truth terms (reference 0.5). */
  labelWeight?: number;
  /** Weight of the teacher terms (reference 0.5). */
  teacherWeight?: number;
  /** Active classes of the JML teacher term: ALL (reference default) or PRESENT (teacher prob > jdt.threshold). */
  teacherClasses?: Extract<ActiveClassesMode, 'ALL' | 'PRESENT'>;
  /** Use softmax(z/T) for the student inside the JML teacher term (the 2023 API); default false (current reference). */
  studentTemperatureInJml?: boolean;
  /** Which teacher terms apply: both (default), only the temperature KL, or only JML. */
  teacherTerms?: 'kl+jml' | 'kl' | 'jml';
}

export interface KdTargets {
  /** Ground truth [N,H,W] int; absent for unlabeled images (then only the teacher terms apply). */
  label?: tf.Tensor | null;
  /** Teacher probabilities at temperature T, [N,H,W,C]. */
  teacherProb: tf.Tensor;
  /** Teacher aux-head probabilities for the student's aux KL term; defaults to teacherProb. */
  teacherAuxProb?: tf.Tensor | null;
  /** Extra keep mask [N,H,W] for the teacher terms (e.g. pixels inside the crop); multiplied with label ≠ ignore. */
  keepMask?: tf.Tensor | null;
  /**
   * The teacher terms' keep mask as it is, not combined with the label — for batches that mix labeled and
   * unlabeled images, where unlabeled pixels carry the ignore label but still get the teacher terms.
   */
  teacherKeep?: tf.Tensor | null;
}

/**
 * JML-KD (method.md §5.1):
 *   ce·lab·(main·CE(z,y) + aux·CE(z_aux,y)) + jdt·lab·JDT(z, y)
 * + ce·tea·(main·KL_T(z,p_t;K) + aux·KL_T(z_aux,p_t_aux;K)) + jdt·tea·JDT(z, p_t; K)
 * Components: ce_main, ce_aux, jml_main, kl_main, kl_aux, jml_teacher_main.
 */
export function kdObjective(outputs: HeadOutputs, targets: KdTargets, options: KdObjectiveOptions = {}): ObjectiveResult {
  const w = resolveWeights({ ...options, temperature: undefined }, { labelWeight: 0.5, teacherWeight: 0.5 });
  const temperature = options.temperature ?? 1;
  if (!(temperature > 0) || !Number.isFinite(temperature)) throw new SoftsegError(`temperature must be > 0, got ${temperature}`);
  const jdt = options.jdt ?? {};
  const ignoreIndex = jdt.ignoreIndex === undefined ? 255 : jdt.ignoreIndex;
  const teacherJdt: JdtLossOptions = { ...jdt, activeClassesSoft: options.teacherClasses ?? 'ALL' };
  const label = targets.label ?? null;
  return tf.tidy(() => {
    const parts: Record<string, tf.Scalar> = {};
    if (label && w.labelWeight > 0) {
      if (w.ceWeight > 0) {
        parts.ce_main = crossEntropy(outputs.main, label, { ignoreIndex });
        if (outputs.aux) parts.ce_aux = crossEntropy(outputs.aux, label, { ignoreIndex });
      }
      if (w.jmlWeight > 0) parts.jml_main = jdtLoss(outputs.main, label, jdt);
    }
    let keep: tf.Tensor | null = targets.keepMask ? tf.cast(targets.keepMask, 'float32') : null;
    if (targets.teacherKeep) keep = tf.cast(targets.teacherKeep, 'float32');
    else if (label && ignoreIndex !== null) {
      const fromLabel = keepMaskFromLabel(label, ignoreIndex);
      keep = keep ? tf.mul(keep, fromLabel) : fromLabel;
    }
    const terms = options.teacherTerms ?? 'kl+jml';
    if (w.teacherWeight > 0) {
      if (w.ceWeight > 0 && terms !== 'jml') {
        parts.kl_main = klDivergence(outputs.main, targets.teacherProb, { keepMask: keep, temperature });
        if (outputs.aux) parts.kl_aux = klDivergence(outputs.aux, targets.teacherAuxProb ?? targets.teacherProb, { keepMask: keep, temperature });
      }
      if (w.jmlWeight > 0 && terms !== 'kl') {
        const student = options.studentTemperatureInJml && temperature !== 1 ? tf.div(outputs.main, temperature) : outputs.main;
        parts.jml_teacher_main = jdtLoss(student, targets.teacherProb, teacherJdt, keep);
      }
    }
    parts.ce_kl_part = weightedSum([
      [w.ceWeight * w.labelWeight * w.mainWeight, parts.ce_main],
      [w.ceWeight * w.labelWeight * w.auxWeight, parts.ce_aux],
      [w.ceWeight * w.teacherWeight * w.mainWeight, parts.kl_main],
      [w.ceWeight * w.teacherWeight * w.auxWeight, parts.kl_aux],
    ]);
    parts.jml_part = weightedSum([
      [w.jmlWeight * w.labelWeight, parts.jml_main],
      [w.jmlWeight * w.teacherWeight, parts.jml_teacher_main],
    ]);
    return { total: tf.add(parts.ce_kl_part, parts.jml_part) as tf.Scalar, parts };
  });
}

/** Options of {@link unlabeledLoss}, the unlabeled term of semi-supervised training (`ssl`). */
export interface UnlabeledLossOptions {
  pseudo: 'soft' | 'hard';
  /** Confidence mask max_c p_t ≥ τ (null: none). */
  threshold: number | null;
  temperature: number;
  teacherClasses: 'present' | 'all';
  classThreshold: number;
  ignoreIndex: number;
}

/**
 * The unlabeled loss L_u of a batch (unweighted), with components `u_kl`, `u_kl_aux`, `u_jml` (soft) or
 * `u_ce`, `u_ce_aux`, `u_jml` (hard), `u_confident` (share of kept pixels that pass the threshold) and the
 * collapse statistic `u_dominant_share`. `keep` [N,H,W] marks the pixels that get pseudo-labels (unlabeled
 * images, inside the crop); labeled rows carry 0. `train` = false skips the loss (λ_u = 0) but keeps the keys.
 */
export function unlabeledLoss(
  outputs: HeadOutputs,
  teacherProb: tf.Tensor4D,
  keep: tf.Tensor3D,
  w: LossWeights,
  o: UnlabeledLossOptions,
  train = true,
): ObjectiveResult {
  return tf.tidy(() => {
    const C = outputs.main.shape[3];
    const keepF = tf.cast(keep, 'float32') as tf.Tensor3D;
    const kept = tf.sum(keepF);
    // Collapse statistic: the largest share of one class among the student's predictions on kept pixels.
    const pred = tf.argMax(outputs.main, -1);
    const counts = tf.sum(tf.mul(tf.oneHot(tf.reshape(pred, [-1]), C), tf.reshape(keepF, [-1, 1])), 0);
    const parts: Record<string, tf.Scalar> = { u_dominant_share: tf.div(tf.max(counts), tf.maximum(kept, 1)) as tf.Scalar };
    const confidence = tf.max(teacherProb, -1);
    const keepU = o.threshold === null ? keepF : tf.mul(keepF, tf.cast(tf.greaterEqual(confidence, o.threshold), 'float32')) as tf.Tensor3D;
    parts.u_confident = o.threshold === null ? tf.scalar(1) : tf.div(tf.sum(keepU), tf.maximum(kept, 1)) as tf.Scalar;
    const zero = () => tf.scalar(0);
    if (!train) {
      for (const k of o.pseudo === 'soft' ? ['u_kl', 'u_jml'] : ['u_ce', 'u_jml']) parts[k] = zero();
      if (outputs.aux) parts[o.pseudo === 'soft' ? 'u_kl_aux' : 'u_ce_aux'] = zero();
      parts.u_loss = zero();
      return { total: zero(), parts };
    }
    let r: ObjectiveResult;
    if (o.pseudo === 'soft') {
      r = kdObjective(outputs, { label: null, teacherProb, teacherKeep: keepU }, {
        ...w, jdt: { ...w.jdt, threshold: o.classThreshold }, temperature: o.temperature, labelWeight: 0, teacherWeight: 1,
        teacherClasses: o.teacherClasses === 'all' ? 'ALL' : 'PRESENT',
      });
      parts.u_kl = r.parts.kl_main ?? zero();
      if (outputs.aux) parts.u_kl_aux = r.parts.kl_aux ?? zero();
      parts.u_jml = r.parts.jml_teacher_main ?? zero();
    } else {
      const label = tf.where(tf.greater(keepU, 0), tf.cast(tf.argMax(teacherProb, -1), 'int32'), tf.fill(keepU.shape, o.ignoreIndex, 'int32')) as tf.Tensor3D;
      r = hardLabelObjective(outputs, label, w);
      parts.u_ce = r.parts.ce_main ?? zero();
      if (outputs.aux) parts.u_ce_aux = r.parts.ce_aux ?? zero();
      parts.u_jml = r.parts.jml_main ?? zero();
    }
    parts.u_loss = r.total;
    return { total: r.total, parts };
  });
}
