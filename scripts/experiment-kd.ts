/**
 * npm run experiment:kd [-- --quick] [--seeds 2] [--out DIR]
 *
 * The same student (MobileUNet) trained nine ways (eight with an equal step budget) on a generated data set with
 * confusable classes, against one fixed teacher (UNet-lite trained with boundary label smoothing):
 *   (a) CE  (b) CE + JML  (c) classic KL distillation  (d) JML-KD  (e) JML-KD + unlabeled images
 *   (f) SSL, hard pseudo-labels (τ = 0.95)  (g) SSL, soft JML pseudo-labels (fixed teacher)
 *   (h) mean-teacher SSL (EMA 0.999) from the supervised (b) checkpoint (twice the budget: (b)'s steps + its own)
 *   (i) mean-teacher SSL with the equal budget: half the steps supervised, then the mean teacher
 * Prints a table of mIoU, mIoU^I and ECE (mean ± spread over seeds) and writes it to
 * experiments/kd-results.md and .json. Not part of `npm test`: it takes ~20 minutes on 2 cores.
 */
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { initBackend } from '../src/backends/select.js';
import { generateShapesDataset } from '../src/data/synthetic.js';
import { openDataset } from '../src/data/dataset.js';
import { openCache } from '../src/cache/store.js';
import { openTeacher } from '../src/teachers/index.js';
import { labelFolders } from '../src/labels/label-folder.js';
import { openTrainedModel } from '../src/inference/model-dir.js';
import { evaluateDataset } from '../src/inference/evaluate.js';
import { TRAIN_DEFAULTS, trainSupervised, type TrainConfig } from '../src/recipes/supervised.js';
import type { RecipeEnv } from '../src/recipes/run.js';
import { DISTILL_DEFAULTS, trainDistill } from '../src/recipes/distill.js';
import { SSL_DEFAULTS, trainSsl } from '../src/recipes/ssl.js';

const { values } = parseArgs({ options: { quick: { type: 'boolean' }, seeds: { type: 'string' }, out: { type: 'string' }, only: { type: 'string' } } });
const quick = values.quick ?? false;
const seeds = Array.from({ length: Number(values.seeds ?? 2) }, (_, i) => i);
const root = resolve(values.out ?? 'experiments/kd-run');
const P = quick
  ? { train: 32, unlabeled: 64, val: 16, teacherSteps: 40, studentSteps: 20, size: 48 }
  : { train: 96, unlabeled: 192, val: 48, teacherSteps: 400, studentSteps: 240, size: 64 };
const CLASSES = 8; // background + 7 shapes, with the generator's confusable colour/shape pairs

const backend = await initBackend({ backend: 'wasm' });
const env: RecipeEnv = { backend, version: 'experiment', onWarning: (w) => console.error(`warning: ${w}`) };
const log = (s: string) => console.error(`[${new Date().toISOString().slice(11, 19)}] ${s}`);

await rm(root, { recursive: true, force: true });
await mkdir(root, { recursive: true });
const data = join(root, 'data');
await generateShapesDataset(data, { splits: { train: P.train, val: P.val }, size: P.size, numClasses: CLASSES, seed: 7 });
await generateShapesDataset(join(data, 'unlabeled'), { count: P.unlabeled, size: P.size, numClasses: CLASSES, seed: 70, unlabeled: true });
const train = join(data, 'train'), val = join(data, 'val'), unlabeled = join(data, 'unlabeled');
const base: TrainConfig = { ...TRAIN_DEFAULTS, data: train, crop: P.size, batchSize: 8, lr: 2e-3 };

log(`teacher: unet-lite, BLS, ${P.teacherSteps} steps`);
const teacherDir = join(root, 'teacher');
await trainSupervised({ ...base, model: 'unet-lite', out: teacherDir, steps: P.teacherSteps, bls: true, seed: 100 }, env);
const cacheDir = join(root, 'cache');
const teacher = await openTeacher(teacherDir);
await labelFolders(teacher, openCache(cacheDir), [join(train, 'images'), join(unlabeled, 'images')]);
await teacher.dispose();

const valSet = await openDataset(val);
async function score(runDir: string) {
  const t = await openTrainedModel(runDir);
  try {
    const m = await evaluateDataset(t.model, valSet, { normalize: t.meta.normalization });
    return { mIoU: m.mIoUD, mIoUI: m.mIoUI, ECE: m.ECED ?? NaN };
  } finally {
    t.model.dispose();
  }
}

