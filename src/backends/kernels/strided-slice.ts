// StridedSlice for wasm. The shipped kernel runs a generic per-element C++ loop (and always allocates a
// float32 output); this one copies from the heap in place, with contiguous runs when the innermost stride
// is 1. Negative strides fall back to the shipped kernel.
import * as tf from '@tensorflow/tfjs';
import { callShipped } from './shipped.js';
import { reshapeInfo, stridedCopy, type WasmBackendLike } from './wasm-util.js';

interface Attrs {
  begin: number[];
  end: number[];
  strides: number[];
  beginMask: number;
  endMask: number;
  ellipsisMask: number;
  newAxisMask: number;
  shrinkAxisMask: number;
}

function stridedSlice(args: { inputs: tf.NamedTensorInfoMap; backend: unknown; attrs: unknown }): tf.TensorInfo {
  const backend = args.backend as WasmBackendLike;
  const { x } = args.inputs as { x: tf.TensorInfo };
  if (x.dtype === 'string' || x.dtype === 'complex64') return callShipped(tf.StridedSlice, 'wasm', args);
  const a = args.attrs as Attrs;
  const info = tf.slice_util.sliceInfo(
    x.shape, a.begin, a.end, a.strides, a.beginMask, a.endMask, a.ellipsisMask, a.newAxisMask, a.shrinkAxisMask,
  );
  if (info.isIdentity) return reshapeInfo(backend, x, info.finalShape);
  if (info.strides.some((s) => s <= 0)) return callShipped(tf.StridedSlice, 'wasm', args);
  // Dense per-axis sizes (same rank as x); shrink / new axes are applied by the final reshape.
  const dense = tf.slice_util.computeOutShape(info.begin, info.end, info.strides).map((d) => Math.max(0, d));
  const out = backend.makeOutput(dense, x.dtype);
  const src = backend.typedArrayFromHeap(x);
  const dst = backend.typedArrayFromHeap(out);
  stridedCopy(src, x.shape, info.begin, info.strides, dense, dst);
  if (dense.length === info.finalShape.length && dense.every((d, i) => d === info.finalShape[i])) return out;
  const reshaped = reshapeInfo(backend, out, info.finalShape);
  backend.disposeData(out.dataId);
  return reshaped;
}

export const stridedSliceWasm: tf.KernelConfig = {
  kernelName: tf.StridedSlice,
  backendName: 'wasm',
  kernelFunc: stridedSlice as unknown as tf.KernelFunc,
};
