// Reductions (webgpu) of int32 and bool tensors over axes that are not the innermost ones. The shipped kernels
// first transpose the reduced axes to the end with the module-internal transpose, which has the int32 shader bug
// described in transpose.ts; here that transpose is ours and the shipped kernel then reduces innermost axes.
// float32 inputs, and innermost reductions, go to the shipped kernel unchanged.
import * as tf from '@tensorflow/tfjs';
import { callShipped } from '../shipped.js';
import type { WebGpuBackendLike } from './program.js';
import { needsIntTranspose, transposeInt } from './transpose.js';

type Args = { inputs: tf.NamedTensorInfoMap; backend: unknown; attrs: unknown };

/** `axisAttr`: the attribute holding the axes ('axis', or 'reductionIndices' for Max). */
function innermostFirst(kernelName: string, singleAxis: boolean, axisAttr = 'axis'): tf.KernelFunc {
  const kernelFunc = (args: Args): tf.TensorInfo => {
    const { x } = args.inputs as { x: tf.TensorInfo };
    const backend = args.backend as WebGpuBackendLike;
    const attrs = args.attrs as Record<string, unknown> & { keepDims?: boolean };
    if (!needsIntTranspose(backend, x)) return callShipped(kernelName, 'webgpu', args);
    const rank = x.shape.length;
    const axes = tf.util.parseAxisParam(attrs[axisAttr] as number | number[], x.shape);
    const perm = tf.backend_util.getAxesPermutation(axes, rank);
    if (perm === null) return callShipped(kernelName, 'webgpu', args);
    const moved = transposeInt(backend, x, perm);
    const inner = tf.backend_util.getInnerMostAxes(axes.length, rank);
    let out: tf.TensorInfo;
    try {
      out = callShipped(kernelName, 'webgpu', { inputs: { ...args.inputs, x: moved }, backend, attrs: { ...attrs, [axisAttr]: singleAxis ? inner[0] : inner, keepDims: false } });
    } finally {
      backend.disposeData(moved.dataId);
    }
    if (!attrs.keepDims) return out;
    const shape = tf.backend_util.expandShapeToKeepDim(out.shape, axes);
    const reshaped = callShipped(tf.Reshape, 'webgpu', { inputs: { x: out }, backend, attrs: { shape } });
    backend.disposeData(out.dataId);
    return reshaped;
  };
  return kernelFunc as unknown as tf.KernelFunc;
}

/** Cumsum/Cumprod along a non-last axis: the shipped kernel transposes it to the end and back. */
function cumulative(kernelName: string): tf.KernelFunc {
  const kernelFunc = (args: Args): tf.TensorInfo => {
    const { x } = args.inputs as { x: tf.TensorInfo };
    const backend = args.backend as WebGpuBackendLike;
    const attrs = args.attrs as { axis: number };
    const rank = x.shape.length;
    const perm = tf.backend_util.getAxesPermutation([attrs.axis], rank);
    if (!needsIntTranspose(backend, x) || perm === null) return callShipped(kernelName, 'webgpu', args);
    const moved = transposeInt(backend, x, perm);
    let out: tf.TensorInfo;
    try {
      out = callShipped(kernelName, 'webgpu', { inputs: { x: moved }, backend, attrs: { ...attrs, axis: rank - 1 } });
    } finally {
      backend.disposeData(moved.dataId);
    }
    const back = transposeInt(backend, out, tf.backend_util.getUndoAxesPermutation(perm));
    backend.disposeData(out.dataId);
    return back;
  };
  return kernelFunc as unknown as tf.KernelFunc;
}

const reductions: Array<[string, boolean, string?]> = [
  [tf.Sum, false], [tf.Max, false, 'reductionIndices'], [tf.Min, false], [tf.Prod, false], [tf.Mean, false], [tf.Any, false], [tf.All, false],
  [tf.ArgMax, true], [tf.ArgMin, true],
];

export const reduceWebGpuKernels: readonly tf.KernelConfig[] = [
  ...reductions.map(([kernelName, single, axisAttr]) => ({ kernelName, backendName: 'webgpu', kernelFunc: innermostFirst(kernelName, single, axisAttr) })),
  ...[tf.Cumsum, tf.Cumprod].map((kernelName) => ({ kernelName, backendName: 'webgpu', kernelFunc: cumulative(kernelName) })),
];
