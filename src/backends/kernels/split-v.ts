// SplitV for wasm: the concat gradient. The shipped kernel calls the shipped Slice directly (so it copies
// the whole input off the heap once per output); this one slices in place with the project's Slice.
import * as tf from '@tensorflow/tfjs';
import { callShipped } from './shipped.js';
import { runWasmKernel, type WasmBackendLike } from './wasm-util.js';

function splitV(args: { inputs: tf.NamedTensorInfoMap; backend: unknown; attrs: unknown }): tf.TensorInfo[] {
  const backend = args.backend as WasmBackendLike;
  const { x } = args.inputs as { x: tf.TensorInfo };
  if (x.dtype === 'string' || x.dtype === 'complex64') return callShipped(tf.SplitV, 'wasm', args) as unknown as tf.TensorInfo[];
  const { numOrSizeSplits, axis } = args.attrs as { numOrSizeSplits: number | number[]; axis: number };
  const $axis = tf.util.parseAxisParam(axis, x.shape)[0];
  const sizes = tf.backend_util.prepareSplitSize(x as tf.Tensor, numOrSizeSplits, $axis);
  const begin = new Array<number>(x.shape.length).fill(0);
  return sizes.map((s) => {
    const size = x.shape.slice();
    size[$axis] = s;
    const part = runWasmKernel(backend, tf.Slice, { x }, { begin: begin.slice(), size });
    begin[$axis] += s;
    return part;
  });
}

export const splitVWasm: tf.KernelConfig = {
  kernelName: tf.SplitV,
  backendName: 'wasm',
  kernelFunc: splitV as unknown as tf.KernelFunc,
};
