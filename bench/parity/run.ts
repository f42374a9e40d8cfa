// npm run bench:parity [-- --quick --seeds 0,1 --steps N --size 64|96 --rows ce,ce+jml,kd,ssl --sides plain,mirror,replay
//                          --teacher-steps N --model mobile-unet|unet-lite|unet --jobs N --out DIR
//                          --softseg-flags="--upsampling half-pixel"]
// softseg against its PyTorch twin (bench/parity/twin.py, Debian's python3-torch) on the parity data set
// (bench/parity/data.ts): each row trains a student (mobile-unet unless --model) on both sides with equal steps and seeds and
// prints val mIoU^D, mIoU^I, ECE^D and the train-set mIoU^D side by side, mean over seeds.
// Rows: ce and ce+jml (`softseg train --loss …`); kd (`softseg distill` with the unlabeled images: JML-KD, 4
// labeled + 4 unlabeled per batch); ssl (`softseg ssl` with the fixed teacher: soft pseudo-labels on a strong view
// with CutMix). kd and ssl share one teacher (a unet-lite softseg trains on the labeled images; its cached
// probabilities are exported for the twin by bench/parity/teacher.ts), so both sides learn from the same targets.
//   softseg   its own defaults (init, augmentation, optimizer), through the CLI as a user runs it;
//   plain     what a PyTorch user writes without thinking: torch's default initialisers, symmetric padding,
//             F.interpolate, AdamW() (lr 1e-3, weight decay 1e-2 on every parameter), random scale 0.75–1.25,
//             pad, random crop, horizontal flip;
//   mirror    every choice softseg makes, in PyTorch (finds implementation differences): symmetric padding,
//             legacy bilinear upsampling, torch's initialisers, AdamW decay 1e-4 on kernels only, the same
//             augmentation and schedule (kd and ssl: softseg's distill/ssl defaults, plain's upsampling, decay and
//             mask resampling; the earlier mirror of those rows is `twin.py train --side mirror --weight-decay 1e-4`).
//   replay    the mirror model and step trained from softseg's own initial weights on exactly the batches softseg
//             trained on (recorded by replay.ts, which then runs the softseg side: the same library call as the CLI,
//             with identical results): a paired comparison of the training step alone, data and sampling shared.
//             The recordings (~0.4 GB per 1000 steps at 64², 1.8 GB with teacher probabilities) are deleted after use.
//   perturbed replay from initial weights × (1 + 1e-7·N(0,1)): how far float rounding alone moves a run (the noise
//             floor any implementation difference has to be measured against).
// PyTorch runs with 1 thread (on a loaded 2-core machine 2 OpenMP threads run ~25× slower per op).
import { existsSync } from 'node:fs';
import { mkdir, rm } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import PQueue from 'p-queue';
import { list, parseArgs, parseMarked, run, table } from '../common.js';
import { ensureTorch, python } from '../torch-env.js';
import { writeParityDataset } from './data.js';
import { prepareTeacher, type ParityTeacher } from './teacher.js';

const HERE = dirname(fileURLToPath(import.meta.url));
const ROOT = join(HERE, '../..');
const args = parseArgs(process.argv.slice(2));
const quick = 'quick' in args;
const size = Number(args.size ?? (quick ? 64 : 96));
const steps = Number(args.steps ?? (quick ? 600 : 2500));
const seeds = list(args.seeds, quick ? ['0'] : ['0', '1']).map(Number);
const rows = list(args.rows, ['ce', 'ce+jml', 'kd', 'ssl']);
const teacherSteps = Number(args['teacher-steps'] ?? (quick ? 1200 : 2500));
const unlabeledCount = Number(args.unlabeled ?? 1000);
// `--sides none`: the softseg side alone (e.g. an ablation of a softseg option through --softseg-flags)
const sides = list(args.sides, ['plain', 'mirror']).filter((s) => s !== 'none');
// extra flags for every softseg training run, e.g. --softseg-flags="--upsampling half-pixel" (with '=': the value starts with --)
const softsegFlags = (args['softseg-flags'] ?? '').split(/\s+/).filter(Boolean);
const out = args.out ?? join(ROOT, '.softseg-tmp', 'parity');
const student = args.model ?? 'mobile-unet';
// runs of a row at once (each softseg run and each twin run uses one core)
const jobs = Math.max(1, Number(args.jobs ?? 1));

