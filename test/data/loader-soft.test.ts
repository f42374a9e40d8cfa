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
import { warpSoft, type WarpSpec } from '../../src/augment/geometric.js';
import { temperProbs } from '../../src/cache/fidelity.js';
import { readSoftCrop } from '../../src/cache/reader.js';
import { hashImageFile, openCache } from '../../src/cache/store.js';

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

test('softCache: samples prepared on a worker equal those prepared here, and equal the soft hook with the same entries; misses go to onMiss', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'softseg-loader-softcache-'));
  await generateShapesDataset(join(dir, 'data'), { count: 5, size: 20, numClasses: 3, seed: 2 });
  const ds = await openDataset(join(dir, 'data'));
  const C = 3, FP = '7e'.repeat(32);
  const cache = openCache(join(dir, 'cache'));
  // entries for all but the last image: a smooth, position-dependent map, so any misalignment shows
  const probsOf = (w: number, h: number, v: number) => {
    const probs = new Float32Array(w * h * C);
    for (let p = 0; p < w * h; p++) {
      const x = p % w, y = Math.floor(p / w);
      probs[p * C] = 0.1 + 0.8 * (x / w); probs[p * C + 1] = 0.1 + 0.5 * (y / h); probs[p * C + 2] = 0.1 + v;
    }
    return probs;
  };
  for (const item of ds.items.slice(0, -1)) {
    await cache.put(FP, await hashImageFile(item.image), probsOf(20, 20, 0.2), { width: 20, height: 20, numClasses: C, mode: 'soft', k: 3 });
  }
  const missed: string[] = [];
  const softCache = {
    dir: cache.dir, fingerprint: FP, temperature: 2,
    onMiss: async (item: { image: string; id: string }, _index: number, geometry: WarpSpec, reason: string) => {
      missed.push(`${item.id}:${reason}`);
      return { probs: warpSoft(temperProbsF32(probsOf(20, 20, 0.2), C, 2), 20, 20, geometry), classes: C };
    },
  };
  const options = { batchSize: 2, crop: 24, seed: 7, augment: { scale: [0.6, 1.6] as [number, number], flip: 0.5 } };
  const here = createLoader(ds, { ...options, softCache });
  const worker = createLoader(ds, { ...options, softCache, workers: 1 });
  const hook = createLoader(ds, {
    ...options,
    soft: async (item) => {
      const hit = await readSoftCrop({ dir: cache.dir, fingerprint: FP, imageHash: await hashImageFile(item.image), temperature: 2 });
      return { probs: hit ? hit.soft : temperProbsF32(probsOf(20, 20, 0.2), C, 2), classes: C };
    },
  });
  for (let s = 0; s < 5; s++) {
    const [x, y, z] = [await here.next(), await worker.next(), await hook.next()];
    for (const b of [y, z]) {
      assert.deepEqual(b.images, x.images);
      assert.deepEqual(b.masks, x.masks);
      assert.deepEqual(b.keep, x.keep);
      assert.equal(b.classes, C);
    }
    assert.deepEqual(y.teacherProb, x.teacherProb);
    let worst = 0;
    for (let i = 0; i < x.teacherProb!.length; i++) worst = Math.max(worst, Math.abs(x.teacherProb![i]! - z.teacherProb![i]!));
    assert.ok(worst < 1e-5, `cached crops vs the soft hook: ${worst}`);
  }
  const last = ds.items[ds.items.length - 1]!.id;
  assert.ok(missed.length > 0 && missed.every((m) => m === `${last}:miss`), missed.join(' '));
  await Promise.all([here.close(), worker.close(), hook.close()]);
});

/** softmax(ln p / T) as float32. */
function temperProbsF32(p: Float32Array, C: number, T: number): Float32Array {
  return Float32Array.from(temperProbs(p, C, T));
}
