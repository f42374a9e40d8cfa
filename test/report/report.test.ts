// `softseg report`: the HTML of a real (tiny) training run and a distilled-style student that names it as its
// teacher; self-containment and escaping; errors that name the file; and the page in a real headless Chromium
// (no console errors, charts and decoded sample images present, a screenshot in test-artifacts/report.png).
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { createModel } from '../../src/models/registry.js';
import { initBackend } from '../../src/backends/select.js';
import { generateShapesDataset } from '../../src/data/synthetic.js';
import { saveRunModel } from '../../src/engine/trainer.js';
import { SoftsegError } from '../../src/errors.js';
import { TRAIN_DEFAULTS, trainSupervised } from '../../src/recipes/supervised.js';
import { buildReport, esc, readMetricsLog, spreadIndices, uniqueRunNames } from '../../src/report/index.js';
import { repoRoot } from '../helpers/backend.js';
import { requireChromium } from '../helpers/system-deps.js';

const exec = promisify(execFile);
const CLASSES = ['background', 'circle', 'square', 'triangle'];
let root = '';
let teacherRun = '';
let studentRun = '';
let val = '';
let reportPath = '';

/** The HTML of one section of the page (assertions on it print less than on the whole page). */
function section(html: string, id: string): string {
  const start = html.indexOf(`<section id="${id}">`);
  assert.ok(start >= 0, `section ${id} missing`);
  return html.slice(start, html.indexOf('</section>', start));
}

before(async () => {
  const backend = await initBackend({ backend: 'wasm' });
  root = await mkdtemp(join(tmpdir(), 'softseg-report-'));
  await generateShapesDataset(join(root, 'shapes'), { splits: { train: 8, val: 4 }, size: 32, numClasses: CLASSES.length, seed: 7 });
  val = join(root, 'shapes', 'val');

  // A real run: 6 steps of `train` with validation every 3 (metrics.jsonl, config.json, model/, best/).
  teacherRun = join(root, 'big-run');
  await trainSupervised(
    { ...TRAIN_DEFAULTS, data: join(root, 'shapes', 'train'), val, model: 'mobile-unet', out: teacherRun, steps: 6, batchSize: 4, crop: 32, evalEvery: 3, checkpointEvery: 100, augment: 'none' },
    { backend, version: 'test' },
  );

  // A student saved directly, naming the run above as its teacher; its folder name needs escaping in HTML.
  studentRun = join(root, 'student <b>&"kd"');
  const student = createModel('mobile-unet', { numClasses: CLASSES.length, width: 0.5, seed: 3 });
  try {
    await saveRunModel(student, join(studentRun, 'model'), {
      format: 'softseg-model', formatVersion: 1, architecture: 'mobile-unet', modelOptions: { numClasses: CLASSES.length, width: 0.5, aux: false },
      classes: CLASSES, numClasses: CLASSES.length, ignoreIndex: 255, step: 4, teacher: { dir: teacherRun, kind: 'tfjs' },
    });
  } finally {
    student.dispose();
  }
  await writeFile(join(studentRun, 'config.json'), JSON.stringify({ data: join(root, 'shapes', 'train'), val, model: 'mobile-unet', width: 0.5 }));
  const lines = [];
  for (let step = 1; step <= 4; step++) {
    lines.push({ type: 'train', step, loss: 1.5 - step * 0.1, ce_main: 1.2 - step * 0.1, jml_main: 0.9, kd_teacher: 0.5 / step, lr: 1e-3, imagesPerSec: 20 + step });
    if (step % 2 === 0) lines.push({ type: 'eval', step, mIoUD: 10 * step, mIoUI: 12 * step, ECED: 30 / step });
  }
  await writeFile(join(studentRun, 'metrics.jsonl'), lines.map((l) => JSON.stringify({ time: 't', ...l })).join('\n') + '\n{"truncated');
});

