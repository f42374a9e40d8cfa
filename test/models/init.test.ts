// The zoo's initialisers are PyTorch's defaults for nn.Conv2d (Kaiming-uniform, a = √5): every kernel uniform on
// ±1/√fan_in (std 1/√(3·fan_in)), depthwise kernels with fan_in = k·k, and the classifiers' biases uniform on
// ±1/√fan_in. Measured in bench/parity: He-normal kernels (√6 ≈ 2.45× larger) trained worse students with AdamW.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { createModel, listModels } from '../../src/models/registry.js';
import { useBackend } from '../helpers/backend.js';

function stats(v: Float32Array): { std: number; maxAbs: number } {
  let s = 0, s2 = 0, m = 0;
  for (const x of v) { s += x; s2 += x * x; m = Math.max(m, Math.abs(x)); }
  const mean = s / v.length;
  return { std: Math.sqrt(s2 / v.length - mean * mean), maxAbs: m };
}

describe('zoo initialisers', () => {
  it('kernels: uniform on ±1/√fan_in (std 1/√(3·fan_in)), depthwise fan_in = k·k; biases uniform on ±1/√fan_in', async () => {
    await useBackend('cpu');
    for (const name of listModels()) {
      const model = createModel(name, { numClasses: 11, seed: 3, aux: true });
      let checked = 0;
      const before = tf.memory().numTensors;
      for (const w of model.model.weights) {
        const shape = w.shape as number[];
        const vname = w.name.replace(/_\d+$/, ''); // TF.js suffixes names taken by an earlier model
        const values = w.read().dataSync() as Float32Array;
        if (/kernel$/.test(vname) && shape.length === 4) {
          const [kh, kw, cin] = shape as [number, number, number, number];
          const fanIn = vname.endsWith('depthwise_kernel') || (shape[3] === 1 && /_dw/.test(vname)) ? kh * kw : kh * kw * cin;
          const { std, maxAbs } = stats(values);
          const bound = 1 / Math.sqrt(fanIn);
          assert.ok(maxAbs <= bound * (1 + 1e-6), `${name} ${w.name}: |w| ≤ ${bound}, got ${maxAbs}`);
          if (values.length >= 256) {
            const expect = bound / Math.sqrt(3);
            assert.ok(Math.abs(std / expect - 1) < 0.12, `${name} ${w.name}: std ${std.toFixed(5)}, expected ${expect.toFixed(5)} (fan_in ${fanIn})`);
          }
          checked++;
        } else if (/logits\/bias$/.test(vname)) {
          const layer = model.model.getLayer(vname.split('/')[0]!);
          const fanIn = (layer.getWeights()[0]!.shape as number[])[2]!;
          const { maxAbs } = stats(values);
          assert.ok(maxAbs <= 1 / Math.sqrt(fanIn) && maxAbs > 0, `${name} ${w.name}: bias within ±1/√${fanIn}, got max ${maxAbs}`);
        }
      }
      assert.ok(checked >= 5, `${name}: ${checked} kernels checked`);
      assert.equal(tf.memory().numTensors, before);
      model.dispose();
    }
  });
});
