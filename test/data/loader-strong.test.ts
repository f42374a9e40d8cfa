// The loader's second, strongly augmented view (the semi-supervised student view): same geometry as the weak
// view, different photometric jitter; asking for it leaves the weak view unchanged. `keepMask` gives keep
// without soft labels.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openDataset } from '../../src/data/dataset.js';
import { createLoader } from '../../src/data/loader.js';
import { generateShapesDataset } from '../../src/data/synthetic.js';
import { augmentSample } from '../../src/augment/augment.js';
import { Random } from '../../src/random.js';

test('strong view: same crop and flip as the weak view (a per-image brightness factor apart), weak view unchanged; keepMask without soft', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'softseg-loader-strong-'));
  await generateShapesDataset(dir, { count: 4, size: 24, numClasses: 3, seed: 5, unlabeled: true });
  const ds = await openDataset(dir, { labeled: false, numClasses: 3 });
  const common = { batchSize: 2, crop: 32, seed: 3, augment: { scale: [0.8, 1.5] as [number, number], flip: 0.5 }, normalize: false as const };
  const plain = createLoader(ds, common);
  const two = createLoader(ds, { ...common, strongView: { brightness: 0.5 }, keepMask: true });
  const plane = 32 * 32;
  for (let s = 0; s < 3; s++) {
    const [a, b] = await Promise.all([plain.next(), two.next()]);
    assert.deepEqual(b.images, a.images, 'the weak view is what the loader gave without a strong view');
    assert.equal(a.strongImages, undefined);
    assert.equal(b.strongImages!.length, b.images.length);
    assert.equal(b.keep!.length, b.n * plane);
    for (let i = 0; i < b.n; i++) {
      // strong = clamp(f · weak) with one factor f per image, on the same pixels.
      let f: number | null = null;
      for (let p = 0; p < plane; p++) {
        const k = b.keep![i * plane + p]!;
        for (let c = 0; c < 3; c++) {
          const o = (i * plane + p) * 3 + c;
          const weak = b.images[o]!, strong = b.strongImages![o]!;
          if (!k) {
            assert.equal(strong, 0, 'padding stays padding');
            assert.equal(weak, 0);
            continue;
          }
          if (weak > 0.05 && strong < 0.999) {
            f ??= strong / weak;
            assert.ok(Math.abs(strong - f * weak) < 1e-4, `image ${i} pixel ${p}: ${strong} vs ${f} · ${weak}`);
          }
        }
      }
      assert.ok(f !== null && Math.abs(f - 1) > 1e-3, 'the strong view is jittered');
    }
  }
  await Promise.all([plain.close(), two.close()]);
});

test('augmentSample with strongView draws the weak view exactly as without it', () => {
  const img = new Float32Array(10 * 12 * 3).map((_, i) => (i % 97) / 97);
  const opts = { crop: 8, brightness: 0.3, contrast: 0.3, saturation: 0.3 };
  const a = augmentSample({ image: img, width: 12, height: 10 }, new Random(9), opts);
  const b = augmentSample({ image: img, width: 12, height: 10 }, new Random(9), { ...opts, strongView: { grayscale: 1, blur: { p: 1, sigma: [1, 1] } } });
  assert.deepEqual(b.image, a.image);
  assert.equal(a.strongImage, undefined);
  assert.equal(b.strongImage!.length, a.image.length);
  assert.notDeepEqual(b.strongImage, b.image);
});
