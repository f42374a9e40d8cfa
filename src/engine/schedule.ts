/** Learning-rate schedule: linear warm-up, then polynomial decay to zero (the segmentation standard). */
export interface ScheduleConfig {
  /** Peak learning rate. */
  lr: number;
  totalSteps: number;
  /** Steps of linear warm-up from `warmupRatio·lr` to `lr` (default 5% of the run, at most 1000). */
  warmupSteps?: number;
  warmupRatio?: number;
  /** Exponent of the poly decay (default 0.9). */
  power?: number;
}

/** Learning rate for step `step` (0-based). */
export function learningRateAt(step: number, c: ScheduleConfig): number {
  const warmup = c.warmupSteps ?? Math.min(1000, Math.floor(0.05 * c.totalSteps));
  const ratio = c.warmupRatio ?? 0.1;
  if (step < warmup) return c.lr * (ratio + ((1 - ratio) * step) / warmup);
  const progress = Math.min(1, (step - warmup) / Math.max(1, c.totalSteps - warmup));
  return c.lr * Math.pow(1 - progress, c.power ?? 0.9);
}
