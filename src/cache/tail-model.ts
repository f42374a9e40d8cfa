/**
 * The tail model of a cache entry: how a pixel's residual mass r (the classes outside its stored top k) is
 * spread over its tail classes. A share is ∝ exp(ℓ_c), with
 *   ℓ_c = base_c + Σ_j u_j · V_jc        (j < rank; u per grid×grid block of pixels, quantised to 6 bits)
 * - rank 0: base = ln π, the image's mean tail share per class (one shape for every pixel; π has mean 1);
 * - rank m > 0: a principal-component model of the image's log-probabilities: base = their mean, V = the top m
 *   components, u = a block's coordinates (of the log of its mean distribution). A network's logits are linear in
 *   its last features, so over one image they lie close to a low-dimensional subspace, and the small
 *   probabilities of the tail classes follow the features instead of one image-wide shape. On a 21-output
 *   UNet-lite whose top-4 tail holds 3.6% of the mass, the image-wide shape leaves 2.1e-3 nats/pixel of KL and
 *   rank ≈ 4 on 2×2 blocks about 5e-4.
 * The encoder computes every rank's KL on a sample of pixels — with exactly the block shapes the decoder will use —
 * and picks the smallest rank that meets a target, or else comes within 10% of the best rank (`fitTailModel`).
 * Shares are constant over a block, so the decoder needs no exp per pixel (a table of factors per component and
 * code, multiplied per block and class), and tempering stays exact (shares at T are shares at 1 to the 1/T).
 */
import { SoftsegError } from '../errors.js';

export interface TailModel {
  /** Components m (0 = one image-wide shape). */
  rank: number;
  /** base_c, [C]. */
  base: Float32Array;
  /** V, [rank, C] (row j = component j). */
  basis: Float32Array;
  /** Dequantisation of the 6-bit coefficient codes: u_j = offset_j + step_j · code. */
  coefOffset: Float32Array;
  coefStep: Float32Array;
  /** Coefficients are stored per grid×grid block of pixels. */
  grid: number;
}

export const DEFAULT_TAIL_KL_TARGET = 2.5e-4;
export const DEFAULT_MAX_TAIL_RANK = 6;
const DEFAULT_TAIL_GRID = 2;
/** Log-probabilities below ln p_1 − LOG_FLOOR are clamped there (zeros would be −∞). */
const LOG_FLOOR = 40;

export function evenTail(numClasses: number): TailModel {
  return { rank: 0, base: new Float32Array(numClasses), basis: new Float32Array(0), coefOffset: new Float32Array(0), coefStep: new Float32Array(0), grid: 1 };
}

/** What the encoder knows of each pixel after choosing its top classes. */
export interface TopK {
  /** [k, n] class ids, UNUSED beyond a pixel's `used` slots. */
  ids: Uint8Array;
  /** Slots used per pixel (the rest of the classes are its tail). */
  used: Uint8Array;
  /** Residual mass per pixel (Σ of its tail classes). */
  tailMass: Float64Array;
  k: number;
}

export interface FitOptions {
  /** Mean KL (nats/pixel, T = 1) the tail may add; the smallest rank meeting it is chosen (see SLACK otherwise). */
  klTarget?: number;
  /** Largest rank tried (0 = the image-wide shape only). */
  maxRank?: number;
  /** Pixels per coefficient along each axis. */
  grid?: number;
}

