// Conv2DBackpropFilter (webgpu), NHWC: one matrix product per filter tap instead of the shipped shader's one
// invocation per weight, each looping over every N·H·W position (62% of a unet training step on lavapipe, and
// few invocations for a GPU: 9·Ci·Co for a 3×3 conv). For tap (a, b):
//   dW[a, b] = X_ab[N·Ho·Wo, Ci]ᵀ · dY[N·Ho·Wo, Co]
// where X_ab is the zero-padded input read at rows a + y·strideH and columns b + x·strideW (a strided slice). The
// products are tfjs's batch matmul, which splits the long N·Ho·Wo dimension over workgroups when the output is
// small (split-K). Tiny reductions (N·Ho·Wo below MIN_POSITIONS) keep the shipped kernel, whose per-weight loop is
// short there. On lavapipe (2-core CPU), a unet 32² batch-4 training step: the filter gradients took 5.5 s of
// GPU time with the shipped kernel and 1.5 s with this one (bench/gpu/step-profile.ts).
import * as tf from '@tensorflow/tfjs';
import { callShipped } from '../shipped.js';
import type { WebGpuBackendLike } from './program.js';

/** Below this many output positions (N·Ho·Wo) the shipped kernel is used. */
const MIN_POSITIONS = 256;

interface Attrs {
  strides: number | [number, number];
  pad: 'valid' | 'same' | number | tf.backend_util.ExplicitPadding;
  dataFormat: 'NHWC' | 'NCHW';
  dimRoundingMode?: 'floor' | 'round' | 'ceil';
  filterShape: [number, number, number, number];
}

type Args = { inputs: tf.NamedTensorInfoMap; backend: unknown; attrs: unknown };

function conv2DBackpropFilter(args: Args): tf.TensorInfo {
  const { x, dy } = args.inputs as { x: tf.TensorInfo; dy: tf.TensorInfo };
  const attrs = args.attrs as Attrs;
  const backend = args.backend as WebGpuBackendLike;
  if (attrs.dataFormat === 'NCHW') return callShipped(tf.Conv2DBackpropFilter, 'webgpu', args);
  const [kh, kw, ci, co] = attrs.filterShape;
  const info = tf.backend_util.computeConv2DInfo(x.shape as [number, number, number, number], attrs.filterShape, attrs.strides, 1, attrs.pad, attrs.dimRoundingMode, false, 'channelsLast');
  const { batchSize: n, inHeight: inH, inWidth: inW, outHeight: outH, outWidth: outW, strideHeight: sH, strideWidth: sW } = info;
  const positions = n * outH * outW;
  if (positions < MIN_POSITIONS) return callShipped(tf.Conv2DBackpropFilter, 'webgpu', args);

  const run = (name: string, inputs: tf.NamedTensorInfoMap, kernelAttrs: object): tf.TensorInfo =>
    callShipped(name, 'webgpu', { inputs, backend, attrs: kernelAttrs });
  const temps: tf.TensorInfo[] = [];
  const keep = <T extends tf.TensorInfo>(t: T): T => (temps.push(t), t);
  try {
    const extentH = (outH - 1) * sH + 1, extentW = (outW - 1) * sW + 1;
    const { top, left } = info.padInfo;
    const bottom = Math.max(0, kh - 1 + extentH - inH - top), right = Math.max(0, kw - 1 + extentW - inW - left);
    const padded = top + bottom + left + right === 0
      ? x
      : keep(run(tf.PadV2, { x }, { paddings: [[0, 0], [top, bottom], [left, right], [0, 0]], constantValue: 0 }));
    const grads = keep(run(tf.Reshape, { x: dy }, { shape: [1, positions, co] }));
    const taps: tf.TensorInfo[] = [];
    for (let a = 0; a < kh; a++) {
      for (let b = 0; b < kw; b++) {
        const window = keep(run(tf.StridedSlice, { x: padded }, {
          begin: [0, a, b, 0], end: [n, a + extentH, b + extentW, ci], strides: [1, sH, sW, 1],
          beginMask: 0, endMask: 0, ellipsisMask: 0, newAxisMask: 0, shrinkAxisMask: 0,
        }));
        const rows = keep(run(tf.Reshape, { x: window }, { shape: [1, positions, ci] }));
        taps.push(keep(run(tf.BatchMatMul, { a: rows, b: grads }, { transposeA: true, transposeB: false })));
      }
    }
    const stacked = taps.length === 1 ? taps[0]! : keep(run(tf.Concat, taps as unknown as tf.NamedTensorInfoMap, { axis: 0 })) // Concat takes its inputs as an array;
    // The result shares stacked's data (a reshape), so it must not be among the temps disposed below.
    return run(tf.Reshape, { x: stacked }, { shape: [kh, kw, ci, co] });
  } finally {
    for (const t of temps) backend.disposeData(t.dataId);
  }
}

export const conv2DBackpropFilterWebGpu: tf.KernelConfig = {
  kernelName: tf.Conv2DBackpropFilter,
  backendName: 'webgpu',
  kernelFunc: conv2DBackpropFilter as unknown as tf.KernelFunc,
};
