// Soft labels (e.g. cached teacher probabilities) travel through the loader with the same augmentation as
// the image and mask, and padding is kept out of the keep mask.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openDataset } from '../../src/data/dataset.js';
import { decodeMask } from '../../src/data/decode.js';
import { createLoader } from '../../src/data/loader.js';
import { generateShapesDataset } from '../../src/data/synthetic.js';
import { warpSoft } from '../../src/augment/geometric.js';

test('soft maps get the same flip/crop as the mask; keep is 0 exactly on padding', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'softseg-loader-soft-'));
  await generateShapesDataset(dir, { count: 6, size: 24, numClasses: 4, seed: 9 });
  const ds = await openDataset(dir);
  const C = ds.numClasses;
  const loader = createLoader(ds, {
    batchSize: 3, crop: 32, seed: 4, augment: { scale: false, flip: 0.5 },
    // One-hot of the ground truth as the "teacher": after augmentation it must still equal the mask.
    soft: async (item) => {
      const m = await decodeMask(item.mask!);
      const probs = new Float32Array(m.data.length * C);
      m.data.forEach((v, i) => (probs[i * C + v] = 1));
      return { probs, classes: C };
    },
  });
  for (let s = 0; s < 4; s++) {
    const b = await loader.next();
    assert.equal(b.classes, C);
    const plane = 32 * 32;
    assert.equal(b.teacherProb!.length, b.n * plane * C);
    for (let p = 0; p < b.n * plane; p++) {
      const label = b.masks![p]!;
      if (label === ds.ignoreIndex) {
        assert.equal(b.keep![p], 0, 'padding is out of the keep mask');
        for (let c = 0; c < C; c++) assert.equal(b.teacherProb![p * C + c], 0);
      } else {
        assert.equal(b.keep![p], 1);
        for (let c = 0; c < C; c++) assert.equal(b.teacherProb![p * C + c], c === label ? 1 : 0);
      }
    }
  }
  await loader.close();
});

test('softCrop (the provider resamples through the drawn geometry) gives the same batches as soft', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'softseg-loader-softcrop-'));
  await generateShapesDataset(dir, { count: 5, size: 20, numClasses: 3, seed: 2 });
  const ds = await openDataset(dir);
  const C = 3;
  // a smooth, position-dependent map, so any misalignment shows
  const full = async (item: { mask?: string }) => {
    const m = await decodeMask(item.mask!);
    const probs = new Float32Array(m.data.length * C);
    for (let p = 0; p < m.data.length; p++) {
      const x = p % m.width, y = Math.floor(p / m.width);
      probs[p * C] = x / m.width; probs[p * C + 1] = y / m.height; probs[p * C + 2] = m.data[p]! / 3;
    }
    return { probs, width: m.width, height: m.height };
  };
  const options = { batchSize: 2, crop: 24, seed: 7, augment: { scale: [0.6, 1.6] as [number, number], flip: 0.5 } };
  const a = createLoader(ds, { ...options, soft: async (item) => ({ probs: (await full(item)).probs, classes: C }) });
  const b = createLoader(ds, {
    ...options,
    softCrop: async (item, _index, geometry, size) => {
      const f = await full(item);
      assert.deepEqual([f.width, f.height], [size.width, size.height]);
      return { probs: warpSoft(f.probs, f.width, f.height, geometry), classes: C };
    },
  });
  for (let s = 0; s < 5; s++) {
    const [x, y] = [await a.next(), await b.next()];
    assert.deepEqual(y.images, x.images);
    assert.deepEqual(y.masks, x.masks);
    assert.deepEqual(y.keep, x.keep);
    assert.deepEqual(y.teacherProb, x.teacherProb);
    assert.equal(y.classes, C);
  }
  await Promise.all([a.close(), b.close()]);
});
