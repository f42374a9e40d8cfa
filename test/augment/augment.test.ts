// Joint augmentation: image, mask, soft maps and keep mask stay aligned pixel-exactly through scale, crop, pad
// and flip (checked on a pattern whose image channels encode the source x, y); photometric ops touch the
// image only; padding is ignore / keep 0; same generator state → same result; the eval transform pads to a
// size multiple.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  augmentPreset,
  augmentSample,
  evalTransform,
  gaussianBlur,
  IMAGENET_NORMALIZATION,
  normalizeImage,
  type AugmentOptions,
  type Sample,
  warpSample,
} from '../../src/augment/index.js';
import { Random } from '../../src/random.js';

const W = 40, H = 30;

/** Image channels: (x, y, 0) in pixels; mask: x or y; soft: (x, y); keep: 1 except a marked column. */
function pattern(maskAxis: 'x' | 'y'): Sample {
  const image = new Float32Array(W * H * 3), soft = new Float32Array(W * H * 2);
  const mask = new Uint8Array(W * H), keep = new Uint8Array(W * H);
  for (let y = 0; y < H; y++) {
    for (let x = 0; x < W; x++) {
      const i = y * W + x;
      image[i * 3] = x;
      image[i * 3 + 1] = y;
      soft[i * 2] = x;
      soft[i * 2 + 1] = y;
      mask[i] = maskAxis === 'x' ? x : y;
      keep[i] = x === 7 ? 0 : 1;
    }
  }
  return { image, mask, soft, keep, width: W, height: H };
}

const geometric = (crop: number | [number, number], extra: Partial<AugmentOptions> = {}): AugmentOptions => ({
  crop,
  scale: [0.5, 2],
  flip: 0.5,
  normalize: false,
  ...extra,
});

