// Finite-difference checks of the full objectives, option validation, and tensor hygiene.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { SoftsegError } from '../../src/errors.js';
import { boundaryLabelSmoothing, uniformLabelSmoothing } from '../../src/labels/index.js';
import {
  crossEntropy, hardLabelObjective, jdtLoss, kdObjective, smoothedLabelObjective, type HeadOutputs, type ObjectiveResult,
} from '../../src/losses/index.js';
import { Random } from '../../src/random.js';
import { useBackend } from '../helpers/backend.js';

const rng = new Random(7);
const N = 2, H = 5, W = 6, C = 4;

function randomLogits(): tf.Tensor4D {
  return tf.tensor4d(Array.from({ length: N * H * W * C }, () => 1.5 * rng.normal()), [N, H, W, C]);
}
function randomLabel(ignoreShare = 0.1): tf.Tensor3D {
  return tf.tensor3d(Array.from({ length: N * H * W }, () => (rng.next() < ignoreShare ? 255 : rng.int(C))), [N, H, W], 'int32');
}

/** Central differences on a sample of coordinates vs autodiff; float32, so h is large and the bound loose. */
async function checkGradient(objective: (heads: HeadOutputs) => ObjectiveResult, withAux: boolean): Promise<void> {
  const main = randomLogits();
  const aux = withAux ? randomLogits() : null;
  const f = (m: tf.Tensor, a: tf.Tensor | null) => objective({ main: m as tf.Tensor4D, aux: a as tf.Tensor4D | null }).total;
  const grads = withAux ? tf.grads((m: tf.Tensor, a: tf.Tensor) => f(m, a))([main, aux!]) : [tf.grad((m: tf.Tensor) => f(m, null))(main)];
  const h = 1e-2;
  for (const [which, input] of [[0, main], [1, aux]] as const) {
    if (!input) continue;
    const g = await grads[which]!.data();
    const x = await input.data();
    const maxG = Math.max(...Array.from(g, Math.abs));
    for (let t = 0; t < 12; t++) {
      const i = rng.int(x.length);
      const at = (delta: number) => {
        const y = Float32Array.from(x);
        y[i] = y[i]! + delta;
        const moved = tf.tensor4d(y, input.shape as [number, number, number, number]);
        const v = tf.tidy(() => f(which === 0 ? moved : main, which === 1 ? moved : aux).dataSync()[0]!);
        moved.dispose();
        return v;
      };
      const fd = (at(h) - at(-h)) / (2 * h);
      assert.ok(Math.abs(fd - g[i]!) <= 2e-3 * maxG + 2e-5, `head ${which} coord ${i}: autodiff ${g[i]} vs finite difference ${fd}`);
    }
  }
  tf.dispose([main, ...(aux ? [aux] : []), ...grads]);
}

test('hard-label objective: autodiff gradient matches finite differences', async () => {
  await useBackend('wasm');
  const label = randomLabel();
  await checkGradient((heads) => hardLabelObjective(heads, label), true);
  await checkGradient((heads) => hardLabelObjective(heads, label, { jdt: { weightPerBatch: 0, weightPerImage: 0.5, weightPerClass: 0.5 } }), false);
  label.dispose();
});

test('BLS and uniform label-smoothing objectives: gradients match finite differences', async () => {
  await useBackend('wasm');
  const label = randomLabel();
  await checkGradient((heads) => smoothedLabelObjective(heads, label, { kind: 'bls', kernelSize: 3, epsilon: 0.5 }), true);
  await checkGradient((heads) => smoothedLabelObjective(heads, label, { kind: 'uniform', epsilon: 0.1, jdt: { activeClassesSoft: 'PRESENT' } }), false);
  label.dispose();
});

test('KD objective (labeled and unlabeled): gradients match finite differences', async () => {
  await useBackend('wasm');
  const label = randomLabel();
  const teacher = tf.tidy(() => tf.softmax(tf.div(randomLogits(), 2)));
  await checkGradient((heads) => kdObjective(heads, { label, teacherProb: teacher }, { temperature: 2, teacherClasses: 'PRESENT' }), true);
  const crop = tf.tensor3d(Array.from({ length: N * H * W }, (_, i) => (i % W < 4 ? 1 : 0)), [N, H, W]);
  await checkGradient((heads) => kdObjective(heads, { teacherProb: teacher, keepMask: crop }, { temperature: 1 }), false);
  tf.dispose([label, teacher, crop]);
});

