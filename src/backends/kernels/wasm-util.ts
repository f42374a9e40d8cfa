// Helpers for project kernels on the wasm backend: they compose the backend's own registered kernel
// functions (Conv2D, Transpose, ...) at the backend level, so intermediates never become engine tensors
// and are freed with `disposeData` as soon as they are used.
import * as tf from '@tensorflow/tfjs';

type NamedAttrMap = Record<string, unknown>;
type TensorInfo = tf.TensorInfo;

/** The part of tfjs-backend-wasm's `BackendWasm` the project kernels use. */
export interface WasmBackendLike {
  makeOutput(shape: number[], dtype: tf.DataType, memoryOffset?: number): TensorInfo;
  disposeData(dataId: object, force?: boolean): boolean;
  typedArrayFromHeap(info: TensorInfo): Float32Array | Int32Array | Uint8Array;
}

/** Calls the kernel currently registered for (`kernelName`, wasm) with backend-level tensor infos. */
export function runWasmKernel(
  backend: WasmBackendLike,
  kernelName: string,
  inputs: Record<string, TensorInfo>,
  attrs: NamedAttrMap = {},
): TensorInfo {
  const config = tf.getKernel(kernelName, 'wasm');
  if (config === undefined) throw new Error(`wasm kernel ${kernelName} is not registered`);
  const out = config.kernelFunc({ inputs, attrs: attrs as tf.NamedAttrMap, backend: backend as unknown as tf.KernelBackend });
  if (Array.isArray(out)) throw new Error(`wasm kernel ${kernelName} returned several outputs`);
  return out;
}

/** Frees backend-level intermediates (their data ids are reference-counted by the backend). */
export function disposeInfos(backend: WasmBackendLike, ...infos: Array<TensorInfo | undefined>): void {
  for (const info of infos) if (info !== undefined) backend.disposeData(info.dataId);
}

/** A float32 view of a tensor's data on the wasm heap. Take views only after the last allocation. */
export function heapF32(backend: WasmBackendLike, info: TensorInfo): Float32Array {
  return backend.typedArrayFromHeap(info) as Float32Array;
}

export function transposeInfo(backend: WasmBackendLike, x: TensorInfo, perm: number[]): TensorInfo {
  return runWasmKernel(backend, 'Transpose', { x }, { perm });
}

export function reshapeInfo(backend: WasmBackendLike, x: TensorInfo, shape: number[]): TensorInfo {
  return runWasmKernel(backend, 'Reshape', { x }, { shape });
}

export function sliceInfo(backend: WasmBackendLike, x: TensorInfo, begin: number[], size: number[]): TensorInfo {
  return runWasmKernel(backend, 'Slice', { x }, { begin, size });
}

/** Pads (or crops, for negative amounts) spatial dims of an NHWC tensor and inserts `stride - 1` zeros
 * between rows and columns (the "zero-insert" of a transposed convolution). One pass in JS. */
export function zeroInsertPad(
  backend: WasmBackendLike,
  x: TensorInfo,
  strideH: number,
  strideW: number,
  top: number,
  bottom: number,
  left: number,
  right: number,
): TensorInfo {
  const [n, h, w, c] = x.shape;
  const outH = top + (h - 1) * strideH + 1 + bottom;
  const outW = left + (w - 1) * strideW + 1 + right;
  const out = backend.makeOutput([n, outH, outW, c], 'float32');
  const src = heapF32(backend, x);
  const dst = heapF32(backend, out);
  dst.fill(0);
  for (let b = 0; b < n; b++) {
    for (let i = 0; i < h; i++) {
      const oi = top + i * strideH;
      if (oi < 0 || oi >= outH) continue;
      const srcRow = (b * h + i) * w * c;
      const dstRow = (b * outH + oi) * outW * c;
      if (strideW === 1) {
        // Contiguous run of columns that lands inside the output.
        const j0 = Math.max(0, -left);
        const j1 = Math.min(w, outW - left);
        if (j1 > j0) dst.set(src.subarray(srcRow + j0 * c, srcRow + j1 * c), dstRow + (left + j0) * c);
        continue;
      }
      for (let j = 0; j < w; j++) {
        const oj = left + j * strideW;
        if (oj < 0 || oj >= outW) continue;
        dst.set(src.subarray(srcRow + j * c, srcRow + (j + 1) * c), dstRow + oj * c);
      }
    }
  }
  return out;
}