/** The image-wide tail shape: mean share of each class where it is in the tail (1 = an even share), mean 1. */
function tailPrior(probs: Float32Array, C: number, pixels: Int32Array, top: TopK, n: number): Float32Array {
  const shareSum = new Float64Array(C), shareCount = new Float64Array(C);
  const inTop = new Uint8Array(C);
  for (const p of pixels) {
    const r = top.tailMass[p]!, used = top.used[p]!;
    if (!(r > 0) || used >= C) continue;
    for (let j = 0; j < used; j++) inTop[top.ids[j * n + p]!] = 1;
    const scale = (C - used) / r;
    for (let c = 0; c < C; c++) if (!inTop[c]) { shareSum[c] += probs[p * C + c]! * scale; shareCount[c]++; }
    for (let j = 0; j < used; j++) inTop[top.ids[j * n + p]!] = 0;
  }
  const prior = new Float32Array(C).fill(1);
  let m = 0;
  for (let c = 0; c < C; c++) { prior[c] = shareCount[c]! > 0 ? shareSum[c]! / shareCount[c]! : 1; m += prior[c]!; }
  for (let c = 0; c < C; c++) prior[c] = Math.max(1e-6, (prior[c]! * C) / m);
  return prior;
}

/**
 * The top `m` principal components of the rows of `x` ([s, C], each row centred over its classes first, so
 * the per-pixel normaliser of a log-probability vector drops out): their mean and components by decreasing
 * variance (orthogonal iteration, then Rayleigh–Ritz on the m-dimensional subspace).
 */
function principalComponents(x: Float64Array, s: number, C: number, m: number): { mean: Float64Array; components: Float64Array[] } {
  const centred = new Float64Array(x.length);
  const mean = new Float64Array(C);
  for (let i = 0; i < s; i++) {
    let a = 0;
    for (let c = 0; c < C; c++) a += x[i * C + c]!;
    a /= C;
    for (let c = 0; c < C; c++) { centred[i * C + c] = x[i * C + c]! - a; mean[c] += centred[i * C + c]! / s; }
  }
  const cov = new Float64Array(C * C);
  const d = new Float64Array(C);
  for (let i = 0; i < s; i++) {
    for (let c = 0; c < C; c++) d[c] = centred[i * C + c]! - mean[c]!;
    for (let a = 0; a < C; a++) {
      const da = d[a]!;
      if (da === 0) continue;
      for (let b = a; b < C; b++) cov[a * C + b] += da * d[b]!;
    }
  }
  for (let a = 0; a < C; a++) for (let b = a; b < C; b++) cov[b * C + a] = cov[a * C + b]!;
  m = Math.min(m, C - 1);
  if (m <= 0) return { mean, components: [] };
  // orthogonal iteration: Q ← orth(cov · Q)
  let q: Float64Array[] = Array.from({ length: m }, (_, j) => {
    const v = new Float64Array(C);
    for (let c = 0; c < C; c++) v[c] = Math.sin(1 + c * (j + 1) * 0.7) + (c === j ? 1 : 0);
    return v;
  });
  const mul = (v: Float64Array): Float64Array => {
    const w = new Float64Array(C);
    for (let a = 0; a < C; a++) { let t = 0; for (let b = 0; b < C; b++) t += cov[a * C + b]! * v[b]!; w[a] = t; }
    return w;
  };
  const orthonormalise = (vs: Float64Array[]): Float64Array[] => {
    const out: Float64Array[] = [];
    for (const v0 of vs) {
      const v = Float64Array.from(v0);
      for (let pass = 0; pass < 2; pass++) {
        for (const u of out) {
          let dot = 0;
          for (let c = 0; c < C; c++) dot += v[c]! * u[c]!;
          for (let c = 0; c < C; c++) v[c] -= dot * u[c]!;
        }
      }
      let norm = 0;
      for (let c = 0; c < C; c++) norm += v[c]! * v[c]!;
      norm = Math.sqrt(norm);
      if (!(norm > 1e-300)) { // a degenerate direction: any unit vector orthogonal to the others
        v.fill(0);
        v[out.length % C] = 1;
        return orthonormalise([...out, v, ...vs.slice(out.length + 1)]).slice(0, vs.length);
      }
      for (let c = 0; c < C; c++) v[c] /= norm;
      out.push(v);
    }
    return out;
  };
  q = orthonormalise(q);
  for (let it = 0; it < 20; it++) q = orthonormalise(q.map(mul));
  // Rayleigh–Ritz: order the subspace's directions by variance
  const aq = q.map(mul);
  const small = new Float64Array(m * m);
  for (let i = 0; i < m; i++) for (let j = 0; j < m; j++) { let t = 0; for (let c = 0; c < C; c++) t += q[i]![c]! * aq[j]![c]!; small[i * m + j] = t; }
  const { values, vectors } = symmetricEigen(small, m);
  const order = Array.from({ length: m }, (_, i) => i).sort((a, b) => values[b]! - values[a]!);
  const components = order.map((e) => {
    const v = new Float64Array(C);
    for (let i = 0; i < m; i++) { const w = vectors[i * m + e]!; for (let c = 0; c < C; c++) v[c] += w * q[i]![c]!; }
    return v;
  });
  return { mean, components };
}

