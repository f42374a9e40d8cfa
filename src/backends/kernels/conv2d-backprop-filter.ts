// Conv2DBackpropFilter for wasm (the shipped backend has none).
// Stride 1 (any kernel size, dilation, padding): one matrix product per tap on XNNPACK's fully-connected path.
// x is laid out channel-major on a zero-padded grid [Ci, N·Hp·Wp] and dy on the same grid [N·Hp·Wp, Co] (zero
// where no output pixel sits); tap (a, b) reads x shifted by a·dilH·Wp + b·dilW along the grid, i.e. the same
// buffer at an offset, so dW[a, b] = xShifted [Ci, L] · dyGrid [L, Co] with no im2col copy and with dy packed
// once for all taps.
// Other strides: the filter gradient is itself a convolution. With x as [Ci, H, W, N] (channels → batch) and
// dy as a [Ho, Wo, N, Co] filter, a Conv2D whose stride is the forward dilation and whose dilation is the
// forward stride yields [Ci, kh, kw, Co].
import * as tf from '@tensorflow/tfjs';
import {
  convGeometry,
  disposeInfos,
  explicitPad,
  heapF32,
  runWasmKernel,
  sliceInfo,
  transposeInfo,
  type WasmBackendLike,
  type ConvGradAttrs,
} from './wasm-util.js';

interface Attrs extends ConvGradAttrs {
  filterShape: [number, number, number, number];
}

