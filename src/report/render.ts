/**
 * Rendering of the run report: turns {@link ReportData} into one self-contained HTML page (inline CSS, inline
 * SVG charts, images as data: URIs, no script, a Content-Security-Policy that forbids any network access).
 * Pure: no file system, no TensorFlow.js. Every inserted text goes through esc().
 */
import { esc, fmt, fmtCount } from './format.js';
import type { ReportData, RunData } from './gather.js';
import { confusionHeatmap, groupedBarChart, lineChart, lineLegend, type LineSeries } from './svg.js';

/** Colours of the runs (curves, bars), in order. */
const RUN_COLORS = ['#1f77b4', '#d62728', '#2ca02c', '#ff7f0e', '#9467bd', '#8c564b', '#e377c2', '#17becf', '#7f7f7f', '#bcbd22'];
/** Colours of the loss components when a single run is shown. */
const PART_COLORS = ['#222222', '#1f77b4', '#ff7f0e', '#2ca02c', '#d62728', '#9467bd', '#8c564b', '#e377c2', '#17becf', '#bcbd22'];
const DASHES = [undefined, '6 3', '2 3', '8 3 2 3'];

const CHART_W = 356;
const CHART_H = 240;

const METRIC_LABELS: Record<string, string> = { mIoUD: 'mIoU', mIoUI: 'mIoU^I', ECED: 'ECE' };

export interface RenderOptions {
  title?: string;
}

const runColor = (i: number) => RUN_COLORS[i % RUN_COLORS.length]!;

function lossKeys(run: RunData): string[] {
  return Object.keys(run.train).sort((a, b) => (a === 'loss' ? -1 : b === 'loss' ? 1 : 0));
}

/** One run's total loss (solid) and its components (dashed), a colour each. */
function componentSeries(run: RunData): LineSeries[] {
  return lossKeys(run)
    .filter((k) => run.train[k]!.length)
    .map((k, ki) => ({ label: k, color: PART_COLORS[ki % PART_COLORS.length]!, dash: k === 'loss' ? undefined : '5 3', points: run.train[k]! }));
}

/** The total training loss of each run, a colour per run. */
function totalLossSeries(runs: RunData[]): LineSeries[] {
  return runs.flatMap((r, ri) => (r.train.loss?.length ? [{ label: r.name, color: runColor(ri), points: r.train.loss }] : []));
}

function metricSeries(runs: RunData[], keys: string[]): LineSeries[] {
  const series: LineSeries[] = [];
  runs.forEach((r, ri) => {
    keys.forEach((k, ki) => {
      const points = r.eval[k];
      if (!points?.length) return;
      const label = METRIC_LABELS[k] ?? k;
      series.push({ label: runs.length === 1 ? label : `${r.name} — ${label}`, color: runColor(ri), dash: DASHES[ki % DASHES.length], points, markers: true });
    });
  });
  return series;
}

/** A card holding a chart, sized to the chart so that its caption and legend wrap to the chart's width. */
function figure(title: string, chart: string, legend = '', caption = ''): string {
  const width = /^<svg[^>]*\swidth="(\d+)"/.exec(chart)?.[1];
  const style = width ? ` style="width:${Number(width) + 26}px"` : '';
  return `<figure class="card"${style}><figcaption><strong>${esc(title)}</strong>${caption ? ` <span class="muted">${esc(caption)}</span>` : ''}</figcaption>${chart}${legend}</figure>`;
}

function note(text: string): string {
  return `<p class="note">${esc(text)}</p>`;
}