/** Eigen-decomposition of a small symmetric matrix (cyclic Jacobi): values, and vectors as columns. */
function symmetricEigen(matrix: Float64Array, m: number): { values: Float64Array; vectors: Float64Array } {
  const a = Float64Array.from(matrix);
  const v = new Float64Array(m * m);
  for (let i = 0; i < m; i++) v[i * m + i] = 1;
  for (let sweep = 0; sweep < 50; sweep++) {
    let off = 0;
    for (let i = 0; i < m; i++) for (let j = i + 1; j < m; j++) off += a[i * m + j]! * a[i * m + j]!;
    if (off < 1e-22) break;
    for (let p = 0; p < m; p++) {
      for (let r = p + 1; r < m; r++) {
        const apr = a[p * m + r]!;
        if (Math.abs(apr) < 1e-300) continue;
        const theta = (a[r * m + r]! - a[p * m + p]!) / (2 * apr);
        const t = Math.sign(theta || 1) / (Math.abs(theta) + Math.sqrt(theta * theta + 1));
        const cs = 1 / Math.sqrt(t * t + 1), sn = t * cs;
        for (let k = 0; k < m; k++) {
          const akp = a[k * m + p]!, akr = a[k * m + r]!;
          a[k * m + p] = cs * akp - sn * akr;
          a[k * m + r] = sn * akp + cs * akr;
        }
        for (let k = 0; k < m; k++) {
          const apk = a[p * m + k]!, ark = a[r * m + k]!;
          a[p * m + k] = cs * apk - sn * ark;
          a[r * m + k] = sn * apk + cs * ark;
        }
        for (let k = 0; k < m; k++) {
          const vkp = v[k * m + p]!, vkr = v[k * m + r]!;
          v[k * m + p] = cs * vkp - sn * vkr;
          v[k * m + r] = sn * vkp + cs * vkr;
        }
      }
    }
  }
  const values = new Float64Array(m);
  for (let i = 0; i < m; i++) values[i] = a[i * m + i]!;
  return { values, vectors: v };
}

/** Coefficient grid size for an image: one coefficient per `grid`×`grid` block. */
export function gridSize(width: number, height: number, grid: number): { gw: number; gh: number } {
  return { gw: Math.ceil(width / grid), gh: Math.ceil(height / grid) };
}

/** Block index of every pixel ([n]). */
function blockIndex(width: number, height: number, grid: number): Int32Array {
  const { gw } = gridSize(width, height, grid);
  const out = new Int32Array(width * height);
  for (let y = 0; y < height; y++) {
    const row = Math.floor(y / grid) * gw;
    for (let x = 0; x < width; x++) out[y * width + x] = row + Math.floor(x / grid);
  }
  return out;
}

/**
 * The sampled pixels' tails, gathered once for every rank tried: tail class ids, their probabilities, and the
 * constant part of the KL, Σ_tail p_c ln(p_c / r).
 */
interface TailSample {
  /** Per sampled pixel: start of its tail in `classes`/`probs` (length pixels + 1). */
  start: Int32Array;
  classes: Uint8Array;
  probs: Float64Array;
  /** Row of `shapes` each pixel reads (its block's). */
  rows: Int32Array;
  /** Σ_tail p_c ln(p_c / r), summed over the sample. */
  entropyTerm: number;
  /** Pixels in the sample (those without a tail count as 0 KL). */
  count: number;
}

