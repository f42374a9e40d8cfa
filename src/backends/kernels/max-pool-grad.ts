// MaxPoolGrad for wasm: routes each upstream gradient to the first maximum of its pooling window (as the cpu
// backend: windows scanned row by row, strict >), in one pass over the output in JS. The shipped kernel is a
// generic loop ~8x slower on the zoo's 2×2 stride-2 pools.
import * as tf from '@tensorflow/tfjs';
import type { WasmBackendLike } from './wasm-util.js';

function maxPoolGrad(args: { inputs: tf.NamedTensorInfoMap; backend: unknown; attrs: unknown }): tf.TensorInfo {
  const backend = args.backend as WasmBackendLike;
  const { dy, input } = args.inputs as { dy: tf.TensorInfo; input: tf.TensorInfo };
  const { filterSize, strides, pad, dimRoundingMode } = args.attrs as {
    filterSize: number | [number, number];
    strides: number | [number, number];
    pad: 'valid' | 'same' | number;
    dimRoundingMode?: 'floor' | 'round' | 'ceil';
  };
  const info = tf.backend_util.computePool2DInfo(input.shape as [number, number, number, number], filterSize, strides, 1, pad, dimRoundingMode);
  const { batchSize, inHeight, inWidth, inChannels: c, outHeight, outWidth, strideHeight, strideWidth } = info;
  const fh = info.effectiveFilterHeight, fw = info.effectiveFilterWidth;
  const padTop = info.padInfo.top, padLeft = info.padInfo.left;
  const out = backend.makeOutput(input.shape.slice(), 'float32');
  const dx = backend.typedArrayFromHeap(out) as Float32Array;
  const x = backend.typedArrayFromHeap(input) as Float32Array;
  const g = backend.typedArrayFromHeap(dy) as Float32Array;
  dx.fill(0);
  if (fh === 2 && fw === 2 && strideHeight === 2 && strideWidth === 2 && padTop === 0 && padLeft === 0 && outHeight * 2 <= inHeight && outWidth * 2 <= inWidth) {
    // The zoo's 2×2 stride-2 'valid' pools: four fixed taps, scan order (0,0), (0,1), (1,0), (1,1).
    const row = inWidth * c;
    for (let b = 0; b < batchSize; b++) {
      for (let oh = 0; oh < outHeight; oh++) {
        for (let ow = 0; ow < outWidth; ow++) {
          const p00 = ((b * inHeight + 2 * oh) * inWidth + 2 * ow) * c;
          const gBase = ((b * outHeight + oh) * outWidth + ow) * c;
          for (let ch = 0; ch < c; ch++) {
            const i0 = p00 + ch, i1 = i0 + c, i2 = i0 + row, i3 = i2 + c;
            const v0 = x[i0]!, v1 = x[i1]!, v2 = x[i2]!, v3 = x[i3]!;
            let at = -1, best = -Infinity;
            if (v0 > best) { best = v0; at = i0; }
            if (v1 > best) { best = v1; at = i1; }
            if (v2 > best) { best = v2; at = i2; }
            if (v3 > best) at = i3;
            if (at >= 0) dx[at] += g[gBase + ch]!;
          }
        }
      }
    }
    return out;
  }
  const offsets = new Int32Array(fh * fw);
  for (let b = 0; b < batchSize; b++) {
    for (let oh = 0; oh < outHeight; oh++) {
      const r0 = oh * strideHeight - padTop;
      const rMin = Math.max(0, r0), rMax = Math.min(inHeight, r0 + fh);
      for (let ow = 0; ow < outWidth; ow++) {
        const c0 = ow * strideWidth - padLeft;
        const cMin = Math.max(0, c0), cMax = Math.min(inWidth, c0 + fw);
        // Element offsets of the window's pixels (channel 0), in scan order.
        let k = 0;
        for (let r = rMin; r < rMax; r++) for (let q = cMin; q < cMax; q++) offsets[k++] = ((b * inHeight + r) * inWidth + q) * c;
        const gBase = ((b * outHeight + oh) * outWidth + ow) * c;
        for (let ch = 0; ch < c; ch++) {
          let best = -Infinity, at = -1;
          for (let w = 0; w < k; w++) {
            const v = x[offsets[w]! + ch]!;
            if (v > best) {
              best = v;
              at = offsets[w]! + ch;
            }
          }
          if (at >= 0) dx[at] += g[gBase + ch]!;
        }
      }
    }
  }
  return out;
}

export const maxPoolGradWasm: tf.KernelConfig = {
  kernelName: tf.MaxPoolGrad,
  backendName: 'wasm',
  kernelFunc: maxPoolGrad as unknown as tf.KernelFunc,
};
