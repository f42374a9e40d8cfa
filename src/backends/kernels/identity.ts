// Identity for wasm. The shipped kernel copies the tensor's data into a new buffer; the engine runs Identity
// for every tensor it saves for the backward pass (engine.clone), ~300 times per U-Net training step, most of
// them whole activations. Tensor data is immutable, so — like the cpu backend's Identity and wasm's own
// Reshape — this one shares the buffer and counts a reference instead (strings still go to the shipped kernel).
import * as tf from '@tensorflow/tfjs';
import { callShipped } from './shipped.js';

interface RefCounting {
  incRef(dataId: object): void;
}

function identity(args: { inputs: tf.NamedTensorInfoMap; backend: unknown; attrs: unknown }): tf.TensorInfo {
  const { x } = args.inputs as { x: tf.TensorInfo };
  if (x.dtype === 'string') return callShipped(tf.Identity, 'wasm', args);
  (args.backend as RefCounting).incRef(x.dataId);
  return { dataId: x.dataId, shape: x.shape.slice(), dtype: x.dtype };
}

export const identityWasm: tf.KernelConfig = {
  kernelName: tf.Identity,
  backendName: 'wasm',
  kernelFunc: identity as unknown as tf.KernelFunc,
};
