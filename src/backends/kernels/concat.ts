// Concat for wasm. The shipped kernel copies every (outer index, input) run with a subarray + set; for the
// U-Net's channel concatenations of NHWC activations the runs are 16–128 floats and that per-run overhead
// dominates. This one copies short runs in a loop (strings fall back to the shipped kernel).
import * as tf from '@tensorflow/tfjs';
import { callShipped } from './shipped.js';
import { copyRuns, type WasmBackendLike } from './wasm-util.js';

function concat(args: { inputs: tf.NamedTensorInfoMap; backend: unknown; attrs: unknown }): tf.TensorInfo {
  const backend = args.backend as WasmBackendLike;
  const inputs = args.inputs as unknown as tf.TensorInfo[];
  const first = inputs[0];
  if (first === undefined || first.dtype === 'string' || first.dtype === 'complex64') return callShipped(tf.Concat, 'wasm', args);
  const { axis } = args.attrs as { axis: number };
  const $axis = tf.util.parseAxisParam(axis, first.shape)[0]!;
  const shapes = inputs.map((t) => t.shape);
  tf.backend_util.assertParamsConsistent(shapes, $axis);
  const outShape = tf.backend_util.computeOutShape(shapes, $axis);
  const parts = inputs.filter((t) => tf.util.sizeFromShape(t.shape) > 0);
  // A single non-empty input (or none): the shipped kernel returns it as an identity.
  if (parts.length <= 1) return callShipped(tf.Concat, 'wasm', args);
  const out = backend.makeOutput(outShape, first.dtype);
  const outer = tf.util.sizeFromShape(first.shape.slice(0, $axis));
  const inners = parts.map((t) => tf.util.sizeFromShape(t.shape.slice($axis)));
  const total = inners.reduce((a, b) => a + b, 0);
  const dst = backend.typedArrayFromHeap(out);
  let offset = 0;
  parts.forEach((t, i) => {
    copyRuns(backend.typedArrayFromHeap(t), 0, inners[i]!, dst, offset, total, inners[i]!, outer);
    offset += inners[i]!;
  });
  return out;
}

export const concatWasm: tf.KernelConfig = {
  kernelName: tf.Concat,
  backendName: 'wasm',
  kernelFunc: concat as unknown as tf.KernelFunc,
};
