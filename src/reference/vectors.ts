/**
 * Evaluates a reference-vector file (schema: test/fixtures/README.md) with softseg's own
 * implementation. Any file of that schema works: each case is computed from its inputs and options and
 * compared with every value under `expected`.
 */
import { readFile } from 'node:fs/promises';
import * as tf from '@tensorflow/tfjs';
import { SoftsegError } from '../errors.js';
import { boundaryLabelSmoothing } from '../labels/smoothing.js';
import { crossEntropy } from '../losses/cross-entropy.js';
import { jdtLossParts, type ActiveClassesMode, type JdtLossOptions } from '../losses/jdt.js';
import { hardLabelObjective, kdObjective, smoothedLabelObjective, type HeadOutputs, type ObjectiveResult } from '../losses/objectives.js';
import * as pairwise from '../losses/pairwise.js';
import { evaluateMetricsCase } from '../metrics/reference-case.js';

interface VectorTensor {
  shape: number[];
  dtype: 'float' | 'int' | 'bool';
  data: number[];
}

export interface VectorCase {
  id: string;
  kind: string;
  description?: string;
  options: Record<string, any>;
  inputs: Record<string, any>;
  expected: Record<string, any>;
}

export interface VectorFile {
  format: string;
  format_version: number;
  cases: VectorCase[];
}

export interface Tolerance {
  /** Scalars: |a − e| ≤ rtol·|e| + atolScalar. Tensors: max|a − e| ≤ rtol·max|e| + atolTensor. */
  rtol: number;
  atolScalar: number;
  atolTensor: number;
}

export const DEFAULT_TOLERANCE: Tolerance = { rtol: 1e-5, atolScalar: 1e-6, atolTensor: 1e-9 };

export interface CaseResult {
  id: string;
  kind: string;
  passed: boolean;
  /** Largest error relative to its tolerance (≤ 1 passes), and where. */
  worstRatio: number;
  worstKey: string;
  worstAbsError: number;
  /** Set when the case could not be evaluated (unknown kind, missing input, thrown error). */
  error?: string;
  failures: string[];
  /** What was not compared, and why. */
  notes: string[];
}

export async function readVectorFile(path: string): Promise<VectorFile> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (e) {
    throw new SoftsegError(`cannot read vector file: ${(e as Error).message}`, { file: path });
  }
  let parsed: VectorFile;
  try {
    parsed = JSON.parse(text) as VectorFile;
  } catch (e) {
    throw new SoftsegError(`not valid JSON: ${(e as Error).message}`, { file: path });
  }
  if (!parsed || !Array.isArray(parsed.cases)) throw new SoftsegError('not a reference-vector file (no "cases" list)', { file: path });
  return parsed;
}

// ---- tensors in the file's NCHW layout ⇄ softseg's NHWC layout ----

function isTensor(v: unknown): v is VectorTensor {
  return typeof v === 'object' && v !== null && Array.isArray((v as VectorTensor).shape) && Array.isArray((v as VectorTensor).data);
}

function need(c: VectorCase, name: string): VectorTensor {
  const v = c.inputs[name];
  if (!isTensor(v)) throw new SoftsegError(`case ${c.id}: input "${name}" is missing or not a tensor`);
  return v;
}

/** NCHW float tensor → NHWC. */
function nhwc(v: VectorTensor): tf.Tensor4D {
  return tf.tidy(() => {
    const t: tf.Tensor = tf.tensor(v.data, v.shape, 'float32');
    return tf.transpose(t, [0, 2, 3, 1]) as tf.Tensor4D;
  });
}

/** A label input: int [N,H,W] stays hard, float [N,C,H,W] becomes soft NHWC. */
function labelTensor(v: VectorTensor): tf.Tensor {
  return v.dtype === 'int' ? tf.tensor(v.data, v.shape, 'int32') : nhwc(v);
}

/** NHWC gradient → NCHW flat data, for comparison with the file. */
async function nchwData(t: tf.Tensor): Promise<Float32Array> {
  const x = tf.transpose(t, [0, 3, 1, 2]);
  const d = (await x.data()) as Float32Array;
  x.dispose();
  return d;
}

