// Hand-written SVG charts for the report: line charts (curves over steps), horizontal grouped bars (per-class
// IoU) and a heat map (confusion matrix). Each returns a self-contained <svg> string; the data marks carry
// classes (`series`, `point`, `bar`, `cell`) and <title> tooltips. All text is escaped.
import { esc, num, truncate } from './format.js';

export interface Point {
  step: number;
  value: number;
}

export interface LineSeries {
  label: string;
  color: string;
  /** SVG stroke-dasharray, e.g. '5 3'; solid when absent. */
  dash?: string;
  points: Point[];
  /** Draw a marker at every point (default: when there are at most 40 points). */
  markers?: boolean;
}

/** About `count` round tick values covering [min, max]. */
function niceTicks(min: number, max: number, count = 5): number[] {
  if (!Number.isFinite(min) || !Number.isFinite(max)) return [0, 1];
  if (max === min) {
    const pad = Math.abs(max) > 0 ? Math.abs(max) * 0.1 : 1;
    min -= pad;
    max += pad;
  }
  const raw = (max - min) / Math.max(1, count);
  const mag = 10 ** Math.floor(Math.log10(raw));
  const norm = raw / mag;
  const step = (norm >= 5 ? 10 : norm >= 2 ? 5 : norm >= 1 ? 2 : 1) * mag;
  const start = Math.floor(min / step + 1e-9) * step;
  const ticks: number[] = [];
  for (let v = start; v <= max + step * 0.5 && ticks.length < 50; v += step) ticks.push(Number(v.toPrecision(12)));
  if (ticks[ticks.length - 1]! < max) ticks.push(Number((ticks[ticks.length - 1]! + step).toPrecision(12)));
  return ticks;
}

function tickLabel(v: number): string {
  const a = Math.abs(v);
  if (a !== 0 && (a < 1e-3 || a >= 1e6)) return v.toExponential(1);
  return Number(v.toPrecision(4)).toString();
}

/** A line chart of series over training steps; an empty-state message when no series has points. */
export function lineChart(options: { title: string; series: LineSeries[]; yLabel?: string; width?: number; height?: number; yMin?: number; yMax?: number }): string {
  const width = options.width ?? 520;
  const height = options.height ?? 260;
  const m = { top: 12, right: 16, bottom: 40, left: 56 };
  const series = options.series.filter((s) => s.points.length > 0);
  const label = esc(options.title);
  if (series.length === 0) {
    return `<svg class="chart empty" role="img" aria-label="${label}" viewBox="0 0 ${width} ${height}" width="${width}" height="${height}"><text x="${width / 2}" y="${height / 2}" text-anchor="middle" class="muted">no data</text></svg>`;
  }
  const all = series.flatMap((s) => s.points);
  let xMin = Math.min(...all.map((p) => p.step));
  let xMax = Math.max(...all.map((p) => p.step));
  if (xMin === xMax) {
    xMin = Math.max(0, xMin - 1);
    xMax = xMax + 1;
  }
  const yTicks = niceTicks(options.yMin ?? Math.min(...all.map((p) => p.value)), options.yMax ?? Math.max(...all.map((p) => p.value)));
  const yLo = yTicks[0]!, yHi = yTicks[yTicks.length - 1]!;
  const xTicks = niceTicks(xMin, xMax, 6).filter((t) => t >= xMin && t <= xMax);
  const pw = width - m.left - m.right, ph = height - m.top - m.bottom;
  const sx = (x: number) => m.left + ((x - xMin) / (xMax - xMin)) * pw;
  const sy = (y: number) => m.top + ph - ((y - yLo) / (yHi - yLo || 1)) * ph;
  const parts: string[] = [];
  parts.push(`<svg class="chart line-chart" role="img" aria-label="${label}" viewBox="0 0 ${width} ${height}" width="${width}" height="${height}">`);
  for (const t of yTicks) {
    parts.push(`<line class="grid" x1="${m.left}" x2="${m.left + pw}" y1="${num(sy(t))}" y2="${num(sy(t))}"/>`);
    parts.push(`<text class="tick" x="${m.left - 6}" y="${num(sy(t) + 4)}" text-anchor="end">${esc(tickLabel(t))}</text>`);
  }
  for (const t of xTicks) {
    parts.push(`<line class="axis-tick" x1="${num(sx(t))}" x2="${num(sx(t))}" y1="${m.top + ph}" y2="${m.top + ph + 4}"/>`);
    parts.push(`<text class="tick" x="${num(sx(t))}" y="${m.top + ph + 16}" text-anchor="middle">${esc(tickLabel(t))}</text>`);
  }
  parts.push(`<line class="axis" x1="${m.left}" x2="${m.left + pw}" y1="${m.top + ph}" y2="${m.top + ph}"/>`);
  parts.push(`<line class="axis" x1="${m.left}" x2="${m.left}" y1="${m.top}" y2="${m.top + ph}"/>`);
  parts.push(`<text class="axis-label" x="${m.left + pw / 2}" y="${height - 6}" text-anchor="middle">step</text>`);
  if (options.yLabel) {
    parts.push(`<text class="axis-label" transform="translate(14 ${m.top + ph / 2}) rotate(-90)" text-anchor="middle">${esc(options.yLabel)}</text>`);
  }
  for (const s of series) {
    const pts = [...s.points].sort((a, b) => a.step - b.step);
    const d = pts.map((p, i) => `${i === 0 ? 'M' : 'L'}${num(sx(p.step))} ${num(sy(p.value))}`).join(' ');
    const dash = s.dash ? ` stroke-dasharray="${esc(s.dash)}"` : '';
    parts.push(`<path class="series" d="${d}" stroke="${esc(s.color)}"${dash}><title>${esc(s.label)}</title></path>`);
    if (s.markers ?? pts.length <= 40) {
      for (const p of pts) {
        parts.push(`<circle class="point" cx="${num(sx(p.step))}" cy="${num(sy(p.value))}" r="3" fill="${esc(s.color)}"><title>${esc(`${s.label} @ step ${p.step}: ${tickLabel(p.value)}`)}</title></circle>`);
      }
    }
  }
  parts.push('</svg>');
  return parts.join('');
}

