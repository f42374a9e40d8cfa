// Which parameters weight decay reaches: kernels only by default (biases and batch-norm γ/β are not shrunk), every
// parameter with decayAll (PyTorch's AdamW(model.parameters())), for AdamW's decoupled decay and SGD's L2 term.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { SegOptimizer, decays } from '../../src/engine/optimizer.js';
import { useBackend } from '../helpers/backend.js';

await useBackend('wasm');

const NAMES = ['conv/kernel', 'dw/depthwise_kernel', 'bn/gamma', 'bn/beta', 'logits/bias'];

/** One step with zero gradients from all-ones variables: the factor each variable was multiplied by. */
function factors(kind: 'adamw' | 'sgd', decayAll: boolean, run: number): number[] {
  const vars = NAMES.map((n) => tf.variable(tf.ones([2]), true, `opt_test_${kind}_${run}/${n}`));
  const opt = new SegOptimizer({ kind, lr: 0.1, weightDecay: 0.5, decayAll });
  const grads = Object.fromEntries(vars.map((v) => [v.name, tf.zeros([2])]));
  opt.apply(grads);
  const out = vars.map((v) => v.dataSync()[0]!);
  tf.dispose([...vars, ...Object.values(grads)]);
  return out;
}

test('weight decay: kernels only by default, every parameter with decayAll', () => {
  assert.deepEqual(NAMES.map(decays), [true, true, false, false, false]);
  const close = (a: number[], b: number[]) => a.every((v, i) => Math.abs(v - b[i]!) < 1e-6);
  for (const kind of ['adamw', 'sgd'] as const) {
    // AdamW: x·(1 − lr·wd) = 0.95 (a zero gradient moves nothing else); SGD: x − lr·wd·x = 0.95 as well.
    const byDefault = factors(kind, false, 0);
    assert.ok(close(byDefault, [0.95, 0.95, 1, 1, 1]), `${kind}: ${byDefault}`);
    const all = factors(kind, true, 1);
    assert.ok(close(all, [0.95, 0.95, 0.95, 0.95, 0.95]), `${kind} decayAll: ${all}`);
  }
});
