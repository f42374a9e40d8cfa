// Host-side (plain Float32Array, HWC) image operations shared by every teacher kind, so that TF.js and ONNX
// teachers preprocess and postprocess identically: bilinear resize, horizontal flip, padding, cropping,
// softmax and layout transposes.

/**
 * Bilinear resize of an HWC float image (`channels` interleaved) with half-pixel centres and edge clamping —
 * the convention of PyTorch's `F.interpolate(mode='bilinear', align_corners=False)` and of
 * `tf.image.resizeBilinear(..., halfPixelCenters=true)`; no antialiasing. Returns `src` itself when the size
 * does not change.
 */
export function resizeBilinear(src: Float32Array, inH: number, inW: number, channels: number, outH: number, outW: number): Float32Array {
  if (inH === outH && inW === outW) return src;
  const out = new Float32Array(outH * outW * channels);
  const sy = inH / outH, sx = inW / outW;
  const x0s = new Int32Array(outW), x1s = new Int32Array(outW), wxs = new Float32Array(outW);
  for (let x = 0; x < outW; x++) {
    const fx = Math.min(Math.max((x + 0.5) * sx - 0.5, 0), inW - 1);
    const x0 = Math.floor(fx);
    x0s[x] = x0 * channels;
    x1s[x] = Math.min(x0 + 1, inW - 1) * channels;
    wxs[x] = fx - x0;
  }
  for (let y = 0; y < outH; y++) {
    const fy = Math.min(Math.max((y + 0.5) * sy - 0.5, 0), inH - 1);
    const y0 = Math.floor(fy);
    const y1 = Math.min(y0 + 1, inH - 1);
    const wy = fy - y0;
    const r0 = y0 * inW * channels, r1 = y1 * inW * channels;
    let o = y * outW * channels;
    for (let x = 0; x < outW; x++) {
      const a = r0 + x0s[x]!, b = r0 + x1s[x]!, c = r1 + x0s[x]!, d = r1 + x1s[x]!;
      const wx = wxs[x]!;
      for (let k = 0; k < channels; k++) {
        const top = src[a + k]! + (src[b + k]! - src[a + k]!) * wx;
        const bottom = src[c + k]! + (src[d + k]! - src[c + k]!) * wx;
        out[o++] = top + (bottom - top) * wy;
      }
    }
  }
  return out;
}

/** Mirrors an HWC image left ↔ right (a new array). */
export function flipHorizontal(src: Float32Array, h: number, w: number, channels: number): Float32Array {
  const out = new Float32Array(src.length);
  for (let y = 0; y < h; y++) {
    const row = y * w * channels;
    for (let x = 0; x < w; x++) {
      const s = row + x * channels, d = row + (w - 1 - x) * channels;
      for (let k = 0; k < channels; k++) out[d + k] = src[s + k]!;
    }
  }
  return out;
}

/** Copies an HWC image into the top-left corner of a zero [ph, pw] canvas written at `out[offset…]`. */
export function padInto(src: Float32Array, h: number, w: number, channels: number, out: Float32Array, offset: number, pw: number): void {
  const rowLen = w * channels;
  for (let y = 0; y < h; y++) out.set(src.subarray(y * rowLen, (y + 1) * rowLen), offset + y * pw * channels);
}

/** The top-left [h, w] crop of an HWC image of width `fullW` stored at `src[offset…]`. */
export function crop(src: Float32Array, offset: number, fullW: number, channels: number, h: number, w: number): Float32Array {
  const out = new Float32Array(h * w * channels);
  const rowLen = w * channels;
  for (let y = 0; y < h; y++) out.set(src.subarray(offset + y * fullW * channels, offset + y * fullW * channels + rowLen), y * rowLen);
  return out;
}

/** In-place softmax over the last axis of [pixels, C]. */
export function softmaxInPlace(x: Float32Array, channels: number): Float32Array {
  return softmaxInto(x, 0, x, x.length / channels, channels);
}

/** Softmax over the last axis of `pixels` rows of `channels` values read at `src[offset…]`, written to `dst` (may be `src` with offset 0). */
export function softmaxInto(src: Float32Array, offset: number, dst: Float32Array, pixels: number, channels: number): Float32Array {
  const n = pixels * channels;
  for (let p = 0; p < n; p += channels) {
    const s = offset + p;
    let max = -Infinity;
    for (let k = 0; k < channels; k++) if (src[s + k]! > max) max = src[s + k]!;
    let sum = 0;
    for (let k = 0; k < channels; k++) {
      const e = Math.exp(src[s + k]! - max);
      dst[p + k] = e;
      sum += e;
    }
    const inv = 1 / sum;
    for (let k = 0; k < channels; k++) dst[p + k] = dst[p + k]! * inv;
  }
  return dst;
}

/** [n, h, w, c] → [n, c, h, w]. */
export function nhwcToNchw(src: Float32Array, n: number, h: number, w: number, c: number): Float32Array {
  const out = new Float32Array(src.length);
  const hw = h * w;
  for (let b = 0; b < n; b++) {
    const base = b * hw * c;
    for (let p = 0; p < hw; p++) for (let k = 0; k < c; k++) out[base + k * hw + p] = src[base + p * c + k]!;
  }
  return out;
}

/** [n, c, h, w] → [n, h, w, c]. */
export function nchwToNhwc(src: Float32Array, n: number, c: number, h: number, w: number): Float32Array {
  const out = new Float32Array(src.length);
  const hw = h * w;
  for (let b = 0; b < n; b++) {
    const base = b * hw * c;
    for (let k = 0; k < c; k++) for (let p = 0; p < hw; p++) out[base + p * c + k] = src[base + k * hw + p]!;
  }
  return out;
}
