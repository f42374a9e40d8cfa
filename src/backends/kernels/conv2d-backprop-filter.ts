// Conv2DBackpropFilter for wasm (the shipped backend has none): the filter gradient is itself a
// convolution. With x as [Ci, H, W, N] (channels → batch) and dy as a [Ho, Wo, N, Co] filter, a Conv2D whose
// stride is the forward dilation and whose dilation is the forward stride yields [Ci, kh, kw, Co].
import * as tf from '@tensorflow/tfjs';
import {
  convGeometry,
  disposeInfos,
  explicitPad,
  runWasmKernel,
  sliceInfo,
  transposeInfo,
  type WasmBackendLike,
} from './wasm-util.js';

interface Attrs {
  strides: number | [number, number];
  pad: unknown;
  dataFormat?: string;
  dimRoundingMode?: string;
  filterShape: [number, number, number, number];
  /** Not part of tfjs's attrs (its conv2d gradient rejects dilations); honoured when a caller passes it. */
  dilations?: number | [number, number];
}

function conv2DBackpropFilter(args: { inputs: tf.NamedTensorInfoMap; backend: unknown; attrs: unknown }): tf.TensorInfo {
  const backend = args.backend as WasmBackendLike;
  const { x, dy } = args.inputs as { x: tf.TensorInfo; dy: tf.TensorInfo };
  const attrs = args.attrs as Attrs;
  const [kh, kw, ci, co] = attrs.filterShape;
  const g = convGeometry(
    x.shape as [number, number, number, number],
    attrs.filterShape,
    attrs.strides,
    attrs.dilations,
    attrs.pad,
    attrs.dimRoundingMode,
    false,
    attrs.dataFormat,
    'Conv2DBackpropFilter',
  );
  const extentH = (g.outH - 1) * g.strideH + 1;
  const extentW = (g.outW - 1) * g.strideW + 1;
  const padBottom = Math.max(0, (kh - 1) * g.dilH + extentH - g.inH - g.padTop);
  const padRight = Math.max(0, (kw - 1) * g.dilW + extentW - g.inW - g.padLeft);

  const xt = transposeInfo(backend, x, [3, 1, 2, 0]);
  const dyt = transposeInfo(backend, dy, [1, 2, 0, 3]);
  let conv: tf.TensorInfo;
  try {
    conv = runWasmKernel(backend, 'Conv2D', { x: xt, filter: dyt }, {
      strides: [g.dilH, g.dilW],
      dilations: [g.strideH, g.strideW],
      pad: explicitPad(g.padTop, padBottom, g.padLeft, padRight),
      dataFormat: 'NHWC',
      dimRoundingMode: undefined,
    });
  } finally {
    disposeInfos(backend, xt, dyt);
  }
  // conv is [Ci, kh', kw', Co] with kh' ≥ kh when the forward conv left trailing input rows unused.
  let cropped = conv;
  if (conv.shape[1] !== kh || conv.shape[2] !== kw) {
    cropped = sliceInfo(backend, conv, [0, 0, 0, 0], [ci, kh, kw, co]);
    disposeInfos(backend, conv);
  }
  const out = transposeInfo(backend, cropped, [1, 2, 0, 3]);
  disposeInfos(backend, cropped);
  return out;
}

export const conv2DBackpropFilterWasm: tf.KernelConfig = {
  kernelName: tf.Conv2DBackpropFilter,
  backendName: 'wasm',
  kernelFunc: conv2DBackpropFilter as unknown as tf.KernelFunc,
};
