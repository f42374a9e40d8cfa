// DepthwiseConv2dNativeBackpropInput for wasm (missing in the shipped backend): a depthwise conv of dy
// (zero-inserted for stride > 1) with the spatially flipped filter; with a channel multiplier M > 1 the
// C·M outputs are summed back to C channels.
import * as tf from '@tensorflow/tfjs';
import { convTransposedInput, transposedConvPads } from './conv2d-backprop-input.js';
import { convGeometry, disposeInfos, flipFilter, reshapeInfo, runWasmKernel, type ConvGradAttrs, type WasmBackendLike } from './wasm-util.js';

interface Attrs extends ConvGradAttrs {
  inputShape: [number, number, number, number];
}

function depthwiseBackpropInput(args: { inputs: tf.NamedTensorInfoMap; backend: unknown; attrs: unknown }): tf.TensorInfo {
  const backend = args.backend as WasmBackendLike;
  const { dy, filter } = args.inputs as { dy: tf.TensorInfo; filter: tf.TensorInfo };
  const attrs = args.attrs as Attrs;
  const [kh, kw, c, m] = filter.shape;
  const g = convGeometry(attrs.inputShape, filter.shape as [number, number, number, number], attrs, true, 'DepthwiseConv2dNativeBackpropInput');
  const { top, bottom, left, right } = transposedConvPads(g);
  const flipped = flipFilter(backend, filter);
  const w = reshapeInfo(backend, flipped, [kh, kw, c * m, 1]);
  disposeInfos(backend, flipped);
  let out: tf.TensorInfo;
  try {
    out = convTransposedInput(backend, dy, w, g, top, bottom, left, right, 'DepthwiseConv2dNative');
  } finally {
    disposeInfos(backend, w);
  }
  if (m === 1) return out;
  const [n, h, wd] = out.shape;
  const split = reshapeInfo(backend, out, [n, h, wd, c, m]);
  disposeInfos(backend, out);
  const summed = runWasmKernel(backend, 'Sum', { x: split }, { axis: [4], keepDims: false });
  disposeInfos(backend, split);
  return summed;
}

export const depthwiseConv2dNativeBackpropInputWasm: tf.KernelConfig = {
  kernelName: tf.DepthwiseConv2dNativeBackpropInput,
  backendName: 'wasm',
  kernelFunc: depthwiseBackpropInput as unknown as tf.KernelFunc,
};
