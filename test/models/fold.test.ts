// The inference form of zoo models: batch norm folded into the convolution before it gives the same outputs
// (main and aux) as the model in inference mode, leaves the model it came from as it was, and is what
// openTrainedModel gives eval, predict and teachers (not --init).
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { foldBatchNorm } from '../../src/models/fold.js';
import { createModel, listModels } from '../../src/models/registry.js';
import { saveModel } from '../../src/models/io.js';
import { openTrainedModel } from '../../src/inference/model-dir.js';
import type { SegModel } from '../../src/models/base.js';
import { useBackend } from '../helpers/backend.js';

/** Batch-norm statistics and affine weights away from their initial 1/0, so that folding them is not a no-op. */
function randomiseBatchNorms(seg: SegModel, seed: number): void {
  let s = seed;
  for (const layer of seg.model.layers) {
    if (layer.getClassName() !== 'BatchNormalization') continue;
    const shapes = layer.getWeights().map((w) => w.shape);
    const w = [tf.randomUniform(shapes[0]!, 0.5, 1.5, 'float32', s++), tf.randomNormal(shapes[1]!, 0, 0.2, 'float32', s++),
      tf.randomNormal(shapes[2]!, 0, 0.2, 'float32', s++), tf.randomUniform(shapes[3]!, 0.3, 3, 'float32', s++)];
    layer.setWeights(w);
    tf.dispose(w);
  }
}

const countBatchNorms = (seg: SegModel) => seg.model.layers.filter((l) => l.getClassName() === 'BatchNormalization').length;

function relativeError(a: tf.Tensor, b: tf.Tensor): number {
  return tf.tidy(() => tf.max(tf.abs(tf.sub(a, b))).dataSync()[0]! / tf.max(tf.abs(a)).dataSync()[0]!);
}

let tmp = '';
before(async () => {
  await useBackend('wasm');
  tmp = await mkdtemp(join(tmpdir(), 'softseg-fold-'));
});
after(async () => {
  await rm(tmp, { recursive: true, force: true });
});

describe('foldBatchNorm', () => {
  for (const arch of listModels()) {
    it(`${arch}: main and aux outputs equal the model's in inference mode (1e-5 relative); the model is left as it was`, async () => {
      const seg = createModel(arch, { numClasses: 4, aux: true, seed: 3 });
      randomiseBatchNorms(seg, 10);
      const x = tf.randomNormal([2, 64, 64, 3], 0, 1, 'float32', 7) as tf.Tensor4D;
      const before = tf.tidy(() => seg.apply(x, false));
      const tensorsBefore = tf.memory().numTensors;
      const folded = await foldBatchNorm(seg);
      assert.notEqual(folded, seg);
      assert.ok(countBatchNorms(folded) < countBatchNorms(seg), `${countBatchNorms(seg)} → ${countBatchNorms(folded)} batch norms`);
      const got = tf.tidy(() => folded.apply(x, false));
      assert.ok(relativeError(before.main, got.main) < 1e-5, `main: ${relativeError(before.main, got.main)}`);
      assert.ok(got.aux && relativeError(before.aux!, got.aux) < 1e-5, 'aux');
      const again = tf.tidy(() => seg.apply(x, false));
      assert.equal(relativeError(before.main, again.main), 0, 'the original model still computes what it did');
      tf.dispose([got.main, got.aux!, again.main, again.aux!]);
      folded.dispose();
      assert.equal(tf.memory().numTensors, tensorsBefore, 'the folded model disposes everything it made');
      tf.dispose([x, before.main, before.aux!]);
      seg.dispose();
    });
  }

  it('a model with nothing to fold is returned as it is', async () => {
    const input = tf.input({ shape: [8, 8, 3] });
    const output = tf.layers.conv2d({ filters: 2, kernelSize: 1 }).apply(input) as tf.SymbolicTensor;
    const plain = { name: 'plain', options: {} as SegModel['options'], sizeMultiple: 1, model: tf.model({ inputs: input, outputs: output }), apply: () => { throw new Error('unused'); }, dispose() { this.model.dispose(); } };
    assert.equal(await foldBatchNorm(plain as SegModel), plain);
    plain.dispose();
  });
});

describe('openTrainedModel', () => {
  it('gives the folded form with { inference: true } (eval, predict, teachers) and the trainable one otherwise (--init)', async () => {
    const seg = createModel('mobile-unet', { numClasses: 3, seed: 4 });
    randomiseBatchNorms(seg, 20);
    await saveModel(seg, join(tmp, 'm'));
    const x = tf.randomNormal([1, 32, 32, 3], 0, 1, 'float32', 9) as tf.Tensor4D;
    const trainable = await openTrainedModel(join(tmp, 'm'));
    const inference = await openTrainedModel(join(tmp, 'm'), 'model', { inference: true });
    assert.equal(countBatchNorms(trainable.model), countBatchNorms(seg));
    assert.equal(countBatchNorms(inference.model), 0);
    const [a, b] = [trainable, inference].map((t) => tf.tidy(() => t.model.apply(x, false).main));
    assert.ok(relativeError(a!, b!) < 1e-5);
    tf.dispose([a!, b!, x]);
    for (const m of [trainable.model, inference.model, seg]) m.dispose();
  });
});