function summaryTable(data: ReportData): string {
  const head = ['run', 'model', 'params', 'steps', 'final mIoU', 'best mIoU (step)', 'final mIoU^I', 'final ECE', 'img/s', data.valDir ? 'mIoU here' : null, 'teacher'].filter((h): h is string => h !== null);
  const rows = data.runs.map((r, i) => {
    const model = r.architecture ? `${r.architecture}${r.width !== null && r.width !== 1 ? ` ×${r.width}` : ''}` : '–';
    const best = r.summary.bestMIoU !== null ? `${fmt(r.summary.bestMIoU)} (${r.summary.bestStep})` : '–';
    const cells = [
      `<th scope="row"><span class="swatch run" style="background:${esc(runColor(i))}"></span>${esc(r.name)}<div class="path">${esc(r.dir)}</div></th>`,
      `<td class="nowrap">${esc(model)}</td>`,
      `<td class="num">${esc(fmtCount(r.params))}</td>`,
      `<td class="num">${esc(r.steps ?? '–')}</td>`,
      `<td class="num">${esc(fmt(r.summary.finalMIoU))}</td>`,
      `<td class="num">${esc(best)}</td>`,
      `<td class="num">${esc(fmt(r.summary.finalMIoUI))}</td>`,
      `<td class="num">${esc(fmt(r.summary.finalECE))}</td>`,
      `<td class="num">${esc(fmt(r.summary.imagesPerSec, 1))}</td>`,
    ];
    if (data.valDir) cells.push(`<td class="num">${esc(fmt(r.evaluation?.mIoUD))}</td>`);
    cells.push(`<td>${r.teacher ? `<span class="path">${esc(r.teacher)}</span>` : '–'}</td>`);
    const notes = r.notes.length ? `<tr class="run-notes"><td colspan="${head.length}">${esc(r.name)}: ${esc(r.notes.join('; '))}</td></tr>` : '';
    return `<tr>${cells.join('')}</tr>${notes}`;
  });
  const explain = `Final and best values are the validation scores logged during training (metrics.jsonl, mIoU = dataset mIoU, mIoU^I = mean per-image mIoU, ECE = expected calibration error, all in %); img/s is the median training throughput.${data.valDir ? ` “mIoU here” scores each run’s ${data.which === 'best' ? 'best/' : 'model/'} model on the report’s validation set.` : ''}`;
  return `<div class="table-wrap"><table class="summary"><thead><tr>${head.map((h) => `<th scope="col">${esc(h)}</th>`).join('')}</tr></thead><tbody>${rows.join('')}</tbody></table></div><p class="muted small">${esc(explain)}</p>`;
}

function curvesSection(data: ReportData): string {
  const miou = metricSeries(data.runs, ['mIoUD', 'mIoUI']);
  const ece = metricSeries(data.runs, ['ECED']);
  const size = { width: CHART_W, height: CHART_H };
  const figures: string[] = [];
  if (data.runs.length === 1) {
    const parts = componentSeries(data.runs[0]!);
    figures.push(figure('Training loss', lineChart({ title: 'Training loss', series: parts, yLabel: 'loss', ...size }), lineLegend(parts), 'total (solid) and components (dashed)'));
  } else {
    const totals = totalLossSeries(data.runs);
    figures.push(figure('Training loss', lineChart({ title: 'Training loss', series: totals, yLabel: 'loss', ...size }), lineLegend(totals), 'total loss of each run'));
  }
  figures.push(figure('Validation mIoU', lineChart({ title: 'Validation mIoU', series: miou, yLabel: '%', ...size }), lineLegend(miou), 'solid: mIoU (dataset), dashed: mIoU^I (per image)'));
  figures.push(figure('Validation ECE', lineChart({ title: 'Validation ECE', series: ece, yLabel: '%', yMin: 0, ...size }), lineLegend(ece), 'expected calibration error, lower is better'));
  if (data.runs.length > 1) {
    for (const r of data.runs) {
      const parts = componentSeries(r);
      if (parts.length > 1) figures.push(figure(`Loss components: ${r.name}`, lineChart({ title: `Loss components of ${r.name}`, series: parts, yLabel: 'loss', ...size }), lineLegend(parts), 'total (solid) and components (dashed)'));
    }
  }
  if (!data.runs.some((r) => Object.keys(r.train).length || Object.keys(r.eval).length)) return note('No run has a metrics.jsonl with training or validation records.');
  return `<div class="grid">${figures.join('')}</div>`;
}

function perClassSection(data: ReportData): string {
  const scored = data.runs.map((r, i) => ({ r, i })).filter(({ r }) => r.evaluation);
  if (!scored.length) return note('No run was scored on a validation set (see the notes above).');
  const groups = data.classes.map((label, c) => ({ label, values: scored.map(({ r }) => r.evaluation!.perClassIoU[c] ?? null) }));
  const series = scored.map(({ r, i }) => ({ label: r.name, color: runColor(i) }));
  const legend = `<ul class="legend">${series.map((s) => `<li><span class="swatch run" style="background:${esc(s.color)}"></span>${esc(s.label)}</li>`).join('')}</ul>`;
  return `<div class="grid">${figure('IoU per class (%)', groupedBarChart({ title: 'IoU per class', groups, series, max: 100, unit: '%' }), legend, `on ${scored[0]!.r.evaluation!.numImages} validation images; n/a: class absent from both ground truth and predictions`)}</div>`;
}

function confusionSection(data: ReportData): string {
  const scored = data.runs.filter((r) => r.evaluation);
  if (!scored.length) return note('No run was scored on a validation set.');
  return `<p class="muted small">Rows are ground truth, columns predictions; each row is normalised to 100% of that class’s pixels (hover a cell for the pixel count).</p><div class="grid">${scored
    .map((r) => figure(r.name, confusionHeatmap({ title: `Confusion matrix of ${r.name}`, confusion: r.evaluation!.confusion, classes: data.classes })))
    .join('')}</div>`;
}

