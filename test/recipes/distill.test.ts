// The distillation recipe's objective on the reference KD vectors, through the code path training uses.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import * as tf from '@tensorflow/tfjs';
import { DISTILL_DEFAULTS, distillObjective } from '../../src/recipes/distill.js';
import { referenceVectorsPath, useBackend } from '../helpers/backend.js';

interface T { shape: number[]; data: number[] }
const nhwc = (t: T) => tf.tidy(() => {
  const x: tf.Tensor = tf.tensor(t.data, t.shape);
  return tf.transpose(x, [0, 2, 3, 1]) as tf.Tensor4D;
});

test('distill objective = the reference KD components with softseg\'s head weights (student without aux head: aux weight on the main head)', async () => {
  await useBackend('wasm');
  const file = JSON.parse(await readFile(referenceVectorsPath(), 'utf8')) as { cases: { id: string; kind: string; options: Record<string, any>; inputs: Record<string, T>; expected: Record<string, any> }[] };
  const cases = file.cases.filter((c) => c.kind === 'kd_loss');
  assert.ok(cases.length >= 6);
  for (const c of cases) {
    const o = c.options;
    const config = {
      ...DISTILL_DEFAULTS, aux: false, temperature: o.temperature, labelWeight: o.label_weight, teacherWeight: o.teacher_weight,
      ceWeight: o.ce_weight, jmlWeight: o.jdt_weight, teacherClasses: o.classes_teacher_term as 'all' | 'present', threshold: o.threshold,
    };
    const logits = nhwc(c.inputs.logits!);
    const label = tf.tensor3d(c.inputs.label!.data, c.inputs.label!.shape as [number, number, number], 'int32');
    const teacherProb = tf.tidy(() => tf.softmax(tf.div(nhwc(c.inputs.teacher_logits!), o.temperature))) as tf.Tensor4D;
    const keep = tf.tidy(() => tf.cast(tf.notEqual(label, 255), 'float32')) as tf.Tensor3D;
    const r = distillObjective(config, 255)({ main: logits }, { images: logits, labels: label, teacherProb, keep });
    const k = c.expected.components;
    const expected = 0.25 * o.label_weight * k.ce_main + 0.75 * o.label_weight * k.jml_gt_main + 0.25 * o.teacher_weight * k.kl_main + 0.75 * o.teacher_weight * k.jml_teacher_main;
    const got = (await r.total.data())[0]!;
    assert.ok(Math.abs(got - expected) <= 1e-5 * Math.abs(expected) + 1e-6, `${c.id}: ${got} vs ${expected}`);
    for (const [ours, theirs] of [['ce_main', 'ce_main'], ['kl_main', 'kl_main'], ['jml_main', 'jml_gt_main'], ['jml_teacher_main', 'jml_teacher_main']]) {
      const v = (await r.parts[ours]!.data())[0]!;
      assert.ok(Math.abs(v - k[theirs]) <= 1e-5 * Math.abs(k[theirs]) + 1e-6, `${c.id} ${ours}: ${v} vs ${k[theirs]}`);
    }
    tf.dispose([logits, label, teacherProb, keep, r.total, ...Object.values(r.parts)]);
  }
});