test('buildReport writes one self-contained page with every section', async () => {
  reportPath = join(root, 'out', 'report.html');
  const t0 = Date.now();
  const result = await buildReport([studentRun, teacherRun], { out: reportPath, samples: 3 });
  assert.ok(Date.now() - t0 < 20_000);
  assert.equal(result.path, reportPath);
  assert.deepEqual(result.runs, ['student <b>&"kd"', 'big-run']);
  const html = await readFile(reportPath, 'utf8');
  assert.equal(result.bytes, Buffer.byteLength(html));
  assert.ok(result.bytes < 400_000, `report is ${result.bytes} bytes`);

  // Self-contained: no http(s) or protocol-relative references, images only as data: URIs, a CSP that forbids fetching.
  assert.deepEqual(html.match(/https?:\/\/[^"'\s<]*/g), null, 'no http(s) references');
  assert.ok(!/(src|href)="\/\//.test(html), 'no protocol-relative references');
  assert.ok(!/<script|<link /i.test(html), 'no scripts or linked resources');
  for (const [, src] of html.matchAll(/<img[^>]*\ssrc="([^"]*)"/g)) assert.match(src!, /^data:image\/(png|jpeg);base64,/);
  assert.ok(html.includes(`Content-Security-Policy" content="default-src 'none'`));

  for (const id of ['summary', 'curves', 'per-class', 'confusion', 'samples']) section(html, id);
  assert.ok(html.includes('class="chart line-chart"'));
  assert.ok((html.match(/<path class="series"/g) ?? []).length >= 5, 'loss, mIoU, mIoU^I and ECE curves');
  assert.equal((html.match(/<rect class="bar"/g) ?? []).length + (html.match(/<text class="na"/g) ?? []).length, CLASSES.length * 2, 'one bar per class and run');
  assert.equal((html.match(/<rect class="cell"/g) ?? []).length, CLASSES.length ** 2 * 2, 'a confusion matrix per run');
  // Sample grid: 3 rows × (image, ground truth, teacher, 2 students).
  assert.equal((html.match(/<img /g) ?? []).length, 3 * 5);
  assert.match(section(html, 'samples'), /<th scope="col"[^>]*>teacher: big-run<\/th>/);
  for (const name of CLASSES) assert.ok(section(html, 'samples').includes(`</span>${name}</li>`), `legend entry ${name}`);
  assert.ok(section(html, 'curves').includes('kd_teacher'), 'loss components of the student');
  assert.ok(section(html, 'summary').includes('mobile-unet ×0.5'));
  assert.ok(section(html, 'summary').includes('1 unreadable line(s) of metrics.jsonl skipped'));

  // Escaping: the odd folder name appears only escaped.
  assert.ok(!html.includes('<b>&"kd"'));
  assert.ok(html.includes(esc('student <b>&"kd"')));
});

test('without a teacher the column is left out with a note; --data and best/ are honoured', async () => {
  const out = join(root, 'out', 'teacher-only.html');
  await buildReport([teacherRun], { out, data: val, samples: 2, which: 'best' });
  const html = await readFile(out, 'utf8');
  assert.ok(html.includes('No run names a teacher model'));
  assert.ok(!/<th scope="col"[^>]*>teacher/.test(section(html, 'samples')), 'no teacher column');
  assert.equal((html.match(/<img /g) ?? []).length, 2 * 3);
  assert.ok(html.includes('models from best/'));
});

test('a teacher that cannot be opened is a note, not a failure', async () => {
  const run = join(root, 'orphan');
  await mkdir(run, { recursive: true });
  const metaFile = join(studentRun, 'model', 'softseg.json');
  const meta = JSON.parse(await readFile(metaFile, 'utf8'));
  await mkdir(join(run, 'model'), { recursive: true });
  for (const f of ['model.json', 'weights.bin']) await writeFile(join(run, 'model', f), await readFile(join(studentRun, 'model', f)));
  await writeFile(join(run, 'model', 'softseg.json'), JSON.stringify({ ...meta, teacher: 'no/such/teacher' }));
  const out = join(root, 'out', 'orphan.html');
  await buildReport([run], { out, data: val, samples: 1 });
  const html = await readFile(out, 'utf8');
  assert.ok(html.includes('The teacher no/such/teacher named by orphan was not found'));
  assert.ok(html.includes('no metrics.jsonl: no curves'));
});

test('user errors are SoftsegErrors naming the file', async () => {
  await assert.rejects(buildReport([join(root, 'missing')], { out: join(root, 'x.html') }), (e: unknown) => e instanceof SoftsegError && e.file === join(root, 'missing'));
  const empty = join(root, 'empty-run');
  await mkdir(empty, { recursive: true });
  await assert.rejects(buildReport([empty], { out: join(root, 'x.html') }), (e: unknown) => e instanceof SoftsegError && /not a softseg run directory/.test(e.message));
  const bad = join(root, 'bad-config');
  await mkdir(bad, { recursive: true });
  await writeFile(join(bad, 'metrics.jsonl'), '');
  await writeFile(join(bad, 'config.json'), '{ nope');
  await assert.rejects(buildReport([bad], { out: join(root, 'x.html') }), (e: unknown) => e instanceof SoftsegError && e.file === join(bad, 'config.json'));
  await assert.rejects(buildReport([teacherRun], { out: join(root, 'x.html'), data: join(root, 'nowhere') }), (e: unknown) => e instanceof SoftsegError && e.file === join(root, 'nowhere'));
});

test('helpers: metrics log, run names, sample spread', async () => {
  const log = await readMetricsLog(join(studentRun, 'metrics.jsonl'));
  assert.deepEqual(log!.train.loss!.map((p) => p.step), [1, 2, 3, 4]);
  assert.deepEqual(log!.eval.mIoUD, [{ step: 2, value: 20 }, { step: 4, value: 40 }]);
  assert.equal(log!.skipped, 1);
  assert.equal(await readMetricsLog(join(root, 'none.jsonl')), null);
  assert.deepEqual(uniqueRunNames(['/a/x/run', '/b/y/run', '/c/other']), ['x/run', 'y/run', 'other']);
  assert.deepEqual(spreadIndices(8, 3), [0, 2, 5]);
  assert.deepEqual(spreadIndices(2, 6), [0, 1]);
});

test('softseg report (the CLI) writes the page and answers --json', async () => {
  const bin = join(repoRoot, 'bin/run.js');
  if (!existsSync(join(repoRoot, 'dist/commands/report.js'))) {
    assert.fail('dist/commands/report.js is missing: run `npm run build` first (npm test does)');
  }
  const out = join(root, 'out', 'cli.html');
  const { stdout } = await exec(process.execPath, [bin, 'report', teacherRun, '--out', out, '--samples', '1', '--json'], { cwd: repoRoot, env: { ...process.env, SOFTSEG_BACKEND: 'wasm' } });
  const result = JSON.parse(stdout);
  assert.equal(result.path, out);
  assert.deepEqual(result.runs, ['big-run']);
  assert.ok(existsSync(out));
});

test('the page renders in headless Chromium: no console errors, charts and decoded images', async (t) => {
  assert.ok(reportPath && existsSync(reportPath), 'the first test wrote the report');
  const browserBin = requireChromium();
  if ('skip' in browserBin) return t.skip(browserBin.skip);
  const { path } = browserBin;
  const { chromium } = await import('playwright-core');
  const browser = await chromium.launch({
    executablePath: path,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  try {
    const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    const problems: string[] = [];
    page.on('console', (m) => {
      if (m.type() === 'error' || m.type() === 'warning') problems.push(`console ${m.type()}: ${m.text()}`);
    });
    page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
    page.on('request', (r) => {
      if (!/^(file|data):/.test(r.url())) problems.push(`network request: ${r.url()}`);
    });
    await page.goto(`file://${reportPath}`, { waitUntil: 'load' });
    const counts = (await page.evaluate(`(() => {
      const imgs = [...document.querySelectorAll('table.samples img')];
      const box = (sel) => { const el = document.querySelector(sel); const r = el ? el.getBoundingClientRect() : null; return r ? [r.width, r.height] : null; };
      return {
        charts: document.querySelectorAll('svg.chart').length,
        series: document.querySelectorAll('svg.line-chart path.series').length,
        bars: document.querySelectorAll('svg.bar-chart rect.bar').length,
        cells: document.querySelectorAll('svg.heatmap rect.cell').length,
        images: imgs.length,
        decoded: imgs.filter((i) => i.complete && i.naturalWidth > 0).length,
        legend: document.querySelectorAll('ul.legend.classes li').length,
        chartBox: box('svg.line-chart'),
        overflowX: document.documentElement.scrollWidth > window.innerWidth,
      };
    })()`)) as { charts: number; series: number; bars: number; cells: number; images: number; decoded: number; legend: number; chartBox: [number, number] | null; overflowX: boolean };
    await mkdir(join(repoRoot, 'test-artifacts'), { recursive: true });
    await page.screenshot({ path: join(repoRoot, 'test-artifacts', 'report.png'), fullPage: true });
    assert.deepEqual(problems, []);
    assert.ok(counts.charts >= 6, `charts: ${counts.charts}`);
    assert.ok(counts.series >= 5, `curves: ${counts.series}`);
    assert.ok(counts.bars >= 1, `bars: ${counts.bars}`);
    assert.equal(counts.cells, CLASSES.length ** 2 * 2);
    assert.equal(counts.images, 15);
    assert.equal(counts.decoded, counts.images, 'every sample image decoded');
    assert.equal(counts.legend, CLASSES.length);
    assert.ok(counts.chartBox && counts.chartBox[0] > 200 && counts.chartBox[1] > 100, `line chart laid out at ${counts.chartBox}`);
    assert.equal(counts.overflowX, false, 'no horizontal scrolling at 1280 px');
  } finally {
    await browser.close();
  }
});
