/**
 * `softseg demo`: the whole workflow on data it generates itself — train a teacher, label unlabeled images
 * into the cache, distill a student with JML-KD, train the same student with CE alone, evaluate all three,
 * write the HTML report. Every step runs the real CLI, and the commands are printed so they can be repeated
 * by hand on one's own data.
 */
import { spawn } from 'node:child_process';
import { existsSync, realpathSync } from 'node:fs';
import { mkdir, readFile } from 'node:fs/promises';
import { delimiter, dirname, isAbsolute, join, relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { generateShapesDataset } from '../data/synthetic.js';
import { SoftsegError } from '../errors.js';

export interface DemoOptions {
  out: string;
  /** A smaller, faster run (about a minute on 2 cores) for tests and a first look. */
  quick?: boolean;
  backend?: string;
  threads?: number;
  seed?: number;
  /** Progress lines for people. */
  onLine?: (line: string) => void;
}

interface DemoRow {
  name: string;
  run: string;
  model: string;
  mIoU: number;
  mIoUI: number;
  ECE: number;
  params: number;
  trainImagesPerSec: number | null;
}

export interface DemoResult {
  out: string;
  rows: DemoRow[];
  commands: string[];
  report: string;
  seconds: number;
}

/** The sizes of the demo; `quick` keeps the same steps at a fraction of the cost. */
function plan(quick: boolean) {
  return quick
    ? { size: 64, train: 48, unlabeled: 48, val: 16, teacher: { model: 'unet-lite', width: '0.5', steps: 60 }, studentSteps: 60 }
    : { size: 64, train: 160, unlabeled: 160, val: 40, teacher: { model: 'unet-lite', width: '1', steps: 300 }, studentSteps: 300 };
}

/** The CLI entry point of this installation (bin/run.js next to package.json). */
function cliPath(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const candidate = join(dir, 'bin', 'run.js');
    if (existsSync(candidate) && existsSync(join(dir, 'package.json'))) return candidate;
    const parent = dirname(dir);
    if (parent === dir) throw new SoftsegError('cannot find softseg\'s bin/run.js');
    dir = parent;
  }
}

/**
 * How a user runs this installation's CLI from `cwd`, for the commands the demo prints: `softseg` when that
 * name on PATH is this very bin/run.js (an installed or linked package), else the path of bin/run.js —
 * `./bin/run.js` in the checkout, as the README's set-up leaves it.
 */
export function cliInvocation(cli: string, cwd: string = process.cwd(), env: NodeJS.ProcessEnv = process.env): string {
  const real = (p: string): string | null => {
    try {
      return realpathSync(p);
    } catch {
      return null;
    }
  };
  const target = real(cli) ?? cli;
  for (const dir of (env.PATH ?? '').split(delimiter)) {
    if (dir && real(join(dir, 'softseg')) === target) return 'softseg';
  }
  const r = relative(cwd, cli);
  if (r !== '' && !r.startsWith('..') && !isAbsolute(r)) return quote(`.${sep}${r}`);
  return quote(cli);
}

const quote = (a: string): string => (/^[\w@%+=:,./-]+$/.test(a) ? a : `'${a.replace(/'/g, `'\\''`)}'`);

/** Runs `softseg <args> --json`, forwarding its progress lines; returns the parsed JSON. */
function softseg(args: string[], onLine: (line: string) => void): Promise<any> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(process.execPath, [cliPath(), ...args, '--json'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '', stderr = '';
    let lastError = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => {
      stderr += d.toString();
      const lines = stderr.split('\n');
      stderr = lines.pop()!;
      for (const l of lines) {
        if (l.startsWith('Error:')) lastError = l;
        if (l.trim() && !l.startsWith('backend:')) onLine(`    ${l}`);
      }
    });
    child.on('error', reject);
    child.on('close', (code) => {
      if (code !== 0) return reject(new SoftsegError(`\`softseg ${args[0]}\` failed (exit ${code}): ${(lastError || stderr.trim()).replace(/^Error: /, '')}`));
      try {
        resolvePromise(JSON.parse(stdout));
      } catch {
        reject(new SoftsegError(`\`softseg ${args[0]}\` printed no JSON result`));
      }
    });
  });
}

/** Parameters of a saved TF.js model, from its weights manifest. */
async function countParams(modelDir: string): Promise<number> {
  const json = JSON.parse(await readFile(join(modelDir, 'model.json'), 'utf8')) as { weightsManifest: { weights: { shape: number[] }[] }[] };
  return json.weightsManifest.flatMap((g) => g.weights).reduce((s, w) => s + w.shape.reduce((a, b) => a * b, 1), 0);
}

/** Mean training throughput of a run, from its metrics.jsonl. */
async function trainThroughput(runDir: string): Promise<number | null> {
  const lines = (await readFile(join(runDir, 'metrics.jsonl'), 'utf8')).trim().split('\n').map((l) => JSON.parse(l) as { type: string; imagesPerSec?: number });
  const rates = lines.filter((l) => l.type === 'train' && l.imagesPerSec).map((l) => l.imagesPerSec!).slice(1);
  return rates.length ? rates.reduce((a, b) => a + b, 0) / rates.length : null;
}

