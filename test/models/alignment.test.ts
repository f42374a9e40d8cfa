// Spatial alignment of the zoo's models: an output pixel must depend on the input around that same pixel.
// With every kernel a positive constant (so each convolution is symmetric) the centroid of |∂out[y,x]/∂input|
// is where the network "looks" for pixel (y, x). TF's 'same' padding on stride-2 convolutions (extra row and
// column at the bottom/right) put it 7 px down-right at stride 8; symmetric padding puts it on the pixel. U-Nets:
// a 2×2 max-pool centres pooled pixel m on input 2m + 0.5 while UpSampling2D reads it back at 2m, which put the
// output's look 1.3 px down-right (by geometry the bottleneck's path 3.5 px); the centred 3×3 stride-2 pool puts it on the
// pixel. The input is random and positive: on a constant image every pooling window ties, and where a tie sends the
// gradient decides the centroid, not the network's geometry.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { createModel } from '../../src/models/registry.js';
import { useBackend } from '../helpers/backend.js';

/** Centroid (y, x) of the input gradient of output pixel (y, x), class 0, for constant positive kernels. */
function lookCentroid(name: string, size: number, y: number, x: number): [number, number] {
  const model = createModel(name, { numClasses: 2, seed: 1 });
  try {
    model.model.setWeights(model.model.weights.map((w) => {
      const shape = w.shape as number[];
      const n = w.name.replace(/_\d+$/, '');
      if (n.startsWith('aspp_pool')) return tf.zeros(shape); // the image-pooling branch looks everywhere equally
      if (/kernel$/.test(n)) return tf.fill(shape, 1 / shape.slice(0, -1).reduce((a, b) => a * b, 1));
      if (/moving_variance$|gamma$/.test(n)) return tf.ones(shape);
      return tf.zeros(shape);
    }));
    return tf.tidy(() => {
      const input = tf.randomUniform([1, size, size, 3], 0.5, 1.5, 'float32', 5);
      const g = tf.grad((inp: tf.Tensor) => tf.slice(model.apply(inp as tf.Tensor4D, false).main, [0, y, x, 0], [1, 1, 1, 1]).sum())(input);
      const w = tf.sum(tf.abs(g), [0, 3]) as tf.Tensor2D;
      const total = w.sum().dataSync()[0]!;
      const ys = tf.range(0, size).reshape([size, 1]), xs = tf.range(0, size).reshape([1, size]);
      return [tf.mul(w, ys).sum().dataSync()[0]! / total, tf.mul(w, xs).sum().dataSync()[0]! / total] as [number, number];
    });
  } finally {
    model.dispose();
  }
}

describe('zoo alignment', () => {
  it('mobile-unet, deeplabv3 and unet-lite (unet has its geometry): an interior output pixel looks at its own input position (within 1 px)', async () => {
    await useBackend('wasm');
    // inputs large enough that the receptive field of the pixels tested stays inside the image (a border cut
    // off on one side would pull the centroid to the other)
    for (const [name, size] of [['mobile-unet', 128], ['deeplabv3', 256], ['unet-lite', 128]] as const) {
      for (const [y, x] of [[size / 2, size / 2], [size / 2 - 8, size / 2 + 8]] as const) {
        const [cy, cx] = lookCentroid(name, size, y, x);
        assert.ok(Math.abs(cy - y) <= 1 && Math.abs(cx - x) <= 1, `${name}: output (${y}, ${x}) looks at (${cy.toFixed(2)}, ${cx.toFixed(2)})`);
      }
    }
  });
});
