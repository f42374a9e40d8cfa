// The training step on the embedded wasm backend: every zoo model trains, its gradients agree with the
// cpu backend, accumulation, the NaN guard, the memory check, and no leaks.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { createModel, listModels } from '../../src/models/registry.js';
import { SoftsegError } from '../../src/errors.js';
import { crossEntropy, hardLabelObjective } from '../../src/losses/index.js';
import { SegOptimizer } from '../../src/engine/optimizer.js';
import { learningRateAt } from '../../src/engine/schedule.js';
import { NonFiniteLossError, TrainStep, checkStepFits, wasmHeapBytes, type TensorBatch } from '../../src/engine/step.js';
import { useBackend } from '../helpers/backend.js';

const SIZE = 32, CLASSES = 3;
/** Widths that keep the suite fast; the architecture (and so the kernels exercised) is unchanged. */
const WIDTH: Record<string, number> = { unet: 0.25, 'unet-lite': 0.5, 'mobile-unet': 1, deeplabv3: 0.5 };

/** A square on a noisy background: class 1 inside, class 2 on a stripe, 0 elsewhere. */
function syntheticBatch(n: number): TensorBatch {
  return tf.tidy(() => {
    const labels = new Int32Array(n * SIZE * SIZE);
    const images = new Float32Array(n * SIZE * SIZE * 3);
    for (let i = 0; i < n; i++) {
      for (let y = 0; y < SIZE; y++) {
        for (let x = 0; x < SIZE; x++) {
          const p = (i * SIZE + y) * SIZE + x;
          const inSquare = x >= 8 + i && x < 20 + i && y >= 6 && y < 18;
          const stripe = y >= 24 && y < 28;
          labels[p] = inSquare ? 1 : stripe ? 2 : 0;
          images[p * 3] = inSquare ? 1 : -0.5 + 0.1 * Math.sin(x * 7 + y);
          images[p * 3 + 1] = stripe ? 1 : -0.5;
          images[p * 3 + 2] = 0.2 * Math.cos(x * y);
        }
      }
    }
    return { images: tf.tensor4d(images, [n, SIZE, SIZE, 3]), labels: tf.tensor3d(labels, [n, SIZE, SIZE], 'int32') };
  });
}

const objective = (out: Parameters<typeof hardLabelObjective>[0], b: TensorBatch) => hardLabelObjective(out, b.labels!);

for (const name of listModels()) {
  test(`${name} trains on wasm: the loss falls, no tensor or wasm-heap leak`, async () => {
    await useBackend('wasm');
    const model = createModel(name, { numClasses: CLASSES, width: WIDTH[name] ?? 0.5, aux: true, seed: 3 });
    const optimizer = new SegOptimizer({ lr: 5e-3 });
    const step = new TrainStep(model, objective, optimizer);
    const batch = syntheticBatch(2);
    const losses: number[] = [];
    let tensors = 0, heap: number | null = 0;
    for (let i = 0; i < 8; i++) {
      const r = await step.run(batch);
      losses.push(r.loss);
      assert.deepEqual(Object.keys(r.parts).sort(), ['ce_aux', 'ce_kl_part', 'ce_main', 'jml_main', 'jml_part']);
      if (i === 2) [tensors, heap] = [tf.memory().numTensors, wasmHeapBytes()];
    }
    assert.ok(losses.at(-1)! < 0.8 * losses[0]!, `loss did not fall: ${losses.map((l) => l.toFixed(3)).join(' ')}`);
    assert.equal(tf.memory().numTensors, tensors);
    assert.equal(wasmHeapBytes(), heap);
    tf.dispose(Object.values(batch));
    optimizer.dispose();
    model.dispose();
  });
}

test('whole-model gradients of every zoo model on wasm agree with the cpu backend', async () => {
  for (const name of listModels()) {
    const grads: Record<string, Float32Array[]> = {};
    for (const backend of ['cpu', 'wasm'] as const) {
      await useBackend(backend);
      const model = createModel(name, { numClasses: CLASSES, width: 0.25, aux: true, seed: 11 });
      const batch = syntheticBatch(2);
      const vars = model.model.trainableWeights.map((w) => w.read() as tf.Variable);
      const { value, grads: g } = tf.variableGrads(() => objective(model.apply(batch.images, true), batch).total, vars);
      grads[backend] = await Promise.all(vars.map((v) => g[v.name]!.data() as Promise<Float32Array>));
      tf.dispose([value, ...Object.values(g), ...Object.values(batch)]);
      model.dispose();
    }
    let worst = 0, scale = 0;
    grads.cpu!.forEach((c, i) => {
      const w = grads.wasm![i]!;
      for (let j = 0; j < c.length; j++) {
        worst = Math.max(worst, Math.abs(c[j]! - w[j]!));
        scale = Math.max(scale, Math.abs(c[j]!));
      }
    });
    assert.ok(worst <= 1e-3 * scale, `${name}: max gradient difference ${worst} vs scale ${scale}`);
  }
});