function jdtOptions(o: Record<string, any>): JdtLossOptions {
  const opts: JdtLossOptions = {
    alpha: o.alpha,
    beta: o.beta,
    gamma: o.gamma,
    smooth: o.smooth,
    threshold: o.threshold,
    norm: o.norm,
    logLoss: o.log_loss,
    ignoreIndex: o.ignore_index === undefined ? 255 : o.ignore_index,
    classWeights: o.class_weights ?? null,
    activeClassesHard: o.active_classes_mode_hard as ActiveClassesMode | undefined,
    activeClassesSoft: o.active_classes_mode_soft as ActiveClassesMode | undefined,
    weightPerBatch: o.weight_per_batch,
    weightPerImage: o.weight_per_image,
    weightPerClass: o.weight_per_class,
  };
  for (const k of Object.keys(opts) as (keyof JdtLossOptions)[]) if (opts[k] === undefined) delete opts[k];
  return opts;
}

/** Values computed for one case, keyed like `expected` (nested objects flattened with '.'). */
type Computed = Map<string, number | ArrayLike<number>>;

/**
 * |p − y| is not differentiable at p = y; the reference takes the one-sided derivative that float64 sees.
 * Where a pixel's softmax lies within float32 resolution of a JDT target, float32 cannot tell which side
 * it is on, so the gradient entries of that pixel (all classes: softmax couples them) are not compared.
 * The softmax here is float64, in JS, used only to locate such pixels.
 */
const KINK_EPS = 2 ** -22;

function kinkPixels(logits: VectorTensor, targets: (VectorTensor | null)[]): Set<number> {
  const [n, c, h, w] = logits.shape as [number, number, number, number];
  const hw = h * w;
  const kinks = new Set<number>();
  for (let i = 0; i < n; i++) {
    for (let q = 0; q < hw; q++) {
      let max = -Infinity;
      for (let k = 0; k < c; k++) max = Math.max(max, logits.data[(i * c + k) * hw + q]!);
      let z = 0;
      for (let k = 0; k < c; k++) z += Math.exp(logits.data[(i * c + k) * hw + q]! - max);
      for (let k = 0; k < c; k++) {
        const p = Math.exp(logits.data[(i * c + k) * hw + q]! - max) / z;
        for (const t of targets) {
          if (!t) continue;
          // Hard labels [N,H,W] → one-hot value; soft labels [N,C,H,W].
          const y = t.shape.length === 3 ? (t.data[i * hw + q] === k ? 1 : 0) : t.data[(i * c + k) * hw + q]!;
          // At y = 0 or 1 a near-tie means a saturated softmax, whose derivative (≤ p(1 − p)) hides the kink.
          if (y > 0 && y < 1 && Math.abs(p - y) < KINK_EPS) kinks.add(i * hw + q);
        }
      }
    }
  }
  return kinks;
}

/** Marks the gradient entries of kink pixels (NCHW) as not compared. */
function excludeKinks(out: Computed, key: string, logits: VectorTensor, kinks: Set<number>): void {
  if (kinks.size === 0) return;
  const [n, c, h, w] = logits.shape as [number, number, number, number];
  const hw = h * w;
  const skip: number[] = [];
  for (const pix of kinks) {
    const i = Math.floor(pix / hw), q = pix % hw;
    for (let k = 0; k < c; k++) skip.push((i * c + k) * hw + q);
  }
  if (n > 0) out.set(`${SKIP_PREFIX}${key}`, skip);
}

const SKIP_PREFIX = 'skip:';

async function put(out: Computed, key: string, t: tf.Tensor): Promise<void> {
  out.set(key, t.rank === 0 ? (await t.data())[0]! : ((await t.data()) as Float32Array));
}

async function evalJdt(c: VectorCase, out: Computed): Promise<void> {
  const logitsV = need(c, 'logits');
  const logits = nhwc(logitsV);
  const label = labelTensor(need(c, 'label'));
  const keepV = c.inputs.keep_mask;
  const keep = isTensor(keepV) ? tf.tensor(keepV.data, keepV.shape, 'float32') : null;
  const opts = jdtOptions(c.options);
  try {
    const parts = jdtLossParts(logits, label, opts, keep);
    await put(out, 'loss', parts.loss);
    await put(out, 'diagnostics.tp', parts.tp);
    await put(out, 'diagnostics.fp', parts.fp);
    await put(out, 'diagnostics.fn', parts.fn);
    await put(out, 'diagnostics.active_per_batch', parts.activePerBatch);
    await put(out, 'diagnostics.active_per_image', parts.activePerImage);
    tf.dispose(Object.values(parts));
    if (c.expected.grad_logits) {
      const g = tf.grad((z: tf.Tensor) => jdtLossParts(z, label, opts, keep).loss)(logits);
      out.set('grad_logits', await nchwData(g));
      g.dispose();
      excludeKinks(out, 'grad_logits', logitsV, kinkPixels(logitsV, [need(c, 'label')]));
    }
  } finally {
    tf.dispose([logits, label, ...(keep ? [keep] : [])]);
  }
}

