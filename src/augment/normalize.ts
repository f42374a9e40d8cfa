// Image normalisation: per-channel (x − mean) / std on the 0..1 scale. The default (ImageNet) is exported so
// the engine can record it in model metadata and predict can apply exactly the same transform.
export interface Normalization {
  /** Per-channel mean, RGB, on the 0..1 scale. */
  mean: [number, number, number];
  /** Per-channel standard deviation, RGB, on the 0..1 scale. */
  std: [number, number, number];
}

/** ImageNet statistics, the usual choice for backbones pre-trained on ImageNet. */
export const IMAGENET_NORMALIZATION: Readonly<Normalization> = Object.freeze({
  mean: [0.485, 0.456, 0.406] as [number, number, number],
  std: [0.229, 0.224, 0.225] as [number, number, number],
});

/**
 * Normalises an RGB HWC image into `out` (a new Float32Array by default): bytes (Uint8Array) are read on the
 * 0..255 scale, floats on the 0..1 scale.
 */
export function normalizeImage(image: Uint8Array | Float32Array, norm: Normalization = IMAGENET_NORMALIZATION, out?: Float32Array, outOffset = 0): Float32Array {
  const dst = out ?? new Float32Array(image.length);
  const unit = image instanceof Uint8Array ? 1 / 255 : 1;
  const m0 = norm.mean[0], m1 = norm.mean[1], m2 = norm.mean[2];
  const s0 = 1 / norm.std[0], s1 = 1 / norm.std[1], s2 = 1 / norm.std[2];
  for (let i = 0; i < image.length; i += 3) {
    dst[outOffset + i] = (image[i]! * unit - m0) * s0;
    dst[outOffset + i + 1] = (image[i + 1]! * unit - m1) * s1;
    dst[outOffset + i + 2] = (image[i + 2]! * unit - m2) * s2;
  }
  return dst;
}

/** Undoes normalisation back to 8-bit RGB (for overlays and debugging). */
export function denormalizeImage(image: Float32Array, norm: Normalization = IMAGENET_NORMALIZATION): Uint8Array {
  const out = new Uint8Array(image.length);
  for (let i = 0; i < image.length; i++) {
    const c = i % 3;
    out[i] = Math.max(0, Math.min(255, Math.round((image[i]! * norm.std[c]! + norm.mean[c]!) * 255)));
  }
  return out;
}