test('gradient accumulation over micro-batches equals one step on the whole batch (BN-free model, CE)', async () => {
  await useBackend('wasm');
  const build = () => {
    const input = tf.input({ shape: [SIZE, SIZE, 3] });
    const h = tf.layers.conv2d({ filters: 4, kernelSize: 3, padding: 'same', activation: 'relu', kernelInitializer: tf.initializers.glorotUniform({ seed: 5 }) }).apply(input) as tf.SymbolicTensor;
    const out = tf.layers.conv2d({ filters: CLASSES, kernelSize: 1, kernelInitializer: tf.initializers.glorotUniform({ seed: 6 }) }).apply(h) as tf.SymbolicTensor;
    const model = tf.model({ inputs: input, outputs: out });
    return { name: 'tiny', options: { inputSize: null }, sizeMultiple: 1, model, apply: (x: tf.Tensor4D) => ({ main: model.apply(x) as tf.Tensor4D }), dispose: () => model.dispose() } as never;
  };
  const ce = (out: { main: tf.Tensor4D }, b: TensorBatch) => {
    const total = crossEntropy(out.main, b.labels!);
    return { total, parts: {} };
  };
  const batch = syntheticBatch(4);
  const weights: Float32Array[][] = [];
  for (const accumulate of [1, 2, 4]) {
    const model = build() as { model: tf.LayersModel; dispose(): void };
    const step = new TrainStep(model as never, ce as never, new SegOptimizer({ kind: 'sgd', lr: 0.1, weightDecay: 0 }), { accumulate });
    await step.run(batch);
    weights.push(await Promise.all(model.model.getWeights().map((w) => w.data() as Promise<Float32Array>)));
    model.dispose();
  }
  for (const other of [weights[1]!, weights[2]!]) {
    other.forEach((w, i) => w.forEach((v, j) => assert.ok(Math.abs(v - weights[0]![i]![j]!) < 1e-5)));
  }
  tf.dispose(Object.values(batch));
});

test('a non-finite loss stops with a clear error and leaves the weights untouched', async () => {
  await useBackend('wasm');
  const model = createModel('mobile-unet', { numClasses: CLASSES, seed: 1 });
  const step = new TrainStep(model, (out) => ({ total: tf.div(tf.sum(out.main), 0) as tf.Scalar, parts: {} }), new SegOptimizer());
  const batch = syntheticBatch(2);
  const before = await model.model.getWeights()[0]!.data();
  await assert.rejects(step.run(batch), (e: unknown) => e instanceof NonFiniteLossError && /the loss became (Infinity|NaN)/.test(e.message));
  assert.deepEqual(await model.model.getWeights()[0]!.data(), before);
  tf.dispose(Object.values(batch));
  model.dispose();
});

test('a step that cannot fit in the wasm heap is refused with the batch, size and a way out', async () => {
  await useBackend('wasm');
  const model = createModel('unet', { numClasses: 21 });
  assert.throws(() => checkStepFits(model, 8, 256, 256), (e: unknown) =>
    e instanceof SoftsegError && /unet training step on 8 × 256×256 needs about [\d.]+ GB/.test(e.message) && /--accumulate \d+/.test(e.hint ?? ''));
  assert.doesNotThrow(() => checkStepFits(model, 8, 64, 64));
  // Accumulation shrinks the micro-batch until it fits; too large an image is refused whatever the batch.
  assert.doesNotThrow(() => checkStepFits(model, 8, 256, 256, 8));
  assert.throws(() => checkStepFits(model, 1, 1024, 1024), (e: unknown) => e instanceof SoftsegError && /smaller --crop/.test(e.hint ?? ''));
  model.dispose();
});

test('learning-rate schedule: linear warm-up then poly decay to zero', () => {
  const c = { lr: 0.01, totalSteps: 100, warmupSteps: 10 };
  assert.ok(Math.abs(learningRateAt(0, c) - 0.001) < 1e-12);
  assert.ok(Math.abs(learningRateAt(10, c) - 0.01) < 1e-12);
  assert.ok(learningRateAt(55, c) < 0.01 && learningRateAt(55, c) > 0);
  assert.equal(learningRateAt(100, c), 0);
});
