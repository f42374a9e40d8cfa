// The training step at a real mid-run state, softseg against the twin: loads a checkpoint of a run recorded by
// replay.ts (weights, BN statistics, AdamW moments), computes the gradients on the batch that step trained on,
// then runs K steps on the recorded batches, and writes everything for `twin.py lockstep FILE`, which loads the
// same state into the mirror model and optimizer and compares. trajectory.ts checks the step from a fresh init
// on random data; this checks it where training actually is (confident logits, absent classes, dead channels).
//   node --import tsx bench/parity/lockstep.ts --replay DIR [--checkpoint step-0000900|PATH] [--steps 1] --out /tmp/lock.json
import { open, readFile, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../../src/backends/select.js';
import { restoreCheckpoint } from '../../src/engine/checkpoint.js';
import { SegOptimizer } from '../../src/engine/optimizer.js';
import { learningRateAt } from '../../src/engine/schedule.js';
import { TrainStep, type TensorBatch } from '../../src/engine/step.js';
import { createModel } from '../../src/models/registry.js';
import { DISTILL_DEFAULTS, distillObjective } from '../../src/recipes/distill.js';
import { SSL_DEFAULTS, sslObjective } from '../../src/recipes/ssl.js';
import { TRAIN_DEFAULTS, supervisedObjective } from '../../src/recipes/supervised.js';
import { parseArgs } from '../common.js';

const args = parseArgs(process.argv.slice(2));
const dir = args.replay!;
const steps = Number(args.steps ?? 1);
const out = args.out ?? '/tmp/lock.json';
const meta = JSON.parse(await readFile(join(dir, 'meta.json'), 'utf8')) as { steps: number; n: number; size: [number, number]; classes?: number; recipe: string; seed: number; lr: number; weightDecay: number; loss: 'ce' | 'ce+jml'; warmupSteps: number | null };
const checkpoints = (await readdir(join(dir, 'run', 'checkpoints'))).filter((n) => n.startsWith('step-')).sort();
const checkpoint = args.checkpoint ?? checkpoints[0]!;
const classes = Number(args.classes ?? 11);

await initBackend({ backend: 'wasm' });
const model = createModel(args.model ?? 'mobile-unet', { numClasses: classes, seed: meta.seed });
const optimizer = new SegOptimizer({ lr: meta.lr, weightDecay: meta.weightDecay });
const { step: start } = await restoreCheckpoint(checkpoint.includes('/') ? checkpoint : join(dir, 'run', 'checkpoints', checkpoint), model, optimizer);
const objective = meta.recipe === 'distill' ? distillObjective({ ...DISTILL_DEFAULTS, data: 'x', out: 'x' }, 255)
  : meta.recipe === 'ssl' ? sslObjective({ ...SSL_DEFAULTS, data: 'x', out: 'x' }, 255)
  : supervisedObjective({ ...TRAIN_DEFAULTS, loss: meta.loss, data: 'x', out: 'x' }, 255);

const [h, w] = meta.size;
const px = meta.n * h * w;
const read = async (file: string, step: number, bytesPerPixel: number) => {
  const fh = await open(join(dir, file));
  const buf = Buffer.alloc(px * bytesPerPixel);
  await fh.read(buf, 0, buf.length, step * buf.length);
  await fh.close();
  return buf;
};
async function batchAt(step: number): Promise<TensorBatch> {
  const img = await read('images.f32', step, 12);
  const masks = await read('masks.u8', step, 1);
  const b: TensorBatch = {
    images: tf.tensor4d(new Float32Array(img.buffer, img.byteOffset, px * 3), [meta.n, h, w, 3]),
    labels: tf.tensor3d(Int32Array.from(masks), [meta.n, h, w], 'int32'),
  };
  if (meta.recipe !== 'train') {
    const p = await read('teacher.f32', step, 4 * meta.classes!);
    const k = await read('keep.u8', step, 1);
    b.teacherProb = tf.tensor4d(new Float32Array(p.buffer, p.byteOffset, px * meta.classes!), [meta.n, h, w, meta.classes!]);
    b.keep = tf.tensor3d(Float32Array.from(k), [meta.n, h, w]);
  }
  return b;
}
const dispose = (b: TensorBatch) => tf.dispose([b.images, b.labels, b.teacherProb ?? [], b.keep ?? []].flat());
const weights = async () => Object.fromEntries(await Promise.all(model.model.weights.map(async (v) => [v.name, { shape: v.shape, data: Array.from(await v.read().data()) }])));
const optimizerState = async () => Object.fromEntries(await Promise.all((await optimizer.getState()).map(async (s) => [s.name, Array.from(await s.tensor.data())])));

const initial = await weights();
const adam = await optimizerState();
// Gradients at the checkpoint (training mode; the BN statistics this forward updates are put back).
const vars = model.model.trainableWeights.map((v) => v.read() as tf.Variable);
const snapshot = model.model.getWeights().map((t) => tf.clone(t));
const b0 = await batchAt(start);
const { value, grads } = tf.variableGrads(() => objective(model.apply(b0.images, true), b0).total, vars);
const loss0 = (await value.data())[0]!;
const grad0 = Object.fromEntries(await Promise.all(Object.entries(grads).map(async ([name, g]) => [name, Array.from(await g.data())])));
tf.dispose([value, ...Object.values(grads)]);
dispose(b0);
model.model.setWeights(snapshot);
tf.dispose(snapshot);

const step = new TrainStep(model, objective, optimizer);
const losses: number[] = [];
for (let j = 0; j < steps; j++) {
  optimizer.setLearningRate(learningRateAt(start + j, { lr: meta.lr, totalSteps: meta.steps, warmupSteps: meta.warmupSteps ?? undefined }));
  const b = await batchAt(start + j);
  losses.push((await step.run(b)).loss);
  dispose(b);
}
await writeFile(out, JSON.stringify({ replay: dir, checkpoint, start, steps, recipe: meta.recipe, loss: meta.loss, lr: meta.lr, weightDecay: meta.weightDecay, totalSteps: meta.steps, warmupSteps: meta.warmupSteps, model: args.model ?? 'mobile-unet', classes, initial, adam, loss0, grad0, losses, final: await weights() }));
console.log(`wrote ${out}: ${checkpoint} (step ${start}), loss at it ${loss0.toFixed(6)}, ${steps} step(s): ${losses.map((l) => l.toFixed(6)).join(' ')}`);
