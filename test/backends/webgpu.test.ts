// The webgpu backend for real, on whatever adapter Dawn finds (on CI: Mesa's lavapipe, a CPU Vulkan driver —
// slow, so shapes are small): the reference vectors, the project kernels (int32 work-arounds, the filter gradient, AdamW,
// depthwise gradients, batch norm, JDT loss statistics, log-softmax, hard-label NLL), reads, device errors, and one training step's gradients of every zoo model against the cpu backend.
import { before, describe, test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { createModel, listModels } from '../../src/models/registry.js';
import { initBackend } from '../../src/backends/select.js';
import { conv2DBackpropFilterWebGpu } from '../../src/backends/kernels/webgpu/conv2d-backprop-filter.js';
import { MIN_POSITIONS as DEPTHWISE_MIN_POSITIONS } from '../../src/backends/kernels/webgpu/depthwise-conv2d-backprop-filter.js';
import { transposeWebGpu } from '../../src/backends/kernels/webgpu/transpose.js';
import { hardLabelObjective } from '../../src/losses/index.js';
import { ADAMW } from '../../src/backends/kernels/adamw.js';
import { batchNormTrain } from '../../src/backends/kernels/batch-norm-train.js';
import { hardNllKernels } from '../../src/backends/kernels/hard-nll.js';
import { jdtStatsKernels } from '../../src/backends/kernels/jdt-stats.js';
import { logSoftmaxWithProbs } from '../../src/backends/kernels/log-softmax.js';
import { adamWOps, SegOptimizer } from '../../src/engine/optimizer.js';
import { TrainStep, type TensorBatch } from '../../src/engine/step.js';
import { checkAllVectors } from '../helpers/backend.js';
import { requireWebGpu } from '../helpers/system-deps.js';

let skip: string | undefined;
before(async () => {
  const dep = await requireWebGpu();
  if ('skip' in dep) skip = dep.skip;
});

/** Starts (or returns to) the webgpu backend; false when the test must skip. */
async function onWebGpu(t: TestContext): Promise<boolean> {
  if (skip !== undefined) {
    t.skip(skip);
    return false;
  }
  await initBackend({ backend: 'webgpu' });
  return true;
}

const SIZE = 32;
/** A square and a stripe on a background: n images of 32², hard labels over 3 classes; optionally Gaussian noise (std) on the images. */
function syntheticBatch(n: number, noise = 0): TensorBatch {
  return tf.tidy(() => {
    const labels = new Int32Array(n * SIZE * SIZE), images = new Float32Array(n * SIZE * SIZE * 3);
    for (let i = 0; i < n; i++) {
      for (let y = 0; y < SIZE; y++) {
        for (let x = 0; x < SIZE; x++) {
          const p = (i * SIZE + y) * SIZE + x;
          const square = x >= 8 + i && x < 20 + i && y >= 6 && y < 18, stripe = y >= 24 && y < 28;
          labels[p] = square ? 1 : stripe ? 2 : 0;
          images[p * 3] = square ? 1 : -0.5 + 0.1 * Math.sin(x * 7 + y);
          images[p * 3 + 1] = stripe ? 1 : -0.5;
          images[p * 3 + 2] = 0.2 * Math.cos(x * y);
        }
      }
    }
    const clean = tf.tensor4d(images, [n, SIZE, SIZE, 3]);
    return { images: noise > 0 ? tf.add(clean, tf.randomNormal(clean.shape, 0, noise, 'float32', 7)) : clean, labels: tf.tensor3d(labels, [n, SIZE, SIZE], 'int32') };
  });
}

type Outputs = Record<'cpu' | 'webgpu', Float32Array[][]>;

/**
 * Runs `compute` for every case on the cpu backend, then on webgpu, and returns each backend's outputs per case
 * ([case][output]). `compute` must leave nothing behind but the tensors it returns (checked).
 */
async function onCpuAndWebGpu<C>(cases: readonly C[], compute: (c: C, backend: 'cpu' | 'webgpu') => tf.Tensor[]): Promise<Outputs> {
  const results: Outputs = { cpu: [], webgpu: [] };
  for (const backend of ['cpu', 'webgpu'] as const) {
    await initBackend({ backend });
    for (const c of cases) {
      const before = tf.memory().numTensors;
      const out = compute(c, backend);
      results[backend].push(await Promise.all(out.map((e) => e.data() as Promise<Float32Array>)));
      tf.dispose(out);
      assert.equal(tf.memory().numTensors, before, `${backend} ${JSON.stringify(c)}: tensors left behind`);
    }
  }
  return results;
}

/** Asserts webgpu's outputs equal cpu's: max |Δ| ≤ tol · max(max |cpu|, floor), per case and named output. */
function assertAgree<C>(cases: readonly C[], results: Outputs, parts: readonly string[], tol: number, floor = 0): void {
  cases.forEach((c, i) => parts.forEach((part, k) => {
    const expected = results.cpu[i]![k]!, got = results.webgpu[i]![k]!;
    let d = 0, s = 0;
    for (let j = 0; j < expected.length; j++) {
      d = Math.max(d, Math.abs(expected[j]! - got[j]!));
      s = Math.max(s, Math.abs(expected[j]!));
    }
    assert.ok(d <= tol * Math.max(s, floor), `${JSON.stringify(c)} ${part}: max difference ${d} vs scale ${s}`);
  }));
}

describe('webgpu backend', () => {
  test('starts on the adapter the probe found, with the project kernels', async (t) => {
    if (!(await onWebGpu(t))) return;
    const info = await initBackend({ backend: 'webgpu' });
    assert.equal(info.name, 'webgpu');
    assert.equal(tf.getBackend(), 'webgpu');
    assert.equal(info.projectKernels, true);
    assert.ok(info.adapter && info.adapter.vendor.length > 0);
    assert.match(info.reason, /^webgpu requested; adapter .*, (hardware|software \(CPU\))$/);
    assert.equal(tf.getKernel('Transpose', 'webgpu')?.kernelFunc, transposeWebGpu.kernelFunc, 'project Transpose registered');
    assert.equal(tf.getKernel('Conv2DBackpropFilter', 'webgpu')?.kernelFunc, conv2DBackpropFilterWebGpu.kernelFunc, 'project Conv2DBackpropFilter registered');
  });

  test('every reference vector case passes at the same tolerances as on wasm, without leaking tensors', async (t) => {
    if (!(await onWebGpu(t))) return;
    const { failed, count, leaked } = await checkAllVectors();
    assert.deepEqual(failed, []);
    assert.equal(count, 69);
    assert.equal(leaked, 0);
  });

  test('int32 transposes and reductions over outer axes are exact (the shipped shaders do not compile for them)', async (t) => {
    if (!(await onWebGpu(t))) return;
    const [a, b, c] = [2, 3, 1500]; // above the size the backend computes on the CPU
    const values = Int32Array.from({ length: a * b * c }, (_, i) => (i * 7919) % 23);
    const at = (i: number, j: number, k: number): number => values[(i * b + j) * c + k]!;
    const x = tf.tensor3d(values, [a, b, c], 'int32');
    const xf = tf.cast(x, 'float32'); // shares x's int32 buffer
    const sum1 = Array.from({ length: a * c }, (_, q) => { const i = Math.floor(q / c), k = q % c; let s = 0; for (let j = 0; j < b; j++) s += at(i, j, k); return s; });
    const max0 = Array.from({ length: b * c }, (_, q) => { const j = Math.floor(q / c), k = q % c; return Math.max(at(0, j, k), at(1, j, k)); });
    const argmax1 = Array.from({ length: a * c }, (_, q) => { const i = Math.floor(q / c), k = q % c; let best = 0; for (let j = 1; j < b; j++) if (at(i, j, k) > at(i, best, k)) best = j; return best; });
    const transposed = Array.from({ length: a * b * c }, (_, q) => { const k = Math.floor(q / (a * b)), i = Math.floor((q % (a * b)) / b), j = q % b; return at(i, j, k); });
    const cases: Array<[string, () => tf.Tensor, number[]]> = [
      ['transpose [2,0,1]', () => tf.transpose(x, [2, 0, 1]), transposed],
      ['sum over axis 1', () => tf.sum(x, 1), sum1],
      ['sum over axis 1, float cast from int32', () => tf.sum(xf, 1), sum1],
      ['max over axis 0, keepDims', () => tf.max(x, 0, true), max0],
      ['argMax over axis 1', () => tf.argMax(x, 1), argmax1],
      ['any over axis 1', () => tf.any(tf.cast(x, 'bool'), 1), sum1.map((_, q) => Number([0, 1, 2].some((j) => at(Math.floor(q / c), j, q % c) !== 0)))],
      ['cumsum over axis 1', () => tf.cumsum(x, 1), Array.from({ length: a * b * c }, (_, q) => { const i = Math.floor(q / (b * c)), j = Math.floor((q % (b * c)) / c), k = q % c; let s = 0; for (let jj = 0; jj <= j; jj++) s += at(i, jj, k); return s; })],
    ];
    const before = tf.memory().numTensors;
    for (const [name, op, expected] of cases) {
      const y = tf.tidy(op);
      assert.deepEqual(Array.from(await y.data()), expected, name);
      y.dispose();
    }
    assert.equal(tf.memory().numTensors, before);
    tf.dispose([x, xf]);
  });

  test('the project Conv2DBackpropFilter (an implicit GEMM) agrees with the cpu backend: strides, paddings, kernel shapes, tiles and splits', async (t) => {
    if (!(await onWebGpu(t))) return;
    // [x shape, filter shape, stride, pad]; all above MIN_POSITIONS output positions, so the project path runs.
    const cases: Array<[[number, number, number, number], [number, number, number, number], number, 'same' | 'valid' | number]> = [
      [[2, 20, 20, 4], [3, 3, 4, 8], 1, 'same'],
      [[2, 33, 31, 3], [3, 3, 3, 8], 2, 'same'],
      [[2, 24, 24, 4], [1, 1, 4, 6], 1, 'valid'],
      [[3, 28, 26, 5], [3, 3, 5, 7], 2, 'valid'],
      [[1, 30, 26, 2], [5, 3, 2, 3], 1, 'same'],
      [[2, 18, 18, 3], [3, 3, 3, 4], 1, 1],
      [[2, 16, 16, 8], [3, 3, 8, 40], 1, 'same'], // two column blocks, three row blocks (vec4 reads: Ci, Co multiples of 4)
      [[2, 33, 31, 4], [3, 3, 4, 8], 2, 'valid'], // vec4 reads, stride 2
      [[2, 300, 1, 2], [3, 1, 2, 3], 1, 'same'], // one output column
    ];
    // The kernel runs outside any tidy, so intermediate tensors it leaves behind are counted.
    const results = await onCpuAndWebGpu(cases, ([xShape, filterShape, stride, pad]) => {
      const x = tf.randomNormal(xShape, 0, 1, 'float32', 1) as tf.Tensor4D;
      const dy = tf.tidy(() => tf.randomNormal(tf.conv2d(x, tf.zeros(filterShape) as tf.Tensor4D, stride, pad).shape, 0, 1, 'float32', 2));
      const dw = tf.engine().runKernel('Conv2DBackpropFilter', { x, dy }, { strides: [stride, stride], pad, dataFormat: 'NHWC', filterShape } as unknown as tf.NamedAttrMap) as tf.Tensor;
      assert.deepEqual(dw.shape, filterShape);
      tf.dispose([x, dy]);
      return [dw];
    });
    assertAgree(cases, results, ['dw'], 1e-5);
  });

  test('the project DepthwiseConv2dNativeBackpropFilter (a two-level reduction) agrees with the cpu backend: strides, paddings, multipliers', async (t) => {
    if (!(await onWebGpu(t))) return;
    // [x shape, filter shape [kh, kw, C, M], stride, pad]; all but the last have at least MIN_POSITIONS output
    // positions (the project path), the last is the shipped kernel's.
    const cases: Array<[[number, number, number, number], [number, number, number, number], number, 'same' | 'valid' | number]> = [
      [[2, 40, 40, 8], [3, 3, 8, 1], 1, 'same'],
      [[2, 66, 63, 5], [3, 3, 5, 1], 2, 'same'],
      [[3, 30, 30, 4], [3, 3, 4, 2], 1, 'valid'],
      [[2, 80, 60, 3], [5, 3, 3, 1], 2, 'valid'],
      [[2, 36, 36, 6], [3, 3, 6, 1], 1, 1],
      [[1, 2, 2, 3], [3, 3, 3, 1], 1, 'same'],
    ];
    for (const [xShape, [kh, kw], stride, pad] of cases.slice(0, -1)) {
      const [outH, outW] = [1, 2].map((d) => pad === 'valid' ? Math.ceil((xShape[d]! - (d === 1 ? kh : kw) + 1) / stride) : pad === 'same' ? Math.ceil(xShape[d]! / stride) : xShape[d]! + 2 * pad - (d === 1 ? kh : kw) + 1);
      assert.ok(xShape[0] * outH! * outW! >= DEPTHWISE_MIN_POSITIONS, `${xShape}: below the project kernel's size`);
    }
    const results = await onCpuAndWebGpu(cases, ([xShape, filterShape, stride, pad]) => {
      const x = tf.randomNormal(xShape, 0, 1, 'float32', 1) as tf.Tensor4D;
      const dy = tf.tidy(() => tf.randomNormal(tf.depthwiseConv2d(x, tf.zeros(filterShape) as tf.Tensor4D, stride, pad).shape, 0, 1, 'float32', 2));
      const dw = tf.engine().runKernel('DepthwiseConv2dNativeBackpropFilter', { x, dy }, { strides: [stride, stride], dilations: [1, 1], pad, filterShape } as unknown as tf.NamedAttrMap) as tf.Tensor;
      assert.deepEqual(dw.shape, filterShape);
      tf.dispose([x, dy]);
      return [dw];
    });
    assertAgree(cases, results, ['dw'], 1e-5);
  });

  test('the project DepthwiseConv2dNativeBackpropInput (stride 1) agrees with the cpu backend: paddings, kernel shapes, multipliers', async (t) => {
    if (!(await onWebGpu(t))) return;
    // [x shape, filter shape [kh, kw, C, M], stride, pad]; the stride-2 case is the shipped kernel's.
    const cases: Array<[[number, number, number, number], [number, number, number, number], number, 'same' | 'valid' | number]> = [
      [[2, 20, 20, 8], [3, 3, 8, 1], 1, 'same'],
      [[3, 12, 14, 4], [3, 3, 4, 2], 1, 'valid'],
      [[1, 30, 26, 3], [5, 3, 3, 1], 1, 'same'],
      [[2, 18, 18, 6], [3, 3, 6, 1], 1, 2],
      [[1, 2, 2, 3], [3, 3, 3, 1], 1, 'same'],
      [[2, 33, 31, 5], [3, 3, 5, 1], 2, 'same'],
    ];
    const results = await onCpuAndWebGpu(cases, ([xShape, filterShape, stride, pad]) => {
      const filter = tf.randomNormal(filterShape, 0, 1, 'float32', 1) as tf.Tensor4D;
      const dy = tf.tidy(() => tf.randomNormal(tf.depthwiseConv2d(tf.zeros(xShape) as tf.Tensor4D, filter, stride, pad).shape, 0, 1, 'float32', 2));
      const dx = tf.engine().runKernel('DepthwiseConv2dNativeBackpropInput', { dy, filter }, { strides: [stride, stride], dilations: [1, 1], pad, inputShape: xShape } as unknown as tf.NamedAttrMap) as tf.Tensor;
      assert.deepEqual(dx.shape, xShape);
      tf.dispose([filter, dy]);
      return [dx];
    });
    assertAgree(cases, results, ['dx'], 1e-5);
  });

  test('the project AdamW kernel gives the optimizer\'s plain-op update (x, m, v)', async (t) => {
    if (!(await onWebGpu(t))) return;
    const shape = [3, 3, 8, 16];
    const [x, m, v, g] = [tf.randomNormal(shape, 0, 1, 'float32', 1), tf.randomNormal(shape, 0, 0.1, 'float32', 2), tf.randomUniform(shape, 0, 0.01, 'float32', 3), tf.randomNormal(shape, 0, 0.1, 'float32', 4)];
    const attrs = { lr: 1e-3, beta1: 0.9, beta2: 0.999, epsilon: 1e-8, decay: 1e-3 * 1e-4, bias1: 1 - 0.9 ** 3, bias2: 1 - 0.999 ** 3 };
    const before = tf.memory().numTensors;
    const fused = tf.engine().runKernel(ADAMW, { x, m, v, g }, attrs as unknown as tf.NamedAttrMap) as tf.Tensor[];
    const plain = adamWOps(x!, m!, v!, g!, attrs);
    for (let i = 0; i < 3; i++) {
      const [f, p] = [(await fused[i]!.data()) as Float32Array, (await plain[i]!.data()) as Float32Array];
      const scale = p.reduce((s, e) => Math.max(s, Math.abs(e)), 0);
      f.forEach((e, j) => assert.ok(Math.abs(e - p[j]!) <= 1e-6 * scale, `output ${i}, element ${j}: ${e} vs ${p[j]}`));
    }
    assert.equal(tf.memory().numTensors, before + 6);
    tf.dispose([x!, m!, v!, g!, ...fused, ...plain]);
  });

  test('the project SoftsegBatchNormTrain and its gradient agree with moments + batchNorm on cpu (moving statistics included)', async (t) => {
    if (!(await onWebGpu(t))) return;
    // Rows (N·H·W) from 1 to 1600: one chunk, several chunks and a last partial chunk; offset 100 tests the shift.
    const cases: Array<[number[], number]> = [[[2, 5, 7, 3], 0], [[4, 20, 20, 16], 100], [[1, 1, 1, 4], 0], [[6, 5], 0], [[3, 4, 130], 100], [[2, 9, 9, 1], 0]];
    const results = await onCpuAndWebGpu(cases, ([shape, offset], backend) => {
      const c = shape.at(-1)!;
      return tf.tidy(() => {
        const x = tf.add(tf.randomNormal(shape, 0, 2, 'float32', 1), offset);
        const [gamma, beta, movingMean] = [tf.randomNormal([c], 1, 0.5, 'float32', 2), tf.randomNormal([c], 0, 1, 'float32', 3), tf.randomNormal([c], 0, 1, 'float32', 4)] as tf.Tensor1D[];
        const movingVariance = tf.randomUniform([c], 0.5, 2, 'float32', 6) as tf.Tensor1D;
        const w = tf.randomNormal(shape, 0, 1, 'float32', 5);
        const axes = shape.slice(0, -1).map((_, i) => i);
        // webgpu: the fused kernel; cpu: the plain ops (the stock layer's arithmetic, moving averages as tfjs-layers).
        const f = (xx: tf.Tensor, gg: tf.Tensor, bb: tf.Tensor): tf.Tensor[] => {
          if (backend === 'webgpu') {
            const r = batchNormTrain(xx, gg as tf.Tensor1D, bb as tf.Tensor1D, 1e-3, { mean: movingMean, variance: movingVariance, momentum: 0.9 });
            return [r.y, r.mean, r.variance, r.movingMean!, r.movingVariance!];
          }
          const m = tf.moments(xx, axes);
          const decay = tf.scalar(1 - 0.9);
          return [tf.batchNorm(xx, m.mean, m.variance, bb as tf.Tensor1D, gg as tf.Tensor1D, 1e-3), m.mean, m.variance,
            tf.sub(movingMean, tf.mul(tf.sub(movingMean, m.mean), decay)), tf.sub(movingVariance, tf.mul(tf.sub(movingVariance, m.variance), decay))];
        };
        const grads = tf.grads((xx: tf.Tensor, gg: tf.Tensor, bb: tf.Tensor) => tf.sum(tf.mul(f(xx, gg, bb)[0]!, w)))([x, gamma, beta]);
        return [...f(x, gamma, beta), ...grads];
      });
    });
    // Scale floor 0.1: with one row dx is 0 up to the cpu backend's rounding of terms of size γ·dy/√ε ≈ 60 that cancel.
    assertAgree(cases, results, ['y', 'mean', 'variance', 'moving mean', 'moving variance', 'dx', 'dγ', 'dβ'], 1e-4, 0.1);
  });

  test('the project SoftsegJdtStats and its gradient agree with the cpu kernels: hard/soft labels, keep mask, ignore index', async (t) => {
    if (!(await onWebGpu(t))) return;
    // [N, P, C]: one chunk; several chunks with a partial last one (P = 1000).
    const shapes: Array<[number, number, number]> = [[2, 35, 4], [3, 1000, 11]];
    const variants = [{ hard: true, keep: false, ignoreIndex: 255 }, { hard: true, keep: true, ignoreIndex: null }, { hard: false, keep: false, ignoreIndex: null }, { hard: false, keep: true, ignoreIndex: null }];
    const cases = shapes.flatMap((shape) => variants.map((v) => ({ shape, ...v })));
    // The cpu oracle: the project's cpu kernels, registered for this test only (the other tests' cpu runs use plain ops).
    const cpuKernels = jdtStatsKernels.filter((k) => k.backendName === 'cpu');
    for (const k of cpuKernels) tf.registerKernel(k);
    t.after(() => { for (const k of cpuKernels) tf.unregisterKernel(k.kernelName, 'cpu'); });
    const results = await onCpuAndWebGpu(cases, ({ shape: [n, p, c], ...v }) => tf.tidy(() => {
      const prob = tf.softmax(tf.randomNormal([n, p, c], 0, 2, 'float32', 1));
      // Hard: ids beyond the classes (clamped) and the ignore index; soft: a distribution, with pixels equal to prob
      // (d = 0, the gradient's third case).
      const label = v.hard
        ? tf.where(tf.equal(tf.randomUniform([n, p], 0, 9, 'int32', 3), 0), tf.scalar(255, 'int32'), tf.randomUniform([n, p], -1, c + 1, 'int32', 2))
        : tf.where(tf.greater(tf.randomUniform([n, p, 1], 0, 1, 'float32', 4), 0.8), prob, tf.softmax(tf.randomNormal([n, p, c], 0, 2, 'float32', 5)));
      const inputs: tf.NamedTensorMap = { prob, label };
      if (v.keep) inputs.keep = tf.cast(tf.greater(tf.randomUniform([n, p], 0, 1, 'float32', 6), 0.3), 'float32');
      const attrs = { hard: v.hard, ignoreIndex: v.ignoreIndex } as unknown as tf.NamedAttrMap;
      const stats = tf.engine().runKernel('SoftsegJdtStats', inputs, attrs) as tf.Tensor;
      const dy = tf.randomNormal([6, n, c], 0, 1, 'float32', 7);
      return [stats, tf.engine().runKernel('SoftsegJdtStatsGrad', { ...inputs, dy }, attrs) as tf.Tensor];
    }));
    assertAgree(cases, results, ['stats', 'dprob'], 1e-5);
  });

  test('the project SoftsegLogSoftmax (log-probabilities, probabilities) and its gradient agree with tf.logSoftmax + tf.exp on cpu', async (t) => {
    if (!(await onWebGpu(t))) return;
    // Rows above the backend's CPU hand-off size; scale 40 gives rows with one dominant class (probabilities 0).
    const cases: Array<[number[], number]> = [[[2, 20, 20, 11], 1], [[2, 20, 20, 11], 40], [[300, 130], 1], [[4096, 1], 1]];
    const results = await onCpuAndWebGpu(cases, ([shape, scale]) => tf.tidy(() => {
      const z = tf.randomNormal(shape, 0, scale, 'float32', 1);
      const [w1, w2] = [tf.randomNormal(shape, 0, 1, 'float32', 2), tf.randomNormal(shape, 0, 1, 'float32', 3)];
      // webgpu: the fused kernel; cpu: the plain ops (logSoftmaxWithProbs's fallback).
      const parts = (zz: tf.Tensor): tf.Tensor[] => {
        const { logp, prob } = logSoftmaxWithProbs(zz);
        return [logp, prob, tf.add(tf.sum(tf.mul(logp, w1)), tf.sum(tf.mul(prob, w2)))];
      };
      const [logp, prob] = parts(z);
      const grads = [0, 1, 2].map((k) => tf.grad((zz: tf.Tensor) => (k === 2 ? parts(zz)[2]! : tf.sum(tf.mul(parts(zz)[k]!, k === 0 ? w1 : w2))) as tf.Scalar)(z));
      return [logp!, prob!, ...grads];
    }));
    // Scale floor 1e-3: with one class the probabilities are 1 and every gradient is 0 up to rounding.
    assertAgree(cases, results, ['logp', 'prob', 'gradient through logp', 'gradient through prob', 'gradient through both'], 1e-5, 1e-3);
  });

  test('the project SoftsegHardNll and its gradient agree with the cpu kernels (ignore index, labels out of range)', async (t) => {
    if (!(await onWebGpu(t))) return;
    // [M, C, ignoreIndex]: several chunks with a partial last one; a few rows.
    const cases: Array<[number, number, number | null]> = [[5000, 11, 255], [5000, 11, null], [7, 3, 255]];
    // The cpu oracle: the project's cpu kernels, registered for this test only.
    const cpuKernels = hardNllKernels.filter((k) => k.backendName === 'cpu');
    for (const k of cpuKernels) tf.registerKernel(k);
    t.after(() => { for (const k of cpuKernels) tf.unregisterKernel(k.kernelName, 'cpu'); });
    const results = await onCpuAndWebGpu(cases, ([m, c, ignoreIndex]) => tf.tidy(() => {
      const logp = tf.logSoftmax(tf.randomNormal([m, c], 0, 2, 'float32', 1));
      const label = tf.where(tf.equal(tf.randomUniform([m], 0, 9, 'int32', 3), 0), tf.scalar(255, 'int32'), tf.randomUniform([m], -1, c + 1, 'int32', 2));
      const attrs = { ignoreIndex } as unknown as tf.NamedAttrMap;
      const sums = tf.engine().runKernel('SoftsegHardNll', { logp, label }, attrs) as tf.Tensor;
      return [sums, tf.engine().runKernel('SoftsegHardNllGrad', { logp, label, dy: tf.tensor1d([0.7, -2]) }, attrs) as tf.Tensor];
    }));
    assertAgree(cases, results, ['sums', 'dlogp'], 1e-5);
  });

  test('synchronous reads of GPU data fail with a message saying to read asynchronously; async reads work', async (t) => {
    if (!(await onWebGpu(t))) return;
    const y = tf.tidy(() => tf.mul(tf.ones([4096]), 3));
    assert.throws(() => y.dataSync(), /cannot read GPU data synchronously in Node \(dataSync\/arraySync\/bufferSync\): use await tensor\.data\(\)/);
    assert.equal((await y.data())[4095], 3);
    assert.equal(y.dataSync()[0], 3, 'after an async read the values are on the CPU');
    y.dispose();
  });

  test('a device error (a shader that does not compile) fails the next read instead of returning garbage', async (t) => {
    if (!(await onWebGpu(t))) return;
    const backend = tf.backend() as unknown as { runWebGPUProgram(p: object, inputs: tf.TensorInfo[], dtype: string): tf.TensorInfo };
    const x = tf.tidy(() => tf.ones([256]));
    const bad = { variableNames: ['A'], outputShape: [256], shaderKey: 'softseg_test_broken', dispatchLayout: { x: [0] }, dispatch: [4, 1, 1], workgroupSize: [64, 1, 1], size: true,
      getUserCode: () => 'fn main(index : i32) { setOutputAtIndex(index, undefinedName); }' };
    const out = tf.engine().makeTensorFromTensorInfo(backend.runWebGPUProgram(bad, [x], 'float32'));
    await assert.rejects(out.data(), /webgpu device error: .*undefinedName/);
    const fine = tf.tidy(() => tf.add(x, 1));
    assert.equal((await fine.data())[0], 2, 'the error is reported once; later reads work');
    tf.dispose([x, out, fine]);
  });

  test('one training step\'s gradients of every zoo model agree with the cpu backend to 1e-4', async (t) => {
    if (!(await onWebGpu(t))) return;
    for (const name of listModels()) {
      const grads: Record<string, Float32Array[]> = {};
      for (const backend of ['cpu', 'webgpu'] as const) {
        await initBackend({ backend });
        const before = tf.memory().numTensors;
        const model = createModel(name, { numClasses: 3, width: 0.25, aux: true, seed: 11 });
        // Noise on the images: on the flat synthetic images some channels are constant up to a few pixels, so
        // x − mean is rounding-sized and which side of the ReLU whole regions fall on depends on how the batch
        // mean was summed (the fused batch norm here and on wasm vs the cpu backend's moments: up to 2e-3 apart).
        const batch = syntheticBatch(2, 0.3);
        const vars = model.model.trainableWeights.map((w) => w.read() as tf.Variable);
        const { value, grads: g } = tf.variableGrads(() => hardLabelObjective(model.apply(batch.images, true), batch.labels!).total, vars);
        grads[backend] = await Promise.all(vars.map((v) => g[v.name]!.data() as Promise<Float32Array>));
        tf.dispose([value, ...Object.values(g), ...Object.values(batch)]);
        model.dispose();
        assert.equal(tf.memory().numTensors, before, `${name} on ${backend}: tensors leaked`);
      }
      // Whole model: the largest difference against the largest gradient; and each variable whose gradients
      // are not negligible (≥ 1% of the largest) against its own largest gradient.
      const scale = Math.max(...grads.cpu!.map((c) => c.reduce((m, v) => Math.max(m, Math.abs(v)), 0)));
      let worst = 0;
      grads.cpu!.forEach((c, i) => {
        const w = grads.webgpu![i]!;
        let d = 0, s = 0;
        for (let j = 0; j < c.length; j++) {
          d = Math.max(d, Math.abs(c[j]! - w[j]!));
          s = Math.max(s, Math.abs(c[j]!));
        }
        worst = Math.max(worst, d);
        if (s >= 0.01 * scale) assert.ok(d <= 1e-4 * s, `${name} variable ${i}: max difference ${d} vs its scale ${s}`);
      });
      assert.ok(scale > 0 && worst <= 1e-4 * scale, `${name}: max gradient difference ${worst} vs scale ${scale}`);
    }
  });

  test('a short training run (AdamW, BN, fused-loss fallbacks) follows the wasm backend\'s losses', async (t) => {
    if (!(await onWebGpu(t))) return;
    const losses: Record<string, number[]> = {};
    for (const backend of ['wasm', 'webgpu'] as const) {
      await initBackend({ backend });
      const model = createModel('mobile-unet', { numClasses: 3, width: 0.5, aux: true, seed: 5 });
      const optimizer = new SegOptimizer({ lr: 5e-3, weightDecay: 1e-4 });
      const step = new TrainStep(model, (out, b) => hardLabelObjective(out, b.labels!), optimizer);
      const batch = syntheticBatch(2);
      losses[backend] = [];
      let tensors = 0;
      for (let i = 0; i < 5; i++) {
        losses[backend].push((await step.run(batch)).loss);
        if (i === 1) tensors = tf.memory().numTensors;
      }
      assert.equal(tf.memory().numTensors, tensors, `${backend}: tensors leaked across steps`);
      tf.dispose(Object.values(batch));
      optimizer.dispose();
      model.dispose();
    }
    losses.wasm!.forEach((l, i) => assert.ok(Math.abs(l - losses.webgpu![i]!) <= 1e-4 * Math.abs(l), `step ${i + 1}: wasm ${l}, webgpu ${losses.webgpu![i]}`));
    assert.ok(losses.webgpu!.at(-1)! < losses.webgpu![0]!, `the loss did not fall: ${losses.webgpu!.join(' ')}`);
  });
});
