/**
 * The augmentation a run trains with, from its config: the `augment` preset as a shorthand, each value
 * overridable (scale range, flip probability, colour jitter strengths, grayscale and blur probabilities), and
 * the crop size, which defaults to the images' own size when they are smaller than the default crop (a crop
 * larger than the image is padding, not augmentation). The effective values are recorded in the run's config.
 */
import { AUGMENT_PRESETS, type AugmentOptions, type AugmentPreset } from '../augment/augment.js';
import type { MaskSampling } from '../augment/geometric.js';
import { usageError } from '../errors.js';

/** The default training crop; smaller images train at their own size (rounded down to the model's size multiple). */
export const DEFAULT_CROP = 128;

/** The config keys that override the preset (undefined: the preset's value). */
export interface AugmentationConfig {
  augment: AugmentPreset | 'none';
  /** "lo,hi", [lo, hi], or "none"/false for no scaling. */
  scale?: string | [number, number] | false;
  flip?: number;
  brightness?: number;
  contrast?: number;
  saturation?: number;
  grayscale?: number;
  /** Probability of a Gaussian blur (σ 0.1–2 px). */
  blur?: number;
  /** Mask resampling when scaling: centre (default) or floor (PyTorch's F.interpolate(mode='nearest')). */
  maskSampling?: MaskSampling;
}

const AUGMENTATION_KEYS = ['scale', 'flip', 'brightness', 'contrast', 'saturation', 'grayscale', 'blur'] as const;

/** Loader augmentation options (without crop): false = none at all (deterministic centre crop / pad). */
export type Augmentation = Omit<AugmentOptions, 'crop' | 'normalize' | 'ignoreIndex'> | false;

function parseScale(v: AugmentationConfig['scale']): [number, number] | false | undefined {
  if (v === undefined || v === null) return undefined;
  if (v === false || v === 'none') return false;
  const parts = Array.isArray(v) ? v.map(Number) : String(v).split(',').map((x) => Number(x.trim()));
  const [lo, hi] = parts.length === 1 ? [parts[0]!, parts[0]!] : parts;
  if (parts.length > 2 || !(lo! > 0 && hi! >= lo! && hi! <= 8)) throw usageError(`--scale must be LO,HI with 0 < LO ≤ HI ≤ 8 (or none), got ${String(v)}`);
  return [lo!, hi!];
}

/**
 * The effective augmentation of a config (preset, then each value given overrides it). The preset and the
 * probabilities are checked by the option schema (recipe-options.ts); a bad scale range is a usage error here.
 */
export function resolveAugmentation(c: AugmentationConfig): Augmentation {
  const presetName = c.augment ?? 'default';
  const p = AUGMENT_PRESETS[presetName] as Omit<AugmentOptions, 'crop'>;
  const scale = parseScale(c.scale);
  const overridden = AUGMENTATION_KEYS.some((k) => c[k] !== undefined && c[k] !== null);
  if (presetName === 'none' && !overridden) return false;
  return {
    scale: scale !== undefined ? scale : p.scale ? [p.scale[0], p.scale[1]] : false,
    // recorded only when not the default, so the augmentation of runs from before the option still compares equal on --resume
    ...(c.maskSampling === 'floor' ? { maskSampling: 'floor' as const } : {}),
    flip: c.flip ?? p.flip ?? 0,
    brightness: c.brightness ?? p.brightness ?? 0,
    contrast: c.contrast ?? p.contrast ?? 0,
    saturation: c.saturation ?? p.saturation ?? 0,
    grayscale: c.grayscale ?? p.grayscale ?? 0,
    blur: resolveBlur(p.blur, c.blur),
  };
}

/** A blur setting from a preset's and a given probability: the given one wins; σ from the preset, else 0.1–2 px. */
export function resolveBlur(preset: AugmentOptions['blur'] | undefined, given: number | undefined): { p: number; sigma: [number, number] } | false {
  const p = given ?? (preset ? preset.p : 0);
  return p > 0 ? { p, sigma: preset ? [preset.sigma[0], preset.sigma[1]] : [0.1, 2] } : false;
}

/**
 * The crop a run trains at: the given one, else {@link DEFAULT_CROP}, or the images' own size (rounded down to
 * the model's size multiple) when they are smaller; `note` says so when the default was lowered.
 */
export function defaultCrop(given: number | undefined, smallest: [number, number] | null, multiple: number): { crop: number; note?: string } {
  if (given !== undefined && given > 0) return { crop: given };
  if (!smallest) return { crop: DEFAULT_CROP };
  const side = Math.min(smallest[0], smallest[1]);
  if (side >= DEFAULT_CROP) return { crop: DEFAULT_CROP };
  const crop = Math.max(multiple, Math.floor(side / multiple) * multiple);
  return { crop, note: `--crop ${crop}: the images are ${smallest[0]}×${smallest[1]} or smaller, so the training crop is their size (a crop larger than the image only adds padding); pass --crop to choose another` };
}