/** [kh, kw, a, b] → [kh, kw, b, a] with both spatial axes reversed (the filter of a transposed conv). */
export function flipTransposeFilter(backend: WasmBackendLike, filter: TensorInfo): TensorInfo {
  const [kh, kw, a, b] = filter.shape;
  const out = backend.makeOutput([kh, kw, b, a], 'float32');
  const src = heapF32(backend, filter);
  const dst = heapF32(backend, out);
  for (let i = 0; i < kh; i++) {
    for (let j = 0; j < kw; j++) {
      const s = ((kh - 1 - i) * kw + (kw - 1 - j)) * a * b;
      const d = (i * kw + j) * a * b;
      for (let p = 0; p < a; p++) for (let q = 0; q < b; q++) dst[d + q * a + p] = src[s + p * b + q];
    }
  }
  return out;
}

/** [kh, kw, ...] → same shape with both spatial axes reversed. */
export function flipFilter(backend: WasmBackendLike, filter: TensorInfo): TensorInfo {
  const [kh, kw] = filter.shape;
  const inner = filter.shape.slice(2).reduce((p, q) => p * q, 1);
  const out = backend.makeOutput(filter.shape.slice(), 'float32');
  const src = heapF32(backend, filter);
  const dst = heapF32(backend, out);
  for (let i = 0; i < kh; i++) {
    for (let j = 0; j < kw; j++) {
      const s = ((kh - 1 - i) * kw + (kw - 1 - j)) * inner;
      dst.set(src.subarray(s, s + inner), (i * kw + j) * inner);
    }
  }
  return out;
}

function pair(v: number | [number, number] | undefined, dflt = 1): [number, number] {
  if (v === undefined || v === null) return [dflt, dflt];
  return typeof v === 'number' ? [v, v] : [v[0], v[1]];
}

/** Conv2D / depthwise geometry the backprop kernels need. */
export interface ConvGeometry {
  batch: number;
  inH: number;
  inW: number;
  outH: number;
  outW: number;
  kh: number;
  kw: number;
  strideH: number;
  strideW: number;
  dilH: number;
  dilW: number;
  padTop: number;
  padLeft: number;
}

export function convGeometry(
  xShape: [number, number, number, number],
  filterShape: [number, number, number, number],
  attrs: ConvGradAttrs,
  depthwise: boolean,
  kernelName: string,
): ConvGeometry {
  const { strides, dilations, pad, dimRoundingMode, dataFormat } = attrs;
  if (dataFormat !== undefined && dataFormat !== 'NHWC' && dataFormat !== 'channelsLast') {
    throw new Error(`${kernelName} on wasm (softseg kernel) supports only dataFormat NHWC, got ${String(dataFormat)}`);
  }
  const info = tf.backend_util.computeConv2DInfo(
    xShape,
    filterShape,
    strides,
    pair(dilations),
    pad as 'same',
    dimRoundingMode as 'floor' | undefined,
    depthwise,
    'channelsLast',
  );
  return {
    batch: info.batchSize,
    inH: info.inHeight,
    inW: info.inWidth,
    outH: info.outHeight,
    outW: info.outWidth,
    kh: info.filterHeight,
    kw: info.filterWidth,
    strideH: info.strideHeight,
    strideW: info.strideWidth,
    dilH: info.dilationHeight,
    dilW: info.dilationWidth,
    padTop: info.padInfo.top,
    padLeft: info.padInfo.left,
  };
}

/** Explicit padding in tfjs's conv attr form. */
export function explicitPad(top: number, bottom: number, left: number, right: number): number[][] {
  return [[0, 0], [top, bottom], [left, right], [0, 0]];
}

