// Conv2DBackpropInput for wasm. The shipped kernel is a scalar reference loop; this one is a Conv2D (XNNPACK)
// of dy — zero-inserted between rows/columns when the forward stride is > 1 — with the spatially flipped,
// in/out-transposed filter.
import * as tf from '@tensorflow/tfjs';
import {
  convGeometry,
  disposeInfos,
  explicitPad,
  flipTransposeFilter,
  runWasmKernel,
  zeroInsertPad,
  type WasmBackendLike,
  type ConvGradAttrs,
} from './wasm-util.js';

interface Attrs extends ConvGradAttrs {
  inputShape: [number, number, number, number];
}

function conv2DBackpropInput(args: { inputs: tf.NamedTensorInfoMap; backend: unknown; attrs: unknown }): tf.TensorInfo {
  const backend = args.backend as WasmBackendLike;
  const { dy, filter } = args.inputs as { dy: tf.TensorInfo; filter: tf.TensorInfo };
  const attrs = args.attrs as Attrs;
  const g = convGeometry(attrs.inputShape, filter.shape as [number, number, number, number], attrs, false, 'Conv2DBackpropInput');
  const { top, bottom, left, right } = transposedConvPads(g);
  const wT = flipTransposeFilter(backend, filter);
  try {
    return convTransposedInput(backend, dy, wT, g, top, bottom, left, right, 'Conv2D');
  } finally {
    disposeInfos(backend, wT);
  }
}

/** Padding that makes a stride-1 conv of the zero-inserted dy produce exactly the forward input size. */
export function transposedConvPads(g: {
  inH: number; inW: number; outH: number; outW: number; kh: number; kw: number;
  strideH: number; strideW: number; dilH: number; dilW: number; padTop: number; padLeft: number;
}): { top: number; bottom: number; left: number; right: number } {
  const top = (g.kh - 1) * g.dilH - g.padTop;
  const left = (g.kw - 1) * g.dilW - g.padLeft;
  const bottom = g.inH + (g.kh - 1) * g.dilH - ((g.outH - 1) * g.strideH + 1) - top;
  const right = g.inW + (g.kw - 1) * g.dilW - ((g.outW - 1) * g.strideW + 1) - left;
  return { top, bottom, left, right };
}

/** Runs `kernelName` (Conv2D or DepthwiseConv2dNative) at stride 1 over dy, zero-inserting when needed. */
export function convTransposedInput(
  backend: WasmBackendLike,
  dy: tf.TensorInfo,
  filter: tf.TensorInfo,
  g: { strideH: number; strideW: number; dilH: number; dilW: number },
  top: number,
  bottom: number,
  left: number,
  right: number,
  kernelName: 'Conv2D' | 'DepthwiseConv2dNative',
): tf.TensorInfo {
  const convAttrs = { strides: [1, 1], dilations: [g.dilH, g.dilW], dataFormat: 'NHWC', dimRoundingMode: undefined };
  if (g.strideH === 1 && g.strideW === 1 && top >= 0 && bottom >= 0 && left >= 0 && right >= 0) {
    return runWasmKernel(backend, kernelName, { x: dy, filter }, { ...convAttrs, pad: explicitPad(top, bottom, left, right) });
  }
  const z = zeroInsertPad(backend, dy, g.strideH, g.strideW, top, bottom, left, right);
  try {
    return runWasmKernel(backend, kernelName, { x: z, filter }, { ...convAttrs, pad: 'valid' });
  } finally {
    disposeInfos(backend, z);
  }
}

export const conv2DBackpropInputWasm: tf.KernelConfig = {
  kernelName: tf.Conv2DBackpropInput,
  backendName: 'wasm',
  kernelFunc: conv2DBackpropInput as unknown as tf.KernelFunc,
};
