// Seeded joint augmentation for training (random scale, crop with padding, horizontal flip; photometric jitter
// and blur on the image only; normalisation last) and the deterministic eval transform (resize, pad to a size
// multiple). Every random choice comes from the Random the caller passes.
import type { Random } from '../random.js';
import { warpSample, type MaskSampling, type WarpSpec } from './geometric.js';
import { IMAGENET_NORMALIZATION, type Normalization } from './normalize.js';
import { applyPhotometric, type PhotometricOptions } from './photometric.js';
import type { AugmentedSample, Sample, ValidRect } from './types.js';

export interface AugmentOptions extends PhotometricOptions {
  /** Output size: S (square) or [height, width]. */
  crop: number | [number, number];
  /** Random scale factor range, applied before the crop; false: no scaling. Default [0.5, 2]. */
  scale?: [number, number] | false;
  /** Probability of a horizontal flip (default 0.5). */
  flip?: number;
  /** How the mask and keep mask are resampled when scaled (default centre; see MaskSampling). */
  maskSampling?: MaskSampling;
  /** Where the crop window goes: random (default) or centred (with no scale and no flip: deterministic). */
  cropPosition?: 'random' | 'center';
  /** Applied last; false keeps the 0..1 scale. Default ImageNet. */
  normalize?: Normalization | false;
  /** Mask padding value (default 255). */
  ignoreIndex?: number;
  /**
   * A second, strongly augmented view of the same crop (semi-supervised student view): the same geometry,
   * these photometric options instead of the sample's own (drawn after them), returned as `strongImage`.
   */
  strongView?: PhotometricOptions | false;
}

/** Option presets (without the crop size). `strong` is meant for semi-supervised student views. */
export const AUGMENT_PRESETS = {
  /** Geometry only. */
  none: { scale: false, flip: 0 },
  /**
   * The supervised default: scale 0.75–1.25 and flip (the standard PyTorch recipe). Measured on the parity set
   * (bench/parity) and reported on outside data: the earlier default, scale 0.5–2 with colour jitter 0.2, trained
   * worse students (small objects shrink to nothing at 0.5×); `--scale 0.5,2 --brightness 0.2 …` still gives it.
   */
  default: { scale: [0.75, 1.25], flip: 0.5 },
  /** Strong: stronger colour jitter, random grayscale and Gaussian blur. */
  strong: {
    scale: [0.5, 2],
    flip: 0.5,
    brightness: 0.5,
    contrast: 0.5,
    saturation: 0.5,
    grayscale: 0.2,
    blur: { p: 0.5, sigma: [0.1, 2] },
  },
} as const satisfies Record<string, Omit<AugmentOptions, 'crop'>>;

export type AugmentPreset = keyof typeof AUGMENT_PRESETS;

/** A preset's options with a crop size and overrides. */
export function augmentPreset(preset: AugmentPreset, crop: number | [number, number], overrides: Partial<AugmentOptions> = {}): AugmentOptions {
  const p = AUGMENT_PRESETS[preset] as Omit<AugmentOptions, 'crop'>;
  return {
    ...p,
    scale: p.scale ? [p.scale[0], p.scale[1]] : false,
    blur: p.blur ? { p: p.blur.p, sigma: [p.blur.sigma[0], p.blur.sigma[1]] } : false,
    crop,
    ...overrides,
  };
}

function finish(image: Float32Array, width: number, valid: ValidRect, normalize: Normalization | false): void {
  if (!normalize) return;
  const m = normalize.mean, s = [1 / normalize.std[0], 1 / normalize.std[1], 1 / normalize.std[2]];
  for (let y = valid.y0; y < valid.y1; y++) {
    for (let i = (y * width + valid.x0) * 3, end = (y * width + valid.x1) * 3; i < end; i += 3) {
      image[i] = (image[i]! - m[0]) * s[0]!;
      image[i + 1] = (image[i + 1]! - m[1]) * s[1]!;
      image[i + 2] = (image[i + 2]! - m[2]) * s[2]!;
    }
  }
}

function checkSample(sample: Sample): void {
  const px = sample.width * sample.height;
  if (sample.image.length !== px * 3) throw new RangeError(`image has ${sample.image.length} values, expected ${sample.height}x${sample.width}x3`);
  if (sample.mask && sample.mask.length !== px) throw new RangeError(`mask has ${sample.mask.length} values, expected ${sample.height}x${sample.width}`);
  if (sample.keep && sample.keep.length !== px) throw new RangeError(`keep has ${sample.keep.length} values, expected ${sample.height}x${sample.width}`);
  if (sample.soft && (sample.soft.length === 0 || sample.soft.length % px !== 0)) throw new RangeError(`soft map has ${sample.soft.length} values, not a multiple of ${px}`);
}