/** The HTML legend of a line chart (a short line sample in each series' colour and dash). */
export function lineLegend(series: LineSeries[]): string {
  const items = series.filter((s) => s.points.length > 0).map((s) => {
    const dash = s.dash ? ` stroke-dasharray="${esc(s.dash)}"` : '';
    return `<li><svg class="key" width="26" height="10" aria-hidden="true"><line x1="1" x2="25" y1="5" y2="5" stroke="${esc(s.color)}" stroke-width="2.5"${dash}/></svg>${esc(s.label)}</li>`;
  });
  return items.length ? `<ul class="legend">${items.join('')}</ul>` : '';
}

export interface BarGroup {
  label: string;
  /** One value per bar series (null: not defined, drawn as "n/a"). */
  values: (number | null)[];
}

/** Horizontal grouped bars: one row per group (class), one bar per series (run), values 0..`max`. */
export function groupedBarChart(options: { title: string; groups: BarGroup[]; series: { label: string; color: string }[]; max?: number; width?: number; unit?: string }): string {
  const width = options.width ?? 640;
  const nSeries = Math.max(1, options.series.length);
  const barH = 13, gap = 2, groupGap = 10;
  const groupH = nSeries * (barH + gap) - gap;
  const m = { top: 8, right: 60, bottom: 28, left: 130 };
  const height = m.top + m.bottom + options.groups.length * (groupH + groupGap);
  const max = options.max ?? 100;
  const pw = width - m.left - m.right;
  const sx = (v: number) => m.left + (Math.max(0, Math.min(max, v)) / max) * pw;
  const unit = options.unit ?? '';
  const parts: string[] = [];
  parts.push(`<svg class="chart bar-chart" role="img" aria-label="${esc(options.title)}" viewBox="0 0 ${width} ${height}" width="${width}" height="${height}">`);
  const plotBottom = height - m.bottom;
  for (const t of niceTicks(0, max, 5).filter((t) => t <= max)) {
    parts.push(`<line class="grid" x1="${num(sx(t))}" x2="${num(sx(t))}" y1="${m.top}" y2="${plotBottom}"/>`);
    parts.push(`<text class="tick" x="${num(sx(t))}" y="${plotBottom + 14}" text-anchor="middle">${esc(tickLabel(t))}</text>`);
  }
  options.groups.forEach((g, gi) => {
    const y0 = m.top + gi * (groupH + groupGap);
    parts.push(`<text class="group-label" x="${m.left - 8}" y="${num(y0 + groupH / 2 + 4)}" text-anchor="end">${esc(truncate(g.label, 18))}<title>${esc(g.label)}</title></text>`);
    options.series.forEach((s, si) => {
      const v = g.values[si];
      const y = y0 + si * (barH + gap);
      if (v === null || v === undefined || !Number.isFinite(v)) {
        parts.push(`<text class="na" x="${m.left + 4}" y="${num(y + barH - 3)}">n/a<title>${esc(`${g.label} — ${s.label}: not defined (class absent)`)}</title></text>`);
        return;
      }
      const w = Math.max(0.5, sx(v) - m.left);
      parts.push(`<rect class="bar" x="${m.left}" y="${num(y)}" width="${num(w)}" height="${barH}" fill="${esc(s.color)}"><title>${esc(`${g.label} — ${s.label}: ${v.toFixed(2)}${unit}`)}</title></rect>`);
      parts.push(`<text class="value" x="${num(m.left + w + 4)}" y="${num(y + barH - 3)}">${esc(v.toFixed(1))}</text>`);
    });
  });
  parts.push(`<line class="axis" x1="${m.left}" x2="${m.left}" y1="${m.top}" y2="${plotBottom}"/>`);
  parts.push('</svg>');
  return parts.join('');
}