export async function runDemo(o: DemoOptions): Promise<DemoResult> {
  const started = Date.now();
  const log = o.onLine ?? (() => {});
  const p = plan(o.quick ?? false);
  const out = resolve(o.out);
  // Paths inside the working directory are shown relative to it, others as they are.
  const rel = (path: string) => {
    const r = relative(process.cwd(), path);
    return r === '' ? '.' : r.startsWith('..') ? path : r;
  };
  const seed = o.seed ?? 0;
  await mkdir(out, { recursive: true });
  const data = join(out, 'data');
  const commands: string[] = [];
  const common = ['--backend', o.backend ?? 'auto', ...(o.threads ? ['--threads', String(o.threads)] : [])];
  const invocation = cliInvocation(cliPath());
  const step = async (title: string, args: string[]) => {
    const shown = `${invocation} ${args.map((a) => quote(a.startsWith(out) ? rel(a) : a)).join(' ')}`;
    commands.push(shown);
    log(`\n${title}\n  $ ${shown}`);
    return softseg([...args, ...common], log);
  };

  log(`generating the sample data set in ${rel(data)} (coloured shapes on textured backgrounds, 5 classes, ${p.size}×${p.size})`);
  await generateShapesDataset(data, { splits: { train: p.train, val: p.val }, size: p.size, numClasses: 5, seed: 1 + seed });
  await generateShapesDataset(join(data, 'unlabeled'), { count: p.unlabeled, size: p.size, numClasses: 5, seed: 1000 + seed, unlabeled: true });
  const train = join(data, 'train'), val = join(data, 'val'), unlabeled = join(data, 'unlabeled', 'images');
  const runs = { teacher: join(out, 'runs', 'teacher'), kd: join(out, 'runs', 'student-kd'), ce: join(out, 'runs', 'student-ce') };
  const cache = join(out, 'cache');
  const crop = String(p.size);
  const studentSteps = String(p.studentSteps);

  await step('1/6 training the teacher (CE + JML, boundary label smoothing as the method recommends for KD teachers)', [
    'train', '--data', train, '--val', val, '--model', p.teacher.model, '--width', p.teacher.width, '--out', runs.teacher,
    '--steps', String(p.teacher.steps), '--crop', crop, '--bls', '--seed', String(seed), '--overwrite',
  ]);
  await step('2/6 labelling the training and unlabeled images with the teacher (soft labels into the cache)', [
    'label', '--teacher', runs.teacher, '--images', join(train, 'images'), '--images', unlabeled, '--cache', cache,
  ]);
  await step('3/6 distilling the student with JML-KD (ground truth + teacher soft labels, unlabeled images too)', [
    'distill', '--teacher', runs.teacher, '--cache', cache, '--data', train, '--unlabeled', join(data, 'unlabeled'), '--val', val,
    '--model', 'mobile-unet', '--out', runs.kd, '--steps', studentSteps, '--crop', crop, '--seed', String(seed), '--overwrite',
  ]);
  await step('4/6 training the same student with cross-entropy alone, for comparison', [
    'train', '--data', train, '--val', val, '--model', 'mobile-unet', '--loss', 'ce', '--out', runs.ce, '--steps', studentSteps, '--crop', crop, '--seed', String(seed), '--overwrite',
  ]);
  log('\n5/6 evaluating all three on the validation set');
  const rows: DemoRow[] = [];
  for (const [name, run, model] of [['teacher', runs.teacher, p.teacher.model], ['student, JML-KD', runs.kd, 'mobile-unet'], ['student, CE only', runs.ce, 'mobile-unet']] as const) {
    const m = await step(`  ${name}`, ['eval', '--model', run, '--data', val]);
    rows.push({ name, run, model, mIoU: m.mIoUD, mIoUI: m.mIoUI, ECE: m.ECED, params: await countParams(join(run, 'model')), trainImagesPerSec: await trainThroughput(run) });
  }
  const report = join(out, 'report.html');
  await step('6/6 writing the report', ['report', runs.teacher, runs.kd, runs.ce, '--out', report]);
  return { out, rows, commands, report, seconds: (Date.now() - started) / 1000 };
}

/** The summary table people read at the end. */
export function formatDemo(r: DemoResult): string {
  const head = ['model', 'architecture', 'mIoU', 'mIoU^I', 'ECE %', 'params', 'train img/s'];
  const body = r.rows.map((row) => [
    row.name, row.model, row.mIoU.toFixed(1), row.mIoUI.toFixed(1), row.ECE.toFixed(1),
    row.params >= 1e6 ? `${(row.params / 1e6).toFixed(2)} M` : `${(row.params / 1e3).toFixed(0)} k`,
    row.trainImagesPerSec === null ? '—' : row.trainImagesPerSec.toFixed(1),
  ]);
  const rows = [head, ...body];
  const widths = head.map((_, i) => Math.max(...rows.map((x) => x[i]!.length)));
  const table = rows.map((x) => x.map((c, i) => (i < 2 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ')).join('\n');
  return `${table}\n\nThe commands it ran (repeat them on your own data):\n${r.commands.map((c) => `  ${c}`).join('\n')}\n\nReport: ${r.report}\nDone in ${r.seconds.toFixed(0)} s.`;
}
