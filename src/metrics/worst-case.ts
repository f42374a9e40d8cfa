/**
 * Growable value lists and the worst-case reductions of method.md §7.3.
 */

/** An append-only list of float64 values with amortised O(1) push. */
export class Float64List {
  private buf: Float64Array;
  private len = 0;

  constructor(initialCapacity = 64) {
    this.buf = new Float64Array(Math.max(1, initialCapacity));
  }

  get length(): number {
    return this.len;
  }

  push(v: number): void {
    if (this.len === this.buf.length) {
      const next = new Float64Array(this.buf.length * 2);
      next.set(this.buf);
      this.buf = next;
    }
    this.buf[this.len++] = v;
  }

  /** A sorted (ascending) copy of the values. */
  sorted(): Float64Array {
    return this.buf.slice(0, this.len).sort();
  }

  clear(): void {
    this.len = 0;
  }
}

/** Ascending values with prefix sums, so that the mean of the k smallest is O(1). */
export class SortedValues {
  readonly count: number;
  private readonly prefix: Float64Array;

  constructor(values: Float64Array | Float64List) {
    const sorted = values instanceof Float64List ? values.sorted() : values.slice().sort();
    this.count = sorted.length;
    this.prefix = new Float64Array(sorted.length + 1);
    for (let i = 0; i < sorted.length; i++) this.prefix[i + 1] = this.prefix[i] + sorted[i];
  }

  /** Mean of all values (NaN when empty). */
  mean(): number {
    return this.count === 0 ? Number.NaN : this.prefix[this.count] / this.count;
  }

  /** Mean of the `k` smallest values (`1 ≤ k ≤ count`). */
  meanOfSmallest(k: number): number {
    return this.prefix[k] / k;
  }
}

/**
 * How many of `m` per-image values the image-level q-worst mean takes:
 * `max(1, floor(q/100·m))`, evaluated in float64 as the reference does.
 */
export function worstCountImage(q: number, m: number): number {
  return Math.max(1, Math.trunc((q / 100) * m));
}

/**
 * How many of a class's `m` values the class-level q-worst mean takes:
 * `max(1, floor(q/100·m))`, with the product evaluated in float32 as the reference does
 * (a Python float times an integer tensor).
 */
export function worstCountClass(q: number, m: number): number {
  return Math.max(1, Math.trunc(Math.fround(Math.fround(q / 100) * Math.fround(m))));
}

/** The q values averaged by the `…Q` metrics: 10, 20, …, 100. */
export const Q_SWEEP: readonly number[] = [10, 20, 30, 40, 50, 60, 70, 80, 90, 100];