function gatherTails(probs: Float32Array, C: number, pixels: Int32Array, rows: Int32Array, top: TopK, n: number): TailSample {
  const inTop = new Uint8Array(C);
  const start = new Int32Array(pixels.length + 1);
  const classes = new Uint8Array(pixels.length * C), values = new Float64Array(pixels.length * C);
  const keptRows = new Int32Array(pixels.length);
  let kept = 0, at = 0, entropyTerm = 0;
  for (let i = 0; i < pixels.length; i++) {
    const p = pixels[i]!;
    const r = top.tailMass[p]!, used = top.used[p]!;
    if (!(r > 0) || used >= C) continue;
    for (let j = 0; j < used; j++) inTop[top.ids[j * n + p]!] = 1;
    start[kept] = at;
    const lr = Math.log(r);
    for (let c = 0; c < C; c++) {
      if (inTop[c]) continue;
      const v = probs[p * C + c]!;
      classes[at] = c;
      values[at++] = v;
      if (v > 0) entropyTerm += v * (Math.log(v) - lr);
    }
    for (let j = 0; j < used; j++) inTop[top.ids[j * n + p]!] = 0;
    keptRows[kept++] = rows[i]!;
  }
  start[kept] = at;
  return { start: start.subarray(0, kept + 1), classes, probs: values, rows: keptRows, entropyTerm, count: pixels.length };
}

/**
 * Mean tail KL over the sample when each pixel's tail shares are ∝ exp(shapes[row]):
 * Σ_tail p_c ln(p_c / q_c), q_c = r · e^{ℓ_c} / Σ_tail e^{ℓ} ⇒ the constant part minus Σ p_c (ℓ_c − ln Σ e^{ℓ}).
 * The exponentials are taken once per row (block), relative to the row's largest ℓ, not per pixel.
 */
function sampleTailKl(t: TailSample, C: number, shapes: Float64Array, scratch: Float64Array): number {
  const rowsCount = shapes.length / C;
  const rowMax = scratch.subarray(rowsCount * C, rowsCount * (C + 1));
  for (let r = 0; r < rowsCount; r++) {
    const o = r * C;
    let max = -Infinity;
    for (let c = 0; c < C; c++) if (shapes[o + c]! > max) max = shapes[o + c]!;
    rowMax[r] = max;
    for (let c = 0; c < C; c++) scratch[o + c] = Math.exp(shapes[o + c]! - max);
  }
  let total = t.entropyTerm;
  for (let i = 0; i + 1 < t.start.length; i++) {
    const a = t.start[i]!, b = t.start[i + 1]!, o = t.rows[i]! * C;
    let z = 0, mass = 0, dot = 0;
    for (let j = a; j < b; j++) {
      const c = t.classes[j]!;
      z += scratch[o + c]!;
      mass += t.probs[j]!;
      dot += t.probs[j]! * shapes[o + c]!;
    }
    // z = 0 only if every tail class is > 700 nats below the row's top: that shape gives the tail nothing
    total -= z > 0 ? dot - mass * (Math.log(z) + rowMax[t.rows[i]!]!) : -Infinity;
  }
  return total / t.count;
}

/** Blocks the model is fitted on (a regular sample), and how many of them the rank is chosen on. */
const FIT_BLOCKS = 512;
const KL_BLOCKS = 256;
/**
 * The rank chosen when none meets the target: the smallest whose KL is within this share of the best one's. On a
 * trained 21-class teacher (16 images each, 64² / 128²): 0.1 gives KL 6.8e-4 / 6.2e-4 at 3.61 / 3.30 B/px, 0.25
 * 7.5e-4 / 6.8e-4 at 3.41 / 3.17 (and 15% more KL on random-init outputs); the greedy rule before (stop when a
 * component gains < 10%) stopped at rank 1 on images whose first component did worse than the image-wide shape:
 * 7.6e-4 / 1.21e-3 at 3.47 / 3.18.
 */
