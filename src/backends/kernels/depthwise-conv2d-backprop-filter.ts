// DepthwiseConv2dNativeBackpropFilter for wasm (missing in the shipped backend). With the batch folded into
// channels — x as [1, H, W, N·C], dy as a [Ho, Wo, N·C, M] depthwise filter — one depthwise conv whose stride is
// the forward dilation and whose dilation is the forward stride gives per-image filter gradients
// [1, kh, kw, N·C·M]; summing over N finishes it. For channel multiplier 1 (every zoo depthwise layer) a direct
// loop is used instead: per tap and block of four channels, one pass over the valid output positions with the
// four sums in locals (XNNPACK's depthwise conv with an Ho×Wo "filter" and the two transposes cost ~3x more).
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
  type ConvGradAttrs,
} from './wasm-util.js';

interface Attrs extends ConvGradAttrs {
  filterShape: [number, number, number, number];
}

function depthwiseBackpropFilter(args: { inputs: tf.NamedTensorInfoMap; backend: unknown; attrs: unknown }): tf.TensorInfo {
  const backend = args.backend as WasmBackendLike;
  const { x, dy } = args.inputs as { x: tf.TensorInfo; dy: tf.TensorInfo };
  const attrs = args.attrs as Attrs;
  const [kh, kw, c, m] = attrs.filterShape;
  const g = convGeometry(x.shape as [number, number, number, number], attrs.filterShape, attrs, true, 'DepthwiseConv2dNativeBackpropFilter');
  const n = g.batch;
  if (m === 1 && x.dtype === 'float32' && dy.dtype === 'float32') return directFilterGrad(backend, x, dy, g, kh, kw, c);
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

/** dW[a, b, c] = Σ over n, i, j of x[n, i·sH + a·dH − padTop, j·sW + b·dW − padLeft, c] · dy[n, i, j, c] (multiplier 1). */
function directFilterGrad(backend: WasmBackendLike, x: tf.TensorInfo, dy: tf.TensorInfo, g: ReturnType<typeof convGeometry>, kh: number, kw: number, c: number): tf.TensorInfo {
  const out = backend.makeOutput([kh, kw, c, 1], 'float32');
  const xs = backend.typedArrayFromHeap(x) as Float32Array;
  const ds = backend.typedArrayFromHeap(dy) as Float32Array;
  const os = backend.typedArrayFromHeap(out) as Float32Array;
  const { batch: n, inH, inW, outH, outW, strideH: sH, strideW: sW, dilH, dilW, padTop, padLeft } = g;
  const c4 = c - (c % 4);
  const xStep = sW * c;
  for (let a = 0; a < kh; a++) {
    const rOff = a * dilH - padTop;
    // Output rows whose input row 0 ≤ i·sH + rOff < inH.
    const iMin = Math.max(0, Math.ceil(-rOff / sH)), iMax = Math.min(outH - 1, Math.floor((inH - 1 - rOff) / sH));
    for (let b = 0; b < kw; b++) {
      const cOff = b * dilW - padLeft;
      const jMin = Math.max(0, Math.ceil(-cOff / sW)), jMax = Math.min(outW - 1, Math.floor((inW - 1 - cOff) / sW));
      const tap = (a * kw + b) * c;
      if (iMin > iMax || jMin > jMax) {
        os.fill(0, tap, tap + c);
        continue;
      }
      const cols = jMax - jMin + 1;
      for (let ch = 0; ch < c4; ch += 4) {
        let s0 = 0, s1 = 0, s2 = 0, s3 = 0;
        for (let img = 0; img < n; img++) {
          for (let i = iMin; i <= iMax; i++) {
            let xo = ((img * inH + i * sH + rOff) * inW + jMin * sW + cOff) * c + ch;
            let d = ((img * outH + i) * outW + jMin) * c + ch;
            for (let k = 0; k < cols; k++) {
              s0 += xs[xo]! * ds[d]!;
              s1 += xs[xo + 1]! * ds[d + 1]!;
              s2 += xs[xo + 2]! * ds[d + 2]!;
              s3 += xs[xo + 3]! * ds[d + 3]!;
              xo += xStep;
              d += c;
            }
          }
        }
        os[tap + ch] = s0;
        os[tap + ch + 1] = s1;
        os[tap + ch + 2] = s2;
        os[tap + ch + 3] = s3;
      }
      for (let ch = c4; ch < c; ch++) {
        let s = 0;
        for (let img = 0; img < n; img++) {
          for (let i = iMin; i <= iMax; i++) {
            let xo = ((img * inH + i * sH + rOff) * inW + jMin * sW + cOff) * c + ch;
            let d = ((img * outH + i) * outW + jMin) * c + ch;
            for (let k = 0; k < cols; k++) {
              s += xs[xo]! * ds[d]!;
              xo += xStep;
              d += c;
            }
          }
        }
        os[tap + ch] = s;
      }
    }
  }
  return out;
}

export const depthwiseConv2dNativeBackpropFilterWasm: tf.KernelConfig = {
  kernelName: tf.DepthwiseConv2dNativeBackpropFilter,
  backendName: 'wasm',
  kernelFunc: depthwiseBackpropFilter as unknown as tf.KernelFunc,
};
