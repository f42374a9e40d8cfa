// The entry format: round-trip fidelity, temperature reconstruction, pseudo-labels, corruption detection.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  CorruptEntryError, DEFAULT_K, activeClassesOf, confidenceMap, crc32, decodeEntry, encodeEntry, parseHeader, reconstructPseudo, reconstructSoft,
  type EncodeOptions,
} from '../../src/cache/format.js';
import { entryFidelity, meanKl, temperProbs } from '../../src/cache/fidelity.js';
import { TailShares, gridSize } from '../../src/cache/tail-model.js';
import { Random } from '../../src/random.js';
import { synthProbs, type SynthKind } from './synth.js';

const opts = (w: number, h: number, C: number, extra: Partial<EncodeOptions> = {}): EncodeOptions =>
  ({ width: w, height: h, numClasses: C, mode: 'soft', fingerprint: 'ab'.repeat(32), imageHash: 'cd'.repeat(32), imageName: 'dir/img.png', ...extra });

async function roundTrip(kind: SynthKind, C: number, extra: Partial<EncodeOptions> = {}, sharp = 8, size = 64) {
  const probs = synthProbs(kind, size, size, C, 3, sharp);
  const bytes = await encodeEntry(probs, opts(size, size, C, extra));
  const entry = await decodeEntry(bytes, 'x.sse');
  return { probs, bytes, entry, fid: entryFidelity(probs, entry, [1, 4]) };
}

test('C = 5, default k: mean KL ≤ 1e-3 nats/pixel at T = 1 for every distribution, T = 4 close to softmax(ln p / 4)', async () => {
  for (const kind of ['teacher', 'smooth', 'peaked', 'sparse-dirichlet', 'dirichlet'] as SynthKind[]) {
    const { fid } = await roundTrip(kind, 5);
    assert.ok(fid.kl['1']! <= 1e-3, `${kind}: KL ${fid.kl['1']}`);
    assert.ok(fid.kl['4']! <= 1e-3, `${kind}: KL(T=4) ${fid.kl['4']}`);
    assert.equal(fid.pseudoAgreement, 1, kind);
  }
});

test('C = 21, default k: teacher-like outputs (confident and uncertain) keep mean KL ≤ 1e-3 at T = 1 and are ≥ 20× smaller than float32', async () => {
  for (const sharp of [4, 8, 16]) {
    const { fid, bytes } = await roundTrip('teacher', 21, {}, sharp, 128);
    assert.ok(fid.kl['1']! <= 1e-3, `σ ${sharp}: KL ${fid.kl['1']}`);
    assert.ok(fid.kl['4']! <= 5e-3, `σ ${sharp}: KL(T=4) ${fid.kl['4']}`);
    assert.ok((128 * 128 * 21 * 4) / bytes.length >= 20, `σ ${sharp}: ${bytes.length} bytes`);
  }
});

test('C = 21: fidelity is limited by the tail beyond the top k (flat Dirichlet), and improves with k', async () => {
  const kls = [];
  for (const k of [2, 4, 8]) kls.push((await roundTrip('dirichlet', 21, { k })).fid.kl['1']!);
  assert.ok(kls[0]! > kls[1]! && kls[1]! > kls[2]!, kls.join(' '));
  // peaked outputs: the tail is small, and KL with it
  const peaked = (await roundTrip('peaked', 21)).fid.kl['1']!;
  assert.ok(peaked < 0.02, `${peaked}`);
  // k = C is exact up to quantisation
  assert.ok((await roundTrip('dirichlet', 21, { k: 21 })).fid.kl['1']! < 1e-3);
});

test('every quantiser and compression round-trips; quantisation alone (k = C) costs ≪ 1e-3 nats', async () => {
  for (const scheme of ['log8', 'sqrt8', 'log16'] as const) {
    for (const compression of ['none', 'deflate', 'brotli'] as const) {
      const { fid, entry } = await roundTrip('sparse-dirichlet', 5, { scheme, compression, k: 5 });
      assert.equal(entry.header.scheme, scheme);
      assert.equal(entry.header.compression, compression);
      assert.ok(fid.kl['1']! < (scheme === 'log16' ? 1e-6 : 5e-4), `${scheme}/${compression}: ${fid.kl['1']}`);
    }
  }
});