function classLegend(data: ReportData): string {
  const items = data.classes.map((name, c) => {
    const [r, g, b] = data.palette[c] ?? [0, 0, 0];
    return `<li><span class="swatch" style="background:rgb(${r},${g},${b})"></span>${esc(name)}</li>`;
  });
  if (data.showsIgnore) {
    const [r, g, b] = data.palette[data.ignoreIndex] ?? [0, 0, 0];
    items.push(`<li><span class="swatch" style="background:rgb(${r},${g},${b})"></span><em>ignored (${esc(data.ignoreIndex)})</em></li>`);
  }
  return `<ul class="legend classes" aria-label="class colours">${items.join('')}</ul>`;
}

function samplesSection(data: ReportData): string {
  if (!data.samples.length) return note(data.valDir ? 'No samples were asked for (--samples 0).' : 'No validation set, so no samples.');
  const display = 168;
  const students = data.runs.filter((r) => r.predictions.length === data.samples.length);
  const head = ['image', 'ground truth', ...data.teachers.map((t) => t.label), ...students.map((r) => r.name)];
  const titles = ['', '', ...data.teachers.map((t) => `${t.dir} (teacher of ${t.runs.join(', ')})`), ...students.map((r) => r.modelDir ?? r.dir)];
  const img = (src: string, w: number, h: number, alt: string, mask: boolean) => {
    const scale = display / Math.max(w, h);
    // Small masks are scaled up with hard pixel edges; large ones are scaled down smoothly (no aliasing).
    const cls = mask ? (Math.max(w, h) < display ? 'mask upscaled' : 'mask') : 'photo';
    return `<img class="${cls}" src="${esc(src)}" width="${Math.round(w * scale)}" height="${Math.round(h * scale)}" alt="${esc(alt)}" title="${esc(alt)}">`;
  };
  const rows = data.samples.map((s, i) => {
    const cells = [
      img(s.image, s.width, s.height, `${s.id}: image`, false),
      img(s.groundTruth, s.width, s.height, `${s.id}: ground truth`, true),
      ...data.teachers.map((t) => img(t.predictions[i]!, s.width, s.height, `${s.id}: ${t.label}`, true)),
      ...students.map((r) => img(r.predictions[i]!, s.width, s.height, `${s.id}: ${r.name}`, true)),
    ];
    return `<tr><th scope="row" class="sample-id">${esc(s.id)}<div class="muted small">${esc(`${s.width}×${s.height}`)}</div></th>${cells.map((c) => `<td>${c}</td>`).join('')}</tr>`;
  });
  return `${classLegend(data)}<div class="table-wrap"><table class="samples"><thead><tr><th></th>${head
    .map((h, i) => `<th scope="col"${titles[i] ? ` title="${esc(titles[i])}"` : ''}>${esc(h)}</th>`)
    .join('')}</tr></thead><tbody>${rows.join('')}</tbody></table></div>`;
}

