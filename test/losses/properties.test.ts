// Theorem 2.1 and the property list of method.md §8, on random points of [0,1]^p.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import {
  dml1Distance, dml2Distance, jdtLoss, jml1Distance, jml2Distance, sdl1Distance, sjl1Distance, sjl2Distance,
} from '../../src/losses/index.js';
import { Random } from '../../src/random.js';
import { useBackend } from '../helpers/backend.js';

const rng = new Random(20230211);
const TRIALS = 4000;
const vec = (p: number): number[] => Array.from({ length: p }, () => rng.next());
const binary = (p: number): number[] => Array.from({ length: p }, (): number => (rng.next() < 0.5 ? 0 : 1));
const close = (a: number, b: number, tol = 1e-12): boolean => Math.abs(a - b) <= tol * Math.max(1, Math.abs(a), Math.abs(b));

test('worked example of method.md §2.2', () => {
  const a = [0.2, 0.7, 0.5], b = [0, 1, 0.5];
  assert.ok(close(jml1Distance(a, b), 1 - 1.2 / 1.7));
  assert.ok(close(jml2Distance(a, b), 1 - 0.95 / 1.45));
  assert.ok(close(sjl1Distance(a, b), 1 - 0.95 / 1.95));
  assert.ok(Math.abs(sjl2Distance(a, b) - 0.120370) < 1e-6);
  // Hard b: all three Jaccard forms agree.
  const hard = [0, 1, 1];
  assert.ok(Math.abs(jml1Distance(a, hard) - 0.454545) < 1e-6);
  assert.ok(close(jml2Distance(a, hard), jml1Distance(a, hard)) && close(sjl1Distance(a, hard), jml1Distance(a, hard)));
});

test('JML1 and JML2 are metrics on [0,1]^p: identity, positivity, symmetry, triangle inequality', () => {
  for (let t = 0; t < TRIALS; t++) {
    const p = 1 + rng.int(8);
    const a = vec(p), b = vec(p), c = vec(p);
    for (const d of [jml1Distance, jml2Distance]) {
      assert.equal(d(a, a), 0);
      assert.ok(d(a, b) > 0, `${d.name} positive`);
      assert.ok(close(d(a, b), d(b, a)), `${d.name} symmetric`);
      assert.ok(d(a, c) <= d(a, b) + d(b, c) + 1e-12, `${d.name} triangle: a=${a} b=${b} c=${c}`);
    }
    // Semimetrics: symmetric, reflexive.
    for (const d of [dml1Distance, dml2Distance]) {
      assert.equal(d(a, a), 0);
      assert.ok(close(d(a, b), d(b, a)));
    }
  }
});

test('on hard labels JML1 = JML2 = SJL1 and DML1 = DML2 = SDL', () => {
  for (let t = 0; t < TRIALS; t++) {
    const p = 1 + rng.int(8);
    const a = vec(p), y = binary(p);
    if (!y.includes(1)) y[0] = 1;
    assert.ok(close(jml1Distance(a, y), jml2Distance(a, y)) && close(jml1Distance(a, y), sjl1Distance(a, y)));
    assert.ok(close(dml1Distance(a, y), dml2Distance(a, y)) && close(dml1Distance(a, y), sdl1Distance(a, y)));
  }
});

test('ordering JML1 ≤ JML2 and DML1 ≤ DML2', () => {
  for (let t = 0; t < TRIALS; t++) {
    const p = 1 + rng.int(8);
    const a = vec(p), b = vec(p);
    assert.ok(jml1Distance(a, b) <= jml2Distance(a, b) + 1e-12);
    assert.ok(dml1Distance(a, b) <= dml2Distance(a, b) + 1e-12);
  }
});

test('the counterexamples of §8 violate what they should', () => {
  const a = [0.4, 0.6], b = [0.5, 0.5], c = [0.6, 0.4];
  assert.ok(Math.abs(sjl2Distance(a, c) - 0.142857) < 1e-6);
  assert.ok(Math.abs(sjl2Distance(a, b) + sjl2Distance(b, c) - 0.076923) < 1e-6);
  assert.ok(sjl2Distance(a, c) > sjl2Distance(a, b) + sjl2Distance(b, c));
  const x = [1, 0], y = [1, 1], z = [0, 1];
  for (const d of [dml1Distance, dml2Distance]) {
    assert.ok(close(d(x, z), 1) && close(d(x, y) + d(y, z), 2 / 3));
    assert.ok(d(x, z) > d(x, y) + d(y, z));
  }
  // SJL1 is not reflexive on a soft target, and is minimised at 1, not at the target.
  assert.ok(close(sjl1Distance([0.5], [0.5]), 2 / 3));
  assert.ok(sjl1Distance([1], [0.5]) < sjl1Distance([0.5], [0.5]));
});

test('the JDT loss with one-hot labels equals the classical soft Jaccard loss, and is 0 when a soft label equals the prediction', async () => {
  await useBackend('wasm');
  const n = 2, h = 3, w = 4, c = 3;
  const logits = tf.tensor4d(Array.from({ length: n * h * w * c }, () => rng.normal()), [n, h, w, c]);
  const labels = Array.from({ length: n * h * w }, () => rng.int(c));
  const loss = jdtLoss(logits, tf.tensor3d(labels, [n, h, w], 'int32'), { smooth: 0, activeClassesHard: 'ALL' });
  const prob = await tf.softmax(logits).data();
  // Per class over the batch: 1 − ⟨x,y⟩/(|x|+|y|−⟨x,y⟩), averaged over classes.
  let expected = 0;
  for (let k = 0; k < c; k++) {
    const x: number[] = [], y: number[] = [];
    for (let i = 0; i < n * h * w; i++) {
      x.push(prob[i * c + k]!);
      y.push(labels[i] === k ? 1 : 0);
    }
    expected += sjl1Distance(x, y) / c;
  }
  assert.ok(Math.abs((await loss.data())[0]! - expected) < 1e-5);

  const soft = tf.softmax(logits);
  const zero = jdtLoss(logits, soft, { smooth: 0 });
  assert.ok(Math.abs((await zero.data())[0]!) < 1e-6);
  tf.dispose([logits, loss, soft, zero]);
});

test('gradient direction with a soft target (§8.8): JML1 moves a towards b', async () => {
  await useBackend('wasm');
  // One class over two pixels: prediction a = (0.9, 0.2) given as probabilities, soft target b = (0.5, 0.5).
  const a = tf.tensor4d([0.9, 0.2], [1, 1, 2, 1]);
  const b = tf.tensor4d([0.5, 0.5], [1, 1, 2, 1]);
  const opts = { fromLogits: false, smooth: 0, activeClassesSoft: 'ALL' as const };
  const g = await tf.grad((x: tf.Tensor) => jdtLoss(x, b, opts))(a).data();
  assert.ok(Math.abs(g[0]! - 0.357) < 1e-3 && Math.abs(g[1]! + 0.714) < 1e-3, `got ${g}`);
  const value = await jdtLoss(a, b, opts).data();
  assert.ok(Math.abs(value[0]! - jml1Distance([0.9, 0.2], [0.5, 0.5])) < 1e-6);
  tf.dispose([a, b]);
});