const SLACK = 0.1;
/**
 * Coefficient codes are 0 … COEF_TOP (6 bits): on a trained teacher 8 bits cost 0.26 B/px more for 1% less KL
 * (the low bits are noise that no compressor squeezes); 5 bits add 3% KL.
 */
const COEF_TOP = 63;

/**
 * Fits the tail model of one image: the image-wide shape (rank 0), or — when that leaves more KL than `klTarget`
 * on the pixels of a sample of blocks — the smallest principal-component rank that meets it (at most `maxRank`;
 * none does: the smallest within SLACK of the best), with each block's coordinates quantised to 6 bits (`coefs`,
 * [rank, gh·gw]).
 */
export function fitTailModel(
  probs: Float32Array, width: number, height: number, C: number, top: TopK, o: FitOptions = {},
): { model: TailModel; coefs: Uint8Array } {
  const n = width * height;
  const target = o.klTarget ?? DEFAULT_TAIL_KL_TARGET;
  const maxRank = Math.min(o.maxRank ?? DEFAULT_MAX_TAIL_RANK, Math.max(0, C - top.k - 1));
  const grid = o.grid ?? DEFAULT_TAIL_GRID;
  if (!(target >= 0)) throw new SoftsegError(`tail KL target must be ≥ 0 (got ${target})`);
  if (!(Number.isInteger(grid) && grid >= 1 && grid <= 255)) throw new SoftsegError(`tail grid must be 1..255 (got ${grid})`);
  const { gw, gh } = gridSize(width, height, grid);
  const g = gw * gh;
  const blockOf = blockIndex(width, height, grid);
  // the sampled blocks (PCA), and the pixels of a regular subset of them (KL)
  const stride = Math.max(1, Math.floor(g / FIT_BLOCKS));
  const fitBlocks: number[] = [];
  for (let b = 0; b < g; b += stride) fitBlocks.push(b);
  const klEvery = Math.max(1, Math.floor(fitBlocks.length / KL_BLOCKS));
  const klBlocks = fitBlocks.filter((_, i) => i % klEvery === 0);
  const rowOfBlock = new Int32Array(g).fill(-1);
  klBlocks.forEach((b, i) => { rowOfBlock[b] = i; });
  const klPixels: number[] = [], klRows: number[] = [];
  for (let p = 0; p < n; p++) {
    const row = rowOfBlock[blockOf[p]!]!;
    if (row >= 0) { klPixels.push(p); klRows.push(row); }
  }
  const pixels = Int32Array.from(klPixels), rows = Int32Array.from(klRows);

  const prior = tailPrior(probs, C, pixels, top, n);
  const tails = gatherTails(probs, C, pixels, rows, top, n);
  const base0 = new Float32Array(C);
  for (let c = 0; c < C; c++) base0[c] = Math.log(prior[c]!);
  const none = { model: { ...evenTail(C), base: base0 }, coefs: new Uint8Array(0) };
  const s = fitBlocks.length, K = klBlocks.length;
  const shapes = new Float64Array(K * C); // ℓ of each KL block at the rank being tried
  for (let i = 0; i < K; i++) shapes.set(base0, i * C);
  const scratch = new Float64Array(K * (C + 1));
  const kl0 = maxRank === 0 ? 0 : sampleTailKl(tails, C, shapes, scratch);
  if (kl0 <= target) return none;

  const logs = blockLogs(probs, C, blockOf, g);
  const fitLogs = new Float64Array(s * C);
  fitBlocks.forEach((b, i) => fitLogs.set(logs.subarray(b * C, (b + 1) * C), i * C));
  const { mean, components } = principalComponents(fitLogs, s, C, maxRank);
  // every block's coordinates on every component (components are orthogonal to 1: no per-block centring),
  // quantised per component over the image's range; the rank is chosen with exactly these quantised values
  const M = components.length;
  const coords = new Float64Array(M * g);
  const lo = new Float64Array(M).fill(Infinity), hi = new Float64Array(M).fill(-Infinity);
  const centred = new Float64Array(C);
  for (let b = 0; b < g; b++) {
    for (let c = 0; c < C; c++) centred[c] = logs[b * C + c]! - mean[c]!;
    for (let j = 0; j < M; j++) {
      const v = components[j]!;
      let t = 0;
      for (let c = 0; c < C; c++) t += centred[c]! * v[c]!;
      coords[j * g + b] = t;
      if (t < lo[j]!) lo[j] = t;
      if (t > hi[j]!) hi[j] = t;
    }
  }
  const coefOffset = new Float32Array(M), coefStep = new Float32Array(M);
  const coefs = new Uint8Array(M * g);
  for (let j = 0; j < M; j++) {
    coefOffset[j] = lo[j]!;
    coefStep[j] = hi[j]! > lo[j]! ? (hi[j]! - lo[j]!) / COEF_TOP : 1;
    const off = coefOffset[j]!, inv = 1 / coefStep[j]!;
    for (let b = 0; b < g; b++) coefs[j * g + b] = Math.min(COEF_TOP, Math.max(0, Math.round((coords[j * g + b]! - off) * inv)));
  }
  for (let i = 0; i < K; i++) shapes.set(mean, i * C);
  // every rank's KL on the sample (not monotone: the first components can follow the top classes' variation,
  // which the tail does not need, and do worse than the image-wide shape); the smallest rank meeting the target,
  // else the smallest within SLACK of the best rank's KL (beyond it components cost bytes for little)
  const kls = [kl0];
  for (let m = 1; m <= M; m++) {
    const v = components[m - 1]!, j = m - 1;
    for (let i = 0; i < K; i++) {
      const w = coefOffset[j]! + coefStep[j]! * coefs[j * g + klBlocks[i]!]!;
      for (let c = 0; c < C; c++) shapes[i * C + c] += w * v[c]!;
    }
    kls.push(sampleTailKl(tails, C, shapes, scratch));
  }
  const best = Math.min(...kls);
  const rank = kls.findIndex((kl) => kl <= Math.max(target, best * (1 + SLACK)));
  // rank 0: the image-wide shape is as good (flat or peculiar outputs): a low-rank shape is not worth its bytes
  if (rank === 0) return none;
  const basis = new Float32Array(rank * C);
  for (let j = 0; j < rank; j++) for (let c = 0; c < C; c++) basis[j * C + c] = components[j]![c]!;
  return { model: { rank, base: Float32Array.from(mean), basis, coefOffset: coefOffset.slice(0, rank), coefStep: coefStep.slice(0, rank), grid }, coefs: coefs.slice(0, rank * g) };
}