function evalPairwise(c: VectorCase, out: Computed): void {
  const x = need(c, 'x').data, y = need(c, 'y').data;
  out.set('jml1', pairwise.jml1Distance(x, y));
  out.set('jml2', pairwise.jml2Distance(x, y));
  out.set('dml1', pairwise.dml1Distance(x, y));
  out.set('dml2', pairwise.dml2Distance(x, y));
  out.set('sjl_l1', pairwise.sjl1Distance(x, y));
  out.set('sjl_l2', pairwise.sjl2Distance(x, y));
  out.set('sdl_l1', pairwise.sdl1Distance(x, y));
  out.set('jml1_v1_smooth1', pairwise.jmlDistanceV1(x, y, 1, 1));
  out.set('jml2_v1_smooth1', pairwise.jmlDistanceV1(x, y, 2, 1));
}

async function evalBls(c: VectorCase, out: Computed): Promise<void> {
  const lv = need(c, 'label');
  const label = tf.tensor(lv.data, lv.shape, 'int32');
  const { softLabel, boundary } = boundaryLabelSmoothing(label, {
    numClasses: c.options.num_classes,
    kernelSize: c.options.k,
    epsilon: c.options.epsilon,
    ignoreIndex: c.options.ignore_index ?? 255,
  });
  const b = tf.cast(boundary, 'float32');
  await put(out, 'boundary', b);
  out.set('soft_label', await nchwData(softLabel));
  tf.dispose([label, softLabel, boundary, b]);
}

/** Shared by the objective kinds: evaluates total, parts and gradients w.r.t. both heads. */
async function evalObjective(
  c: VectorCase,
  out: Computed,
  objective: (heads: HeadOutputs) => ObjectiveResult,
  componentKeys: Record<string, string>,
  jdtTargets: (VectorTensor | null)[],
): Promise<void> {
  const main = nhwc(need(c, 'logits'));
  const auxInput = isTensor(c.inputs.aux_logits) ? nhwc(c.inputs.aux_logits) : null;
  const useAux = c.options.use_aux !== false && auxInput !== null;
  try {
    const result = objective({ main, aux: useAux ? auxInput : null });
    await put(out, 'loss', result.total);
    await put(out, 'loss_ce_part', result.parts.ce_kl_part!);
    await put(out, 'loss_jdt_part', result.parts.jml_part!);
    for (const [fileKey, ourKey] of Object.entries(componentKeys)) {
      const t = result.parts[ourKey];
      if (t) await put(out, `components.${fileKey}`, t);
    }
    tf.dispose([result.total, ...Object.values(result.parts)]);
    if (useAux) {
      const [gMain, gAux] = tf.grads((z: tf.Tensor, za: tf.Tensor) => objective({ main: z as tf.Tensor4D, aux: za as tf.Tensor4D }).total)([main, auxInput!]);
      out.set('grad_logits', await nchwData(gMain!));
      out.set('grad_aux_logits', await nchwData(gAux!));
      tf.dispose([gMain!, gAux!]);
      excludeKinks(out, 'grad_logits', need(c, 'logits'), kinkPixels(need(c, 'logits'), jdtTargets));
    } else {
      const g = tf.grad((z: tf.Tensor) => objective({ main: z as tf.Tensor4D }).total)(main);
      out.set('grad_logits', await nchwData(g));
      // Without an aux head the objective does not depend on the aux logits.
      if (auxInput) out.set('grad_aux_logits', new Float32Array(auxInput.size));
      g.dispose();
      excludeKinks(out, 'grad_logits', need(c, 'logits'), kinkPixels(need(c, 'logits'), jdtTargets));
    }
  } finally {
    tf.dispose([main, ...(auxInput ? [auxInput] : [])]);
  }
}

function weightOptions(o: Record<string, any>) {
  return { ceWeight: o.ce_weight, jmlWeight: o.jdt_weight, mainWeight: o.main_weight, auxWeight: o.aux_weight, jdt: jdtOptions(o) };
}

async function evalTrainHard(c: VectorCase, out: Computed): Promise<void> {
  const label = tf.tensor(need(c, 'label').data, need(c, 'label').shape, 'int32');
  const opts = weightOptions(c.options);
  try {
    await evalObjective(c, out, (heads) => hardLabelObjective(heads, label, opts), { ce_main: 'ce_main', ce_aux: 'ce_aux', jdt_main: 'jml_main' }, [need(c, 'label')]);
    if (c.options.use_aux === false && isTensor(c.inputs.aux_logits)) {
      // The file reports the (unused) aux CE as well.
      const aux = nhwc(c.inputs.aux_logits);
      const ce = crossEntropy(aux, label, { ignoreIndex: opts.jdt.ignoreIndex });
      await put(out, 'components.ce_aux', ce);
      tf.dispose([aux, ce]);
    }
  } finally {
    label.dispose();
  }
}

