// Joint geometric resampling: one separable map (scale → crop/pad → horizontal flip) applied to the image and
// soft maps (bilinear, half-pixel centres) and to the mask and keep mask (nearest) with the same coordinates,
// so every output pixel of every map comes from the same place of the source. (The mask's nearest sampling can
// instead be PyTorch's F.interpolate(mode='nearest'), floor(q · in/out), which is not centred: see MaskSampling.)
import type { Sample, ValidRect } from './types.js';

/**
 * How the mask and keep mask are resampled when scaled: `centre` reads the source pixel under each output pixel's
 * centre, floor((q + ½)·in/out), aligned with the bilinear image (the default); `floor` reads floor(q·in/out) as
 * PyTorch's F.interpolate(mode='nearest') does, which moves the mask up to half a source pixel up and left of its
 * image (for parity with PyTorch code that resizes masks that way).
 */
export type MaskSampling = 'centre' | 'floor';

interface AxisMap {
  i0: Int32Array;
  i1: Int32Array;
  frac: Float32Array;
  near: Int32Array;
  valid: Uint8Array;
  lo: number;
  hi: number;
}

/**
 * For each output index o along one axis: its position q in the scaled image (offset + o, mirrored when
 * flipped), whether it lies inside the scaled image, and its bilinear/nearest source indices.
 */
function axisMap(outLen: number, srcLen: number, scaledLen: number, offset: number, flip: boolean, floorMask = false): AxisMap {
  const i0 = new Int32Array(outLen), i1 = new Int32Array(outLen), near = new Int32Array(outLen);
  const frac = new Float32Array(outLen), valid = new Uint8Array(outLen);
  const ratio = srcLen / scaledLen;
  let lo = outLen, hi = 0;
  for (let o = 0; o < outLen; o++) {
    const q = flip ? offset + outLen - 1 - o : offset + o;
    if (q < 0 || q >= scaledLen) continue;
    valid[o] = 1;
    if (o < lo) lo = o;
    hi = o + 1;
    let s = (q + 0.5) * ratio - 0.5;
    if (s < 0) s = 0;
    if (s > srcLen - 1) s = srcLen - 1;
    const a = Math.floor(s);
    i0[o] = a;
    i1[o] = Math.min(a + 1, srcLen - 1);
    frac[o] = s - a;
    near[o] = Math.min(Math.floor((floorMask ? q : q + 0.5) * ratio), srcLen - 1);
  }
  return { i0, i1, frac, near, valid, lo, hi: Math.max(hi, lo) };
}

export interface WarpSpec {
  outHeight: number;
  outWidth: number;
  /** Size of the (virtual) scaled image. */
  scaledHeight: number;
  scaledWidth: number;
  /** Top-left of the crop window in the scaled image (negative or beyond: padding). */
  offsetY: number;
  offsetX: number;
  flip: boolean;
  ignoreIndex: number;
  /** Mask and keep resampling (default centre). */
  maskSampling?: MaskSampling;
}

export interface WarpResult {
  /** RGB HWC on the 0..1 scale (bytes are divided by 255); padding 0. */
  image: Float32Array;
  mask?: Uint8Array;
  soft?: Float32Array;
  keep?: Uint8Array;
  valid: ValidRect;
}