interface Scores { val: { mIoUD: number; mIoUI: number; ECED: number }; train: { mIoUD: number } }

type Data = { train: string; unlabeled: string; val: string };

async function ensureData(): Promise<Data> {
  const dir = join(out, `data-${size}-u${unlabeledCount}`);
  if (!existsSync(join(dir, 'val', 'dataset.json'))) {
    process.stderr.write(`parity: generating the data set in ${dir}\n`);
    await writeParityDataset(dir, { size, train: 300, unlabeled: unlabeledCount, val: 300, seed: 0 });
  }
  return { train: join(dir, 'train'), unlabeled: join(dir, 'unlabeled'), val: join(dir, 'val') };
}

/** The softseg command of a row: train for ce / ce+jml, distill for kd, ssl for ssl (the last two with the teacher). */
function softsegCommand(row: string, t: ParityTeacher | null, data: Data): string[] {
  if (row === 'kd') return ['distill', '--teacher', t!.dir, '--cache', t!.cache, '--unlabeled', join(data.unlabeled, 'images')];
  if (row === 'ssl') return ['ssl', '--teacher', t!.dir, '--cache', t!.cache, '--unlabeled', join(data.unlabeled, 'images')];
  return ['train', '--loss', row];
}

/** The sides that train on the softseg run's recording (they run after it, in its chain). */
const replayed: string[] = sides.filter((s) => s === 'replay' || s === 'perturbed');
const replaying = replayed.length > 0;
if (softsegFlags.length > 0 && replaying) {
  process.stderr.write('parity: --softseg-flags applies to the CLI runs, not to the replay/perturbed sides\n');
  process.exit(2);
}
const recording = (row: string, seed: number) => join(out, 'replay', `${student}-${row}-${size}-${steps}-s${seed}`);

/** The softseg side through replay.ts (for the replay side): the same recipe call as the CLI, recording its batches. */
async function recordedRun(row: string, seed: number, data: Data, teacher: ParityTeacher | null): Promise<{ runDir: string; metrics: Record<string, number> }> {
  const rec = recording(row, seed);
  const a = [join(HERE, 'replay.ts'), '--data', data.train, '--val', data.val, '--model', student, '--steps', String(steps), '--seed', String(seed), '--out', rec];
  if (row === 'kd' || row === 'ssl') a.push('--recipe', row === 'kd' ? 'distill' : 'ssl', '--teacher', teacher!.dir, '--cache', teacher!.cache, '--unlabeled', join(data.unlabeled, 'images'));
  else a.push('--recipe', 'train', '--loss', row);
  const r = await run(process.execPath, ['--import', 'tsx', ...a]);
  const done = parseMarked<{ val: Record<string, number> }>(r.stdout, '@@REPLAY ');
  if (r.code !== 0 || !done) throw new Error(`softseg ${row} (recorded) failed: ${r.stderr.trim().split('\n').pop()}`);
  return { runDir: join(rec, 'run'), metrics: done.val };
}

