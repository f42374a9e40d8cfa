// Slice for wasm. The shipped kernel first copies the whole input off the wasm heap (`readSync`) and then
// gathers element by element; this one reads the heap in place and copies contiguous runs. It is what the
// concat gradient (`split`) runs, once per concatenated input.
import * as tf from '@tensorflow/tfjs';
import { callShipped } from './shipped.js';
import { stridedCopy, type WasmBackendLike } from './wasm-util.js';

function slice(args: { inputs: tf.NamedTensorInfoMap; backend: unknown; attrs: unknown }): tf.TensorInfo {
  const backend = args.backend as WasmBackendLike;
  const { x } = args.inputs as { x: tf.TensorInfo };
  if (x.dtype === 'string' || x.dtype === 'complex64') return callShipped(tf.Slice, 'wasm', args);
  const { begin, size } = args.attrs as { begin: number | number[]; size?: number | number[] };
  const [begin_, size_] = tf.slice_util.parseSliceParams(x as tf.Tensor, begin, size);
  const out = backend.makeOutput(size_, x.dtype);
  const src = backend.typedArrayFromHeap(x);
  const dst = backend.typedArrayFromHeap(out);
  stridedCopy(src, x.shape, begin_, size_.map(() => 1), size_, dst);
  return out;
}

export const sliceWasm: tf.KernelConfig = {
  kernelName: tf.Slice,
  backendName: 'wasm',
  kernelFunc: slice as unknown as tf.KernelFunc,
};
