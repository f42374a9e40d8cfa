import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';

import { SoftsegError } from '../../src/errors.js';
import { referenceVectorsPath } from '../helpers/backend.js';
import {
  SegmentationMetrics,
  binEdges,
  binIndex,
  confusionToIoU,
  eceFromBins,
  evaluateMetricsCase,
  metricKeys,
  metricScalars,
  worstCountClass,
  worstCountImage,
  type MetricsVectorCase,
} from '../../src/metrics/index.js';


interface Case extends MetricsVectorCase {
  id: string;
  expected: Record<string, number>;
}

function metricCases(): Case[] {
  const file = JSON.parse(readFileSync(referenceVectorsPath(), 'utf8')) as { cases: Case[] };
  return file.cases.filter((c) => c.kind === 'metrics');
}

function close(actual: number, expected: number, what: string): void {
  assert.ok(
    Math.abs(actual - expected) <= 1e-5 * Math.abs(expected) + 1e-6,
    `${what}: got ${actual}, expected ${expected}`,
  );
}

/** Deterministic PRNG (mulberry32). */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Random softmax-like probabilities (NCHW) and labels with some ignored pixels; image 2 fully ignored. */
function randomData(n: number, c: number, h: number, w: number, seed: number): { prob: Float32Array; label: Int32Array } {
  const r = rng(seed);
  const P = h * w;
  const prob = new Float32Array(n * c * P);
  const label = new Int32Array(n * P);
  for (let i = 0; i < n; i++) {
    for (let p = 0; p < P; p++) {
      let s = 0;
      const e: number[] = [];
      for (let k = 0; k < c; k++) {
        const v = Math.exp(3 * r());
        e.push(v);
        s += v;
      }
      for (let k = 0; k < c; k++) prob[(i * c + k) * P + p] = e[k] / s;
      const u = r();
      label[i * P + p] = i === 2 || u < 0.1 ? 255 : Math.floor(r() * c);
    }
  }
  return { prob, label };
}

function sliceImages(
  prob: Float32Array,
  label: Int32Array,
  c: number,
  P: number,
  from: number,
  to: number,
): { prob: Float32Array; label: Int32Array } {
  return { prob: prob.subarray(from * c * P, to * c * P), label: label.subarray(from * P, to * P) };
}

test('reference vectors: all metrics cases match', () => {
  const cases = metricCases();
  assert.equal(cases.length, 5);
  for (const c of cases) {
    const got = evaluateMetricsCase(c);
    assert.deepEqual(Object.keys(got).sort(), Object.keys(c.expected).sort(), `${c.id}: key set`);
    for (const [key, expected] of Object.entries(c.expected)) close(got[key], expected, `${c.id}.${key}`);
  }
});

test('reference vectors: the class API gives the same numbers, one image per update', () => {
  for (const c of metricCases()) {
    const [n, C, h, w] = c.inputs.prob.shape;
    const P = h * w;
    const m = new SegmentationMetrics({
      numClasses: c.options.num_classes,
      ignoreIndex: c.options.ignore_index,
      q: c.options.q,
      numBins: c.options.num_bins,
      binary: c.options.binary,
    });
    const prob = Float32Array.from(c.inputs.prob.data);
    for (let i = 0; i < n; i++) {
      m.update(prob.subarray(i * C * P, (i + 1) * C * P), c.inputs.label.data.slice(i * P, (i + 1) * P), { n: 1, c: C, h, w });
    }
    const got = metricScalars(m.compute());
    for (const [key, expected] of Object.entries(c.expected)) close(got[key], expected, `${c.id}.${key}`);
  }
});

test('evaluateMetricsCase builds the q-worst keys from any q', () => {
  const c = metricCases()[0];
  const got = evaluateMetricsCase({ ...c, options: { ...c.options, q: 20 } });
  assert.deepEqual(Object.keys(got), metricKeys(20));
  for (const k of ['mAccI20', 'mIoUI20', 'mDiceI20', 'mAccC20', 'mIoUC20', 'mDiceC20']) assert.ok(Number.isFinite(got[k]), k);
  // q = 100 worst case is the plain mean
  const all = evaluateMetricsCase({ ...c, options: { ...c.options, q: 100 } });
  close(all.mIoUI100, all.mIoUI, 'mIoUI100');
  close(all.mIoUC100, all.mIoUC, 'mIoUC100');
  assert.throws(() => evaluateMetricsCase({ ...c, kind: 'jdt_loss' }), SoftsegError);
});

