// Separates softseg's data pipeline from its training step: runs a recipe exactly as the CLI does (same option
// schema and defaults, same library call) and records what it trains on — the model's initial weights and every
// batch the loader hands the engine (normalised images, masks, and for distill/ssl the teacher probabilities and
// the teacher-term mask) — into a folder that `twin.py train --replay DIR` trains on. Both sides then start from
// the same weights and see the same batches, so a difference in the result is the training step's (or chaos),
// not augmentation or sampling; the twin's own loader against the replayed batches measures the data pipeline.
//   node --import tsx bench/parity/replay.ts --recipe train|distill|ssl --data D --val V --steps N --seed S --out DIR
//       [--loss ce|ce+jml] [--teacher T --cache C --unlabeled U]  (the recipe's run folder is DIR/run)
// The run's final val metrics are printed (@@REPLAY {json}); for the same seed they equal the CLI's run, which
// shows the recorded batches are the ones `softseg train|distill|ssl` trains on.
import { closeSync, openSync, writeSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../../src/backends/select.js';
import type { BatchSource, HostBatch } from '../../src/engine/trainer.js';
import { createModel } from '../../src/models/registry.js';
import { mergeOptions } from '../../src/recipes/options.js';
import { DISTILL_OPTIONS, SSL_OPTIONS, TRAIN_OPTIONS } from '../../src/recipes/recipe-options.js';
import type { RecipeEnv } from '../../src/recipes/run.js';
import { parseArgs } from '../common.js';

const args = parseArgs(process.argv.slice(2));
const recipe = args.recipe ?? 'train';
const out = args.out ?? '/tmp/replay';
const values: Record<string, unknown> = {
  data: args.data, val: args.val, model: args.model ?? 'mobile-unet', steps: Number(args.steps ?? 1000), seed: Number(args.seed ?? 0),
  out: join(out, 'run'), evalEvery: Number(args.steps ?? 1000), overwrite: true,
};
if (recipe === 'train') values.loss = args.loss ?? 'ce+jml';
else Object.assign(values, { teacher: args.teacher, cache: args.cache, unlabeled: [args.unlabeled] });
const schema = recipe === 'distill' ? DISTILL_OPTIONS : recipe === 'ssl' ? SSL_OPTIONS : TRAIN_OPTIONS;
const config = mergeOptions(schema as any, values, {}) as any;

const backend = await initBackend({ backend: 'wasm' });
await mkdir(out, { recursive: true });

// The initial weights: the same call with the same seed as launchTraining's, before the recipe builds its own.
const numClasses = Number(args.classes ?? 11);
const init = createModel(config.model, { numClasses, width: config.width, aux: config.aux, seed: config.seed });
const weights = Object.fromEntries(await Promise.all(init.model.weights.map(async (w) => [w.name, { shape: w.shape, data: Array.from(await w.read().data()) }])));
init.dispose();
await writeFile(join(out, 'init.json'), JSON.stringify(weights));

const files = { images: openSync(join(out, 'images.f32'), 'w'), masks: openSync(join(out, 'masks.u8'), 'w'), teacherProb: -1, keep: -1 };
const meta: { steps: number; n: number; size: [number, number]; classes?: number } = { steps: 0, n: 0, size: [0, 0] };
const record = (b: HostBatch) => {
  if (meta.steps++ === 0) Object.assign(meta, { n: b.n, size: b.size, classes: b.classes });
  writeSync(files.images, new Uint8Array(b.images.buffer, b.images.byteOffset, b.images.byteLength));
  writeSync(files.masks, Uint8Array.from(b.masks!));
  if (b.teacherProb) {
    if (files.teacherProb < 0) files.teacherProb = openSync(join(out, 'teacher.f32'), 'w');
    if (files.keep < 0) files.keep = openSync(join(out, 'keep.u8'), 'w');
    writeSync(files.teacherProb, new Uint8Array(b.teacherProb.buffer, b.teacherProb.byteOffset, b.teacherProb.byteLength));
    writeSync(files.keep, Uint8Array.from(b.keep!, (v) => (v > 0 ? 1 : 0)));
  }
};
const tapSource = (s: BatchSource): BatchSource => ({ ...s, next: async () => { const b = await s.next(); record(b); return b; } });
const env: RecipeEnv = { backend, version: 'replay', tapSource };

let result;
if (recipe === 'distill') result = (await (await import('../../src/recipes/distill.js')).trainDistill(config, env)).result;
else if (recipe === 'ssl') result = (await (await import('../../src/recipes/ssl.js')).trainSsl(config, env)).result;
else result = (await (await import('../../src/recipes/supervised.js')).trainSupervised(config, env)).result;
for (const fd of Object.values(files)) if (fd >= 0) closeSync(fd);
await writeFile(join(out, 'meta.json'), JSON.stringify({ ...meta, recipe, seed: config.seed, lr: config.lr, weightDecay: config.weightDecay, loss: config.loss ?? 'ce+jml', warmupSteps: config.warmupSteps ?? null }));
const records = (await readFile(join(out, 'run', 'metrics.jsonl'), 'utf8')).trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
const evals = records.filter((r) => r.type === 'eval');
const trainLosses = records.filter((r) => r.type === 'train').map((r) => [r.step, r.loss]);
await writeFile(join(out, 'softseg-losses.json'), JSON.stringify(trainLosses));
console.log('@@REPLAY ' + JSON.stringify({ steps: result.steps, val: evals.at(-1), tfMemory: tf.memory().numTensors }));