async function softsegRow(row: string, seed: number, data: Data, teacher: ParityTeacher | null): Promise<Scores> {
  let runDir = join(out, 'runs', `softseg-${student}-${row}-${size}-${steps}-s${seed}-${Date.now()}`);
  const bin = join(ROOT, 'bin', 'run.js');
  let metrics: Record<string, number>;
  if (replaying) {
    ({ runDir, metrics } = await recordedRun(row, seed, data, teacher));
  } else {
    const t = await run(process.execPath, [bin, ...softsegCommand(row, teacher, data), '--data', data.train, '--val', data.val, '--model', student, '--steps', String(steps), '--seed', String(seed), '--out', runDir, '--eval-every', String(steps), '--backend', 'wasm', '--json', ...softsegFlags]);
    if (t.code !== 0) throw new Error(`softseg ${row} failed: ${t.stderr.trim().split('\n').pop()}`);
    metrics = JSON.parse(t.stdout).finalMetrics as Record<string, number>;
  }
  const e = await run(process.execPath, [bin, 'eval', '--model', runDir, '--data', data.train, '--backend', 'wasm', '--json']);
  if (e.code !== 0) throw new Error(`softseg eval failed: ${e.stderr.trim().split('\n').pop()}`);
  const tr = JSON.parse(e.stdout) as Record<string, number> & { metrics?: Record<string, number> };
  const trainMiou = (tr.metrics ?? tr).mIoUD!;
  return { val: { mIoUD: metrics.mIoUD!, mIoUI: metrics.mIoUI!, ECED: metrics.ECED! }, train: { mIoUD: trainMiou } };
}

async function twinRow(side: string, row: string, seed: number, data: Data, teacher: ParityTeacher | null): Promise<Scores> {
  if (side === 'replay' || side === 'perturbed') {
    const perturb = side === 'perturbed' ? ['--perturb', '1e-7', '--seed', String(seed)] : [];
    const r = await run(py, [join(HERE, 'twin.py'), 'train', '--replay', recording(row, seed), '--data', data.train, '--val', data.val, '--model', student, '--threads', '1', ...perturb]);
    const scores = parseMarked<Scores>(r.stdout, '@@TWIN ');
    if (r.code !== 0 || !scores) throw new Error(`twin replay ${row} failed: ${r.stderr.trim().split('\n').pop()}`);
    return scores;
  }
  const a = [join(HERE, 'twin.py'), 'train', '--data', data.train, '--val', data.val, '--model', student, '--side', side, '--steps', String(steps), '--seed', String(seed), '--threads', '1'];
  if (row === 'kd' || row === 'ssl') a.push('--recipe', row === 'kd' ? 'distill' : 'ssl', '--teacher-probs', teacher!.probs, '--unlabeled', data.unlabeled);
  else a.push('--loss', row);
  // both sides augment as softseg's default does (scale 0.75–1.25, flip); plain: AdamW() defaults (decay 1e-2 on
  // every parameter); mirror: softseg's defaults for the row — train's own (1e-4 on convolution kernels only, aligned
  // upsampling, centre mask sampling), distill's and ssl's plain PyTorch's (so there the mirror is the plain side)
  a.push('--scale', '0.75,1.25', '--flip');
  if (side === 'mirror') a.push(...(row === 'kd' || row === 'ssl' ? ['--up', 'half', '--decay', 'all', '--mask-resize', 'nearest'] : ['--weight-decay', '1e-4']));
  const r = await run(py, a);
  const scores = parseMarked<Scores>(r.stdout, '@@TWIN ');
  if (r.code !== 0 || !scores) throw new Error(`twin ${side} ${row} failed: ${r.stderr.trim().split('\n').pop()}`);
  return scores;
}

const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
const variance = (xs: number[]) => xs.reduce((a, x) => a + (x - mean(xs)) ** 2, 0) / Math.max(1, xs.length - 1);

/**
 * softseg's mean minus the side's, ± its standard error (paired per seed for replay, which shares data and init;
 * unpaired otherwise). One run's val mIoU on this set moves by several points from float rounding alone (see
 * bench/README.md: the twin against itself, initial weights × (1 + 1e-7·N(0,1))), so only the standard error says
 * whether a difference is more than noise.
 */