async function evalTrainLs(c: VectorCase, out: Computed): Promise<void> {
  const lv = need(c, 'label');
  const label = tf.tensor(lv.data, lv.shape, 'int32');
  const opts = { ...weightOptions(c.options), kind: 'bls' as const, kernelSize: c.options.k, epsilon: c.options.epsilon };
  try {
    const { softLabel, boundary } = tf.tidy(() => boundaryLabelSmoothing(label, { numClasses: c.options.num_classes, kernelSize: c.options.k, epsilon: c.options.epsilon, ignoreIndex: c.options.ignore_index ?? 255 }));
    const softData = await nchwData(softLabel);
    out.set('soft_label', softData);
    const softV: VectorTensor = { shape: [lv.shape[0]!, c.options.num_classes, lv.shape[1]!, lv.shape[2]!], dtype: 'float', data: Array.from(softData) };
    tf.dispose([softLabel, boundary]);
    await evalObjective(c, out, (heads) => smoothedLabelObjective(heads, label, opts), { kl_main: 'kl_main', kl_aux: 'kl_aux', jdt_main: 'jml_main' }, [softV]);
  } finally {
    label.dispose();
  }
}

async function evalKd(c: VectorCase, out: Computed): Promise<void> {
  const o = c.options;
  const lv = need(c, 'label');
  const label = tf.tensor(lv.data, lv.shape, 'int32');
  const T = o.temperature ?? 1;
  const teacher = nhwc(need(c, 'teacher_logits'));
  const teacherAux = isTensor(c.inputs.teacher_aux_logits) ? nhwc(c.inputs.teacher_aux_logits) : null;
  const pt = tf.tidy(() => tf.softmax(tf.div(teacher, T)));
  const ptAux = teacherAux ? tf.tidy(() => tf.softmax(tf.div(teacherAux, T))) : null;
  const teacherClasses = String(o.classes_teacher_term ?? 'all').toUpperCase() as 'ALL' | 'PRESENT';
  const opts = { ...weightOptions(o), temperature: T, labelWeight: o.label_weight, teacherWeight: o.teacher_weight, teacherClasses, studentTemperatureInJml: o.jml_teacher_term_student_temperature === true };
  const targets = { label, teacherProb: pt, teacherAuxProb: ptAux };
  try {
    const ptData = await nchwData(pt);
    out.set('teacher_prob', ptData);
    const ptV: VectorTensor = { shape: need(c, 'teacher_logits').shape, dtype: 'float', data: Array.from(ptData) };
    const keys = { ce_main: 'ce_main', ce_aux: 'ce_aux', kl_main: 'kl_main', kl_aux: 'kl_aux', jml_gt_main: 'jml_main', jml_teacher_main: 'jml_teacher_main' };
    await evalObjective(c, out, (heads) => kdObjective(heads, targets, opts), keys, [lv, ptV]);
    // Components the objective does not use in this configuration, reported by the file all the same.
    const main = nhwc(need(c, 'logits'));
    const aux = isTensor(c.inputs.aux_logits) ? nhwc(c.inputs.aux_logits) : null;
    const full = kdObjective({ main, aux }, targets, { ...opts, studentTemperatureInJml: !opts.studentTemperatureInJml });
    const otherKey = opts.studentTemperatureInJml ? 'components.jml_teacher_main' : 'components.jml_teacher_main_student_tempered';
    await put(out, otherKey, full.parts.jml_teacher_main!);
    for (const k of ['ce_aux', 'kl_aux']) if (!out.has(`components.${k}`) && full.parts[k]) await put(out, `components.${k}`, full.parts[k]!);
    tf.dispose([main, ...(aux ? [aux] : []), full.total, ...Object.values(full.parts)]);
  } finally {
    tf.dispose([label, teacher, pt, ...(teacherAux ? [teacherAux] : []), ...(ptAux ? [ptAux] : [])]);
  }
}

const EVALUATORS: Record<string, (c: VectorCase, out: Computed) => Promise<void> | void> = {
  jdt_loss: evalJdt,
  pairwise: evalPairwise,
  boundary_label_smoothing: evalBls,
  train_loss_hard: evalTrainHard,
  train_loss_ls: evalTrainLs,
  kd_loss: evalKd,
  metrics: (c, out) => {
    for (const [k, v] of Object.entries(evaluateMetricsCase(c))) out.set(k, v);
  },
};

