/**
 * Pure helpers on a C×C confusion matrix (rows = ground truth, columns = prediction). Values are
 * percentages; a class whose denominator is zero over the whole matrix gets `null` (method.md §7.2,
 * [ours]: such classes are dropped from means instead of producing NaN).
 */
import { SoftsegError } from '../errors.js';

/** Per-class counts derived from a confusion matrix. */
export interface ClassCounts {
  tp: number[];
  fp: number[];
  fn: number[];
}

/** TP, FP and FN per class of a square confusion matrix. */
export function confusionCounts(confusion: ArrayLike<ArrayLike<number>>): ClassCounts {
  const C = confusion.length;
  const tp = new Array<number>(C).fill(0);
  const fp = new Array<number>(C).fill(0);
  const fn = new Array<number>(C).fill(0);
  for (let g = 0; g < C; g++) {
    const row = confusion[g];
    if (row.length !== C) throw new SoftsegError(`confusion matrix must be square (${C}×${C}), row ${g} has ${row.length} entries`);
    for (let p = 0; p < C; p++) {
      const v = row[p];
      if (g === p) tp[g] += v;
      else {
        fn[g] += v;
        fp[p] += v;
      }
    }
  }
  return { tp, fp, fn };
}

function perClass(confusion: ArrayLike<ArrayLike<number>>, f: (tp: number, fp: number, fn: number) => [number, number]): (number | null)[] {
  const { tp, fp, fn } = confusionCounts(confusion);
  return tp.map((t, c) => {
    const [num, den] = f(t, fp[c], fn[c]);
    return den > 0 ? (100 * num) / den : null;
  });
}

/** Per-class IoU `100·TP/(TP+FP+FN)`; `null` for classes never in the ground truth nor predicted. */
export function confusionToIoU(confusion: ArrayLike<ArrayLike<number>>): (number | null)[] {
  return perClass(confusion, (tp, fp, fn) => [tp, tp + fp + fn]);
}

/** Per-class Dice `100·2TP/(2TP+FP+FN)`; `null` for classes never in the ground truth nor predicted. */
export function confusionToDice(confusion: ArrayLike<ArrayLike<number>>): (number | null)[] {
  return perClass(confusion, (tp, fp, fn) => [2 * tp, 2 * tp + fp + fn]);
}

/** Per-class accuracy (recall) `100·TP/(TP+FN)`; `null` for classes absent from the ground truth. */
export function confusionToAcc(confusion: ArrayLike<ArrayLike<number>>): (number | null)[] {
  return perClass(confusion, (tp, _fp, fn) => [tp, tp + fn]);
}

/** Mean of the non-null entries (NaN when there are none). */
export function meanDefined(values: readonly (number | null)[]): number {
  let s = 0;
  let k = 0;
  for (const v of values) {
    if (v === null) continue;
    s += v;
    k++;
  }
  return k === 0 ? Number.NaN : s / k;
}