/** Resamples a sample through the map described by `spec` (see the file comment). */
export function warpSample(sample: Sample, spec: WarpSpec): WarpResult {
  const { width: W, height: H } = sample;
  const { outHeight: oh, outWidth: ow } = spec;
  const floorMask = spec.maskSampling === 'floor';
  const ym = axisMap(oh, H, spec.scaledHeight, spec.offsetY, false, floorMask);
  const xm = axisMap(ow, W, spec.scaledWidth, spec.offsetX, spec.flip, floorMask);
  const unit = sample.image instanceof Uint8Array ? 1 / 255 : 1;
  const src = sample.image;
  const image = new Float32Array(oh * ow * 3);
  for (let y = ym.lo; y < ym.hi; y++) {
    const r0 = ym.i0[y]! * W, r1 = ym.i1[y]! * W, fy = ym.frac[y]!;
    const w00y = 1 - fy;
    for (let x = xm.lo; x < xm.hi; x++) {
      const c0 = xm.i0[x]!, c1 = xm.i1[x]!, fx = xm.frac[x]!;
      const a = (r0 + c0) * 3, b = (r0 + c1) * 3, c = (r1 + c0) * 3, d = (r1 + c1) * 3;
      const wa = w00y * (1 - fx) * unit, wb = w00y * fx * unit, wc = fy * (1 - fx) * unit, wd = fy * fx * unit;
      const o = (y * ow + x) * 3;
      image[o] = src[a]! * wa + src[b]! * wb + src[c]! * wc + src[d]! * wd;
      image[o + 1] = src[a + 1]! * wa + src[b + 1]! * wb + src[c + 1]! * wc + src[d + 1]! * wd;
      image[o + 2] = src[a + 2]! * wa + src[b + 2]! * wb + src[c + 2]! * wc + src[d + 2]! * wd;
    }
  }
  const result: WarpResult = { image, valid: { x0: xm.lo, y0: ym.lo, x1: xm.hi, y1: ym.hi } };

  if (sample.mask) {
    const m = sample.mask;
    const mask = new Uint8Array(oh * ow).fill(spec.ignoreIndex);
    for (let y = ym.lo; y < ym.hi; y++) {
      const row = ym.near[y]! * W;
      for (let x = xm.lo; x < xm.hi; x++) mask[y * ow + x] = m[row + xm.near[x]!]!;
    }
    result.mask = mask;
  }
  if (sample.soft || sample.keep) {
    const keep = new Uint8Array(oh * ow);
    const k = sample.keep;
    for (let y = ym.lo; y < ym.hi; y++) {
      const row = ym.near[y]! * W;
      for (let x = xm.lo; x < xm.hi; x++) keep[y * ow + x] = k ? k[row + xm.near[x]!]! : 1;
    }
    result.keep = keep;
  }
  if (sample.soft) result.soft = resampleSoft(sample.soft, W, H, ym, xm, oh, ow);
  return result;
}

/** Soft maps (HWC, any channel count) through the map of `spec` alone: what warpSample does to `soft`. */
export function warpSoft(soft: Float32Array, width: number, height: number, spec: WarpSpec): Float32Array {
  const ym = axisMap(spec.outHeight, height, spec.scaledHeight, spec.offsetY, false);
  const xm = axisMap(spec.outWidth, width, spec.scaledWidth, spec.offsetX, spec.flip);
  return resampleSoft(soft, width, height, ym, xm, spec.outHeight, spec.outWidth);
}

function resampleSoft(s: Float32Array, W: number, H: number, ym: AxisMap, xm: AxisMap, oh: number, ow: number): Float32Array {
  const K = s.length / (W * H);
  const soft = new Float32Array(oh * ow * K);
  for (let y = ym.lo; y < ym.hi; y++) {
    const r0 = ym.i0[y]! * W, r1 = ym.i1[y]! * W, fy = ym.frac[y]!;
    for (let x = xm.lo; x < xm.hi; x++) {
      const c0 = xm.i0[x]!, c1 = xm.i1[x]!, fx = xm.frac[x]!;
      const a = (r0 + c0) * K, b = (r0 + c1) * K, c = (r1 + c0) * K, d = (r1 + c1) * K;
      const wa = (1 - fy) * (1 - fx), wb = (1 - fy) * fx, wc = fy * (1 - fx), wd = fy * fx;
      const o = (y * ow + x) * K;
      for (let k = 0; k < K; k++) soft[o + k] = s[a + k]! * wa + s[b + k]! * wb + s[c + k]! * wc + s[d + k]! * wd;
    }
  }
  return soft;
}
