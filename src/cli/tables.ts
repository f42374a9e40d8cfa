/** Plain-text tables for terminal output (metrics summaries, per-class IoU). */
import type { MetricsResult } from '../metrics/segmentation-metrics.js';

export function table(rows: string[][], alignRight: boolean[] = []): string {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length)));
  return rows.map((r) => r.map((cell, i) => (alignRight[i] ? cell.padStart(widths[i]!) : cell.padEnd(widths[i]!))).join('  ').trimEnd()).join('\n');
}

const pct = (v: number | null | undefined): string => (v === null || v === undefined || Number.isNaN(v) ? '—' : v.toFixed(2));

/** The metrics a person reads first, then per-class IoU with class names. */
export function formatMetrics(m: MetricsResult, classNames: string[]): string {
  const q = m.q;
  const summary = table([
    ['metric', 'value'],
    ['mIoU (dataset)', pct(m.mIoUD)],
    ['mIoU^I (per image)', pct(m.mIoUI)],
    ['mIoU^C (per class)', pct(m.mIoUC)],
    [`mIoU^I worst ${q}%`, pct(m[`mIoUI${q}` as keyof MetricsResult] as number)],
    [`mIoU^C worst ${q}%`, pct(m[`mIoUC${q}` as keyof MetricsResult] as number)],
    ['pixel accuracy', pct(m.Acc)],
    ['mAcc', pct(m.mAccD)],
    ['mDice', pct(m.mDiceD)],
    ...(m.ECED !== undefined ? [['ECE (%)', pct(m.ECED)], ['ECE^I (%)', pct(m.ECEI)]] : []),
    ['images', `${m.numImages}`],
  ], [false, true]);
  const perClass = table([
    ['class', 'IoU', 'Acc'],
    ...m.perClassIoU.map((iou, c) => [`${c} ${classNames[c] ?? ''}`.trim(), pct(iou), pct(m.perClassAcc[c])]),
  ], [false, true, true]);
  return `${summary}\n\n${perClass}`;
}
