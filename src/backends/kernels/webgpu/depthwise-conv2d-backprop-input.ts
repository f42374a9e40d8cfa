// DepthwiseConv2dNativeBackpropInput (webgpu), NHWC, stride 1: one invocation per input element, as the shipped
// shader, but without its per-tap float division and fract() test (with stride 1 every tap that lands inside dy
// counts):
//   dx[n, y, x, c] = Σ_{a, b, m} dy[n, y + top − a, x + left − b, c·M + m] · W[a, b, c, m]   (inside dy; dilation 1).
// On lavapipe this is ~1.6x faster than the shipped shader for stride 1; for stride 2 an integer version was slower
// (integer division by a uniform), so other strides keep the shipped kernel.
import * as tf from '@tensorflow/tfjs';
import { callShipped } from '../shipped.js';
import { flatDispatch, type WebGpuBackendLike, type WebGpuProgram } from './program.js';

interface Attrs {
  inputShape: [number, number, number, number];
  strides: number | [number, number];
  dilations?: number | [number, number];
  pad: 'valid' | 'same' | number | tf.backend_util.ExplicitPadding;
  dimRoundingMode?: 'floor' | 'round' | 'ceil';
}

type Args = { inputs: tf.NamedTensorInfoMap; backend: unknown; attrs: unknown };

function program(shape: number[]): WebGpuProgram {
  return {
    variableNames: ['dwDy', 'dwW'],
    outputShape: shape,
    shaderKey: 'softseg_depthwise_input_grad_stride1',
    size: true,
    uniforms: 'pads : vec2<i32>, filterDims : vec2<i32>, outDims : vec2<i32>, channelMul : i32,',
    ...flatDispatch(shape),
    getUserCode: () => `
      fn main(index : i32) {
        if (index < uniforms.size) {
          let coords = getCoordsFromIndex(index);
          let b = coords[0];
          let d1 = coords[3];
          let cm = uniforms.outShape[3] * uniforms.channelMul;
          let ty = coords[1] + uniforms.pads.x;
          let tx = coords[2] + uniforms.pads.y;
          var acc = 0.0;
          // Taps with y + top − a inside [0, Ho) and x + left − b inside [0, Wo).
          let a0 = max(0, ty - uniforms.outDims.x + 1);
          let a1 = min(uniforms.filterDims.x - 1, ty);
          let b0 = max(0, tx - uniforms.outDims.y + 1);
          let b1 = min(uniforms.filterDims.y - 1, tx);
          for (var wR = a0; wR <= a1; wR++) {
            for (var wC = b0; wC <= b1; wC++) {
              let dyBase = ((b * uniforms.outDims.x + ty - wR) * uniforms.outDims.y + tx - wC) * cm + d1 * uniforms.channelMul;
              let wBase = ((wR * uniforms.filterDims.y + wC) * uniforms.outShape[3] + d1) * uniforms.channelMul;
              for (var m = 0; m < uniforms.channelMul; m++) {
                acc += dwDy[dyBase + m] * dwW[wBase + m];
              }
            }
          }
          setOutputAtIndex(index, acc);
        }
      }`,
  };
}

function depthwiseBackpropInput(args: Args): tf.TensorInfo {
  const { dy, filter } = args.inputs as { dy: tf.TensorInfo; filter: tf.TensorInfo };
  const attrs = args.attrs as Attrs;
  const backend = args.backend as WebGpuBackendLike;
  const info = tf.backend_util.computeConv2DInfo(attrs.inputShape, filter.shape as [number, number, number, number], attrs.strides, attrs.dilations ?? 1, attrs.pad, attrs.dimRoundingMode, true);
  const unit = info.strideHeight === 1 && info.strideWidth === 1 && info.dilationHeight === 1 && info.dilationWidth === 1;
  if (!unit || dy.dtype !== 'float32' || filter.dtype !== 'float32') return callShipped(tf.DepthwiseConv2dNativeBackpropInput, 'webgpu', args);
  const i32 = (...data: number[]) => ({ type: 'int32' as const, data });
  return backend.runWebGPUProgram(program(info.inShape), [dy, filter], 'float32', [
    i32(info.padInfo.top, info.padInfo.left), i32(info.filterHeight, info.filterWidth), i32(info.outHeight, info.outWidth), i32(info.outChannels / info.inChannels),
  ]);
}

export const depthwiseConv2dNativeBackpropInputWebGpu: tf.KernelConfig = {
  kernelName: tf.DepthwiseConv2dNativeBackpropInput,
  backendName: 'webgpu',
  kernelFunc: depthwiseBackpropInput as unknown as tf.KernelFunc,
};
