/**
 * Histogram (binned) calibration helpers shared by ECE and SCE (method.md §7.4).
 *
 * Bins have lower edges `0, 1/B, …, (B−1)/B`, computed in float32 as the reference does; a
 * confidence `v` falls in bin `b` when `edge_b ≤ v < edge_{b+1}`, and the last bin is closed
 * (`[edge_{B−1}, ∞)`, so a confidence of exactly 1 lands in it).
 */
import { SoftsegError } from '../errors.js';

/** Lower bin edges `Math.fround(b / B)` for `b = 0 … B−1`. */
export function binEdges(numBins: number): Float64Array {
  if (!Number.isInteger(numBins) || numBins < 1) {
    throw new SoftsegError(`numBins must be a positive integer, got ${numBins}`);
  }
  const edges = new Float64Array(numBins);
  for (let b = 0; b < numBins; b++) edges[b] = Math.fround(b / numBins);
  return edges;
}

/**
 * The bin of confidence `v` (assumed ≥ 0) given the lower `edges`: the largest `b` with
 * `edges[b] ≤ v`.
 */
export function binIndex(v: number, edges: Float64Array): number {
  const B = edges.length;
  let b = Math.floor(v * B);
  if (b > B - 1) b = B - 1;
  if (b < 0) b = 0;
  while (b + 1 < B && edges[b + 1] <= v) b++;
  while (b > 0 && edges[b] > v) b--;
  return b;
}

/**
 * Expected calibration error in percent from bin accumulators: `100·Σ_b (n_b/n)·|acc_b − conf_b|`
 * over non-empty bins, where `total[b]` counts samples, `correct[b]` sums the 0/1 correctness and
 * `conf[b]` sums the confidences. Reads `numBins` entries starting at `offset`. An empty set gives 0.
 */
export function eceFromBins(
  total: ArrayLike<number>,
  correct: ArrayLike<number>,
  conf: ArrayLike<number>,
  offset = 0,
  numBins = total.length - offset,
): number {
  let n = 0;
  for (let b = 0; b < numBins; b++) n += total[offset + b];
  if (n === 0) return 0;
  let sum = 0;
  for (let b = 0; b < numBins; b++) {
    const t = total[offset + b];
    if (t === 0) continue;
    sum += (t / n) * Math.abs(correct[offset + b] / t - conf[offset + b] / t);
  }
  return 100 * sum;
}
