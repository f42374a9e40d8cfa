// Half-pixel bilinear upsampling from stock layers (models/upsample.ts) is PyTorch's F.interpolate(align_corners=False)
// — TF's resizeBilinear with halfPixelCenters — in value and gradient, edges included; a zoo model built with it
// trains only its own weights, names only stock layer classes and reloads with identical outputs.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { createModel } from '../../src/models/registry.js';
import { loadSegModel, saveModel } from '../../src/models/io.js';
import { halfPixelTaps, halfPixelUpsample } from '../../src/models/upsample.js';
import { useBackend } from '../helpers/backend.js';

/** The [n·f, n] matrix of half-pixel bilinear ×f in one dimension: output i reads (i + ½)/f − ½, clamped to [0, n − 1]. */
function interpolation(n: number, f: number): number[][] {
  return Array.from({ length: n * f }, (_, i) => {
    const row = new Array<number>(n).fill(0);
    const s = Math.min(n - 1, Math.max(0, (i + 0.5) / f - 0.5));
    const j = Math.floor(s), t = s - j;
    row[j]! += 1 - t;
    if (t > 0) row[j + 1]! += t;
    return row;
  });
}

const maxAbs = (a: tf.Tensor, b: tf.Tensor) => tf.tidy(() => tf.max(tf.abs(tf.sub(a, b))).dataSync()[0]!);

describe('half-pixel upsampling from stock layers', () => {
  it('filters: h sums to 1, its edge normaliser sums to 1 inside, and both are symmetric', () => {
    for (const f of [2, 4, 8, 16]) {
      const { h, norm } = halfPixelTaps(f);
      assert.equal(h.length, f + 1);
      assert.ok(Math.abs(h.reduce((a, b) => a + b, 0) - 1) < 1e-12 && Math.abs(norm.reduce((a, b) => a + b, 0) - 1) < 1e-12, `f ${f}`);
      assert.deepEqual(h, [...h].reverse());
      assert.deepEqual(norm, [...norm].reverse());
    }
    assert.deepEqual(halfPixelTaps(2).h, [0.25, 0.5, 0.25]);
    assert.throws(() => halfPixelTaps(3), /even factor/);
  });

  it('equals resizeBilinear(halfPixelCenters) in value and in gradient, edges and 1-pixel inputs included', async () => {
    await useBackend('wasm');
    for (const [f, hh, ww, c] of [[2, 5, 7, 3], [4, 3, 2, 2], [8, 6, 5, 11], [8, 1, 3, 1]] as const) {
      const input = tf.input({ shape: [null, null, c] });
      const model = tf.model({ inputs: input, outputs: halfPixelUpsample(input, f, 'up') });
      const tensors = tf.memory().numTensors;
      tf.tidy(() => {
        const x = tf.randomNormal([2, hh, ww, c], 0, 1, 'float32', f + hh);
        const ref = tf.image.resizeBilinear(x as tf.Tensor4D, [hh * f, ww * f], false, true);
        const got = model.apply(x) as tf.Tensor;
        assert.deepEqual(got.shape, ref.shape);
        const scale = tf.max(tf.abs(ref)).dataSync()[0]!;
        assert.ok(maxAbs(got, ref) <= 1e-5 * scale, `×${f} ${hh}×${ww}: value differs by ${maxAbs(got, ref)}`);
        // The gradient of a random linear read-out w·up(x) is Aₕᵀ W A_w per image and channel. (Not TF.js's own
        // resizeBilinear gradient: in TF.js 4.22 it ignores halfPixelCenters — it disagrees with finite differences.)
        const w = tf.randomNormal(ref.shape, 0, 1, 'float32', 7);
        const gGot = tf.grad((t: tf.Tensor) => tf.sum(tf.mul(model.apply(t) as tf.Tensor, w)))(x);
        const [ah, aw] = [tf.tensor2d(interpolation(hh, f)), tf.tensor2d(interpolation(ww, f))];
        const perChannel = tf.transpose(w, [0, 3, 1, 2]).reshape([2 * c, hh * f, ww * f]);
        const gRef = tf.matMul(tf.matMul(tf.tile(ah.expandDims(0), [2 * c, 1, 1]), perChannel, true), tf.tile(aw.expandDims(0), [2 * c, 1, 1]))
          .reshape([2, c, hh, ww]).transpose([0, 2, 3, 1]);
        assert.ok(maxAbs(gGot, gRef) <= 1e-4 * tf.max(tf.abs(gRef)).dataSync()[0]!, `×${f} ${hh}×${ww}: gradient differs by ${maxAbs(gGot, gRef)}`);
      });
      assert.equal(tf.memory().numTensors, tensors, 'no tensor leaks');
      assert.equal(model.trainableWeights.length, 0, 'every filter is fixed');
      model.dispose();
    }
  });

  it('a zoo model with --upsampling half-pixel: fixed filters outside the trainable weights, stock layers only, identical after save and load', async () => {
    await useBackend('wasm');
    const m = createModel('mobile-unet', { numClasses: 5, width: 0.25, seed: 3, aux: true, upsampling: 'half-pixel' });
    const aligned = createModel('mobile-unet', { numClasses: 5, width: 0.25, seed: 3, aux: true });
    const trained = (s: typeof m) => s.model.layers.filter((l) => l.trainableWeights.length > 0).map((l) => `${l.name}:${l.trainableWeights.length}`);
    assert.deepEqual(trained(m), trained(aligned), 'the same trainable weights as the aligned model');
    assert.equal(m.options.upsampling, 'half-pixel');
    const dir = await mkdtemp(join(tmpdir(), 'softseg-upsample-'));
    await saveModel(m, dir);
    const classes = new Set((JSON.parse(await readFile(join(dir, 'model.json'), 'utf8')).modelTopology.config.layers as { class_name: string }[]).map((l) => l.class_name));
    for (const c of classes) assert.ok(!c.startsWith('Softseg'), `${c} is a stock layer`);
    assert.ok(classes.has('Multiply') && classes.has('DepthwiseConv2D'));
    const loaded = await loadSegModel(dir);
    assert.equal(loaded.options.upsampling, 'half-pixel');
    tf.tidy(() => {
      const x = tf.randomNormal([1, 32, 40, 3], 0, 1, 'float32', 1) as tf.Tensor4D;
      const [a, b] = [m.apply(x, false), loaded.apply(x, false)];
      assert.equal(maxAbs(a.main, b.main), 0);
      assert.equal(maxAbs(a.aux!, b.aux!), 0);
      // The main output is the stride-8 logits upsampled half-pixel.
      const logits = tf.model({ inputs: m.model.inputs, outputs: m.model.getLayer('logits').output as tf.SymbolicTensor }).predict(x) as tf.Tensor4D;
      const expected = tf.image.resizeBilinear(logits, [32, 40], false, true);
      assert.ok(maxAbs(a.main, expected) <= 1e-5 * tf.max(tf.abs(expected)).dataSync()[0]!);
    });
    for (const s of [m, aligned, loaded]) s.dispose();
  });
});
