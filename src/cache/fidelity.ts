/**
 * How faithfully a cache entry reproduces the teacher's exact output: mean KL(exact_T ‖ reconstructed_T) per
 * pixel, the JML1 distance between the two soft-label maps, and pseudo-label (argmax) agreement.
 */
import { jml1Distance } from '../losses/pairwise.js';
import { SoftsegError } from '../errors.js';
import { Random } from '../random.js';
import { reconstructSoft, type DecodedEntry } from './format.js';
import type { TeacherCache } from './store.js';

/** softmax(ln p / T) of probabilities p ([N, C]), in float64; p_c = 0 stays 0. */
export function temperProbs(probs: ArrayLike<number>, numClasses: number, temperature: number): Float64Array {
  const out = new Float64Array(probs.length);
  const inv = 1 / temperature;
  for (let base = 0; base < probs.length; base += numClasses) {
    let s = 0;
    for (let c = 0; c < numClasses; c++) {
      const v = probs[base + c]!;
      const t = v > 0 ? (temperature === 1 ? v : Math.pow(v, inv)) : 0;
      out[base + c] = t;
      s += t;
    }
    for (let c = 0; c < numClasses; c++) out[base + c]! /= s;
  }
  return out;
}

/** Mean over pixels of KL(p ‖ q) = Σ_c p_c ln(p_c / q_c) (0·ln 0 = 0), in nats. */
export function meanKl(p: ArrayLike<number>, q: ArrayLike<number>, numClasses: number): number {
  let total = 0;
  for (let i = 0; i < p.length; i++) {
    const a = p[i]!;
    if (a > 0) total += a * Math.log(a / q[i]!);
  }
  return total / (p.length / numClasses);
}

/** Fraction of pixels where the argmax of a equals the argmax of b (or a given label map). */
function argmaxAgreement(exact: ArrayLike<number>, labels: ArrayLike<number>, numClasses: number): number {
  const n = exact.length / numClasses;
  let same = 0;
  for (let p = 0; p < n; p++) {
    let best = 0;
    for (let c = 1; c < numClasses; c++) if (exact[p * numClasses + c]! > exact[p * numClasses + best]!) best = c;
    if (best === labels[p]) same++;
  }
  return same / n;
}

export interface FidelityResult {
  /** Mean KL(exact_T ‖ reconstructed_T) per pixel, by temperature. */
  kl: Record<string, number>;
  /** JML1 distance between the exact and reconstructed soft-label maps (flattened), by temperature. */
  jml1: Record<string, number>;
  /** Fraction of pixels whose stored argmax equals the exact argmax. */
  pseudoAgreement: number;
  pixels: number;
}

/** Compares an entry with the exact probabilities it was made from (or fresh teacher outputs). */
export function entryFidelity(exact: Float32Array, entry: DecodedEntry, temperatures: number[] = [1, 4]): FidelityResult {
  const C = entry.header.numClasses;
  const kl: Record<string, number> = {};
  const jml1: Record<string, number> = {};
  for (const T of temperatures) {
    const p = temperProbs(exact, C, T);
    const q = reconstructSoft(entry, T);
    kl[String(T)] = meanKl(p, q, C);
    jml1[String(T)] = jml1Distance(p, q);
  }
  return { kl, jml1, pseudoAgreement: argmaxAgreement(exact, entry.planes.ids, C), pixels: entry.header.width * entry.header.height };
}

/** What teacherFidelity needs of a teacher (src/teachers `Teacher` satisfies it). */
export interface FidelityTeacher {
  readonly fingerprint: string;
  readonly numClasses: number;
  predict(image: { data: Uint8Array; width: number; height: number }): Promise<Float32Array>;
}

export interface TeacherFidelityResult {
  fingerprint: string;
  /** Images under the given folders that have an entry of this teacher. */
  withEntries: number;
  /** Images compared (a seeded sample of those). */
  sampled: number;
  /** Pixel-weighted means over the sample (KL and JML1 over soft entries only). */
  mean: { kl: Record<string, number>; jml1: Record<string, number>; pseudoAgreement: number };
  perImage: { imageName: string; imageHash: string; kl?: Record<string, number>; jml1?: Record<string, number>; pseudoAgreement: number }[];
}

/**
 * Re-runs `teacher` on a seeded sample of `images` that have entries in `cache` and compares each entry with the
 * fresh outputs: the cache's fidelity, end to end (quantisation, top-k, and that the entry belongs to the image).
 */
export async function teacherFidelity(
  cache: TeacherCache,
  teacher: FidelityTeacher,
  images: readonly { path: string; hash: string; name?: string }[],
  decode: (path: string) => Promise<{ data: Uint8Array; width: number; height: number }>,
  options: { sample?: number; seed?: number; temperatures?: number[]; onProgress?: (done: number, total: number) => void } = {},
): Promise<TeacherFidelityResult> {
  const temperatures = options.temperatures ?? [1, 4];
  const present: typeof images[number][] = [];
  const seen = new Set<string>();
  for (const im of images) {
    if (seen.has(im.hash)) continue;
    seen.add(im.hash);
    if (await cache.has(teacher.fingerprint, im.hash)) present.push(im);
  }
  const picked = new Random(options.seed ?? 0).shuffle([...present]).slice(0, options.sample ?? present.length);
  const perImage: TeacherFidelityResult['perImage'] = [];
  const klSum: Record<string, number> = {}, jmlSum: Record<string, number> = {};
  let softPixels = 0, pixels = 0, agreeSum = 0;
  for (const im of picked) {
    const entry = await cache.read(teacher.fingerprint, im.hash);
    if (!entry) continue;
    const image = await decode(im.path);
    const exact = await teacher.predict(image);
    const { header } = entry;
    if (image.width !== header.width || image.height !== header.height || exact.length !== header.width * header.height * header.numClasses) {
      throw new SoftsegError(`teacher output ${image.width}×${image.height}×${exact.length / (image.width * image.height)} does not match the entry's ${header.width}×${header.height}×${header.numClasses}`, { file: im.path });
    }
    const n = header.width * header.height;
    const agree = argmaxAgreement(exact, entry.planes.ids, header.numClasses);
    const row: TeacherFidelityResult['perImage'][number] = { imageName: im.name ?? header.imageName, imageHash: im.hash, pseudoAgreement: agree };
    if (header.modes.soft) {
      const f = entryFidelity(exact, entry, temperatures);
      row.kl = f.kl;
      row.jml1 = f.jml1;
      for (const T of temperatures) {
        klSum[T] = (klSum[T] ?? 0) + f.kl[T]! * n;
        jmlSum[T] = (jmlSum[T] ?? 0) + f.jml1[T]! * n;
      }
      softPixels += n;
    }
    agreeSum += agree * n;
    pixels += n;
    perImage.push(row);
    options.onProgress?.(perImage.length, picked.length);
  }
  const kl: Record<string, number> = {}, jml1: Record<string, number> = {};
  if (softPixels) for (const T of temperatures) { kl[T] = klSum[T]! / softPixels; jml1[T] = jmlSum[T]! / softPixels; }
  return { fingerprint: teacher.fingerprint, withEntries: present.length, sampled: perImage.length, mean: { kl, jml1, pseudoAgreement: pixels ? agreeSum / pixels : NaN }, perImage };
}