function difference(ours: number[], theirs: number[], paired: boolean): string {
  const d = mean(ours) - mean(theirs);
  if (ours.length < 2) return d.toFixed(1);
  const se = paired ? Math.sqrt(variance(ours.map((v, i) => v - theirs[i]!)) / ours.length) : Math.sqrt(variance(ours) / ours.length + variance(theirs) / theirs.length);
  return `${d >= 0 ? '+' : ''}${d.toFixed(1)} ± ${se.toFixed(1)}`;
}

const py = python();
const torchVersion = await ensureTorch(py);
await mkdir(out, { recursive: true });
const data = await ensureData();
const teacher = rows.some((r) => r === 'kd' || r === 'ssl') ? await prepareTeacher(join(out, `teacher-${size}-u${unlabeledCount}-${teacherSteps}`), data, { model: 'unet-lite', steps: teacherSteps, classes: 11 }) : null;
process.stderr.write(`parity: ${student}, ${size}², ${steps} steps, batch 8, seeds ${seeds.join(',')}, rows ${rows.join(', ')}; torch ${torchVersion}, 1 thread\n`);
if (teacher) process.stderr.write(`parity: teacher unet-lite (${teacherSteps} steps) val mIoU ${teacher.val.mIoUD.toFixed(1)}, mIoU^I ${teacher.val.mIoUI.toFixed(1)}, ECE ${teacher.val.ECED.toFixed(2)}\n`);
/** Each run's scores on stderr as it ends (a long bench that is stopped keeps what it measured). */
function done(row: string, side: string, seed: number, s: Scores): Scores {
  process.stderr.write(`parity: ${row} ${side} seed ${seed}: val mIoU ${s.val.mIoUD.toFixed(1)}, mIoU^I ${s.val.mIoUI.toFixed(1)}, ECE ${s.val.ECED.toFixed(2)}, train mIoU ${s.train.mIoUD.toFixed(1)}\n`);
  return s;
}
const lines: string[][] = [];
const json: Record<string, unknown>[] = [];
for (const loss of rows) {
  const bySide: Record<string, Scores[]> = { softseg: [] };
  for (const side of sides) bySide[side] = [];
  // one chain per seed for the softseg side and the sides that replay its recording; the other sides' runs are
  // independent jobs; results are stored by seed index, so --jobs changes nothing but the wall time
  const queue = new PQueue({ concurrency: jobs });
  const tasks: Promise<void>[] = [];
  seeds.forEach((seed, k) => {
    tasks.push(queue.add(async () => {
      bySide.softseg![k] = done(loss, 'softseg', seed, await softsegRow(loss, seed, data, teacher));
      for (const side of replayed) bySide[side]![k] = done(loss, side, seed, await twinRow(side, loss, seed, data, teacher));
      if (replaying) for (const f of ['images.f32', 'teacher.f32', 'masks.u8', 'keep.u8']) await rm(join(recording(loss, seed), f), { force: true });
    }));
    for (const side of sides.filter((s) => !replayed.includes(s))) tasks.push(queue.add(async () => { bySide[side]![k] = done(loss, side, seed, await twinRow(side, loss, seed, data, teacher)); }));
  });
  await Promise.all(tasks);
  const ours = bySide.softseg!.map((s) => s.val.mIoUD);
  for (const [side, scores] of Object.entries(bySide)) {
    const theirs = scores.map((s) => s.val.mIoUD);
    const m = mean(theirs);
    lines.push([loss, side, m.toFixed(1), theirs.map((v) => v.toFixed(1)).join(' / '), mean(scores.map((s) => s.val.mIoUI)).toFixed(1),
      mean(scores.map((s) => s.val.ECED)).toFixed(2), mean(scores.map((s) => s.train.mIoUD)).toFixed(1), side === 'softseg' ? '' : difference(ours, theirs, side === 'replay' || side === 'perturbed')]);
    json.push({ loss, side, scores });
  }
}
console.log(table(['row', 'side', 'val mIoU', 'per seed', 'mIoU^I', 'ECE^D', 'train mIoU', 'softseg − side (± s.e.)'], lines));
if ('json' in args) console.log(JSON.stringify(json));