test('temperature: reconstruction at T equals softmax(ln q / T) of the T = 1 reconstruction (exact tempering)', async () => {
  const { entry } = await roundTrip('teacher', 21, {}, 4);
  const q1 = reconstructSoft(entry, 1);
  for (const T of [0.5, 2, 4]) {
    const qT = reconstructSoft(entry, T);
    const expect = temperProbs(q1, 21, T);
    let maxDiff = 0;
    for (let i = 0; i < qT.length; i++) maxDiff = Math.max(maxDiff, Math.abs(qT[i]! - expect[i]!));
    assert.ok(maxDiff < 1e-5, `T ${T}: ${maxDiff}`);
  }
  // rows sum to 1
  const q4 = reconstructSoft(entry, 4);
  for (let p = 0; p < 64 * 64; p += 97) {
    let s = 0;
    for (let c = 0; c < 21; c++) s += q4[p * 21 + c]!;
    assert.ok(Math.abs(s - 1) < 1e-5);
  }
});

test('header: shape, classes, k, modes, names; class maxima give the active classes at any threshold', async () => {
  const C = 6, w = 5, h = 3;
  const probs = new Float32Array(w * h * C);
  for (let p = 0; p < w * h; p++) {
    probs[p * C + (p % 2)] = 0.9;
    probs[p * C + 2] = 0.05;
    probs[p * C + 3] = 0.049;
    probs[p * C + 4] = 0.001;
  }
  const bytes = await encodeEntry(probs, opts(w, h, C, { k: 3, mode: 'both' }));
  const hd = parseHeader(bytes);
  assert.deepEqual([hd.width, hd.height, hd.numClasses, hd.k, hd.modes.soft, hd.modes.pseudo], [w, h, C, 3, true, true]);
  assert.equal(hd.imageName, 'dir/img.png');
  assert.equal(hd.fingerprint, 'ab'.repeat(32));
  assert.deepEqual(activeClassesOf(hd.classMax), [0, 1, 2, 3]);
  assert.deepEqual(activeClassesOf(hd.classMax, 0.0005), [0, 1, 2, 3, 4]);
  assert.deepEqual(activeClassesOf(hd.classMax, 0.5), [0, 1]);
  const entry = await decodeEntry(bytes);
  const conf = confidenceMap(entry);
  for (const v of conf) assert.ok(Math.abs(v - 0.9) < 2e-3, `${v}`);
  assert.equal(DEFAULT_K, 4);
});

test('pseudo mode: argmax + confidence; the threshold is a read-time choice (below → 255)', async () => {
  const C = 3, w = 4, h = 1;
  const conf = [0.99, 0.96, 0.94, 0.5];
  const probs = new Float32Array(w * h * C);
  conf.forEach((c, p) => { probs[p * C + (p % C)] = c; probs[p * C + ((p + 1) % C)] = (1 - c) * 0.7; probs[p * C + ((p + 2) % C)] = (1 - c) * 0.3; });
  for (const mode of ['pseudo', 'both'] as const) {
    const entry = await decodeEntry(await encodeEntry(probs, opts(w, h, C, { mode })));
    assert.equal(entry.header.k, mode === 'pseudo' ? 1 : 3);
    const none = reconstructPseudo(entry);
    assert.deepEqual([...none.labels], [0, 1, 2, 0]);
    conf.forEach((c, i) => assert.ok(Math.abs(none.confidence[i]! - c) <= 0.05 * (1 - c) + 1e-4, `${mode} ${i}: ${none.confidence[i]} vs ${c}`));
    assert.deepEqual([...reconstructPseudo(entry, 0.95).labels], [0, 1, 255, 255]);
    assert.deepEqual([...reconstructPseudo(entry, 0.97).labels], [0, 255, 255, 255]);
  }
});