test('results do not depend on how images are split into update() batches', () => {
  const [n, c, h, w] = [7, 5, 6, 5];
  const P = h * w;
  const { prob, label } = randomData(n, c, h, w, 42);
  const opts = { numClasses: c, q: 30, numBins: 7 };
  const whole = new SegmentationMetrics(opts);
  whole.update(prob, label, { n, c, h, w });
  const expected = whole.compute();
  assert.equal(expected.numImages, 7);
  assert.equal(expected.numValidImages, 6);
  for (const split of [[0, 1, 2, 3, 4, 5, 6, 7], [0, 2, 3, 7], [0, 5, 7]]) {
    const m = new SegmentationMetrics(opts);
    for (let s = 0; s + 1 < split.length; s++) {
      const part = sliceImages(prob, label, c, P, split[s], split[s + 1]);
      m.update(part.prob, part.label, { n: split[s + 1] - split[s], c, h, w });
    }
    assert.deepStrictEqual(m.compute(), expected, `split ${split.join(',')}`);
  }
  // reset() starts over
  whole.reset();
  whole.update(prob, label, { n, c, h, w });
  assert.deepStrictEqual(whole.compute(), expected);
});

test('NHWC layout gives the same results as NCHW', () => {
  const [n, c, h, w] = [4, 3, 5, 4];
  const P = h * w;
  const { prob, label } = randomData(n, c, h, w, 7);
  const nhwc = new Float32Array(prob.length);
  for (let i = 0; i < n; i++) for (let k = 0; k < c; k++) for (let p = 0; p < P; p++) nhwc[(i * P + p) * c + k] = prob[(i * c + k) * P + p];
  const a = new SegmentationMetrics({ numClasses: c, q: 5 });
  a.update(prob, label, { n, c, h, w });
  const b = new SegmentationMetrics({ numClasses: c, q: 5 });
  b.update(nhwc, label, { n, c, h, w }, 'NHWC');
  assert.deepStrictEqual(b.compute(), a.compute());
});

test('perfect prediction gives 100 everywhere and zero calibration error', () => {
  const [n, c, h, w] = [3, 4, 3, 3];
  const P = h * w;
  const label = new Int32Array(n * P);
  const prob = new Float32Array(n * c * P);
  for (let i = 0; i < n; i++) {
    for (let p = 0; p < P; p++) {
      const y = (i + p) % c;
      label[i * P + p] = y;
      prob[(i * c + y) * P + p] = 1;
    }
  }
  const m = new SegmentationMetrics({ numClasses: c });
  m.update(prob, label, { n, c, h, w });
  const r = m.compute();
  for (const key of metricKeys(1, false)) assert.equal(r[key as 'Acc'], 100, key);
  assert.equal(r.ECED, 0);
  assert.equal(r.ECEI, 0);
  assert.equal(r.SCED, 0);
  assert.equal(r.SCEI, 0);
  assert.deepEqual(r.perClassIoU, [100, 100, 100, 100]);
});

test('hand-computed confusion example (hard predictions)', () => {
  // GT:   0 0 1 | 1 2 2      pred: 0 1 1 | 1 2 0      class 3 never seen, one ignored pixel
  const m = new SegmentationMetrics({ numClasses: 4 });
  m.updateFromPrediction([0, 1, 1, 1, 2, 0, 3], [0, 0, 1, 1, 2, 2, 255], { n: 1, h: 1, w: 7 });
  const r = m.compute();
  assert.deepEqual(r.confusion, [
    [1, 1, 0, 0],
    [0, 2, 0, 0],
    [1, 0, 1, 0],
    [0, 0, 0, 0],
  ]);
  // TP = [1,2,1], FP = [1,1,0], FN = [1,0,1]
  const iou = r.perClassIoU;
  assert.equal(iou[3], null);
  close(iou[0] as number, 100 / 3, 'IoU0');
  close(iou[1] as number, 200 / 3, 'IoU1');
  close(iou[2] as number, 50, 'IoU2');
  close(r.mIoUD, 50, 'mIoUD');
  close(r.Acc, (100 * 4) / 6, 'Acc');
  close(r.mAccD, 200 / 3, 'mAccD');
  close(r.mDiceD, (100 * (0.5 + 0.8 + 2 / 3)) / 3, 'mDiceD');
  // one image: image and class level equal the per-image active-class means
  close(r.mIoUI, 50, 'mIoUI');
  close(r.mIoUC, 50, 'mIoUC');
  close(r.mIoUI1, 50, 'mIoUI1');
  assert.equal(r.ECED, undefined);
  assert.deepEqual(Object.keys(metricScalars(r)), metricKeys(1, false));
  assert.deepEqual(confusionToIoU(r.confusion), iou);
});

