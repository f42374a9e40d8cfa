// Implementation check of softseg's training step against the PyTorch twin (bench/parity/twin.py):
// softseg trains a seeded zoo model for a few steps on fixed random batches and writes the initial
// weights, the batches, the first step's gradients, every step's loss and the final weights to a JSON
// file; `twin.py check` loads the same weights into its mirror model, runs the same steps and prints
// the relative differences. Same weights + same batches + same step → any difference beyond float
// noise is an implementation difference (layer semantics, BN, loss, AdamW), not a choice.
// --recipe distill|ssl checks those objectives the same way: the second half of each batch is unlabeled
// (ignore label), every image carries random teacher probabilities, and keep marks the teacher-term pixels as
// the recipes build it (distill: non-ignored labeled pixels and all unlabeled ones; ssl: unlabeled pixels only).
//   node --import tsx bench/parity/trajectory.ts --out /tmp/traj.json [--model mobile-unet --steps 8 --size 32 --batch 4 --recipe train|distill|ssl]
import { writeFile } from 'node:fs/promises';
import * as tf from '@tensorflow/tfjs';
import { createModel } from '../../src/models/registry.js';
import { initBackend } from '../../src/backends/select.js';
import { SegOptimizer } from '../../src/engine/optimizer.js';
import { TrainStep } from '../../src/engine/step.js';
import { Random } from '../../src/random.js';
import { supervisedObjective, TRAIN_DEFAULTS } from '../../src/recipes/supervised.js';
import { DISTILL_DEFAULTS, distillObjective } from '../../src/recipes/distill.js';
import { SSL_DEFAULTS, sslObjective } from '../../src/recipes/ssl.js';

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1]! : fallback;
}

const modelName = arg('model', 'mobile-unet');
const steps = Number(arg('steps', '8'));
const size = Number(arg('size', '32'));
const batch = Number(arg('batch', '4'));
const classes = Number(arg('classes', '11'));
const loss = arg('loss', 'ce+jml') as 'ce' | 'ce+jml';
const lr = Number(arg('lr', '1e-3'));
const wd = Number(arg('weight-decay', '1e-2'));
const out = arg('out', '/tmp/traj.json');
const recipe = arg('recipe', 'train') as 'train' | 'distill' | 'ssl';

await initBackend({ backend: (arg('backend', 'wasm') as 'wasm' | 'cpu') });
const model = createModel(modelName, { numClasses: classes, seed: 7 });
const rng = new Random(3);
const batches = Array.from({ length: steps }, () => {
  const images = Float32Array.from({ length: batch * size * size * 3 }, () => rng.normal());
  // Blocky labels (4×4 cells) with ~10% ignore, so every class is present and boundaries exist.
  const labels = new Int32Array(batch * size * size);
  for (let n = 0; n < batch; n++) {
    const cell = Array.from({ length: (size / 4) ** 2 }, () => (rng.next() < 0.1 ? 255 : rng.int(classes)));
    for (let y = 0; y < size; y++) for (let x = 0; x < size; x++) labels[(n * size + y) * size + x] = cell[(y >> 2) * (size / 4) + (x >> 2)]!;
  }
  if (recipe === 'train') return { images, labels };
  const unlabeledFrom = Math.ceil(batch / 2) * size * size;
  labels.fill(255, unlabeledFrom);
  // teacher probabilities: softmax of 2·N(0,1) logits per pixel
  const teacherProb = new Float32Array(batch * size * size * classes);
  for (let p = 0; p < batch * size * size; p++) {
    const z = Array.from({ length: classes }, () => Math.exp(2 * rng.normal()));
    const sum = z.reduce((a, b) => a + b, 0);
    for (let c = 0; c < classes; c++) teacherProb[p * classes + c] = z[c]! / sum;
  }
  const keep = new Float32Array(batch * size * size);
  for (let p = 0; p < keep.length; p++) keep[p] = p >= unlabeledFrom ? 1 : recipe === 'distill' && labels[p] !== 255 ? 1 : 0;
  return { images, labels, teacherProb, keep };
});
const weights = async () => Object.fromEntries(await Promise.all(model.model.weights.map(async (w) => [w.name, { shape: w.shape, data: Array.from(await w.read().data()) }])));
const initial = await weights();

const objective = recipe === 'distill' ? distillObjective({ ...DISTILL_DEFAULTS, data: 'x', out: 'x' }, 255)
  : recipe === 'ssl' ? sslObjective({ ...SSL_DEFAULTS, data: 'x', out: 'x' }, 255)
  : supervisedObjective({ ...TRAIN_DEFAULTS, loss, data: 'x', out: 'x' }, 255);
const toBatch = (b: (typeof batches)[number]) => ({
  images: tf.tensor4d(b.images, [batch, size, size, 3]),
  labels: tf.tensor3d(b.labels, [batch, size, size], 'int32'),
  ...(b.teacherProb ? { teacherProb: tf.tensor4d(b.teacherProb, [batch, size, size, classes]), keep: tf.tensor3d(b.keep!, [batch, size, size]) } : {}),
});

// First-step gradients (training mode; the BN moving averages this call updates are restored afterwards).
const vars = model.model.trainableWeights.map((w) => w.read() as tf.Variable);
const snapshot = model.model.getWeights().map((t) => tf.clone(t));
const b0 = toBatch(batches[0]!);
const { grads } = tf.variableGrads(() => objective(model.apply(b0.images, true), b0).total, vars);
const grad0 = Object.fromEntries(await Promise.all(Object.entries(grads).map(async ([name, g]) => [name, Array.from(await g.data())])));
tf.dispose([...Object.values(grads), b0.images, b0.labels]);
model.model.setWeights(snapshot);
tf.dispose(snapshot);

const optimizer = new SegOptimizer({ lr, weightDecay: wd });
const step = new TrainStep(model, objective, optimizer);
const losses: number[] = [];
for (const b of batches) {
  const t = toBatch(b);
  losses.push((await step.run(t)).loss);
  tf.dispose([t.images, t.labels, t.teacherProb ?? [], t.keep ?? []].flat());
}
const final = await weights();
await writeFile(out, JSON.stringify({
  model: modelName, recipe, steps, size, batch, classes, loss, lr, weightDecay: wd, backend: tf.getBackend(),
  initial, final, grad0, losses,
  batches: batches.map((b) => ({ images: Array.from(b.images), labels: Array.from(b.labels), ...(b.teacherProb ? { teacherProb: Array.from(b.teacherProb), keep: Array.from(b.keep!) } : {}) })),
}));
console.log(`wrote ${out}: losses ${losses.map((l) => l.toFixed(5)).join(' ')}`);