test('corruption: a flipped byte anywhere, truncation or trailing bytes → CorruptEntryError naming the image', async () => {
  const { bytes } = await roundTrip('teacher', 21, {}, 8, 32);
  for (const pos of [5, 20, 60, bytes.length >> 1, bytes.length - 10, bytes.length - 1]) {
    const bad = bytes.slice();
    bad[pos] = bad[pos]! ^ 0x10;
    await assert.rejects(decodeEntry(bad, 'e.sse'), (e: unknown) => {
      assert.ok(e instanceof CorruptEntryError || (e as Error).name === 'SoftsegError', `${pos}: ${(e as Error).message}`);
      if (e instanceof CorruptEntryError && pos > 60) assert.equal(e.imageName, 'dir/img.png');
      return true;
    });
  }
  for (const len of [10, 100, bytes.length - 1]) {
    await assert.rejects(decodeEntry(bytes.subarray(0, len), 'e.sse'), (e: unknown) => e instanceof CorruptEntryError && e.entryPath === 'e.sse');
  }
  const trunc = await decodeEntry(bytes.subarray(0, bytes.length - 3), 'e.sse').catch((e: CorruptEntryError) => e);
  assert.ok(trunc instanceof CorruptEntryError && trunc.imageName === 'dir/img.png' && /truncated/.test(trunc.message), String(trunc));
  const longer = new Uint8Array(bytes.length + 4);
  longer.set(bytes);
  await assert.rejects(decodeEntry(longer), CorruptEntryError);
});

test('bad inputs are SoftsegErrors: wrong length, NaN pixels, too many classes', async () => {
  await assert.rejects(encodeEntry(new Float32Array(10), opts(2, 2, 3)), /expected 2×2×3/);
  const nan = new Float32Array(12).fill(NaN);
  await assert.rejects(encodeEntry(nan, opts(2, 2, 3)), /no valid probability/);
  await assert.rejects(encodeEntry(new Float32Array(4 * 300), opts(2, 2, 300)), /numClasses/);
});

test('KL helper: zero for identical distributions', () => {
  const p = synthProbs('dirichlet', 4, 4, 5, 1);
  assert.ok(Math.abs(meanKl(p, p, 5)) < 1e-12);
});

/**
 * Outputs of a network whose logits are linear in smooth 3-dimensional features (as a real head's are):
 * z_c(x) = Σ_i f_i(x)·W_ic + b_c, softmax over C = 21 classes; most of the mass on a few classes per pixel.
 * The features vary over tens of pixels, as upsampled teacher logits do.
 */
/** Per-pixel softmax of the logits `fill(x, y, z)` writes into z, [h, w, C] HWC. */
function softmaxField(w: number, h: number, C: number, fill: (x: number, y: number, z: Float64Array) => void): Float32Array {
  const out = new Float32Array(w * h * C);
  const z = new Float64Array(C);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      fill(x, y, z);
      let max = -Infinity, s = 0;
      for (let c = 0; c < C; c++) max = Math.max(max, z[c]!);
      for (let c = 0; c < C; c++) { z[c] = Math.exp(z[c]! - max); s += z[c]!; }
      for (let c = 0; c < C; c++) out[(y * w + x) * C + c] = z[c]! / s;
    }
  }
  return out;
}

function lowRankProbs(w: number, h: number, C: number, seed: number): Float32Array {
  const rng = new Random(seed);
  const W = Array.from({ length: 3 * C }, () => rng.normal() * 4);
  const b = Array.from({ length: C }, () => rng.normal() * 2 - 4);
  const phase = Array.from({ length: 6 }, () => rng.next() * 6.28);
  return softmaxField(w, h, C, (x, y, z) => {
    const f = [Math.sin(x / 17 + phase[0]!) + Math.cos(y / 13 + phase[1]!), Math.sin((x + y) / 19 + phase[2]!), Math.cos(x / 23 + phase[3]!) * Math.sin(y / 11 + phase[4]!)];
    for (let c = 0; c < C; c++) z[c] = b[c]! + f[0]! * W[c]! + f[1]! * W[C + c]! + f[2]! * W[2 * C + c]!;
  });
}