/** ln of each block's mean distribution, clamped LOG_FLOOR below its largest class, [g, C]. */
function blockLogs(probs: Float32Array, C: number, blockOf: Int32Array, g: number): Float64Array {
  const sums = new Float64Array(g * C);
  for (let p = 0; p < blockOf.length; p++) {
    const o = p * C, b = blockOf[p]! * C;
    for (let c = 0; c < C; c++) sums[b + c] += probs[o + c]!;
  }
  for (let b = 0; b < g; b++) {
    const o = b * C;
    let top = 0;
    for (let c = 0; c < C; c++) if (sums[o + c]! > top) top = sums[o + c]!;
    const floor = Math.log(top) - LOG_FLOOR;
    for (let c = 0; c < C; c++) { const v = sums[o + c]!; sums[o + c] = v > 0 ? Math.max(Math.log(v), floor) : floor; }
  }
  return sums;
}

/**
 * Pixels' tail shares at temperature T: e^{(ℓ_c − ref)/T} for each class outside the pixel's used slots, with
 * ref = 0 at rank 0 (the shares are π_c, mean 1) and the tail's largest ℓ at rank > 0 (the largest share is 1,
 * so the residual code stays in range). ℓ is constant over a block: one exp per block and class, computed
 * relative to the block's largest ℓ, then divided by the pixel's tail maximum. Encoder and decoder share this
 * code, so the residual the encoder stores is relative to exactly the shares the decoder rebuilds.
 */