function conv2DBackpropFilter(args: { inputs: tf.NamedTensorInfoMap; backend: unknown; attrs: unknown }): tf.TensorInfo {
  const backend = args.backend as WasmBackendLike;
  const { x, dy } = args.inputs as { x: tf.TensorInfo; dy: tf.TensorInfo };
  const attrs = args.attrs as Attrs;
  const [kh, kw, ci, co] = attrs.filterShape;
  const g = convGeometry(x.shape as [number, number, number, number], attrs.filterShape, attrs, false, 'Conv2DBackpropFilter');
  // The grid costs (Hp·Wp)/(Ho·Wo) extra work: not worth it on small maps with a spatial kernel (8² with 3×3: 1.56×).
  const gridWaste = ((g.outH + (kh - 1) * g.dilH) * (g.outW + (kw - 1) * g.dilW)) / (g.outH * g.outW);
  if (g.strideH === 1 && g.strideW === 1 && gridWaste <= 1.35 && hasAliasing(backend)) {
    return filterGradStride1(backend, x, dy, g, kh, kw, ci, co);
  }
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

interface WasmInternals {
  dataIdMap: { get(dataId: object): { id: number; memoryOffset: number } | undefined; delete(dataId: object): boolean };
  wasm: { tfjs: { disposeData(id: number): void } };
}

function hasAliasing(backend: unknown): backend is WasmBackendLike & WasmInternals {
  const b = backend as Partial<WasmInternals>;
  return b.dataIdMap !== undefined && typeof b.wasm?.tfjs?.disposeData === 'function';
}

/** A tensor info viewing `size` floats of `base`'s heap memory from element `offset` on (no copy, no ownership). */
function aliasInfo(backend: WasmBackendLike & WasmInternals, base: tf.TensorInfo, offset: number, shape: number[]): tf.TensorInfo {
  const entry = backend.dataIdMap.get(base.dataId);
  if (entry === undefined) throw new Error('Conv2DBackpropFilter: missing tensor data');
  return backend.makeOutput(shape, 'float32', entry.memoryOffset + 4 * offset);
}

/** Forgets an alias without freeing the memory it views (which belongs to its base tensor). */
function dropAlias(backend: WasmBackendLike & WasmInternals, alias: tf.TensorInfo): void {
  const entry = backend.dataIdMap.get(alias.dataId);
  if (entry === undefined) return;
  backend.wasm.tfjs.disposeData(entry.id);
  backend.dataIdMap.delete(alias.dataId);
}

function filterGradStride1(
  backend: WasmBackendLike & WasmInternals,
  x: tf.TensorInfo,
  dy: tf.TensorInfo,
  g: ReturnType<typeof convGeometry>,
  kh: number,
  kw: number,
  ci: number,
  co: number,
): tf.TensorInfo {
  const n = g.batch;
  const hp = g.outH + (kh - 1) * g.dilH;
  const wp = g.outW + (kw - 1) * g.dilW;
  const plane = hp * wp;
  // Images per matrix product: XNNPACK does not block the reduction dimension, so keep each product's K
  // (grid positions) around CHUNK_TARGET to stay in cache; the partial products are summed.
  const slack = (kh - 1) * g.dilH * wp + (kw - 1) * g.dilW;
  const unpadded = slack === 0 && g.padTop === 0 && g.padLeft === 0 && hp === g.inH && wp === g.inW;
  let per = 1;
  if (unpadded) per = n; // 1×1 without padding: x itself is the grid, one product
  else for (let d = 1; d <= n; d++) if (n % d === 0 && d * plane <= CHUNK_TARGET) per = d;
  const chunks = n / per;
  const len = per * plane;
  const owned: tf.TensorInfo[] = [];
  try {
    // x → [N, Ci, H, W], then onto the padded grid laid out [chunk, Ci, image in chunk, Hp, Wp] (rows past the
    // grid are never read; the tail is zero slack for the last shifted view).
    const xt = transposeInfo(backend, x, unpadded ? [3, 0, 1, 2] : [0, 3, 1, 2]);
    owned.push(xt);
    let xg = xt;
    const copyCols = Math.min(g.inW, wp - g.padLeft);
    if (!unpadded) {
      xg = backend.makeOutput([ci * n * plane + slack], 'float32');
      owned.push(xg);
      const src = heapF32(backend, xt);
      const dst = heapF32(backend, xg);
      dst.fill(0);
      for (let b = 0; b < n; b++) {
        const chunkBase = Math.floor(b / per) * ci * len + (b % per) * plane;
        for (let c = 0; c < ci; c++) {
          for (let i = 0; i < g.inH; i++) {
            const r = i + g.padTop;
            if (r >= hp) break;
            const s0 = ((b * ci + c) * g.inH + i) * g.inW;
            dst.set(src.subarray(s0, s0 + copyCols), chunkBase + c * len + r * wp + g.padLeft);
          }
        }
      }
    }
    // dy → [N·Hp·Wp, Co] on the same grid (image-major, so a chunk's rows are contiguous).
    let dg = dy;
    if (hp !== g.outH || wp !== g.outW) {
      dg = backend.makeOutput([n * plane, co], 'float32');
      owned.push(dg);
      const src = heapF32(backend, dy);
      const dst = heapF32(backend, dg);
      dst.fill(0);
      const run = g.outW * co;
      for (let b = 0; b < n; b++) {
        for (let i = 0; i < g.outH; i++) {
          const s0 = (b * g.outH + i) * run;
          dst.set(src.subarray(s0, s0 + run), (b * plane + i * wp) * co);
        }
      }
    }
    // One view of dy per chunk, reused by every tap (XNNPACK packs each once and caches it on the view's id).
    const dyViews: tf.TensorInfo[] = [];
    const out = backend.makeOutput([kh, kw, ci, co], 'float32');
    const tapSize = ci * co;
    const acc = new Float32Array(tapSize);
    try {
      for (let k = 0; k < chunks; k++) dyViews.push(aliasInfo(backend, dg, k * len * co, [len, co]));
      for (let a = 0; a < kh; a++) {
        for (let b = 0; b < kw; b++) {
          const shift = a * g.dilH * wp + b * g.dilW;
          acc.fill(0);
          for (let k = 0; k < chunks; k++) {
            const alias = aliasInfo(backend, xg, k * ci * len + shift, [ci, len]);
            let prod: tf.TensorInfo;
            try {
              prod = runWasmKernel(backend, 'BatchMatMul', { a: alias, b: dyViews[k]! }, { transposeA: false, transposeB: false });
            } finally {
              dropAlias(backend, alias);
            }
            const pv = heapF32(backend, prod);
            for (let e = 0; e < tapSize; e++) acc[e] = acc[e]! + pv[e]!;
            disposeInfos(backend, prod);
          }
          heapF32(backend, out).set(acc, (a * kw + b) * tapSize);
        }
      }
    } finally {
      // Dropping the views also frees the XNNPACK operators cached on them.
      for (const v of dyViews) dropAlias(backend, v);
    }
    return out;
  } finally {
    disposeInfos(backend, ...owned);
  }
}

/** Grid positions per matrix product (see filterGradStride1). */
const CHUNK_TARGET = 4608;

export const conv2DBackpropFilterWasm: tf.KernelConfig = {
  kernelName: tf.Conv2DBackpropFilter,
  backendName: 'wasm',
  kernelFunc: conv2DBackpropFilter as unknown as tf.KernelFunc,
};