test('tail model: on low-rank outputs the principal-component tail beats one image-wide shape, at a small rank; tempering stays exact', async () => {
  const C = 21, size = 48;
  const probs = lowRankProbs(size, size, C, 5);
  const encode = async (tail: EncodeOptions['tail']) => decodeEntry(await encodeEntry(probs, opts(size, size, C, { tail })));
  const lowRank = await encode(undefined);
  const prior = await encode({ model: 'prior' });
  const even = await encode({ model: 'even' });
  const kl = (e: typeof lowRank) => entryFidelity(probs, e, [1]).kl['1']!;
  assert.equal(prior.header.tail.rank, 0);
  assert.ok(lowRank.header.tail.rank >= 1 && lowRank.header.tail.rank <= 4, `rank ${lowRank.header.tail.rank}`);
  assert.equal(lowRank.header.tail.grid, 2);
  assert.ok(kl(lowRank) < 0.25 * kl(prior) && kl(prior) < kl(even), `low rank ${kl(lowRank)}, prior ${kl(prior)}, even ${kl(even)}`);
  assert.ok(kl(lowRank) < 1e-3, `${kl(lowRank)}`);
  // exact tempering: reconstruction at T = softmax(ln q₁ / T)
  const q1 = reconstructSoft(lowRank, 1);
  for (const T of [0.5, 2, 4]) {
    const qT = reconstructSoft(lowRank, T), expect = temperProbs(q1, C, T);
    let maxDiff = 0;
    for (let i = 0; i < qT.length; i++) maxDiff = Math.max(maxDiff, Math.abs(qT[i]! - expect[i]!));
    assert.ok(maxDiff < 1e-5, `T ${T}: ${maxDiff}`);
  }
  // the confidence map agrees with the reconstruction's top class
  const conf = confidenceMap(lowRank);
  for (let p = 0; p < size * size; p += 37) assert.ok(Math.abs(conf[p]! - q1[p * C + lowRank.planes.ids[p]!]!) < 1e-6);
  // coefficients per pixel (grid 1) instead of per 2×2 block: closer still, at more bytes
  const perPixel = await encode({ grid: 1 });
  assert.ok(kl(perPixel) < kl(lowRank), `grid 1 ${kl(perPixel)} vs grid 2 ${kl(lowRank)}`);
  // a target of 0 still stops where components stop paying (never more than the cap)
  const capped = decodeEntry(await encodeEntry(probs, opts(size, size, C, { tail: { klTarget: 0, maxRank: 3 } })));
  assert.ok((await capped).header.tail.rank <= 3);
});

/** Vertical bands, each with its own top class (large top-class variation); the tail follows two smooth features. */
function bandProbs(w: number, h: number, C: number, bands: number): Float32Array {
  const rng = new Random(1);
  const a = Array.from({ length: C }, () => rng.normal() * 1.5), a2 = Array.from({ length: C }, () => rng.normal() * 1.5);
  return softmaxField(w, h, C, (x, y, z) => {
    const band = Math.min(bands - 1, Math.floor((x / w) * bands));
    const f = Math.sin((y / h) * 6.28), f2 = Math.cos((x + 2 * y) / 9);
    for (let c = 0; c < C; c++) z[c] = c < bands ? (c === band ? 9 : 4) : a[c]! * f + a2[c]! * f2;
  });
}

test('tail rank: components that follow the top classes do not stop the search (the tail needs the later ones)', async () => {
  // the first principal components follow the bands' top classes, which the tail does not need; a rule that
  // stopped when a component gained < 10% chose rank 2 here (KL 1.8e-3)
  const C = 21, size = 48;
  const probs = bandProbs(size, size, C, 5);
  const lowRank = await decodeEntry(await encodeEntry(probs, opts(size, size, C)));
  const prior = await decodeEntry(await encodeEntry(probs, opts(size, size, C, { tail: { model: 'prior' } })));
  const kl = (e: typeof lowRank) => entryFidelity(probs, e, [1]).kl['1']!;
  assert.ok(lowRank.header.tail.rank >= 4, `rank ${lowRank.header.tail.rank}`);
  assert.ok(kl(lowRank) < 1e-3 && kl(lowRank) < 0.25 * kl(prior), `low rank ${kl(lowRank)}, prior ${kl(prior)}`);
});