export class TailShares {
  private readonly inTop: Uint8Array;
  /** exp((ℓ − max ℓ)/T) per block ([g, C]; one row at rank 0), for temperature rowsT. */
  private rows: Float64Array;
  /** Σ of each row, and each row's `topCount` largest classes in decreasing order ([g, topCount]). */
  private rowSum: Float64Array;
  private rowTop: Uint8Array;
  private readonly topCount: number;
  private rowsT = NaN;
  private readonly blockOf: Int32Array | null;

  /** `k`: the most slots a pixel uses (a pixel's tail is the classes outside them). */
  constructor(private readonly model: TailModel, private readonly C: number, private readonly coefs: Uint8Array, width: number, height: number, k = C) {
    this.inTop = new Uint8Array(C);
    this.rows = new Float64Array(0);
    this.rowSum = new Float64Array(0);
    this.rowTop = new Uint8Array(0);
    this.topCount = Math.min(C, k + 1);
    this.blockOf = model.rank > 0 ? blockIndex(width, height, model.grid) : null;
  }

  private ensure(T: number): void {
    if (T === this.rowsT) return;
    const { model, C, topCount } = this;
    const inv = 1 / T;
    const g = model.rank === 0 ? 1 : this.coefs.length / model.rank;
    if (this.rows.length !== g * C) {
      this.rows = new Float64Array(g * C);
      this.rowSum = new Float64Array(g);
      this.rowTop = new Uint8Array(g * topCount);
    }
    const { rows, rowSum, rowTop } = this;
    if (model.rank === 0) {
      for (let c = 0; c < C; c++) rows[c] = Math.exp(model.base[c]! * inv);
    } else if (!this.productRows(g, inv)) {
      const l = new Float64Array(C);
      const step = model.coefStep, off = model.coefOffset, V = model.basis;
      for (let b = 0; b < g; b++) {
        for (let c = 0; c < C; c++) l[c] = model.base[c]!;
        for (let j = 0; j < model.rank; j++) {
          const u = off[j]! + step[j]! * this.coefs[j * g + b]!;
          for (let c = 0; c < C; c++) l[c] += u * V[j * C + c]!;
        }
        let max = -Infinity;
        for (let c = 0; c < C; c++) if (l[c]! > max) max = l[c]!;
        for (let c = 0; c < C; c++) rows[b * C + c] = Math.exp((l[c]! - max) * inv);
      }
    }
    // per row: its sum and its largest classes (insertion), so that a pixel's tail sum is the row's sum less its
    // few used classes and its largest tail share the first of them outside its used slots
    const topV = new Float64Array(topCount);
    for (let b = 0; b < g; b++) {
      const o = b * C, t = b * topCount;
      let sum = 0, filled = 0;
      for (let c = 0; c < C; c++) {
        const v = rows[o + c]!;
        sum += v;
        if (filled < topCount || v > topV[topCount - 1]!) {
          let j = filled < topCount ? filled++ : topCount - 1;
          while (j > 0 && v > topV[j - 1]!) { topV[j] = topV[j - 1]!; rowTop[t + j] = rowTop[t + j - 1]!; j--; }
          topV[j] = v;
          rowTop[t + j] = c;
        }
      }
      rowSum[b] = sum;
    }
    this.rowsT = T;
  }

