// Whole-image inference by sliding window: a single tile equals the one-pass forward, tiles are averaged where they
// overlap, and memory stays a few image-sized tensors however many tiles there are (a 3000×2000 photo ran out of
// the wasm heap when every tile's image-sized sum was kept until the end).
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { createModel } from '../../src/models/registry.js';
import { predictLogits } from '../../src/inference/predict.js';
import type { SegModel } from '../../src/models/base.js';
import { Random } from '../../src/random.js';
import { useBackend } from '../helpers/backend.js';

let model: SegModel;
const C = 3;

function image(h: number, w: number, seed: number): Float32Array {
  const rng = new Random(seed);
  return Float32Array.from({ length: h * w * 3 }, () => rng.normal());
}

before(async () => {
  await useBackend('wasm');
  model = createModel('mobile-unet', { numClasses: C, width: 0.25, seed: 1 });
});
after(() => model.dispose());

describe('predictLogits', () => {
  it('one tile covering the image gives the one-pass logits', () => {
    const [h, w] = [40, 56];
    const x = image(h, w, 2);
    const whole = predictLogits(model, x, h, w);
    const tiled = predictLogits(model, x, h, w, { maxPixels: 100, tileSize: 64 });
    const diff = tf.tidy(() => tf.max(tf.abs(tf.sub(whole, tiled))).dataSync()[0]!);
    assert.ok(diff < 1e-6, `max |Δ| ${diff}`);
    tf.dispose([whole, tiled]);
  });

  it('overlapping tiles: the result has the image\'s size, finite, between the tiles\' own values; no tensor is left behind', () => {
    const [h, w] = [72, 100];
    const x = image(h, w, 3);
    const before = tf.memory().numTensors;
    const tiled = predictLogits(model, x, h, w, { maxPixels: 100, tileSize: 64 });
    assert.deepEqual(tiled.shape, [h, w, C]);
    assert.equal(tf.memory().numTensors, before + 1, 'only the result');
    const v = tiled.dataSync();
    assert.ok(v.every(Number.isFinite));
    // The top-left corner is covered by the first tile only: it equals that tile's own forward pass.
    const corner = predictLogits(model, x.slice(0, 64 * 3 * w).filter((_, i) => (i / 3 | 0) % w < 64), 64, 64);
    const d = tf.tidy(() => tf.max(tf.abs(tf.sub(tf.slice(tiled, [0, 0, 0], [20, 20, C]), tf.slice(corner, [0, 0, 0], [20, 20, C])))).dataSync()[0]!);
    assert.ok(d < 1e-5, `corner max |Δ| ${d}`);
    tf.dispose([tiled, corner]);
  });

  it('peak memory is a few image-sized tensors, not two per tile', async () => {
    const [h, w] = [448, 640]; // 7 × 10 = 70 tiles of 64 with stride 43
    const x = image(h, w, 4);
    const imageBytes = h * w * C * 4;
    const info = await tf.profile(() => { predictLogits(model, x, h, w, { maxPixels: 100, tileSize: 64 }).dispose(); });
    assert.ok(info.peakBytes < 12 * imageBytes, `peak ${(info.peakBytes / 2 ** 20).toFixed(1)} MiB, an image-sized tensor ${(imageBytes / 2 ** 20).toFixed(1)} MiB`);
  });
});
