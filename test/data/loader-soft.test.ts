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
