// Tile for wasm. The shipped kernel maps every output element back to its source index; the FusedBatchNorm
// gradient tiles a [1, 1, 1, C] vector to the whole activation every step. This one places each input row
// once and replicates blocks with `copyWithin` (memmove), outermost axis last.
import * as tf from '@tensorflow/tfjs';
import { callShipped } from './shipped.js';
import type { WasmBackendLike } from './wasm-util.js';

function tile(args: { inputs: tf.NamedTensorInfoMap; backend: unknown; attrs: unknown }): tf.TensorInfo {
  const backend = args.backend as WasmBackendLike;
  const { x } = args.inputs as { x: tf.TensorInfo };
  if (x.dtype === 'string' || x.dtype === 'complex64' || x.shape.length === 0) return callShipped(tf.Tile, 'wasm', args);
  const { reps } = args.attrs as { reps: number[] };
  const rank = x.shape.length;
  const outShape = x.shape.map((d, i) => d * reps[i]);
  const out = backend.makeOutput(outShape, x.dtype);
  if (outShape.some((d) => d === 0)) return out;
  const src = backend.typedArrayFromHeap(x);
  const dst = backend.typedArrayFromHeap(out);
  const xStrides = new Array<number>(rank);
  const oStrides = new Array<number>(rank);
  xStrides[rank - 1] = 1;
  oStrides[rank - 1] = 1;
  for (let d = rank - 2; d >= 0; d--) {
    xStrides[d] = xStrides[d + 1] * x.shape[d + 1];
    oStrides[d] = oStrides[d + 1] * outShape[d + 1];
  }
  const fill = (axis: number, sOff: number, dOff: number): void => {
    const n = x.shape[axis];
    if (axis === rank - 1) {
      dst.set(src.subarray(sOff, sOff + n), dOff);
    } else {
      for (let i = 0; i < n; i++) fill(axis + 1, sOff + i * xStrides[axis], dOff + i * oStrides[axis]);
    }
    // The block for this axis is n * oStrides[axis] long; repeat it reps[axis] times by doubling.
    const block = n * oStrides[axis];
    const totalLen = block * reps[axis];
    let filled = block;
    while (filled < totalLen) {
      const len = Math.min(filled, totalLen - filled);
      dst.copyWithin(dOff + filled, dOff, dOff + len);
      filled += len;
    }
  };
  fill(0, 0, 0);
  return out;
}

export const tileWasm: tf.KernelConfig = {
  kernelName: tf.Tile,
  backendName: 'wasm',
  kernelFunc: tile as unknown as tf.KernelFunc,
};