test('image level: predicted classes absent from the GT are ignored; worst-case means', () => {
  const m = new SegmentationMetrics({ numClasses: 3, q: 50 });
  // image A: GT 0 0 0 0, pred 0 0 2 2 -> active {0}: IoU0 = 2/4
  m.updateFromPrediction([0, 0, 2, 2], [0, 0, 0, 0], { n: 1, h: 2, w: 2 });
  // image B: GT 1 1 1 1, pred 1 1 1 1 -> IoU1 = 1
  m.updateFromPrediction([1, 1, 1, 1], [1, 1, 1, 1], { n: 1, h: 2, w: 2 });
  // image C: GT 0 0 1 1, pred 0 1 1 1 -> IoU0 = 1/2, IoU1 = 2/3, mean 7/12
  m.updateFromPrediction([0, 1, 1, 1], [0, 0, 1, 1], { n: 1, h: 2, w: 2 });
  // image D: fully ignored -> skipped
  m.updateFromPrediction([0, 0, 0, 0], [255, 255, 255, 255], { n: 1, h: 2, w: 2 });
  const r = m.compute();
  assert.equal(r.numValidImages, 3);
  close(r.mIoUI, (100 * (0.5 + 1 + 7 / 12)) / 3, 'mIoUI');
  close(r.mIoUI50, 50, 'mIoUI50'); // max(1, floor(1.5)) = 1 smallest
  // class 0: [0.5, 0.5]; class 1: [1, 2/3]; class 2 never active -> skipped
  close(r.mIoUC, (100 * (0.5 + 5 / 6)) / 2, 'mIoUC');
  close(r.mIoUC50, (100 * (0.5 + 2 / 3)) / 2, 'mIoUC50');
});

test('binary: foreground only, images with one active class count as 1', () => {
  const m = new SegmentationMetrics({ numClasses: 2, q: 50 });
  assert.equal(m.binary, true);
  m.updateFromPrediction([0, 0, 0, 0], [0, 0, 0, 0], { n: 1, h: 2, w: 2 }); // background only: 1
  m.updateFromPrediction([0, 1, 1, 1], [0, 0, 1, 1], { n: 1, h: 2, w: 2 }); // fg IoU 2/3
  const r = m.compute();
  close(r.mIoUI, (100 * (1 + 2 / 3)) / 2, 'mIoUI');
  close(r.mIoUD, (100 * 2) / 3, 'mIoUD');
  close(r.Acc, 100, 'Acc (foreground recall)');
});

test('calibration helpers: float32 edges, closed last bin, empty set', () => {
  const e = binEdges(10);
  assert.equal(e[3], Math.fround(0.3));
  assert.equal(binIndex(0, e), 0);
  assert.equal(binIndex(Math.fround(0.3), e), 3);
  assert.equal(binIndex(0.3 - 1e-9, e), 2);
  assert.equal(binIndex(1, e), 9);
  assert.equal(binIndex(0.95, e), 9);
  assert.equal(eceFromBins([0, 0], [0, 0], [0, 0]), 0);
  // one bin: 2 samples, 1 correct, mean confidence 0.8 -> |0.5 - 0.8| = 30 %
  close(eceFromBins([0, 2], [0, 1], [0, 1.6]), 30, 'ece');
});

test('worst-case counts follow the reference arithmetic', () => {
  assert.equal(worstCountImage(5, 3), 1);
  assert.equal(worstCountImage(50, 3), 1);
  assert.equal(worstCountImage(100, 7), 7);
  // image level evaluates q/100·M in float64, class level in float32
  assert.equal(worstCountImage(29, 100), 28);
  assert.equal(worstCountClass(29, 100), 29);
  for (let q = 10; q <= 100; q += 10) {
    for (let mm = 1; mm < 200; mm++) {
      const k = worstCountClass(q, mm);
      assert.ok(k >= 1 && k <= mm);
    }
  }
});

test('bad input throws SoftsegError', () => {
  const m = new SegmentationMetrics({ numClasses: 3 });
  const prob = new Float32Array(3 * 4).fill(1 / 3);
  assert.throws(() => m.update(prob, [0, 1, 2], { n: 1, c: 3, h: 2, w: 2 }), SoftsegError); // label length
  assert.throws(() => m.update(prob, [0, 1, 2, 0], { n: 1, c: 4, h: 2, w: 2 }), SoftsegError); // class count
  assert.throws(() => m.update(prob.subarray(1), [0, 1, 2, 0], { n: 1, c: 3, h: 2, w: 2 }), SoftsegError); // prob length
  assert.throws(() => m.update(prob, [0, 1, 7, 0], { n: 1, c: 3, h: 2, w: 2 }), SoftsegError); // label value
  assert.throws(() => m.update(new Float32Array(12).fill(-1), [0, 1, 2, 0], { n: 1, c: 3, h: 2, w: 2 }), SoftsegError); // logits
  assert.throws(() => m.updateFromPrediction([0, 5, 0, 0], [0, 1, 2, 0], { n: 1, h: 2, w: 2 }), SoftsegError);
  assert.throws(() => new SegmentationMetrics({ numClasses: 3, binary: true }), SoftsegError);
  assert.throws(() => new SegmentationMetrics({ numClasses: 3, q: 0 }), SoftsegError);
  assert.throws(() => new SegmentationMetrics({ numClasses: 3, numBins: 0 }), SoftsegError);
  assert.throws(() => new SegmentationMetrics({ numClasses: 3, ignoreIndex: 1 }), SoftsegError);
});
