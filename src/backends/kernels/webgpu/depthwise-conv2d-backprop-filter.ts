// DepthwiseConv2dNativeBackpropFilter (webgpu), NHWC: the filter gradient as a two-level reduction over the output
// positions. The shipped shader has one invocation per filter weight (kh·kw·C·M of them, ~300 for a 3×3 layer of 32
// channels), each looping over all N·Ho·Wo positions: on a GPU almost all of it idles. Here pass 1 has one
// invocation per (chunk of output rows, tap, output channel) — adjacent invocations read adjacent channels of the
// same pixels — writing partial sums [chunks, kh, kw, C·M]; pass 2 adds the chunks of each weight:
//   dW[a, b, c, m] = Σ_{n, y, x} X[n, a + y·sH − top, b + x·sW − left, c] · dY[n, y, x, c·M + m]   (dilation 1).
// Below MIN_POSITIONS output positions (N·Ho·Wo) the shipped kernel is used: its loops are short there, and on
// lavapipe the second dispatch made this one slower (mobile-unet 32² b4: 16² maps and smaller).
import * as tf from '@tensorflow/tfjs';
import { callShipped } from '../shipped.js';
import { flatDispatch, type WebGpuBackendLike, type WebGpuProgram } from './program.js';

/** Below this many output positions (N·Ho·Wo) the shipped kernel is used. */
export const MIN_POSITIONS = 2048;

/** Invocations pass 1 aims for, and the fewest output positions (rows · Wo) a chunk gets. */
const TARGET_INVOCATIONS = 16384;
const MIN_CHUNK_POSITIONS = 64;

interface Attrs {
  strides: number | [number, number];
  dilations?: number | [number, number];
  pad: 'valid' | 'same' | number | tf.backend_util.ExplicitPadding;
  dimRoundingMode?: 'floor' | 'round' | 'ceil';
  filterShape: [number, number, number, number];
}

type Args = { inputs: tf.NamedTensorInfoMap; backend: unknown; attrs: unknown };

const UNIFORMS = 'strides : vec2<i32>, pads : vec2<i32>, filterDims : vec2<i32>, inDims : vec2<i32>, outDims : vec2<i32>, inChannels : i32, outChannels : i32, chunks : i32, chunkRows : i32, rows : i32,';

function partialProgram(chunks: number, weights: number): WebGpuProgram {
  return {
    variableNames: ['dwX', 'dwDy'],
    outputShape: [chunks, weights],
    shaderKey: 'softseg_depthwise_filter_grad_partial',
    uniforms: UNIFORMS,
    ...flatDispatch([chunks * weights]),
    dispatchLayout: { x: [0, 1] },
    getUserCode: () => `
      fn main(index : i32) {
        let weights = uniforms.filterDims.x * uniforms.filterDims.y * uniforms.outChannels;
        if (index < uniforms.chunks * weights) {
          let d2 = index % uniforms.outChannels;
          let d1 = d2 / (uniforms.outChannels / uniforms.inChannels);
          let tap = (index / uniforms.outChannels) % (uniforms.filterDims.x * uniforms.filterDims.y);
          let wR = tap / uniforms.filterDims.y;
          let wC = tap % uniforms.filterDims.y;
          let r0 = (index / weights) * uniforms.chunkRows;
          let r1 = min(uniforms.rows, r0 + uniforms.chunkRows);
          // Output columns whose input column is inside: xC = wC + yC·sW − left in [0, W).
          let c0 = max(0, (uniforms.pads.y - wC + uniforms.strides.y - 1) / uniforms.strides.y);
          let last = uniforms.inDims.y - 1 + uniforms.pads.y - wC;
          let c1 = select(0, min(uniforms.outDims.y, last / uniforms.strides.y + 1), last >= 0);
          var acc = 0.0;
          for (var r = r0; r < r1; r++) {
            let b = r / uniforms.outDims.x;
            let yR = r % uniforms.outDims.x;
            let xR = wR + yR * uniforms.strides.x - uniforms.pads.x;
            if (xR < 0 || xR >= uniforms.inDims.x) { continue; }
            let xRow = (b * uniforms.inDims.x + xR) * uniforms.inDims.y;
            let dyRow = r * uniforms.outDims.y;
            for (var yC = c0; yC < c1; yC++) {
              let xC = wC + yC * uniforms.strides.y - uniforms.pads.y;
              acc += dwX[(xRow + xC) * uniforms.inChannels + d1] * dwDy[(dyRow + yC) * uniforms.outChannels + d2];
            }
          }
          setOutputAtIndex(index, acc);
        }
      }`,
  };
}

function combineProgram(filterShape: number[]): WebGpuProgram {
  return {
    variableNames: ['dwPart'],
    outputShape: filterShape,
    shaderKey: 'softseg_depthwise_filter_grad_combine',
    size: true,
    uniforms: UNIFORMS,
    ...flatDispatch(filterShape),
    getUserCode: () => `
      fn main(index : i32) {
        if (index < uniforms.size) {
          var acc = 0.0;
          for (var k = 0; k < uniforms.chunks; k++) { acc += dwPart[k * uniforms.size + index]; }
          setOutputAtIndex(index, acc);
        }
      }`,
  };
}

function depthwiseBackpropFilter(args: Args): tf.TensorInfo {
  const { x, dy } = args.inputs as { x: tf.TensorInfo; dy: tf.TensorInfo };
  const attrs = args.attrs as Attrs;
  const backend = args.backend as WebGpuBackendLike;
  const info = tf.backend_util.computeConv2DInfo(x.shape as [number, number, number, number], attrs.filterShape, attrs.strides, attrs.dilations ?? 1, attrs.pad, attrs.dimRoundingMode, true);
  const small = info.batchSize * info.outHeight * info.outWidth < MIN_POSITIONS;
  if (small || info.dilationHeight !== 1 || info.dilationWidth !== 1 || x.dtype !== 'float32' || dy.dtype !== 'float32') return callShipped(tf.DepthwiseConv2dNativeBackpropFilter, 'webgpu', args);
  const [kh, kw, c, m] = attrs.filterShape;
  const weights = kh * kw * c * m;
  const rows = info.batchSize * info.outHeight;
  const wanted = Math.max(1, Math.floor(TARGET_INVOCATIONS / weights));
  const chunkRows = Math.max(Math.ceil(MIN_CHUNK_POSITIONS / Math.max(1, info.outWidth)), Math.ceil(rows / wanted));
  const chunks = Math.max(1, Math.ceil(rows / chunkRows));
  const i32 = (...data: number[]) => ({ type: 'int32' as const, data });
  const uniforms = [
    i32(info.strideHeight, info.strideWidth), i32(info.padInfo.top, info.padInfo.left), i32(kh, kw), i32(info.inHeight, info.inWidth), i32(info.outHeight, info.outWidth),
    i32(c), i32(c * m), i32(chunks), i32(chunkRows), i32(rows),
  ];
  const part = backend.runWebGPUProgram(partialProgram(chunks, weights), [x, dy], 'float32', uniforms);
  try {
    return backend.runWebGPUProgram(combineProgram(attrs.filterShape), [part], 'float32', uniforms);
  } finally {
    backend.disposeData(part.dataId);
  }
}

export const depthwiseConv2dNativeBackpropFilterWebGpu: tf.KernelConfig = {
  kernelName: tf.DepthwiseConv2dNativeBackpropFilter,
  backendName: 'webgpu',
  kernelFunc: depthwiseBackpropFilter as unknown as tf.KernelFunc,
};
