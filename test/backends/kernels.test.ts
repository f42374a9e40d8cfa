// Project kernels on wasm against the cpu backend's kernels (the oracle), end-to-end gradients of a small
// conv net, and no tensor / backend-data / wasm-heap leak across training-like steps.
import { before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { listProjectKernels, registerProjectKernels } from '../../src/backends/index.js';
import { projectKernels } from '../../src/backends/kernels/index.js';
import { crossEntropy } from '../../src/losses/cross-entropy.js';
import { jdtLoss, type JdtLossOptions } from '../../src/losses/jdt.js';
import { ADAMW, type AdamWAttrs } from '../../src/backends/kernels/adamw.js';
import { batchNormTrain } from '../../src/backends/kernels/batch-norm-train.js';
import { logSoftmaxWithProbs } from '../../src/backends/kernels/log-softmax.js';
import { adamWOps } from '../../src/engine/optimizer.js';
import { FusedBatchNormalization } from '../../src/models/batch-norm.js';

type Shape4 = [number, number, number, number];
type Pad = 'same' | 'valid' | number[][];

const TOL = 1e-4;

/** max |a - b| / max |b| */
function relError(actual: ArrayLike<number>, expected: ArrayLike<number>): number {
  assert.equal(actual.length, expected.length, 'length');
  let num = 0;
  let den = 1e-12;
  for (let i = 0; i < expected.length; i++) {
    num = Math.max(num, Math.abs(actual[i] - expected[i]));
    den = Math.max(den, Math.abs(expected[i]));
  }
  return num / den;
}

function seeded(shape: number[], seed: number): Float32Array {
  // Small deterministic LCG so both backends see identical inputs.
  let s = seed * 9301 + 49297;
  const out = new Float32Array(shape.reduce((a, b) => a * b, 1));
  for (let i = 0; i < out.length; i++) {
    s = (s * 1103515245 + 12345) % 2147483648;
    out[i] = s / 1073741824 - 1;
  }
  return out;
}

interface Result { shape: number[]; values: Float32Array }

async function onBackend(name: 'cpu' | 'wasm', f: () => tf.Tensor): Promise<Result> {
  await tf.setBackend(name);
  const t = tf.tidy(f);
  const values = t.dataSync() as Float32Array;
  const shape = t.shape.slice();
  t.dispose();
  return { shape, values };
}

/** A k×k filter dilated by d as an explicit ((k-1)d+1)² filter with zeros between taps. */
function expandFilter(values: Float32Array, shape: Shape4, d: number): { values: Float32Array; shape: Shape4 } {
  const [kh, kw, a, b] = shape;
  const eh = (kh - 1) * d + 1;
  const ew = (kw - 1) * d + 1;
  const out = new Float32Array(eh * ew * a * b);
  for (let i = 0; i < kh; i++) {
    for (let j = 0; j < kw; j++) {
      out.set(values.subarray((i * kw + j) * a * b, (i * kw + j + 1) * a * b), (i * d * ew + j * d) * a * b);
    }
  }
  return { values: out, shape: [eh, ew, a, b] };
}

/** Every d-th tap of an expanded filter gradient. */
function takeTaps(values: Float32Array, expanded: Shape4, kh: number, kw: number, d: number): Float32Array {
  const [, ew, a, b] = expanded;
  const out = new Float32Array(kh * kw * a * b);
  for (let i = 0; i < kh; i++) {
    for (let j = 0; j < kw; j++) {
      const src = (i * d * ew + j * d) * a * b;
      out.set(values.subarray(src, src + a * b), (i * kw + j) * a * b);
    }
  }
  return out;
}

function outSize(n: number, k: number, s: number, d: number, pad: Pad, axis: 1 | 2): number {
  const ek = (k - 1) * d + 1;
  if (pad === 'same') return Math.ceil(n / s);
  if (pad === 'valid') return Math.ceil((n - ek + 1) / s);
  return Math.floor((n + pad[axis][0] + pad[axis][1] - ek) / s) + 1;
}

interface Case {
  x: Shape4;
  k: number;
  s: number;
  d: number;
  pad: Pad;
  cout: number; // output channels (conv) or channel multiplier (depthwise)
}

function grid(): Case[] {
  const cases: Case[] = [];
  for (const x of [[2, 11, 10, 3], [1, 8, 9, 4]] as Shape4[]) {
    for (const k of [1, 3, 5]) {
      for (const s of [1, 2]) {
        for (const d of [1, 2]) {
          if (s > 1 && d > 1) continue; // tf.conv2d / depthwiseConv2d reject stride > 1 with dilation > 1
          if (k === 1 && d > 1) continue;
          for (const pad of ['same', 'valid'] as Pad[]) {
            if (pad === 'valid' && (k - 1) * d + 1 > Math.min(x[1], x[2])) continue;
            cases.push({ x, k, s, d, pad, cout: x[3] === 3 ? 4 : 2 });
          }
        }
      }
    }
  }
  // Explicit (asymmetric) padding, with and without stride.
  cases.push({ x: [2, 9, 8, 3], k: 3, s: 1, d: 1, pad: [[0, 0], [2, 0], [0, 1], [0, 0]], cout: 2 });
  cases.push({ x: [2, 9, 8, 3], k: 3, s: 2, d: 1, pad: [[0, 0], [1, 2], [2, 1], [0, 0]], cout: 2 });
  return cases;
}

const label = (c: Case): string => `x=${c.x.join('x')} k=${c.k} s=${c.s} d=${c.d} pad=${JSON.stringify(c.pad)} c=${c.cout}`;

/**
 * Runs `kernelName` on wasm with the case's dilation, and the cpu oracle with dilation 1 and the filter
 * expanded (the cpu backend's depthwise backprop kernels mis-handle dilations; its conv ones take none).
 */
async function checkKernel(kernelName: string, c: Case, depthwise: boolean): Promise<void> {
  const [n, h, w, cin] = c.x;
  const fShape: Shape4 = [c.k, c.k, cin, c.cout];
  const coutTotal = depthwise ? cin * c.cout : c.cout;
  const dyShape: Shape4 = [n, outSize(h, c.k, c.s, c.d, c.pad, 1), outSize(w, c.k, c.s, c.d, c.pad, 2), coutTotal];
  const xv = seeded(c.x, 1);
  const dyv = seeded(dyShape, 2);
  const fv = seeded(fShape, 3);
  const ex = expandFilter(fv, fShape, c.d);
  const base = { strides: [c.s, c.s], pad: c.pad, dataFormat: 'NHWC' };
  const isFilterGrad = kernelName.endsWith('Filter');

  const run = (useWasm: boolean) => (): tf.Tensor => {
    const dil = useWasm ? { dilations: [c.d, c.d] } : { dilations: [1, 1] };
    if (isFilterGrad) {
      const filterShape = useWasm ? fShape : ex.shape;
      return tf.engine().runKernel(kernelName, { x: tf.tensor4d(xv, c.x), dy: tf.tensor4d(dyv, dyShape) }, { ...base, ...dil, filterShape } as never) as tf.Tensor;
    }
    const filter = useWasm ? tf.tensor4d(fv, fShape) : tf.tensor4d(ex.values, ex.shape);
    return tf.engine().runKernel(kernelName, { dy: tf.tensor4d(dyv, dyShape), filter }, { ...base, ...dil, inputShape: c.x } as never) as tf.Tensor;
  };
  const expected = await onBackend('cpu', run(false));
  const actual = await onBackend('wasm', run(true));
  let want = expected.values;
  if (isFilterGrad && c.d > 1) want = takeTaps(expected.values, ex.shape, c.k, c.k, c.d);
  const wantShape = isFilterGrad ? fShape : c.x;
  assert.deepEqual(actual.shape, wantShape, `${kernelName} shape, ${label(c)}`);
  const err = relError(actual.values, want);
  assert.ok(err <= TOL, `${kernelName} ${label(c)}: relative error ${err}`);
}

before(async () => {
  tf.enableProdMode();
  registerProjectKernels();
  await tf.setBackend('wasm');
  await tf.ready();
});

describe('project kernels vs the cpu backend', () => {
  test('every project kernel is registered for wasm', () => {
    for (const k of listProjectKernels()) {
      assert.ok(tf.getKernel(k.kernelName, k.backendName), `${k.kernelName} registered`);
    }
    assert.deepEqual(listProjectKernels().map((k) => k.kernelName).sort(), [
      'Concat', 'Conv2DBackpropFilter', 'Conv2DBackpropInput', 'DepthwiseConv2dNativeBackpropFilter', 'DepthwiseConv2dNativeBackpropInput',
      'Identity', 'MaxPoolGrad', 'Slice', 'SoftsegAdamW', 'SoftsegBatchNormTrain', 'SoftsegBatchNormTrainGrad', 'SoftsegHardNll', 'SoftsegHardNll', 'SoftsegHardNllGrad', 'SoftsegHardNllGrad',
      'SoftsegJdtStats', 'SoftsegJdtStats', 'SoftsegJdtStatsGrad', 'SoftsegJdtStatsGrad', 'SoftsegLogSoftmax', 'SoftsegLogSoftmaxGrad', 'SplitV', 'StridedSlice', 'Tile',
    ]);
  });

  const cases = grid();
  for (const kernelName of ['Conv2DBackpropFilter', 'Conv2DBackpropInput']) {
    test(`${kernelName}: ${cases.length} shape/stride/padding/dilation/kernel-size cases`, async () => {
      for (const c of cases) await checkKernel(kernelName, c, false);
    });
  }
  // Larger maps take Conv2DBackpropFilter's stride-1 matrix-product path (grid padding ≤ 1.35× the output),
  // including several chunks of images and batch sizes with few divisors.
  const bigCases: Case[] = [];
  for (const x of [[2, 16, 16, 5], [5, 36, 34, 2]] as Shape4[]) {
    for (const k of [1, 3, 5]) {
      for (const d of [1, 2]) {
        if (k === 1 && d > 1) continue;
        for (const pad of ['same', 'valid', [[0, 0], [2, 0], [0, 1], [0, 0]]] as Pad[]) {
          if (Array.isArray(pad) && k !== 3) continue;
          bigCases.push({ x, k, s: 1, d, pad, cout: 6 });
        }
      }
    }
  }
  test(`Conv2DBackpropFilter: ${bigCases.length} stride-1 cases on larger maps`, async () => {
    for (const c of bigCases) await checkKernel('Conv2DBackpropFilter', c, false);
  });

  for (const kernelName of ['DepthwiseConv2dNativeBackpropFilter', 'DepthwiseConv2dNativeBackpropInput']) {
    test(`${kernelName}: channel multipliers 1 and 2`, async () => {
      for (const c of cases) {
        await checkKernel(kernelName, { ...c, cout: 1 }, true);
        if (c.k !== 5) await checkKernel(kernelName, { ...c, cout: 2 }, true);
      }
      // Channel counts with blocks of four and a remainder (the filter gradient's direct loop for multiplier 1).
      const extra: Case[] = [
        { x: [2, 7, 9, 6], k: 3, s: 2, d: 1, pad: 'same', cout: 1 },
        { x: [3, 6, 6, 9], k: 3, s: 1, d: 2, pad: 'same', cout: 1 },
        { x: [2, 8, 8, 16], k: 3, s: 1, d: 1, pad: 'valid', cout: 1 },
      ];
      for (const c of extra) await checkKernel(kernelName, c, true);
    });
  }

  const dtypes: Array<'float32' | 'int32' | 'bool'> = ['float32', 'int32', 'bool'];
  const make = (shape: number[], dtype: 'float32' | 'int32' | 'bool', seed: number): tf.Tensor => {
    const v = seeded(shape, seed);
    if (dtype === 'float32') return tf.tensor(v, shape);
    if (dtype === 'int32') return tf.tensor(Int32Array.from(v, (e) => Math.round(e * 100)), shape, 'int32');
    return tf.tensor(Uint8Array.from(v, (e) => (e > 0 ? 1 : 0)), shape, 'bool');
  };
  async function sameOnBoth(what: string, f: () => tf.Tensor | tf.Tensor[]): Promise<void> {
    const run = async (b: 'cpu' | 'wasm') => {
      await tf.setBackend(b);
      return tf.tidy(() => {
        const r = f();
        return (Array.isArray(r) ? r : [r]).map((t) => ({ shape: t.shape.slice(), dtype: t.dtype, values: Array.from(t.dataSync() as Float32Array) }));
      });
    };
    assert.deepEqual(await run('wasm'), await run('cpu'), what);
  }

  test('Tile, Slice, SplitV and StridedSlice match the cpu backend exactly', async () => {
    for (const dtype of dtypes) {
      for (const [shape, reps] of [[[1, 1, 1, 5], [2, 3, 4, 1]], [[2, 3], [3, 2]], [[3], [4]], [[2, 1, 3, 2], [1, 3, 1, 2]], [[2, 2], [1, 1]], [[2, 3], [0, 2]]] as Array<[number[], number[]]>) {
        await sameOnBoth(`tile ${dtype} ${shape} × ${reps}`, () => tf.tile(make(shape, dtype, 4), reps));
      }
      for (const [begin, size] of [[[0, 0, 0, 0], [2, 5, 6, 3]], [[1, 2, 0, 3], [1, 3, 6, 4]], [[0, 1, 2, 0], [-1, -1, 2, 7]], [[1, 0, 0, 0], [1, 5, 6, 7]], [[0, 0, 0, 2], [2, 5, 6, 0]]]) {
        await sameOnBoth(`slice ${dtype} ${begin} ${size}`, () => tf.slice(make([2, 5, 6, 7], dtype, 5), begin, size));
      }
      await sameOnBoth(`slice 1-d ${dtype}`, () => tf.slice(make([40], dtype, 6), [3], [30]));
      await sameOnBoth(`split ${dtype}`, () => tf.split(make([2, 5, 6, 7], dtype, 7), [3, 4], 3));
      await sameOnBoth(`split axis 1 ${dtype}`, () => tf.split(make([2, 6, 6, 7], dtype, 8), 3, 1));
    }
    const x = make([3, 9, 8, 5], 'float32', 9);
    const cases: Array<[number[], number[], number[], number, number, number]> = [
      [[0, 0, 0, 0], [3, 9, 8, 5], [1, 2, 2, 1], 0, 0, 0],
      [[0, 1, 1, 0], [3, 9, 8, 5], [1, 2, 2, 1], 0, 0, 0],
      [[0, 0, 0, 1], [0, 0, 0, 5], [1, 3, 2, 2], 7, 7, 0],
      [[1, 0, 0, 0], [2, 9, 8, 5], [1, 1, 1, 1], 0, 0, 1], // shrink axis 0
      [[0, 2, 0, 0], [3, 7, 8, 5], [2, 1, 3, 1], 0, 0, 0],
      [[0, 8, 0, 0], [3, 0, 8, 5], [1, -2, 1, 1], 0, 0, 0], // negative stride → shipped kernel
    ];
    for (const [b, e, st, bm, em, sm] of cases) {
      await sameOnBoth(`stridedSlice ${b} ${e} ${st}`, () => tf.stridedSlice(x, b, e, st, bm, em, 0, 0, sm));
    }
    await sameOnBoth('stridedSlice int32 s2', () => tf.stridedSlice(make([2, 6, 6, 3], 'int32', 10), [0, 0, 0, 0], [2, 6, 6, 3], [1, 2, 2, 1]));
    x.dispose();
  });

  test('Concat and Identity match the cpu backend exactly; Identity shares data safely', async () => {
    for (const dtype of dtypes) {
      for (const axis of [0, 1, 2, 3, -1]) {
        await sameOnBoth(`concat ${dtype} axis ${axis}`, () => tf.concat([make([2, 3, 4, 5], dtype, 21), make([2, 3, 4, 5], dtype, 22), make([2, 3, 4, 5], dtype, 23)], axis));
      }
      await sameOnBoth(`concat ${dtype} channels 16+48`, () => tf.concat([make([2, 3, 3, 16], dtype, 24), make([2, 3, 3, 48], dtype, 25)], 3));
      await sameOnBoth(`concat ${dtype} with an empty input`, () => tf.concat([make([2, 3, 0], dtype, 26), make([2, 3, 4], dtype, 27)], 2));
      await sameOnBoth(`concat ${dtype} 1-d`, () => tf.concat([make([7], dtype, 28), make([70], dtype, 29)]));
      await sameOnBoth(`split ${dtype} 16+48`, () => tf.split(make([2, 3, 3, 64], dtype, 30), [16, 48], 3));
      await sameOnBoth(`split ${dtype} axis 0`, () => tf.split(make([4, 3, 2], dtype, 31), [1, 3], 0));
      await sameOnBoth(`identity ${dtype}`, () => tf.clone(make([2, 3, 4], dtype, 32)));
    }
    await tf.setBackend('wasm');
    const a = tf.tensor([1, 2, 3]);
    const b = tf.clone(a);
    a.dispose();
    assert.deepEqual(Array.from(b.dataSync()), [1, 2, 3], 'a clone outlives its source');
    b.dispose();
  });

  test('MaxPoolGrad matches the cpu backend (ties included)', async () => {
    const shapes: Shape4[] = [[2, 8, 8, 3], [1, 7, 9, 5], [3, 6, 6, 16]];
    for (const shape of shapes) {
      for (const [k, st] of [[2, 2], [3, 2], [3, 1], [2, 1]]) {
        for (const pad of ['valid', 'same'] as const) {
          for (const ties of [false, true]) {
            const f = (): tf.Tensor => {
              // ties: ReLU output (many equal zeros per window) and values rounded to a coarse grid.
              let x: tf.Tensor4D = tf.tensor4d(seeded(shape, 41), shape);
              if (ties) x = tf.relu(tf.round(tf.mul(x, 2))) as tf.Tensor4D;
              const dy = tf.tensor4d(seeded(tf.maxPool(x, k, st, pad).shape, 42), tf.maxPool(x, k, st, pad).shape as Shape4);
              return tf.grad((z: tf.Tensor) => tf.sum(tf.mul(tf.maxPool(z as tf.Tensor4D, k, st, pad), dy)))(x);
            };
            const got = await onBackend('wasm', f);
            const want = await onBackend('cpu', f);
            const err = relError(got.values, want.values);
            assert.ok(err <= TOL, `maxPool grad x=${shape} k=${k} s=${st} ${pad} ties=${ties}: relative error ${err}`);
          }
        }
      }
    }
  });

  test('SoftsegBatchNormTrain and its gradient match moments + batchNorm on cpu', async () => {
    const shapes: number[][] = [[2, 5, 7, 3], [4, 8, 8, 16], [1, 1, 1, 4], [6, 5], [3, 4, 130], [2, 3, 3, 1]];
    for (const shape of shapes) {
      const c = shape[shape.length - 1]!;
      for (const offset of [0, 100]) {
        const inputs = (): [tf.Tensor, tf.Tensor1D, tf.Tensor1D, tf.Tensor] => [
          tf.add(tf.tensor(seeded(shape, 51), shape), offset),
          tf.add(tf.tensor1d(seeded([c], 52)), 1.5),
          tf.tensor1d(seeded([c], 53)),
          tf.tensor(seeded(shape, 54), shape),
        ];
        // Outputs y, mean, variance and the gradients of Σ y·w with respect to x, γ, β, concatenated.
        const run = (fused: boolean) => (): tf.Tensor => {
          const [x, gamma, beta, w] = inputs();
          const axes = shape.slice(0, -1).map((_, i) => i);
          const f = (xx: tf.Tensor, gg: tf.Tensor, bb: tf.Tensor) => {
            if (fused) return batchNormTrain(xx, gg as tf.Tensor1D, bb as tf.Tensor1D, 1e-5);
            const m = tf.moments(xx, axes);
            return { y: tf.batchNorm(xx, m.mean, m.variance, bb as tf.Tensor1D, gg as tf.Tensor1D, 1e-5), mean: m.mean, variance: m.variance };
          };
          const { y, mean, variance } = f(x, gamma, beta);
          const grads = tf.grads((xx: tf.Tensor, gg: tf.Tensor, bb: tf.Tensor) => tf.sum(tf.mul(f(xx, gg, bb).y, w)))([x, gamma, beta]);
          return tf.concat([y, mean, variance, ...grads].map((t) => tf.reshape(t, [-1])));
        };
        const got = await onBackend('wasm', run(true));
        const want = await onBackend('cpu', run(false));
        const err = relError(got.values, want.values);
        assert.ok(err <= TOL, `batch norm ${shape} offset ${offset}: relative error ${err}`);
      }
    }
  });

  test("the zoo's batch-norm layer matches tf.layers.batchNormalization in training, moving statistics included", async () => {
    await tf.setBackend('wasm');
    const shape: Shape4 = [3, 6, 5, 8];
    const cfg = { axis: -1, momentum: 0.9, epsilon: 1e-5 };
    const fused = new FusedBatchNormalization({ ...cfg, name: 'bn_fused' });
    const stock = tf.layers.batchNormalization({ ...cfg, name: 'bn_stock' });
    assert.equal(fused.getClassName(), 'BatchNormalization', 'serialises as the stock class');
    for (let step = 0; step < 3; step++) {
      const x = tf.add(tf.mul(tf.tensor4d(seeded(shape, 71 + step), shape), 2), 0.5);
      const ys = [fused, stock].map((layer) => tf.tidy(() => layer.apply(x, { training: true }) as tf.Tensor));
      if (step === 0) stock.setWeights(fused.getWeights()); // same initial weights (both default: γ 1, β 0, moving 0 / 1)
      const err = relError(ys[0]!.dataSync(), ys[1]!.dataSync());
      assert.ok(err <= TOL, `step ${step}: output relative error ${err}`);
      const [, , mmF, mvF] = fused.getWeights(), [, , mmS, mvS] = stock.getWeights();
      assert.ok(relError(mmF!.dataSync(), mmS!.dataSync()) <= TOL, `step ${step}: moving mean`);
      assert.ok(relError(mvF!.dataSync(), mvS!.dataSync()) <= TOL, `step ${step}: moving variance`);
      tf.dispose([x, ...ys]);
    }
    // Inference uses the moving statistics, as the stock layer.
    const x = tf.tensor4d(seeded(shape, 80), shape);
    const [a, b] = [fused, stock].map((layer) => layer.apply(x, { training: false }) as tf.Tensor);
    assert.ok(relError(a!.dataSync(), b!.dataSync()) <= TOL, 'inference');
    tf.dispose([x, a!, b!]);
    fused.dispose();
    stock.dispose();
  });

  test('SoftsegLogSoftmax (log-probabilities and probabilities) and its gradient match tf.logSoftmax + tf.exp on cpu', async () => {
    for (const shape of [[2, 5, 7, 11], [3, 4], [1, 1, 1, 1], [2, 3, 130]]) {
      for (const scale of [1, 40]) {
        for (const uses of ['both', 'logp', 'prob'] as const) {
          const f = (): tf.Tensor => {
            const z = tf.mul(tf.tensor(seeded(shape, 91), shape), scale);
            const w1 = tf.tensor(seeded(shape, 92), shape), w2 = tf.tensor(seeded(shape, 93), shape);
            const parts = (zz: tf.Tensor) => {
              const { logp, prob } = logSoftmaxWithProbs(zz);
              return { logp, prob, loss: tf.add(uses === 'prob' ? 0 : tf.sum(tf.mul(logp, w1)), uses === 'logp' ? 0 : tf.sum(tf.mul(prob, w2))) };
            };
            const { logp, prob } = parts(z);
            const grad = tf.grad((zz: tf.Tensor) => parts(zz).loss as tf.Scalar)(z);
            return tf.concat([logp, prob, grad].map((t) => tf.reshape(t, [-1])));
          };
          const got = await onBackend('wasm', f);
          const want = await onBackend('cpu', f);
          const err = relError(got.values, want.values);
          assert.ok(err <= TOL, `log-softmax ${shape} ×${scale} (${uses}): relative error ${err}`);
        }
      }
    }
  });

  test('SoftsegAdamW matches the AdamW update as plain ops on cpu', async () => {
    for (const shape of [[3, 3, 4, 5], [7], [1]]) {
      for (const [t, decay] of [[1, 0], [1, 1e-3], [10, 1e-4], [1000, 0]] as Array<[number, number]>) {
        const attrs: AdamWAttrs = { lr: 2e-3, beta1: 0.9, beta2: 0.999, epsilon: 1e-8, decay, bias1: 1 - 0.9 ** t, bias2: 1 - 0.999 ** t };
        const inputs = () => ({
          x: tf.tensor(seeded(shape, 61), shape),
          m: tf.mul(tf.tensor(seeded(shape, 62), shape), 0.01),
          v: tf.mul(tf.abs(tf.tensor(seeded(shape, 63), shape)), 1e-4),
          g: tf.mul(tf.tensor(seeded(shape, 64), shape), 0.05),
        });
        const got = await onBackend('wasm', () => tf.concat((tf.engine().runKernel(ADAMW, inputs(), attrs as unknown as tf.NamedAttrMap) as tf.Tensor[]).map((o) => tf.reshape(o, [-1]))));
        const want = await onBackend('cpu', () => {
          const { x, m, v, g } = inputs();
          return tf.concat(adamWOps(x, m, v, g, attrs).map((o) => tf.reshape(o, [-1])));
        });
        const err = relError(got.values, want.values);
        assert.ok(err <= TOL, `AdamW ${shape} t=${t} decay=${decay}: relative error ${err}`);
      }
    }
  });

  test('fused loss kernels (SoftsegJdtStats, SoftsegHardNll and their gradients) match the op-based losses on cpu', async () => {
    const fusedKernels = projectKernels.filter((k) => k.kernelName.startsWith('Softseg'));
    const jdtCases: Array<{ name: string; opts: JdtLossOptions; soft: boolean; keep: boolean; ignore: boolean }> = [
      { name: 'hard PRESENT', opts: {}, soft: false, keep: false, ignore: true },
      { name: 'hard ALL per-image', opts: { activeClassesHard: 'ALL', weightPerImage: 1, weightPerClass: 1 }, soft: false, keep: false, ignore: false },
      { name: 'hard keep mask, Dice, log', opts: { alpha: 0.5, beta: 0.5, logLoss: true, smooth: 0.1 }, soft: false, keep: true, ignore: true },
      { name: 'soft ALL', opts: {}, soft: true, keep: false, ignore: false },
      { name: 'soft keep BOTH', opts: { activeClassesSoft: 'BOTH', gamma: 2 }, soft: true, keep: true, ignore: false },
      { name: 'soft PROB', opts: { activeClassesSoft: 'PROB' }, soft: true, keep: true, ignore: false },
    ];
    for (const [n, h, w, c] of [[2, 5, 7, 4], [3, 8, 8, 11], [1, 3, 3, 2]] as Shape4[]) {
      for (const jc of jdtCases) {
        const f = (): tf.Tensor => {
          const logits = tf.mul(tf.tensor4d(seeded([n, h, w, c], 11), [n, h, w, c]), 3);
          let label: tf.Tensor;
          if (jc.soft) label = tf.softmax(tf.tensor4d(seeded([n, h, w, c], 12), [n, h, w, c]));
          else {
            const ids = Int32Array.from(seeded([n, h, w], 13), (v, i) => (jc.ignore && i % 7 === 3 ? 255 : Math.floor((v + 1) * c * 0.6)));
            label = tf.tensor3d(ids, [n, h, w], 'int32');
          }
          const keep = jc.keep ? tf.tensor3d(Float32Array.from(seeded([n, h, w], 14), (v) => (v > -0.5 ? 1 : 0)), [n, h, w]) : null;
          const loss = (z: tf.Tensor): tf.Scalar => {
            const jdt = jdtLoss(z, label, jc.opts, keep);
            return jc.soft ? jdt : tf.add(jdt, crossEntropy(z, label, { ignoreIndex: jc.ignore ? 255 : null })) as tf.Scalar;
          };
          const { value, grad } = tf.valueAndGrad(loss)(logits);
          return tf.concat([tf.reshape(value, [1]), tf.reshape(grad, [-1])]);
        };
        const actual = await onBackend('wasm', f);
        for (const k of fusedKernels) tf.unregisterKernel(k.kernelName, k.backendName);
        let expected: Result;
        try {
          expected = await onBackend('cpu', f);
        } finally {
          for (const k of fusedKernels) tf.registerKernel(k);
        }
        const err = relError(actual.values, expected.values);
        assert.ok(err <= TOL, `${jc.name} [${n},${h},${w},${c}]: relative error ${err}`);
      }
    }
  });

  test('NCHW is rejected with a clear message', async () => {
    await tf.setBackend('wasm');
    assert.throws(
      () => tf.engine().runKernel('Conv2DBackpropFilter', { x: tf.zeros([1, 2, 4, 4]), dy: tf.zeros([1, 2, 4, 4]) },
        { strides: 1, pad: 'same', dataFormat: 'NCHW', filterShape: [3, 3, 2, 2] } as never),
      /NHWC/,
    );
  });
});

// A small net: conv2d → relu → depthwise s2 → conv 1×1 → conv2dTranspose s2 → resizeBilinear → conv 3×3.
function makeParams(): Record<string, tf.Tensor> {
  return {
    w1: tf.tensor4d(seeded([3, 3, 3, 8], 11), [3, 3, 3, 8]).mul(0.3),
    dw: tf.tensor4d(seeded([3, 3, 8, 2], 12), [3, 3, 8, 2]).mul(0.3),
    w2: tf.tensor4d(seeded([1, 1, 16, 8], 13), [1, 1, 16, 8]).mul(0.3),
    wt: tf.tensor4d(seeded([3, 3, 6, 8], 14), [3, 3, 6, 8]).mul(0.3),
    w3: tf.tensor4d(seeded([3, 3, 6, 4], 15), [3, 3, 6, 4]).mul(0.3),
  };
}

function forward(x: tf.Tensor4D, p: Record<string, tf.Tensor>): tf.Scalar {
  let h = tf.relu(tf.conv2d(x, p.w1 as tf.Tensor4D, 1, 'same'));
  h = tf.depthwiseConv2d(h, p.dw as tf.Tensor4D, 2, 'same');
  h = tf.relu(tf.conv2d(h, p.w2 as tf.Tensor4D, 1, 'valid'));
  h = tf.conv2dTranspose(h, p.wt as tf.Tensor4D, [x.shape[0], x.shape[1], x.shape[2], 6], 2, 'same');
  h = tf.image.resizeBilinear(h, [x.shape[1] * 2, x.shape[2] * 2]);
  h = tf.conv2d(h, p.w3 as tf.Tensor4D, 1, 'same');
  return tf.mean(tf.square(tf.sub(h, 0.1)));
}

describe('end-to-end', () => {
  test('tf.grads of a small conv net agree between wasm and cpu', async () => {
    // Square: the cpu backend's ResizeBilinearGrad swaps H and W for non-square images (tfjs 4.22).
    const xShape: Shape4 = [2, 12, 12, 3];
    const xv = seeded(xShape, 21);
    const grads = async (backend: 'cpu' | 'wasm'): Promise<Float32Array[]> => {
      await tf.setBackend(backend);
      return tf.tidy(() => {
        const p = makeParams();
        const names = Object.keys(p);
        const x = tf.tensor4d(xv, xShape);
        const g = tf.grads((...ts: tf.Tensor[]) => {
          const q: Record<string, tf.Tensor> = {};
          names.forEach((n, i) => { q[n] = ts[i + 1]; });
          return forward(ts[0] as tf.Tensor4D, q);
        })([x, ...names.map((n) => p[n])]);
        return g.map((t) => t.dataSync() as Float32Array);
      });
    };
    const want = await grads('cpu');
    const got = await grads('wasm');
    const names = ['x', 'w1', 'dw', 'w2', 'wt', 'w3'];
    for (let i = 0; i < want.length; i++) {
      const err = relError(got[i], want[i]);
      assert.ok(err <= TOL, `gradient of ${names[i]}: relative error ${err}`);
    }
  });

  test('no tensor, backend-data or wasm-heap leak across training steps', async () => {
    await tf.setBackend('wasm');
    const backend = tf.backend() as unknown as { numDataIds(): number; wasm: { HEAPU8: Uint8Array } };
    const p = makeParams();
    const vars = Object.fromEntries(Object.entries(p).map(([k, v]) => [k, tf.variable(v, true, `leak_${k}`)]));
    Object.values(p).forEach((t) => t.dispose());
    const x = tf.tensor4d(seeded([4, 16, 16, 3], 31), [4, 16, 16, 3]);
    const opt = tf.train.sgd(0.01);
    const step = (): void => {
      tf.tidy(() => {
        const { grads } = tf.variableGrads(() => forward(x, vars));
        opt.applyGradients(grads);
      });
    };
    step();
    step();
    const tensors = tf.memory().numTensors;
    const dataIds = backend.numDataIds();
    const heap = backend.wasm.HEAPU8.length;
    for (let i = 0; i < 8; i++) step();
    assert.equal(tf.memory().numTensors, tensors, 'engine tensors');
    assert.equal(backend.numDataIds(), dataIds, 'wasm backend data ids');
    assert.equal(backend.wasm.HEAPU8.length, heap, 'wasm heap size');
    opt.dispose();
    x.dispose();
    Object.values(vars).forEach((v) => v.dispose());
  });
});
