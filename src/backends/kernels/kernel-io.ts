// Typed-array access to kernel inputs and outputs on the two backends whose data lives in JS-visible memory:
// wasm (the heap) and cpu (JS arrays). Project kernels written in plain TypeScript use these to run on both.
import * as tf from '@tensorflow/tfjs';

type Numeric = Float32Array | Int32Array | Uint8Array;

interface WasmLike {
  typedArrayFromHeap(info: tf.TensorInfo): Numeric;
  makeOutput(shape: number[], dtype: tf.DataType, memoryOffset?: number, values?: tf.backend_util.BackendValues): tf.TensorInfo;
}

interface CpuLike {
  data: { get(dataId: object): { values?: tf.backend_util.BackendValues } };
  makeTensorInfo(shape: number[], dtype: tf.DataType, values?: tf.backend_util.BackendValues): tf.TensorInfo;
}

function isWasm(backend: unknown): backend is WasmLike {
  return typeof (backend as WasmLike).typedArrayFromHeap === 'function';
}

/** The data of a numeric tensor as a typed array. On wasm this is a view of the heap: read it before allocating. */
export function readValues(backend: unknown, info: tf.TensorInfo): Numeric {
  if (isWasm(backend)) return backend.typedArrayFromHeap(info);
  const values = (backend as CpuLike).data.get(info.dataId).values;
  if (values === undefined || !(values instanceof Float32Array || values instanceof Int32Array || values instanceof Uint8Array)) {
    throw new Error('project kernel: tensor data is not a numeric typed array');
  }
  return values;
}

/** A new float32 output holding `values` (copied on wasm, adopted on cpu). */
export function writeOutput(backend: unknown, shape: number[], values: Float32Array): tf.TensorInfo {
  if (isWasm(backend)) return backend.makeOutput(shape, 'float32', undefined, values);
  return (backend as CpuLike).makeTensorInfo(shape, 'float32', values);
}

/** A new float32 output of `shape` and a writable view of its data (zero-filled). On wasm the view is on the heap:
 * read the inputs (readValues) only after this call, since allocating may move the heap. */
export function allocOutput(backend: unknown, shape: number[]): { info: tf.TensorInfo; values: Float32Array } {
  if (isWasm(backend)) {
    const info = backend.makeOutput(shape, 'float32');
    const values = backend.typedArrayFromHeap(info) as Float32Array;
    values.fill(0);
    return { info, values };
  }
  const values = new Float32Array(shape.reduce((a, b) => a * b, 1));
  return { info: (backend as CpuLike).makeTensorInfo(shape, 'float32', values), values };
}
