// Photometric operations on the image only (never on masks or soft maps): brightness, contrast and saturation
// jitter, random grayscale and Gaussian blur, on RGB HWC floats on the 0..1 scale, restricted to the rectangle
// that holds image content so padding stays padding.
import type { Random } from '../random.js';
import type { ValidRect } from './types.js';

export interface PhotometricOptions {
  /** Brightness factor drawn from [1 − b, 1 + b] (0: off). */
  brightness?: number;
  /** Contrast factor drawn from [1 − c, 1 + c] around the mean gray level (0: off). */
  contrast?: number;
  /** Saturation factor drawn from [1 − s, 1 + s] (0: off). */
  saturation?: number;
  /** Probability of turning the image gray. */
  grayscale?: number;
  /** Gaussian blur with probability p and sigma (pixels) drawn from the range; false: off. */
  blur?: { p: number; sigma: [number, number] } | false;
}

const clamp01 = (v: number): number => (v < 0 ? 0 : v > 1 ? 1 : v);
const gray = (r: number, g: number, b: number): number => 0.299 * r + 0.587 * g + 0.114 * b;

/** v ← clamp(a·v + b) inside the rectangle. */
function affineRect(img: Float32Array, w: number, r: ValidRect, a: number, b: number): void {
  for (let y = r.y0; y < r.y1; y++) {
    for (let i = (y * w + r.x0) * 3, end = (y * w + r.x1) * 3; i < end; i++) {
      const v = a * img[i]! + b;
      img[i] = v < 0 ? 0 : v > 1 ? 1 : v;
    }
  }
}

function meanGray(img: Float32Array, w: number, r: ValidRect): number {
  let sum = 0;
  for (let y = r.y0; y < r.y1; y++) {
    for (let i = (y * w + r.x0) * 3, end = (y * w + r.x1) * 3; i < end; i += 3) sum += gray(img[i]!, img[i + 1]!, img[i + 2]!);
  }
  const n = (r.y1 - r.y0) * (r.x1 - r.x0);
  return n > 0 ? sum / n : 0;
}

function saturate(img: Float32Array, w: number, r: ValidRect, s: number): void {
  for (let y = r.y0; y < r.y1; y++) {
    for (let i = (y * w + r.x0) * 3, end = (y * w + r.x1) * 3; i < end; i += 3) {
      const g = gray(img[i]!, img[i + 1]!, img[i + 2]!);
      img[i] = clamp01(g + (img[i]! - g) * s);
      img[i + 1] = clamp01(g + (img[i + 1]! - g) * s);
      img[i + 2] = clamp01(g + (img[i + 2]! - g) * s);
    }
  }
}

/** Separable Gaussian blur inside the rectangle, edges clamped to the rectangle. */
export function gaussianBlur(img: Float32Array, w: number, r: ValidRect, sigma: number): void {
  const radius = Math.max(1, Math.ceil(2.5 * sigma));
  const kernel = new Float32Array(2 * radius + 1);
  let total = 0;
  for (let k = -radius; k <= radius; k++) total += kernel[k + radius] = Math.exp((-k * k) / (2 * sigma * sigma));
  for (let k = 0; k < kernel.length; k++) kernel[k]! /= total;
  const rw = r.x1 - r.x0, rh = r.y1 - r.y0;
  if (rw <= 0 || rh <= 0) return;
  const tmp = new Float32Array(rw * rh * 3);
  for (let y = 0; y < rh; y++) {
    for (let x = 0; x < rw; x++) {
      let a = 0, b = 0, c = 0;
      for (let k = -radius; k <= radius; k++) {
        const xx = Math.min(rw - 1, Math.max(0, x + k));
        const i = ((r.y0 + y) * w + r.x0 + xx) * 3, kv = kernel[k + radius]!;
        a += img[i]! * kv;
        b += img[i + 1]! * kv;
        c += img[i + 2]! * kv;
      }
      const o = (y * rw + x) * 3;
      tmp[o] = a;
      tmp[o + 1] = b;
      tmp[o + 2] = c;
    }
  }
  for (let y = 0; y < rh; y++) {
    for (let x = 0; x < rw; x++) {
      let a = 0, b = 0, c = 0;
      for (let k = -radius; k <= radius; k++) {
        const yy = Math.min(rh - 1, Math.max(0, y + k));
        const i = (yy * rw + x) * 3, kv = kernel[k + radius]!;
        a += tmp[i]! * kv;
        b += tmp[i + 1]! * kv;
        c += tmp[i + 2]! * kv;
      }
      const o = ((r.y0 + y) * w + r.x0 + x) * 3;
      img[o] = a;
      img[o + 1] = b;
      img[o + 2] = c;
    }
  }
}

/**
 * Applies the photometric jitter in place. Brightness, contrast and saturation are applied in a random order
 * (as torchvision's ColorJitter), then grayscale, then blur; every draw comes from `rng`.
 */
export function applyPhotometric(img: Float32Array, width: number, rect: ValidRect, opts: PhotometricOptions, rng: Random): void {
  const ops: (() => void)[] = [];
  if (opts.brightness) {
    const f = rng.uniform(Math.max(0, 1 - opts.brightness), 1 + opts.brightness);
    ops.push(() => affineRect(img, width, rect, f, 0));
  }
  if (opts.contrast) {
    const f = rng.uniform(Math.max(0, 1 - opts.contrast), 1 + opts.contrast);
    ops.push(() => {
      const m = meanGray(img, width, rect);
      affineRect(img, width, rect, f, m * (1 - f));
    });
  }
  if (opts.saturation) {
    const f = rng.uniform(Math.max(0, 1 - opts.saturation), 1 + opts.saturation);
    ops.push(() => saturate(img, width, rect, f));
  }
  if (ops.length > 1) rng.shuffle(ops);
  for (const op of ops) op();
  if (opts.grayscale && rng.next() < opts.grayscale) saturate(img, width, rect, 0);
  if (opts.blur && rng.next() < opts.blur.p) gaussianBlur(img, width, rect, rng.uniform(opts.blur.sigma[0], opts.blur.sigma[1]));
}
