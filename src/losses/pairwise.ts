/**
 * The losses as distances between two vectors of [0,1]^p (method.md §2), in float64. For property tests
 * (metric axioms, Theorem 2.1) and for users comparing soft labels. Each takes an optional smoothing
 * constant added to the (halved) intersection and the union; 0/0 (two zero vectors) is defined as 0.
 */
import { SoftsegError } from '../errors.js';

type Vec = ArrayLike<number>;

interface Sums {
  /** |a| + |b| */
  sum: number;
  /** |a − b| (L1) */
  l1diff: number;
  /** ⟨a, b⟩ */
  dot: number;
  /** ‖a‖² + ‖b‖² */
  sq: number;
}

function sums(a: Vec, b: Vec): Sums {
  if (a.length !== b.length) throw new SoftsegError(`vectors differ in length: ${a.length} vs ${b.length}`);
  let sum = 0, l1diff = 0, dot = 0, sq = 0;
  for (let i = 0; i < a.length; i++) {
    const x = a[i]!, y = b[i]!;
    sum += Math.abs(x) + Math.abs(y);
    l1diff += Math.abs(x - y);
    dot += x * y;
    sq += x * x + y * y;
  }
  return { sum, l1diff, dot, sq };
}

function ratioLoss(num: number, den: number, smooth: number): number {
  const n = num + smooth, d = den + smooth;
  return d === 0 ? 0 : 1 - n / d;
}

/** JML1 = 1 − (|a|+|b|−|a−b|)/(|a|+|b|+|a−b|) (weighted Jaccard / Ruzicka distance). */
export function jml1Distance(a: Vec, b: Vec, smooth = 0): number {
  const s = sums(a, b);
  return ratioLoss((s.sum - s.l1diff) / 2, (s.sum + s.l1diff) / 2, smooth);
}

/** JML2 = 1 − ⟨a,b⟩/(⟨a,b⟩ + |a−b|). */
export function jml2Distance(a: Vec, b: Vec, smooth = 0): number {
  const s = sums(a, b);
  return ratioLoss(s.dot, s.dot + s.l1diff, smooth);
}

/** DML1 = 1 − (|a|+|b|−|a−b|)/(|a|+|b|). A semimetric (no triangle inequality). */
export function dml1Distance(a: Vec, b: Vec, smooth = 0): number {
  const s = sums(a, b);
  return ratioLoss((s.sum - s.l1diff) / 2, s.sum / 2, smooth);
}

/** DML2 = 1 − 2⟨a,b⟩/(2⟨a,b⟩ + |a−b|). */
export function dml2Distance(a: Vec, b: Vec, smooth = 0): number {
  const s = sums(a, b);
  return ratioLoss(s.dot, s.dot + s.l1diff / 2, smooth);
}

/** Soft Jaccard loss, L1 form: 1 − ⟨a,b⟩/(|a|+|b|−⟨a,b⟩). Not reflexive on soft targets. */
export function sjl1Distance(a: Vec, b: Vec, smooth = 0): number {
  const s = sums(a, b);
  return ratioLoss(s.dot, s.sum - s.dot, smooth);
}

/** Soft Jaccard loss, squared-L2 form (Tanimoto): 1 − ⟨a,b⟩/(‖a‖²+‖b‖²−⟨a,b⟩). Violates the triangle inequality. */
export function sjl2Distance(a: Vec, b: Vec, smooth = 0): number {
  const s = sums(a, b);
  return ratioLoss(s.dot, s.sq - s.dot, smooth);
}

/** Soft Dice loss, L1 form: 1 − 2⟨a,b⟩/(|a|+|b|). */
export function sdl1Distance(a: Vec, b: Vec, smooth = 0): number {
  const s = sums(a, b);
  return ratioLoss(s.dot, s.sum / 2, smooth);
}

/**
 * The first release's smoothing convention (method.md §10.6): smooth added to the un-halved intersection
 * and union, (I + s)/(U + s), for JML1 (I = |a|+|b|−|a−b|, U = |a|+|b|+|a−b|) or JML2 (I = ⟨a,b⟩, U = ⟨a,b⟩+|a−b|).
 */
export function jmlDistanceV1(a: Vec, b: Vec, variant: 1 | 2, smooth: number): number {
  const s = sums(a, b);
  return variant === 1 ? ratioLoss(s.sum - s.l1diff, s.sum + s.l1diff, smooth) : ratioLoss(s.dot, s.dot + s.l1diff, smooth);
}