test('objectives report their named components and a total that is their weighted sum', async () => {
  await useBackend('wasm');
  const main = randomLogits(), aux = randomLogits(), label = randomLabel();
  const teacher = tf.softmax(randomLogits());
  const r = kdObjective({ main, aux }, { label, teacherProb: teacher });
  assert.deepEqual(Object.keys(r.parts).sort(), ['ce_aux', 'ce_kl_part', 'ce_main', 'jml_main', 'jml_part', 'jml_teacher_main', 'kl_aux', 'kl_main']);
  const v = (k: string) => r.parts[k]!.dataSync()[0]!;
  const expected = 0.0625 * (v('ce_main') + v('ce_aux') + v('kl_main') + v('kl_aux')) + 0.375 * (v('jml_main') + v('jml_teacher_main'));
  assert.ok(Math.abs(r.total.dataSync()[0]! - expected) < 1e-5);
  // Unlabeled: only teacher terms.
  const u = kdObjective({ main }, { teacherProb: teacher });
  assert.deepEqual(Object.keys(u.parts).sort(), ['ce_kl_part', 'jml_part', 'jml_teacher_main', 'kl_main']);
  tf.dispose([main, aux, label, teacher, r.total, ...Object.values(r.parts), u.total, ...Object.values(u.parts)]);
});

test('all pixels ignored: CE, KL and JML give 0 with a zero gradient (no NaN)', async () => {
  await useBackend('wasm');
  const main = randomLogits();
  const label = tf.fill([N, H, W], 255, 'int32') as tf.Tensor3D;
  const g = tf.grad((z: tf.Tensor) => hardLabelObjective({ main: z as tf.Tensor4D }, label).total)(main);
  assert.equal(tf.max(tf.abs(g)).dataSync()[0], 0);
  const total = hardLabelObjective({ main }, label).total;
  assert.equal(total.dataSync()[0], 0);
  tf.dispose([main, label, g, total]);
});

test('no tensor leaks across repeated objective + gradient evaluations', async () => {
  await useBackend('wasm');
  const main = randomLogits(), aux = randomLogits(), label = randomLabel();
  const teacher = tf.softmax(randomLogits());
  const step = () => {
    const [g1, g2] = tf.grads((m: tf.Tensor, a: tf.Tensor) => kdObjective({ main: m as tf.Tensor4D, aux: a as tf.Tensor4D }, { label, teacherProb: teacher }).total)([main, aux]);
    const r = smoothedLabelObjective({ main, aux }, label);
    tf.dispose([g1!, g2!, r.total, ...Object.values(r.parts)]);
  };
  step();
  const before = tf.memory().numTensors;
  for (let i = 0; i < 5; i++) step();
  assert.equal(tf.memory().numTensors, before);
  tf.dispose([main, aux, label, teacher]);
});

test('bad options and shapes give clear errors', async () => {
  await useBackend('wasm');
  const main = randomLogits(), label = randomLabel();
  const throwsSoftseg = (fn: () => unknown, pattern: RegExp) =>
    assert.throws(fn, (e: unknown) => e instanceof SoftsegError && pattern.test(e.message), String(pattern));
  throwsSoftseg(() => jdtLoss(main, label, { gamma: 0.5 }), /gamma must be ≥ 1/);
  throwsSoftseg(() => jdtLoss(main, label, { weightPerImage: -1 }), /weightPerImage must be a finite number ≥ 0/);
  throwsSoftseg(() => jdtLoss(main, label, { classWeights: [1, -2, 1, 1] }), /classWeights/);
  throwsSoftseg(() => jdtLoss(main, label, { classWeights: [1, 1] }), /classWeights has 2 entries but logits have 4 classes/);
  throwsSoftseg(() => jdtLoss(main, label, { norm: 1.5 }), /norm must be a positive integer/);
  throwsSoftseg(() => jdtLoss(main, label, { activeClassesHard: 'SOME' as never }), /activeClassesHard must be one of/);
  throwsSoftseg(() => jdtLoss(main, label, { weightPerBatch: 0 }), /at least one of/);
  throwsSoftseg(() => boundaryLabelSmoothing(label, { numClasses: C, kernelSize: 4 }), /odd kernel size/);
  throwsSoftseg(() => uniformLabelSmoothing(label, C, 1.5), /epsilon must be in \[0, 1\]/);
  throwsSoftseg(() => crossEntropy(main, tf.zeros([N, H + 1, W], 'int32')), /label shape \[2,6,6\] does not match logits \[2,5,6,4\]/);
  throwsSoftseg(() => jdtLoss(main, tf.zeros([N, H, W, C + 1])), /does not match logits/);
  throwsSoftseg(() => hardLabelObjective({ main }, label, { ceWeight: -0.25 }), /ceWeight must be a finite number ≥ 0/);
  throwsSoftseg(() => kdObjective({ main }, { teacherProb: tf.softmax(main) }, { temperature: 0 }), /temperature must be > 0/);
  tf.dispose([main, label]);
});