const CSS = `
:root{color-scheme:light;--fg:#1f2328;--muted:#59636e;--line:#d1d9e0;--bg:#ffffff;--card:#f6f8fa;--accent:#0969da}
*{box-sizing:border-box}
html{background:var(--bg);color:var(--fg)}
body{margin:0;font:15px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif}
header,main,footer{max-width:1240px;margin:0 auto;padding:0 24px}
header{padding-top:28px;padding-bottom:8px;border-bottom:1px solid var(--line)}
h1{font-size:1.7rem;margin:0 0 4px}
h2{font-size:1.25rem;margin:32px 0 12px;padding-bottom:4px;border-bottom:1px solid var(--line)}
nav a{color:var(--accent);text-decoration:none;margin-right:16px}
nav a:hover{text-decoration:underline}
.meta{color:var(--muted);margin:0 0 8px}
.muted{color:var(--muted)}
.small{font-size:.85rem}
.path{font:12px/1.4 ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;color:var(--muted);word-break:break-all}
.note{background:#fff8c5;border:1px solid #d4a72c66;border-radius:6px;padding:8px 12px;margin:8px 0}
.notes{padding:0;list-style:none}
.table-wrap{overflow-x:auto}
table{border-collapse:collapse}
table.summary{width:100%;font-size:.92rem}
table.summary th,table.summary td{padding:6px 10px;border-bottom:1px solid var(--line);text-align:left;vertical-align:top}
table.summary thead th{background:var(--card);font-weight:600;white-space:nowrap}
td.nowrap{white-space:nowrap}
td.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
tr.run-notes td{color:var(--muted);font-size:.85rem;border-bottom:1px solid var(--line)}
.grid{display:flex;flex-wrap:wrap;gap:16px;align-items:flex-start}
.card{margin:0;background:var(--bg);border:1px solid var(--line);border-radius:8px;padding:12px;max-width:100%}
.card svg{max-width:100%;height:auto;display:block}
figcaption{margin-bottom:6px}
.legend{list-style:none;padding:0;margin:8px 0 0;display:flex;flex-wrap:wrap;gap:4px 16px;font-size:.85rem}
.legend li{display:flex;align-items:center;gap:6px}
.legend.classes{margin:0 0 12px;font-size:.92rem}
.swatch{display:inline-block;width:14px;height:14px;border-radius:3px;border:1px solid #0003;flex:none}
.swatch.run{margin-right:6px;vertical-align:-2px}
svg.chart{font:11px system-ui,-apple-system,"Segoe UI",Roboto,Arial,sans-serif;fill:var(--fg)}
svg .grid{stroke:#e5e9ee;stroke-width:1}
svg .axis,svg .axis-tick{stroke:#8c959f;stroke-width:1}
svg .tick{fill:var(--muted)}
svg .axis-label{fill:var(--muted);font-size:12px}
svg .series{fill:none;stroke-width:2;stroke-linejoin:round;stroke-linecap:round}
svg .point{stroke:#fff;stroke-width:1}
svg .group-label{font-size:12px;fill:var(--fg)}
svg .value{font-size:10px;fill:var(--muted)}
svg .na{font-size:10px;fill:var(--muted);font-style:italic}
svg .cell{stroke:#fff;stroke-width:1}
svg .cell-text{font-size:10px;fill:#24292f}
svg .cell-text.dark{fill:#fff}
svg .frame{fill:none;stroke:#8c959f}
svg .muted{fill:var(--muted)}
table.samples{border-spacing:0}
table.samples th{font-weight:600;font-size:.88rem;padding:4px 6px;text-align:center;max-width:180px;overflow-wrap:anywhere}
table.samples td{padding:4px 6px}
table.samples th.sample-id{text-align:right;font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;font-weight:400;font-size:.8rem}
table.samples img{display:block;border-radius:4px;border:1px solid var(--line);background:#fff}
img.upscaled{image-rendering:pixelated}
img.photo{image-rendering:auto}
footer{color:var(--muted);font-size:.8rem;padding-top:24px;padding-bottom:32px}
`;

/** The report page as one HTML string. */
export function renderReport(data: ReportData, options: RenderOptions = {}): string {
  const title = options.title ?? (data.runs.length === 1 ? `softseg report: ${data.runs[0]!.name}` : `softseg report: ${data.runs.length} runs`);
  const when = data.generated.replace('T', ' ').replace(/\.\d+Z$/, ' UTC');
  const meta = [
    `${data.runs.length} run${data.runs.length === 1 ? '' : 's'}`,
    data.valDir ? `validation set ${data.valDir}` : 'no validation set',
    `models from ${data.which === 'best' ? 'best/' : 'model/'}`,
    `generated ${when}`,
  ];
  const notes = data.notes.length ? `<ul class="notes">${data.notes.map((n) => `<li>${note(n)}</li>`).join('')}</ul>` : '';
  const sections = [
    ['summary', 'Runs', summaryTable(data) + notes],
    ['curves', 'Training curves', curvesSection(data)],
    ['per-class', 'Per-class IoU', perClassSection(data)],
    ['confusion', 'Confusion matrices', confusionSection(data)],
    ['samples', 'Validation samples', samplesSection(data)],
  ] as const;
  return [
    '<!doctype html>',
    '<html lang="en">',
    '<head>',
    '<meta charset="utf-8">',
    '<meta name="viewport" content="width=device-width, initial-scale=1">',
    `<meta http-equiv="Content-Security-Policy" content="default-src 'none'; img-src data:; style-src 'unsafe-inline'">`,
    '<meta name="color-scheme" content="light">',
    `<title>${esc(title)}</title>`,
    `<style>${CSS}</style>`,
    '</head>',
    '<body>',
    `<header><h1>${esc(title)}</h1><p class="meta">${meta.map(esc).join(' · ')}</p><nav>${sections.map(([id, h]) => `<a href="#${id}">${esc(h)}</a>`).join('')}</nav></header>`,
    '<main>',
    ...sections.map(([id, h, body]) => `<section id="${id}"><h2>${esc(h)}</h2>${body}</section>`),
    '</main>',
    `<footer>Written by <code>softseg report</code>. Self-contained: open it anywhere, no network needed.</footer>`,
    '</body>',
    '</html>',
    '',
  ].join('\n');
}