describe('augmentSample geometry', () => {
  it('keeps image, mask, soft and keep aligned through scale, crop, pad and flip', () => {
    let padded = 0, flipped = 0, pixels = 0;
    for (const axis of ['x', 'y'] as const) {
      const sample = pattern(axis);
      for (let seed = 0; seed < 60; seed++) {
        const out = augmentSample(sample, new Random(seed), geometric([36, 44]));
        assert.deepEqual([out.width, out.height], [44, 36]);
        const { valid } = out;
        for (let y = 0; y < 36; y++) {
          for (let x = 0; x < 44; x++) {
            const i = y * 44 + x;
            const inside = x >= valid.x0 && x < valid.x1 && y >= valid.y0 && y < valid.y1;
            if (!inside) {
              padded++;
              assert.equal(out.mask![i], 255);
              assert.equal(out.keep![i], 0);
              assert.deepEqual([out.soft![i * 2], out.soft![i * 2 + 1]], [0, 0]);
              assert.deepEqual([...out.image.subarray(i * 3, i * 3 + 3)], [0, 0, 0]);
              continue;
            }
            pixels++;
            const ix = out.image[i * 3]!, iy = out.image[i * 3 + 1]!;
            // Soft maps use the very same bilinear weights as the image.
            assert.ok(Math.abs(out.soft![i * 2]! - ix) < 1e-4 && Math.abs(out.soft![i * 2 + 1]! - iy) < 1e-4);
            // The mask (nearest) is the source pixel closest to the image's (bilinear) source coordinate.
            const m = out.mask![i]!;
            const coord = axis === 'x' ? ix : iy;
            assert.ok(Math.abs(m - coord) <= 0.5 + 1e-4, `seed ${seed} (${x}, ${y}): mask ${m}, image ${coord}`);
            if (axis === 'x') assert.equal(out.keep![i], m === 7 ? 0 : 1);
          }
        }
        if (valid.x1 - valid.x0 < 44 || valid.y1 - valid.y0 < 36) padded++;
        const row = Math.floor((valid.y0 + valid.y1) / 2) * 44;
        if (valid.x1 - valid.x0 > 1 && out.image[(row + valid.x0) * 3]! > out.image[(row + valid.x1 - 1) * 3]!) flipped++;
      }
    }
    assert.ok(padded > 0 && flipped > 10 && flipped < 110 && pixels > 0, `padded ${padded}, flipped ${flipped}`);
  });

  it('--mask-sampling floor reads floor(q·in/out) as PyTorch\'s nearest does; centre reads floor((q + ½)·in/out)', () => {
    // one row 0..n-1 scaled to m pixels (no crop offset, no flip): PyTorch's F.interpolate(mode='nearest') and
    // mode='nearest-exact' on [0, 1, 2, 3, 4] → 3 give [0, 1, 3] and [0, 2, 4]; on [0, 1, 2] → 5, [0, 0, 1, 1, 2] and [0, 0, 1, 2, 2]
    const row = (n: number, m: number, maskSampling?: 'centre' | 'floor') => {
      const sample: Sample = { image: new Float32Array(n * 3), mask: Uint8Array.from({ length: n }, (_, i) => i), width: n, height: 1 };
      const spec = { outHeight: 1, outWidth: m, scaledHeight: 1, scaledWidth: m, offsetY: 0, offsetX: 0, flip: false, ignoreIndex: 255 };
      return [...warpSample(sample, maskSampling ? { ...spec, maskSampling } : spec).mask!];
    };
    assert.deepEqual(row(5, 3, 'floor'), [0, 1, 3]);
    assert.deepEqual(row(5, 3), [0, 2, 4]);
    assert.deepEqual(row(5, 3, 'centre'), [0, 2, 4]);
    assert.deepEqual(row(3, 5, 'floor'), [0, 0, 1, 1, 2]);
    assert.deepEqual(row(3, 5), [0, 0, 1, 2, 2]);
    // through augmentSample: the option reaches the warp; the image is the same, the mask never right of / below centre's
    let differ = 0;
    for (const axis of ['x', 'y'] as const) {
      for (let seed = 0; seed < 10; seed++) {
        const centre = augmentSample(pattern(axis), new Random(seed), geometric(32, { flip: 0 }));
        const floor = augmentSample(pattern(axis), new Random(seed), geometric(32, { flip: 0, maskSampling: 'floor' }));
        assert.deepEqual(floor.image, centre.image);
        for (let i = 0; i < 32 * 32; i++) {
          if (centre.mask![i] === 255) continue;
          assert.ok(floor.mask![i]! <= centre.mask![i]! && floor.mask![i]! >= centre.mask![i]! - 1, `seed ${seed} pixel ${i}`);
          if (floor.mask![i] !== centre.mask![i]) differ++;
        }
      }
    }
    assert.ok(differ > 0);
  });

  it('is exact without scaling: each output pixel is a source pixel', () => {
    const sample = pattern('x');
    for (let seed = 0; seed < 20; seed++) {
      const out = augmentSample(sample, new Random(seed), geometric(24, { scale: false }));
      for (let i = 0; i < 24 * 24; i++) {
        assert.equal(out.image[i * 3], out.mask![i]);
        assert.equal(out.soft![i * 2], out.mask![i]);
        assert.ok(Number.isInteger(out.image[i * 3 + 1]));
      }
    }
  });

  it('photometric ops change the image only, and the same generator state gives the same result', () => {
    const sample = pattern('x');
    const u8: Sample = { ...sample, image: Uint8Array.from(sample.image, (v) => v * 6) };
    const strong = augmentPreset('strong', 32, { normalize: false, blur: { p: 1, sigma: [0.5, 1.5] } });
    const geomOnly = geometric(32);
    for (let seed = 0; seed < 10; seed++) {
      const a = augmentSample(u8, new Random(seed), strong);
      const b = augmentSample(u8, new Random(seed), geomOnly);
      assert.deepEqual(a.mask, b.mask);
      assert.deepEqual(a.soft, b.soft);
      assert.deepEqual(a.keep, b.keep);
      assert.deepEqual(a.valid, b.valid);
      assert.notDeepEqual(a.image, b.image);
      assert.deepEqual(augmentSample(u8, new Random(seed), strong), a);
      const v = a.valid;
      for (let y = 0; y < 32; y++) {
        for (let x = 0; x < 32; x++) {
          const i = (y * 32 + x) * 3;
          const inside = x >= v.x0 && x < v.x1 && y >= v.y0 && y < v.y1;
          if (!inside) assert.deepEqual([...a.image.subarray(i, i + 3)], [0, 0, 0]);
          else for (let c = 0; c < 3; c++) assert.ok(a.image[i + c]! >= 0 && a.image[i + c]! <= 1);
        }
      }
    }
  });

  it('normalises last, with padding at exactly 0 (the mean colour before normalisation)', () => {
    const image = new Uint8Array(10 * 10 * 3).fill(255);
    const out = augmentSample({ image, width: 10, height: 10 }, new Random(1), { crop: 16, scale: false, flip: 0 });
    const n = IMAGENET_NORMALIZATION;
    assert.ok(Math.abs(out.image[0]! - (1 - n.mean[0]) / n.std[0]) < 1e-5);
    assert.deepEqual([...out.image.subarray((16 * 16 - 1) * 3)], [0, 0, 0]);
    assert.deepEqual(out.valid, { x0: 0, y0: 0, x1: 10, y1: 10 });
    assert.equal(out.mask, undefined);
    const direct = normalizeImage(image);
    assert.ok(Math.abs(direct[2]! - out.image[2]!) < 1e-6);
  });

  it('blur keeps a constant image constant', () => {
    const img = new Float32Array(9 * 9 * 3).fill(0.25);
    gaussianBlur(img, 9, { x0: 0, y0: 0, x1: 9, y1: 9 }, 1.7);
    for (const v of img) assert.ok(Math.abs(v - 0.25) < 1e-6);
  });
});

describe('evalTransform', () => {
  it('pads bottom/right to a size multiple without randomness', () => {
    const sample = pattern('y');
    const out = evalTransform(sample, { multiple: 32, normalize: false });
    assert.deepEqual([out.width, out.height], [64, 32]);
    assert.deepEqual(out.valid, { x0: 0, y0: 0, x1: W, y1: H });
    assert.equal(out.mask![31 * 64 + 5], 255);
    assert.equal(out.mask![0 * 64 + 41], 255);
    assert.equal(out.mask![29 * 64 + 39], 29);
    assert.equal(out.image[(29 * 64 + 39) * 3], 39);
    assert.equal(out.keep![29 * 64 + 45], 0);
    const resized = evalTransform(sample, { resize: [15, 20], multiple: 8, normalize: false });
    assert.deepEqual([resized.width, resized.height, resized.valid.x1, resized.valid.y1], [24, 16, 20, 15]);
    assert.deepEqual(evalTransform(sample), evalTransform(sample));
  });
});