export const SUPPORTED_KINDS = Object.keys(EVALUATORS);

/** Flattens `expected` into key → number | number[] ('.'-joined keys for nested objects; nulls skipped). */
function flattenExpected(expected: Record<string, any>, prefix = '', into = new Map<string, number | number[]>()): Map<string, number | number[]> {
  for (const [k, v] of Object.entries(expected)) {
    const key = prefix ? `${prefix}.${k}` : k;
    if (v === null || v === undefined) continue;
    if (typeof v === 'number') into.set(key, v);
    else if (typeof v === 'boolean') into.set(key, v ? 1 : 0);
    else if (isTensor(v)) into.set(key, v.data.map(Number));
    else if (typeof v === 'object') flattenExpected(v, key, into);
  }
  return into;
}

/** Evaluates one case and compares every expected value. Never throws: problems become a failed result. */
export async function checkCase(c: VectorCase, tol: Tolerance = DEFAULT_TOLERANCE): Promise<CaseResult> {
  const result: CaseResult = { id: c.id, kind: c.kind, passed: false, worstRatio: 0, worstKey: '', worstAbsError: 0, failures: [], notes: [] };
  const evaluator = EVALUATORS[c.kind];
  if (!evaluator) {
    result.error = `unknown case kind "${c.kind}" (supported: ${SUPPORTED_KINDS.join(', ')})`;
    return result;
  }
  const computed: Computed = new Map();
  try {
    await evaluator(c, computed);
  } catch (e) {
    result.error = e instanceof Error ? e.message : String(e);
    return result;
  }
  const expected = flattenExpected(c.expected);
  // tp, fp and fn split the same cardinalities (tp + fp = |x|, tp + fn = |y|): float32 resolves each only
  // relative to those, so the three share one scale, the largest of them.
  let cardinalityScale = 0;
  for (const k of ['diagnostics.tp', 'diagnostics.fp', 'diagnostics.fn']) {
    const v = expected.get(k);
    if (Array.isArray(v)) for (const x of v) cardinalityScale = Math.max(cardinalityScale, Math.abs(x));
  }
  for (const [key, want] of expected) {
    const got = computed.get(key);
    const skip = new Set((computed.get(`${SKIP_PREFIX}${key}`) as number[] | undefined) ?? []);
    if (skip.size > 0) result.notes.push(`${key}: ${skip.size} entries at the |p − y| kink not compared`);
    if (got === undefined) {
      result.failures.push(`${key}: not computed`);
      continue;
    }
    let absErr: number, bound: number;
    if (typeof want === 'number') {
      const g = typeof got === 'number' ? got : NaN;
      absErr = Math.abs(g - want);
      bound = tol.rtol * Math.abs(want) + tol.atolScalar;
    } else {
      const g = got as ArrayLike<number>;
      if (typeof got === 'number' || g.length !== want.length) {
        result.failures.push(`${key}: expected ${want.length} values, computed ${typeof got === 'number' ? 1 : g.length}`);
        continue;
      }
      let maxAbs = ['diagnostics.tp', 'diagnostics.fp', 'diagnostics.fn'].includes(key) ? cardinalityScale : 0;
      absErr = 0;
      for (let i = 0; i < want.length; i++) {
        if (skip.has(i)) continue;
        const d = Math.abs(g[i]! - want[i]!);
        absErr = Number.isNaN(d) ? NaN : Math.max(absErr, d);
        maxAbs = Math.max(maxAbs, Math.abs(want[i]!));
      }
      bound = tol.rtol * maxAbs + tol.atolTensor;
    }
    const ratio = Number.isNaN(absErr) ? Infinity : absErr / bound;
    if (ratio > result.worstRatio || result.worstKey === '') {
      result.worstRatio = ratio;
      result.worstKey = key;
      result.worstAbsError = absErr;
    }
    if (!(ratio <= 1)) result.failures.push(`${key}: error ${absErr.toExponential(2)} > tolerance ${bound.toExponential(2)}`);
  }
  result.passed = result.failures.length === 0;
  return result;
}

/** Checks every case of a file, in order. */
export async function checkVectorFile(path: string, tol: Tolerance = DEFAULT_TOLERANCE, onCase?: (r: CaseResult) => void): Promise<CaseResult[]> {
  const file = await readVectorFile(path);
  const results: CaseResult[] = [];
  for (const c of file.cases) {
    const r = await checkCase(c, tol);
    results.push(r);
    onCase?.(r);
  }
  return results;
}