type Row = { key: string; label: string; run: (seed: number, out: string) => Promise<unknown> };
const steps = P.studentSteps;
const student = { ...base, model: 'mobile-unet', steps };
const kd = { ...DISTILL_DEFAULTS, ...student, teacher: teacherDir, cache: cacheDir };
const ssl = { ...SSL_DEFAULTS, ...student, unlabeled: [unlabeled] };
const rows: Row[] = [
  { key: 'a', label: 'CE', run: (seed, out) => trainSupervised({ ...student, loss: 'ce', seed, out }, env) },
  { key: 'b', label: 'CE + JML', run: (seed, out) => trainSupervised({ ...student, seed, out }, env) },
  { key: 'c', label: 'KL distillation', run: (seed, out) => trainDistill({ ...kd, kdLoss: 'kl', seed, out }, env) },
  { key: 'd', label: 'JML-KD', run: (seed, out) => trainDistill({ ...kd, seed, out }, env) },
  { key: 'e', label: 'JML-KD + unlabeled', run: (seed, out) => trainDistill({ ...kd, unlabeled: [unlabeled], seed, out }, env) },
  { key: 'f', label: 'SSL, hard pseudo-labels τ=0.95', run: (seed, out) => trainSsl({ ...ssl, teacher: teacherDir, cache: cacheDir, pseudo: 'hard', confidenceThreshold: 0.95, seed, out }, env) },
  { key: 'g', label: 'SSL, soft JML pseudo-labels (fixed teacher)', run: (seed, out) => trainSsl({ ...ssl, teacher: teacherDir, cache: cacheDir, seed, out }, env) },
  { key: 'h', label: 'mean-teacher SSL from (b)', run: (seed, out) => trainSsl({ ...ssl, ema: 0.999, init: join(root, `b-seed${seed}`), seed, out }, env) },
  // the equal-budget mean teacher: half the steps supervised (CE + JML), then the teacher starts from the student
  { key: 'i', label: `mean-teacher SSL, ${steps / 2} supervised + ${steps / 2} SSL steps`, run: (seed, out) => trainSsl({ ...ssl, ema: 0.999, unlabeledWarmup: steps / 2, seed, out }, env) },
];
const selected = values.only ? rows.filter((r) => values.only!.split(',').includes(r.key)) : rows;
const results: Record<string, { mIoU: number; mIoUI: number; ECE: number; error?: string }[]> = {};
for (const seed of seeds) {
  for (const row of selected) {
    const out = join(root, `${row.key}-seed${seed}`);
    log(`(${row.key}) ${row.label}, seed ${seed}`);
    try {
      await row.run(seed, out);
      (results[row.key] ??= []).push(await score(out));
    } catch (e) {
      // An honest table shows a run that failed (e.g. the collapse guard stopping it) instead of hiding it.
      (results[row.key] ??= []).push({ mIoU: NaN, mIoUI: NaN, ECE: NaN, error: (e as Error).message.split('\n')[0] });
      log(`  failed: ${(e as Error).message.split('\n')[0]}`);
      if (process.env.DEBUG) console.error(e);
    }
  }
}
const teacherScore = await score(teacherDir);

const fmt = (xs: number[]) => {
  const ok = xs.filter(Number.isFinite);
  if (ok.length === 0) return 'failed';
  const mean = ok.reduce((a, b) => a + b, 0) / ok.length;
  const spread = ok.length > 1 ? (Math.max(...ok) - Math.min(...ok)) / 2 : 0;
  return ok.length > 1 ? `${mean.toFixed(1)} ± ${spread.toFixed(1)}` : mean.toFixed(1);
};
const lines = [
  `Student MobileUNet, ${steps} steps × batch 8, ${P.size}² crops; ${CLASSES} classes; ${P.train} labeled + ${P.unlabeled} unlabeled training images, ${P.val} val; seeds ${seeds.join(', ')}; wasm backend.`,
  `Teacher UNet-lite (BLS, ${P.teacherSteps} steps): mIoU ${teacherScore.mIoU.toFixed(1)}, mIoU^I ${teacherScore.mIoUI.toFixed(1)}, ECE ${teacherScore.ECE.toFixed(1)}.`,
  '',
  '| | student objective | mIoU | mIoU^I | ECE % |',
  '|---|---|---|---|---|',
  ...selected.map((r) => {
    const rs = results[r.key] ?? [];
    const note = rs.find((x) => x.error)?.error;
    return `| (${r.key}) | ${r.label}${note ? ` — ${note}` : ''} | ${fmt(rs.map((x) => x.mIoU))} | ${fmt(rs.map((x) => x.mIoUI))} | ${fmt(rs.map((x) => x.ECE))} |`;
  }),
];
const table = lines.join('\n');
console.log(table);
await mkdir('experiments', { recursive: true });
if (!quick) {
  await writeFile('experiments/kd-results.md', `${table}\n`);
  await writeFile('experiments/kd-results.json', JSON.stringify({ params: P, seeds, teacher: teacherScore, results }, null, 2));
}
