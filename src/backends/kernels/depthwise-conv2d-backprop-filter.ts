// DepthwiseConv2dNativeBackpropFilter for wasm (missing in the shipped backend). With the batch folded into
// channels — x as [1, H, W, N·C], dy as a [Ho, Wo, N·C, M] depthwise filter — one depthwise conv whose stride is
// the forward dilation and whose dilation is the forward stride gives per-image filter gradients
// [1, kh, kw, N·C·M]; summing over N finishes it.
import * as tf from '@tensorflow/tfjs';
import {
  convGeometry,
  disposeInfos,
  explicitPad,
  reshapeInfo,
  runWasmKernel,
  sliceInfo,
  transposeInfo,
  type WasmBackendLike,
} from './wasm-util.js';

interface Attrs {
  strides: number | [number, number];
  dilations?: number | [number, number];
  pad: unknown;
  dimRoundingMode?: string;
  filterShape: [number, number, number, number];
}

function depthwiseBackpropFilter(args: { inputs: tf.NamedTensorInfoMap; backend: unknown; attrs: unknown }): tf.TensorInfo {
  const backend = args.backend as WasmBackendLike;
  const { x, dy } = args.inputs as { x: tf.TensorInfo; dy: tf.TensorInfo };
  const attrs = args.attrs as Attrs;
  const [kh, kw, c, m] = attrs.filterShape;
  const g = convGeometry(
    x.shape as [number, number, number, number],
    attrs.filterShape,
    attrs.strides,
    attrs.dilations,
    attrs.pad,
    attrs.dimRoundingMode,
    true,
    'NHWC',
    'DepthwiseConv2dNativeBackpropFilter',
  );
  const n = g.batch;
  const extentH = (g.outH - 1) * g.strideH + 1;
  const extentW = (g.outW - 1) * g.strideW + 1;
  const padBottom = Math.max(0, (kh - 1) * g.dilH + extentH - g.inH - g.padTop);
  const padRight = Math.max(0, (kw - 1) * g.dilW + extentW - g.inW - g.padLeft);

  const xt = transposeInfo(backend, x, [1, 2, 0, 3]);
  const xr = reshapeInfo(backend, xt, [1, g.inH, g.inW, n * c]);
  disposeInfos(backend, xt);
  const dyt = transposeInfo(backend, dy, [1, 2, 0, 3]);
  const dyr = reshapeInfo(backend, dyt, [g.outH, g.outW, n * c, m]);
  disposeInfos(backend, dyt);
  let conv: tf.TensorInfo;
  try {
    conv = runWasmKernel(backend, 'DepthwiseConv2dNative', { x: xr, filter: dyr }, {
      strides: [g.dilH, g.dilW],
      dilations: [g.strideH, g.strideW],
      pad: explicitPad(g.padTop, padBottom, g.padLeft, padRight),
      dimRoundingMode: undefined,
    });
  } finally {
    disposeInfos(backend, xr, dyr);
  }
  let cropped = conv;
  if (conv.shape[1] !== kh || conv.shape[2] !== kw) {
    cropped = sliceInfo(backend, conv, [0, 0, 0, 0], [1, kh, kw, n * c * m]);
    disposeInfos(backend, conv);
  }
  const perImage = reshapeInfo(backend, cropped, [kh, kw, n, c * m]);
  disposeInfos(backend, cropped);
  let summed: tf.TensorInfo;
  if (n === 1) {
    summed = perImage;
  } else {
    summed = runWasmKernel(backend, 'Sum', { x: perImage }, { axis: [2], keepDims: false });
    disposeInfos(backend, perImage);
  }
  const out = reshapeInfo(backend, summed, [kh, kw, c, m]);
  disposeInfos(backend, summed);
  return out;
}

export const depthwiseConv2dNativeBackpropFilterWasm: tf.KernelConfig = {
  kernelName: tf.DepthwiseConv2dNativeBackpropFilter,
  backendName: 'wasm',
  kernelFunc: depthwiseBackpropFilter as unknown as tf.KernelFunc,
};
