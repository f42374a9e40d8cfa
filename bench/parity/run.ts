// npm run bench:parity [-- --quick --seeds 0,1 --steps N --size 64|96 --rows ce,ce+jml --sides plain,mirror --out DIR]
// softseg against its PyTorch twin (bench/parity/twin.py, Debian's python3-torch) on the parity data set
// (bench/parity/data.ts): each row trains a mobile-unet student on both sides with equal steps and seeds and
// prints val mIoU^D, mIoU^I, ECE^D and the train-set mIoU^D side by side, mean over seeds.
//   softseg   its own defaults (init, augmentation, optimizer), through the CLI as a user runs it;
//   plain     what a PyTorch user writes without thinking: torch's default initialisers, symmetric padding,
//             F.interpolate, AdamW() (lr 1e-3, weight decay 1e-2 on every parameter), random scale 0.75–1.25,
//             pad, random crop, horizontal flip;
//   mirror    every choice softseg makes, in PyTorch (finds implementation differences): symmetric padding,
//             legacy bilinear upsampling, torch's initialisers, AdamW decay 1e-4 on kernels only, the same
//             augmentation and schedule.
// PyTorch runs with 1 thread (on a loaded 2-core machine 2 OpenMP threads run ~25× slower per op).
import { existsSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { list, parseArgs, parseMarked, run, table } from '../common.js';
import { ensureTorch, python } from '../torch-env.js';
import { writeParityDataset } from './data.js';

const HERE = dirname(fileURLToPath(import.meta.url));
const ROOT = join(HERE, '../..');
const args = parseArgs(process.argv.slice(2));
const quick = 'quick' in args;
const size = Number(args.size ?? (quick ? 64 : 96));
const steps = Number(args.steps ?? (quick ? 600 : 2500));
const seeds = list(args.seeds, quick ? ['0'] : ['0', '1']).map(Number);
const rows = list(args.rows, ['ce', 'ce+jml']);
const sides = list(args.sides, ['plain', 'mirror']);
const out = args.out ?? join(ROOT, '.softseg-tmp', 'parity');

interface Scores { val: { mIoUD: number; mIoUI: number; ECED: number }; train: { mIoUD: number } }

async function ensureData(): Promise<{ train: string; val: string }> {
  const dir = join(out, `data-${size}`);
  if (!existsSync(join(dir, 'val', 'dataset.json'))) {
    process.stderr.write(`parity: generating the data set in ${dir}\n`);
    await writeParityDataset(dir, { size, train: 300, unlabeled: 0, val: 300, seed: 0 });
  }
  return { train: join(dir, 'train'), val: join(dir, 'val') };
}

async function softsegRow(loss: string, seed: number, data: { train: string; val: string }): Promise<Scores> {
  const runDir = join(out, 'runs', `softseg-${loss}-${size}-${steps}-s${seed}-${Date.now()}`);
  const bin = join(ROOT, 'bin', 'run.js');
  const t = await run(process.execPath, [bin, 'train', '--data', data.train, '--val', data.val, '--model', 'mobile-unet', '--loss', loss, '--steps', String(steps), '--seed', String(seed), '--out', runDir, '--eval-every', String(steps), '--backend', 'wasm', '--json']);
  if (t.code !== 0) throw new Error(`softseg train failed: ${t.stderr.trim().split('\n').pop()}`);
  const metrics = JSON.parse(t.stdout).finalMetrics as Record<string, number>;
  const e = await run(process.execPath, [bin, 'eval', '--model', runDir, '--data', data.train, '--backend', 'wasm', '--json']);
  if (e.code !== 0) throw new Error(`softseg eval failed: ${e.stderr.trim().split('\n').pop()}`);
  const tr = JSON.parse(e.stdout) as Record<string, number> & { metrics?: Record<string, number> };
  const trainMiou = (tr.metrics ?? tr).mIoUD!;
  return { val: { mIoUD: metrics.mIoUD!, mIoUI: metrics.mIoUI!, ECED: metrics.ECED! }, train: { mIoUD: trainMiou } };
}

async function twinRow(side: string, loss: string, seed: number, data: { train: string; val: string }): Promise<Scores> {
  const a = [join(HERE, 'twin.py'), 'train', '--data', data.train, '--val', data.val, '--side', side, '--loss', loss, '--steps', String(steps), '--seed', String(seed), '--threads', '1'];
  // both sides augment as softseg's default does (scale 0.75–1.25, flip); plain: AdamW() defaults (decay 1e-2 on
  // every parameter); mirror: softseg's optimizer defaults (1e-4 on convolution kernels only)
  a.push('--scale', '0.75,1.25', '--flip');
  if (side === 'mirror') a.push('--weight-decay', '1e-4');
  const r = await run(py, a);
  const row = parseMarked<Scores>(r.stdout, '@@TWIN ');
  if (r.code !== 0 || !row) throw new Error(`twin ${side} failed: ${r.stderr.trim().split('\n').pop()}`);
  return row;
}

const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;

const py = python();
const torchVersion = await ensureTorch(py);
await mkdir(out, { recursive: true });
const data = await ensureData();
process.stderr.write(`parity: mobile-unet, ${size}², ${steps} steps, batch 8, seeds ${seeds.join(',')}, rows ${rows.join(', ')}; torch ${torchVersion}, 1 thread\n`);
const lines: string[][] = [];
const json: Record<string, unknown>[] = [];
for (const loss of rows) {
  const bySide: Record<string, Scores[]> = { softseg: [] };
  for (const side of sides) bySide[side] = [];
  for (const seed of seeds) {
    bySide.softseg!.push(await softsegRow(loss, seed, data));
    for (const side of sides) bySide[side]!.push(await twinRow(side, loss, seed, data));
  }
  const ref = mean(bySide.softseg!.map((s) => s.val.mIoUD));
  for (const [side, scores] of Object.entries(bySide)) {
    const m = mean(scores.map((s) => s.val.mIoUD));
    lines.push([loss, side, m.toFixed(1), scores.map((s) => s.val.mIoUD.toFixed(1)).join(' / '), mean(scores.map((s) => s.val.mIoUI)).toFixed(1),
      mean(scores.map((s) => s.val.ECED)).toFixed(2), mean(scores.map((s) => s.train.mIoUD)).toFixed(1), side === 'softseg' ? '' : (ref - m).toFixed(1)]);
    json.push({ loss, side, scores });
  }
}
console.log(table(['row', 'side', 'val mIoU', 'per seed', 'mIoU^I', 'ECE^D', 'train mIoU', 'softseg − side'], lines));
if ('json' in args) console.log(JSON.stringify(json));