/** White → blue for 0..1. */
function heatColor(v: number): string {
  const t = Math.max(0, Math.min(1, v));
  const lo = [247, 251, 255], hi = [8, 69, 148];
  const c = lo.map((l, i) => Math.round(l + (hi[i]! - l) * Math.sqrt(t)));
  return `rgb(${c[0]},${c[1]},${c[2]})`;
}

/**
 * A row-normalised confusion matrix heat map: rows = ground truth, columns = prediction; each cell's
 * colour and label is the share of the row's pixels, the tooltip also gives the pixel count.
 */
export function confusionHeatmap(options: { title: string; confusion: number[][]; classes: string[] }): string {
  const n = options.confusion.length;
  const cell = Math.max(8, Math.min(40, Math.floor(440 / Math.max(1, n))));
  const labelChars = 14;
  const m = { top: 92, right: 12, bottom: 12, left: 108 };
  const width = m.left + n * cell + m.right;
  const height = m.top + n * cell + m.bottom;
  const showText = cell >= 26;
  const name = (i: number) => options.classes[i] ?? `class ${i}`;
  const parts: string[] = [];
  parts.push(`<svg class="chart heatmap" role="img" aria-label="${esc(options.title)}" viewBox="0 0 ${width} ${height}" width="${width}" height="${height}">`);
  parts.push(`<text class="axis-label" x="${m.left + (n * cell) / 2}" y="12" text-anchor="middle">predicted</text>`);
  parts.push(`<text class="axis-label" transform="translate(12 ${m.top + (n * cell) / 2}) rotate(-90)" text-anchor="middle">ground truth</text>`);
  for (let j = 0; j < n; j++) {
    const x = m.left + j * cell + cell / 2;
    parts.push(`<text class="tick" transform="translate(${num(x + 4)} ${m.top - 6}) rotate(-55)">${esc(truncate(name(j), labelChars))}<title>${esc(name(j))}</title></text>`);
  }
  for (let i = 0; i < n; i++) {
    const row = options.confusion[i] ?? [];
    const total = row.reduce((a, b) => a + b, 0);
    const y = m.top + i * cell;
    parts.push(`<text class="tick" x="${m.left - 6}" y="${num(y + cell / 2 + 4)}" text-anchor="end">${esc(truncate(name(i), labelChars))}<title>${esc(name(i))}</title></text>`);
    for (let j = 0; j < n; j++) {
      const count = row[j] ?? 0;
      const share = total > 0 ? count / total : 0;
      const tip = total > 0 ? `${name(i)} → ${name(j)}: ${(share * 100).toFixed(1)}% of ${name(i)} pixels (${count} px)` : `${name(i)}: no ground-truth pixels`;
      parts.push(`<rect class="cell" x="${m.left + j * cell}" y="${y}" width="${cell}" height="${cell}" fill="${total > 0 ? heatColor(share) : '#eeeeee'}"><title>${esc(tip)}</title></rect>`);
      if (showText && total > 0) {
        parts.push(`<text class="cell-text${share > 0.45 ? ' dark' : ''}" x="${m.left + j * cell + cell / 2}" y="${num(y + cell / 2 + 4)}" text-anchor="middle">${esc((share * 100).toFixed(0))}</text>`);
      }
    }
  }
  parts.push(`<rect class="frame" x="${m.left}" y="${m.top}" width="${n * cell}" height="${n * cell}"/>`);
  parts.push('</svg>');
  return parts.join('');
}
