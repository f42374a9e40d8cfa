// SoftsegJdtStats / SoftsegJdtStatsGrad (wasm and cpu): the per-pixel part of the JDT loss with L1 norms in one
// pass over the probabilities instead of ~25 elementwise ops: masking, and per image and class
//   tp = Σ (p + y − |p − y|)/2,  fp = Σ (p − y + |p − y|)/2,  fn = Σ (|p − y| − p + y)/2
// of the kept pixels' probabilities p and labels y, plus the maxima over pixels of y, p and p + y that the
// active-class modes threshold. The gradient kernel maps upstream gradients of tp/fp/fn back to the
// probabilities (|d| has derivative 0 at d = 0, as the loss code's absZeroGrad).
import * as tf from '@tensorflow/tfjs';
import { allocOutput, readValues, writeOutput } from './kernel-io.js';

export const JDT_STATS = 'SoftsegJdtStats';
export const JDT_STATS_GRAD = 'SoftsegJdtStatsGrad';

/** Attributes of both kernels. Inputs: prob [N,P,C] float32; label [N,P] int32 (hard) or [N,P,C] float32 (soft); optional keep [N,P]. */
export interface JdtStatsAttrs {
  /** Hard labels (class ids, clamped to [0, C − 1]) or soft labels. */
  hard: boolean;
  /** Hard labels equal to this are not kept; null: every pixel counts. Ignored when a keep input is given. */
  ignoreIndex: number | null;
}

interface Geometry { n: number; p: number; c: number }

function geometry(prob: tf.TensorInfo): Geometry {
  const [n, p, c] = prob.shape;
  if (prob.shape.length !== 3 || n === undefined || p === undefined || c === undefined) throw new Error(`${JDT_STATS}: prob must be [N,P,C]`);
  return { n, p, c };
}

function jdtStats(args: { inputs: tf.NamedTensorInfoMap; backend: unknown; attrs: unknown }): tf.TensorInfo {
  const { prob: probInfo, label, keep } = args.inputs as { prob: tf.TensorInfo; label: tf.TensorInfo; keep?: tf.TensorInfo };
  const { hard, ignoreIndex } = args.attrs as unknown as JdtStatsAttrs;
  const { n, p, c } = geometry(probInfo);
  const pr = readValues(args.backend, probInfo);
  const lab = readValues(args.backend, label);
  const kp = keep ? readValues(args.backend, keep) : null;
  const nc = n * c;
  // Rows: tp, fp, fn, max y, max p, max (p + y).
  const acc = new Float64Array(6 * nc);
  acc.fill(-Infinity, 3 * nc);
  for (let img = 0; img < n; img++) {
    const row = img * c;
    for (let q = 0; q < p; q++) {
      const i = img * p + q;
      const base = i * c;
      let cls = -1;
      let k = 1;
      if (hard) {
        const raw = lab[i]!;
        cls = raw < 0 ? 0 : raw > c - 1 ? c - 1 : raw;
        if (kp === null && ignoreIndex !== null && raw === ignoreIndex) k = 0;
      }
      if (kp !== null) k = kp[i]!;
      for (let j = 0; j < c; j++) {
        const pm = pr[base + j]! * k;
        const ym = (hard ? (j === cls ? 1 : 0) : lab[base + j]!) * k;
        const d = pm - ym;
        const a = d < 0 ? -d : d;
        const o = row + j;
        acc[o] = acc[o]! + (pm + ym - a);
        acc[nc + o] = acc[nc + o]! + (d + a);
        acc[2 * nc + o] = acc[2 * nc + o]! + (a - d);
        if (ym > acc[3 * nc + o]!) acc[3 * nc + o] = ym;
        if (pm > acc[4 * nc + o]!) acc[4 * nc + o] = pm;
        if (pm + ym > acc[5 * nc + o]!) acc[5 * nc + o] = pm + ym;
      }
    }
  }
  const out = new Float32Array(6 * nc);
  for (let i = 0; i < 3 * nc; i++) out[i] = acc[i]! / 2;
  for (let i = 3 * nc; i < 6 * nc; i++) out[i] = p === 0 ? 0 : acc[i]!;
  return writeOutput(args.backend, [6, n, c], out);
}

function jdtStatsGrad(args: { inputs: tf.NamedTensorInfoMap; backend: unknown; attrs: unknown }): tf.TensorInfo {
  const { prob: probInfo, label, keep, dy } = args.inputs as { prob: tf.TensorInfo; label: tf.TensorInfo; keep?: tf.TensorInfo; dy: tf.TensorInfo };
  const { hard, ignoreIndex } = args.attrs as unknown as JdtStatsAttrs;
  const { n, p, c } = geometry(probInfo);
  const { info, values: out } = allocOutput(args.backend, [n, p, c]);
  const pr = readValues(args.backend, probInfo);
  const lab = readValues(args.backend, label);
  const kp = keep ? readValues(args.backend, keep) : null;
  const g = readValues(args.backend, dy);
  const nc = n * c;
  // Per image and class: the gradient factor for s = −1, 0, +1 (sign of p − y).
  const gNeg = new Float64Array(nc), gZero = new Float64Array(nc), gPos = new Float64Array(nc);
  for (let o = 0; o < nc; o++) {
    const a = g[o]!, b = g[nc + o]!, d = g[2 * nc + o]!;
    gNeg[o] = a - d; // (2a + 0b − 2d)/2
    gZero[o] = (a + b - d) / 2;
    gPos[o] = b; // (0a + 2b + 0d)/2
  }
  for (let img = 0; img < n; img++) {
    const row = img * c;
    for (let q = 0; q < p; q++) {
      const i = img * p + q;
      let cls = -1;
      let k = 1;
      if (hard) {
        const raw = lab[i]!;
        cls = raw < 0 ? 0 : raw > c - 1 ? c - 1 : raw;
        if (kp === null && ignoreIndex !== null && raw === ignoreIndex) k = 0;
      }
      if (kp !== null) k = kp[i]!;
      if (k === 0) continue; // out is already 0
      const base = i * c;
      for (let j = 0; j < c; j++) {
        const pm = pr[base + j]! * k;
        const ym = (hard ? (j === cls ? 1 : 0) : lab[base + j]!) * k;
        const o = row + j;
        out[base + j] = k * (pm > ym ? gPos[o]! : pm < ym ? gNeg[o]! : gZero[o]!);
      }
    }
  }
  return info;
}

const configs = (backendName: string): tf.KernelConfig[] => [
  { kernelName: JDT_STATS, backendName, kernelFunc: jdtStats as unknown as tf.KernelFunc },
  { kernelName: JDT_STATS_GRAD, backendName, kernelFunc: jdtStatsGrad as unknown as tf.KernelFunc },
];

export const jdtStatsKernels: readonly tf.KernelConfig[] = [...configs('wasm'), ...configs('cpu')];