type NumericArray = Float32Array | Int32Array | Uint8Array;

/**
 * dst[out index] = src[begin + stride ⊙ out index] for a row-major tensor of shape `xShape`. Trailing dims taken
 * whole are merged, and the innermost run is copied with `TypedArray.set` when contiguous. Strides must be > 0.
 */
export function stridedCopy(
  src: NumericArray,
  xShape: readonly number[],
  begin: readonly number[],
  strides: readonly number[],
  outShape: readonly number[],
  dst: NumericArray,
): void {
  const total = outShape.reduce((a, b) => a * b, 1);
  if (total === 0) return;
  // Work on copies we can merge; a rank-0 tensor is a single element.
  const xs = xShape.length === 0 ? [1] : xShape.slice();
  const bs = begin.length === 0 ? [0] : begin.slice();
  const ss = strides.length === 0 ? [1] : strides.slice();
  const os = outShape.length === 0 ? [1] : outShape.slice();
  // Merge the last dim into the one before while it is taken whole and contiguously.
  while (xs.length > 1) {
    const d = xs.length - 1;
    const full = bs[d] === 0 && ss[d] === 1 && os[d] === xs[d];
    if (!full || ss[d - 1] !== 1) break;
    bs[d - 1] *= xs[d];
    xs[d - 1] *= xs[d];
    os[d - 1] *= xs[d];
    xs.pop();
    bs.pop();
    ss.pop();
    os.pop();
  }
  const rank = xs.length;
  const xStrides = new Array<number>(rank);
  xStrides[rank - 1] = 1;
  for (let d = rank - 2; d >= 0; d--) xStrides[d] = xStrides[d + 1] * xs[d + 1];
  const last = rank - 1;
  const run = os[last];
  const step = ss[last];
  const outer = total / run;
  const idx = new Array<number>(rank).fill(0);
  let srcBase = 0;
  for (let d = 0; d < rank; d++) srcBase += bs[d] * xStrides[d];
  let dOff = 0;
  for (let o = 0; o < outer; o++) {
    // Source offset of this run: recomputed from the odometer (cheap relative to the copy).
    let sOff = srcBase;
    for (let d = 0; d < last; d++) sOff += idx[d] * ss[d] * xStrides[d];
    if (step === 1 && run >= 16) {
      dst.set(src.subarray(sOff, sOff + run), dOff);
    } else {
      for (let j = 0; j < run; j++) dst[dOff + j] = src[sOff + j * step];
    }
    dOff += run;
    for (let d = last - 1; d >= 0; d--) {
      if (++idx[d] < os[d]) break;
      idx[d] = 0;
    }
  }
}

/**
 * Copies `count` runs of `run` elements: run r goes from src[srcOff + r·srcStride …] to dst[dstOff + r·dstStride …].
 * Short runs (channel slices of NHWC activations) are copied in a loop: a subarray + set per run costs more
 * than the copy itself there.
 */
export function copyRuns(src: NumericArray, srcOff: number, srcStride: number, dst: NumericArray, dstOff: number, dstStride: number, run: number, count: number): void {
  if (run >= 32) {
    for (let r = 0; r < count; r++) dst.set(src.subarray(srcOff + r * srcStride, srcOff + r * srcStride + run), dstOff + r * dstStride);
    return;
  }
  for (let r = 0; r < count; r++) {
    const s = srcOff + r * srcStride, d = dstOff + r * dstStride;
    for (let j = 0; j < run; j++) dst[d + j] = src[s + j]!;
  }
}

/** The attributes TF.js passes to the convolution gradient kernels (plus the output shape each one names). */
export interface ConvGradAttrs {
  strides: number | [number, number];
  pad: unknown;
  dataFormat?: string;
  dimRoundingMode?: string;
  /** Not part of tfjs's conv2d gradient attrs (it rejects dilations); honoured when a caller passes it. */
  dilations?: number | [number, number];
}