test('tail shares: tabulated products equal e^{(ℓ − max ℓ)/T} per block; a tail sum from the row sum equals the sum over the tail', async () => {
  const C = 21, size = 24, k = DEFAULT_K;
  const entry = await decodeEntry(await encodeEntry(lowRankProbs(size, size, C, 5), opts(size, size, C)));
  const { tail } = entry.header, { ids, coefs } = entry.planes, n = size * size;
  assert.ok(tail.rank > 0);
  const { gw, gh } = gridSize(size, size, tail.grid), g = gw * gh;
  // base − 700: the same shares, but products of e^{ℓ} could underflow, so the shares take one exp per class
  const shifted = { ...tail, base: tail.base.map((v) => v - 700) };
  for (const [model, T] of [[tail, 1], [tail, 2.5], [shifted, 1]] as const) {
    const shares = new TailShares(model, C, coefs, size, size, k);
    const out = new Float32Array(C);
    for (let p = 0; p < n; p += 7) {
      let used = 1;
      while (used < k && ids[used * n + p] !== 255) used++;
      const b = Math.floor(Math.floor(p / size) / tail.grid) * gw + Math.floor((p % size) / tail.grid);
      const l = Array.from({ length: C }, (_, c) => {
        let v = model.base[c]!;
        for (let j = 0; j < tail.rank; j++) v += (tail.coefOffset[j]! + tail.coefStep[j]! * coefs[j * g + b]!) * tail.basis[j * C + c]!;
        return v;
      });
      const inTail = (c: number) => ![...Array(used).keys()].some((j) => ids[j * n + p] === c);
      const tailMax = Math.max(...l.filter((_, c) => inTail(c)));
      const expect = l.map((v, c) => (inTail(c) ? Math.exp((v - tailMax) / T) : 0));
      const sum = shares.fill(ids, p, n, used, T, out, 0);
      for (let c = 0; c < C; c++) assert.ok(Math.abs(out[c]! - expect[c]!) <= 1e-6 * Math.max(1, expect[c]!), `T ${T} p ${p} c ${c}: ${out[c]} vs ${expect[c]}`);
      const expectSum = expect.reduce((a, v) => a + v, 0);
      assert.ok(Math.abs(sum - expectSum) <= 1e-9 * expectSum);
      assert.ok(Math.abs(shares.fill(ids, p, n, used, T, null) - expectSum) <= 1e-9 * expectSum, `sum alone at T ${T}`);
    }
  }
});

test('format version 1 entries (image-wide tail shape π, no rank) still read the same', async () => {
  const C = 21, size = 24;
  const probs = synthProbs('teacher', size, size, C, 9, 8);
  const v2 = await encodeEntry(probs, opts(size, size, C, { tail: { model: 'prior' } }));
  const h = parseHeader(v2);
  // rewrite as version 1: π itself instead of ln π, bytes 14–15 reserved (0), CRC recomputed
  const v1 = v2.slice();
  const dv = new DataView(v1.buffer);
  dv.setUint16(4, 1, true);
  dv.setUint16(14, 0, true);
  const baseAt = h.headerBytes - 4 * C;
  for (let c = 0; c < C; c++) dv.setFloat32(baseAt + 4 * c, Math.exp(h.tail.base[c]!), true);
  dv.setUint32(v1.length - 4, crc32(v1.subarray(0, v1.length - 4)), true);
  const a = reconstructSoft(await decodeEntry(v2), 2), b = reconstructSoft(await decodeEntry(v1), 2);
  let maxDiff = 0;
  for (let i = 0; i < a.length; i++) maxDiff = Math.max(maxDiff, Math.abs(a[i]! - b[i]!));
  assert.ok(maxDiff < 1e-6, `${maxDiff}`);
  assert.equal(parseHeader(v1).version, 1);
});