/** The geometric part of augmentSample for a width × height sample: scale, crop window and flip, drawn in order. */
export function drawGeometry(width: number, height: number, rng: Random, opts: AugmentOptions): WarpSpec {
  const [oh, ow] = typeof opts.crop === 'number' ? [opts.crop, opts.crop] : opts.crop;
  const scaleRange = opts.scale === undefined ? ([0.5, 2] as [number, number]) : opts.scale;
  const s = scaleRange ? rng.uniform(scaleRange[0], scaleRange[1]) : 1;
  const sh = Math.max(1, Math.round(height * s));
  const sw = Math.max(1, Math.round(width * s));
  const center = opts.cropPosition === 'center';
  const offsetY = sh > oh ? (center ? Math.floor((sh - oh) / 2) : rng.int(sh - oh + 1)) : 0;
  const offsetX = sw > ow ? (center ? Math.floor((sw - ow) / 2) : rng.int(sw - ow + 1)) : 0;
  const flipP = opts.flip ?? 0.5;
  const flip = flipP > 0 && rng.next() < flipP;
  const spec: WarpSpec = { outHeight: oh, outWidth: ow, scaledHeight: sh, scaledWidth: sw, offsetY, offsetX, flip, ignoreIndex: opts.ignoreIndex ?? 255 };
  if (opts.maskSampling === 'floor') spec.maskSampling = 'floor';
  return spec;
}

/**
 * Augments one sample: scale by s ∈ opts.scale (bilinear for image and soft maps, nearest for mask and keep),
 * crop to `crop` (padding at the bottom/right when the scaled image is smaller — mirrored to the left by a
 * flip), horizontal flip, photometric jitter on the image, normalisation. Padding: image 0 after normalisation
 * (= the mean colour before it), mask the ignore index, soft maps 0, keep 0. Draws from `rng` in a fixed order,
 * so the result is a function of the options and the generator state only. `geometry`, when given, is what
 * drawGeometry drew from the same generator just before (so soft maps can be resampled elsewhere, e.g. on a
 * worker thread, through the same map: warpSoft).
 */
export function augmentSample(sample: Sample, rng: Random, opts: AugmentOptions, geometry?: WarpSpec): AugmentedSample {
  checkSample(sample);
  const spec = geometry ?? drawGeometry(sample.width, sample.height, rng, opts);
  const [oh, ow] = [spec.outHeight, spec.outWidth];
  const warped = warpSample(sample, spec);
  const strong = opts.strongView ? warped.image.slice() : undefined;
  const normalize = opts.normalize === undefined ? IMAGENET_NORMALIZATION : opts.normalize;
  applyPhotometric(warped.image, ow, warped.valid, opts, rng);
  finish(warped.image, ow, warped.valid, normalize);
  if (strong && opts.strongView) {
    applyPhotometric(strong, ow, warped.valid, opts.strongView, rng);
    finish(strong, ow, warped.valid, normalize);
    return { ...warped, strongImage: strong, width: ow, height: oh };
  }
  return { ...warped, width: ow, height: oh };
}

export interface EvalTransformOptions {
  /** Pad (bottom/right) so height and width are multiples of this (default 32; 1: no padding). */
  multiple?: number;
  /** Resize to exactly [height, width] first (bilinear image/soft, nearest mask/keep). */
  resize?: [number, number];
  normalize?: Normalization | false;
  ignoreIndex?: number;
}

/**
 * The deterministic eval/predict transform: optional resize, then padding at the bottom/right up to a size
 * multiple (image 0 after normalisation, mask the ignore index, soft and keep 0). `valid` says where the
 * image is, so predictions can be cut back to it.
 */
export function evalTransform(sample: Sample, opts: EvalTransformOptions = {}): AugmentedSample {
  checkSample(sample);
  const multiple = Math.max(1, opts.multiple ?? 32);
  const [sh, sw] = opts.resize ?? [sample.height, sample.width];
  const oh = Math.ceil(sh / multiple) * multiple, ow = Math.ceil(sw / multiple) * multiple;
  const warped = warpSample(sample, {
    outHeight: oh,
    outWidth: ow,
    scaledHeight: sh,
    scaledWidth: sw,
    offsetY: 0,
    offsetX: 0,
    flip: false,
    ignoreIndex: opts.ignoreIndex ?? 255,
  });
  finish(warped.image, ow, warped.valid, opts.normalize === undefined ? IMAGENET_NORMALIZATION : opts.normalize);
  return { ...warped, width: ow, height: oh };
}
