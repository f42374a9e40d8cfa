// SplitV for wasm: the concat gradient. The shipped kernel calls the shipped Slice directly (so it copies
// the whole input off the heap once per output); this one copies each part's runs straight from the heap
// (short runs, e.g. channel slices of NHWC activations, in a loop).
import * as tf from '@tensorflow/tfjs';
import { callShipped } from './shipped.js';
import { copyRuns, type WasmBackendLike } from './wasm-util.js';

function splitV(args: { inputs: tf.NamedTensorInfoMap; backend: unknown; attrs: unknown }): tf.TensorInfo[] {
  const backend = args.backend as WasmBackendLike;
  const { x } = args.inputs as { x: tf.TensorInfo };
  if (x.dtype === 'string' || x.dtype === 'complex64') return callShipped(tf.SplitV, 'wasm', args) as unknown as tf.TensorInfo[];
  const { numOrSizeSplits, axis } = args.attrs as { numOrSizeSplits: number | number[]; axis: number };
  const $axis = tf.util.parseAxisParam(axis, x.shape)[0];
  const sizes = tf.backend_util.prepareSplitSize(x as tf.Tensor, numOrSizeSplits, $axis);
  const outer = tf.util.sizeFromShape(x.shape.slice(0, $axis));
  const inner = tf.util.sizeFromShape(x.shape.slice($axis + 1));
  const total = x.shape[$axis]! * inner;
  const outs = sizes.map((s) => {
    const shape = x.shape.slice();
    shape[$axis] = s;
    return backend.makeOutput(shape, x.dtype);
  });
  // Views only after the last allocation.
  const src = backend.typedArrayFromHeap(x);
  let offset = 0;
  outs.forEach((o, i) => {
    const run = sizes[i]! * inner;
    if (run > 0 && outer > 0) copyRuns(src, offset, total, backend.typedArrayFromHeap(o), 0, run, run, outer);
    offset += run;
  });
  return outs;
}

export const splitVWasm: tf.KernelConfig = {
  kernelName: tf.SplitV,
  backendName: 'wasm',
  kernelFunc: splitV as unknown as tf.KernelFunc,
};
