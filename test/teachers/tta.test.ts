import assert from 'node:assert/strict';
import { describe, it, before } from 'node:test';
import * as tf from '@tensorflow/tfjs';
import { SoftsegError } from '../../src/errors.js';
import { flipHorizontal, nchwToNhwc, nhwcToNchw, resizeBilinear, softmaxInPlace } from '../../src/teachers/ops.js';
import { applyTta, formatTta, parseTta, resolveTta, ttaViews } from '../../src/teachers/tta.js';
import { useBackend } from '../helpers/backend.js';

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}

describe('parseTta', () => {
  it('reads flip and scales', () => {
    assert.deepEqual(parseTta('flip,scales=0.75,1,1.25'), { flip: true, scales: [0.75, 1, 1.25] });
    assert.deepEqual(parseTta('scales=1.5,0.5,1,flip'), { flip: true, scales: [0.5, 1, 1.5] });
    assert.deepEqual(parseTta('flip'), { flip: true, scales: [1] });
    assert.deepEqual(parseTta('scales=2'), { flip: false, scales: [2] });
    assert.deepEqual(parseTta('none'), { flip: false, scales: [1] });
    assert.deepEqual(parseTta(''), { flip: false, scales: [1] });
    assert.deepEqual(parseTta(' flip , scales=1,1,0.5 '), { flip: true, scales: [0.5, 1] });
  });

  it('rejects bad syntax with a clear error', () => {
    for (const [spec, needle] of [
      ['flip,scales=', 'not a number'],
      ['flip,scales=a', 'not a number'],
      ['flop', 'unknown item "flop"'],
      ['flip,,scales=1', 'empty item'],
      ['scales=0', 'outside (0, 4]'],
      ['scales=5', 'outside (0, 4]'],
      ['scales=1,scales=2', 'scales given twice'],
      ['flip,1.5', 'unknown item "1.5"'],
    ] as const) {
      assert.throws(() => parseTta(spec), (err: unknown) => err instanceof SoftsegError && err.message.includes(needle) && /--tta/.test(err.hint ?? ''), spec);
    }
  });

  it('formats canonically and lists views', () => {
    assert.equal(formatTta(parseTta('scales=1.25,0.75,1,flip')), 'flip,scales=0.75,1,1.25');
    assert.equal(formatTta(resolveTta(undefined)), 'none');
    assert.equal(formatTta(resolveTta({ flip: true })), 'flip');
    assert.deepEqual(ttaViews(parseTta('flip,scales=0.5,1')), [
      { scale: 0.5, flip: false },
      { scale: 0.5, flip: true },
      { scale: 1, flip: false },
      { scale: 1, flip: true },
    ]);
    assert.throws(() => resolveTta({ scales: [] }), SoftsegError);
    assert.throws(() => resolveTta({ scales: [Number.NaN] }), SoftsegError);
  });
});

describe('host image ops', () => {
  before(() => useBackend());

  it('bilinear resize matches tf.image.resizeBilinear with half-pixel centres', () => {
    const [h, w, c] = [7, 9, 4];
    const src = Float32Array.from({ length: h * w * c }, (_, i) => Math.sin(i * 0.37) * 3);
    for (const [oh, ow] of [[14, 18], [5, 6], [11, 4], [1, 1], [7, 9]] as const) {
      const ours = resizeBilinear(src, h, w, c, oh, ow);
      const theirs = tf.tidy(() => tf.image.resizeBilinear(tf.tensor3d(src, [h, w, c]), [oh, ow], false, true).dataSync());
      assert.ok(maxAbsDiff(ours, theirs) < 1e-5, `${oh}x${ow}`);
    }
  });

  it('flip, softmax and layout transposes', () => {
    const src = Float32Array.from({ length: 2 * 3 * 2 }, (_, i) => i);
    assert.deepEqual(flipHorizontal(flipHorizontal(src, 2, 3, 2), 2, 3, 2), src);
    assert.deepEqual(Array.from(flipHorizontal(src, 2, 3, 2).slice(0, 6)), [4, 5, 2, 3, 0, 1]);
    const x = Float32Array.from([1, 2, 3, 1000, 1000, -1000]);
    softmaxInPlace(x, 3);
    assert.ok(Math.abs(x[0]! + x[1]! + x[2]! - 1) < 1e-6 && Math.abs(x[3]! - 0.5) < 1e-6 && x[5] === 0);
    const nhwc = Float32Array.from({ length: 2 * 3 * 4 * 5 }, (_, i) => i);
    assert.deepEqual(nchwToNhwc(nhwcToNchw(nhwc, 2, 3, 4, 5), 2, 5, 3, 4), nhwc);
  });

  it('TTA averages un-flipped, resized views in probability space', async () => {
    const [h, w, C] = [6, 10, 2];
    // A "model" whose class-1 probability is the (normalised) red channel: equivariant to flips, so flip TTA
    // of it must give back exactly the same map; at several scales a smooth map stays close.
    const forward = async (images: Float32Array[], vh: number, vw: number) =>
      images.map((img) => {
        const p = new Float32Array(vh * vw * C);
        for (let i = 0; i < vh * vw; i++) {
          p[i * C + 1] = img[i * 3]!;
          p[i * C] = 1 - img[i * 3]!;
        }
        return p;
      });
    const img = new Float32Array(h * w * 3);
    for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) img[(y * w + x) * 3] = x / (w - 1);
    const [plain] = await applyTta([img], h, w, C, resolveTta(undefined), forward);
    const [flipped] = await applyTta([img], h, w, C, parseTta('flip'), forward);
    assert.ok(maxAbsDiff(plain!, flipped!) < 1e-6);
    const [multi] = await applyTta([img], h, w, C, parseTta('flip,scales=0.5,1,2'), forward);
    assert.equal(multi!.length, h * w * C);
    for (let i = 0; i < h * w; i++) assert.ok(Math.abs(multi![i * C]! + multi![i * C + 1]! - 1) < 1e-6);
    assert.ok(maxAbsDiff(plain!, multi!) < 0.06);
    // A forward that is not flip-equivariant (class 1 = left half) averages to 0.5 under flip TTA.
    const leftHalf = async (images: Float32Array[], vh: number, vw: number) =>
      images.map(() => {
        const p = new Float32Array(vh * vw * C);
        for (let i = 0; i < vh * vw; i++) p[i * C + ((i % vw) < vw / 2 ? 1 : 0)] = 1;
        return p;
      });
    const [avg] = await applyTta([img], h, w, C, parseTta('flip'), leftHalf);
    assert.ok(avg!.every((v) => Math.abs(v - 0.5) < 1e-6));
  });
});