  /**
   * rows = e^{ℓ/T} as products: e^{(base + Σ_j offset_j V_j)/T} · Π_j e^{step_j · code_j · V_j / T}, the factors
   * tabulated per component and code — no exp per block and class (3× faster than one at 128²), then each row
   * divided by its largest value. Only when no product can overflow or underflow (|exponents| < 600): false
   * otherwise, and the caller takes the exp per class.
   */
  private productRows(g: number, inv: number): boolean {
    const { model, C, coefs, rows } = this;
    const m = model.rank, V = model.basis;
    let maxCode = 0;
    for (let i = 0; i < coefs.length; i++) if (coefs[i]! > maxCode) maxCode = coefs[i]!;
    const base = new Float64Array(C);
    let bound = 0;
    for (let c = 0; c < C; c++) {
      let l = model.base[c]!;
      for (let j = 0; j < m; j++) l += model.coefOffset[j]! * V[j * C + c]!;
      base[c] = l * inv;
      bound = Math.max(bound, Math.abs(base[c]!));
    }
    let spread = 0;
    for (let j = 0; j < m; j++) {
      let vmax = 0;
      for (let c = 0; c < C; c++) vmax = Math.max(vmax, Math.abs(V[j * C + c]!));
      spread += Math.abs(model.coefStep[j]!) * maxCode * vmax * inv;
    }
    if (!(bound + spread < 600)) return false;
    for (let c = 0; c < C; c++) base[c] = Math.exp(base[c]!);
    const codes = maxCode + 1;
    const tables = new Float64Array(m * codes * C);
    for (let j = 0; j < m; j++) {
      for (let c = 0; c < C; c++) {
        const e = Math.exp(model.coefStep[j]! * V[j * C + c]! * inv);
        let f = 1;
        for (let q = 0; q < codes; q++, f *= e) tables[(j * codes + q) * C + c] = f;
      }
    }
    for (let b = 0; b < g; b++) {
      const o = b * C;
      rows.set(base, o);
      for (let j = 0; j < m; j++) {
        const t = (j * codes + coefs[j * g + b]!) * C;
        for (let c = 0; c < C; c++) rows[o + c] *= tables[t + c]!;
      }
      let max = 0;
      for (let c = 0; c < C; c++) if (rows[o + c]! > max) max = rows[o + c]!;
      const scale = 1 / max;
      for (let c = 0; c < C; c++) rows[o + c] *= scale;
    }
    return true;
  }

  /**
   * Writes pixel p's tail shares at T into out[base + c] (0 for its used slots' classes) unless `out` is null;
   * returns their Σ.
   */
  fill(ids: Uint8Array, p: number, n: number, used: number, T: number, out: Float32Array | null, base = 0): number {
    this.ensure(T);
    const { C, inTop, rows } = this;
    const b = this.blockOf ? this.blockOf[p]! : 0;
    const o = b * C;
    let scale = 1;
    if (this.blockOf) { // the largest share of the pixel's tail is 1
      const t = b * this.topCount;
      for (let i = 0; i < this.topCount; i++) {
        const c = this.rowTop[t + i]!;
        let isUsed = false;
        for (let j = 0; j < used; j++) if (ids[j * n + p] === c) { isUsed = true; break; }
        if (!isUsed) { scale = rows[o + c]! > 0 ? 1 / rows[o + c]! : 1; break; }
      }
    }
    if (!out) { // the sum alone: the row's sum less the used classes, unless that difference would lose digits
      let sub = 0;
      for (let j = 0; j < used; j++) sub += rows[o + ids[j * n + p]!]!;
      const rest = this.rowSum[b]! - sub;
      if (rest > 1e-6 * this.rowSum[b]!) return rest * scale;
    }
    for (let j = 0; j < used; j++) inTop[ids[j * n + p]!] = 1;
    let s = 0;
    if (out) {
      for (let c = 0; c < C; c++) { const v = inTop[c] ? 0 : rows[o + c]! * scale; out[base + c] = v; s += v; }
    } else {
      for (let c = 0; c < C; c++) if (!inTop[c]) s += rows[o + c]!;
      s *= scale;
    }
    for (let j = 0; j < used; j++) inTop[ids[j * n + p]!] = 0;
    return s;
  }
}
