/**
 * Test-time augmentation for teachers: every image is run at several scales, optionally also mirrored left ↔
 * right, and the class probabilities of all views — each resized back to the original resolution (bilinear)
 * and un-mirrored — are averaged in probability space.
 *
 * `parseTta('flip,scales=0.75,1,1.25')` reads the `--tta` flag: comma-separated items, `flip` and
 * `scales=s1,s2,…` (the numbers after `scales=` run until the next non-number item), or `none`.
 */
import { SoftsegError } from '../errors.js';
import { flipHorizontal, resizeBilinear } from './ops.js';

export interface TtaOptions {
  /** Also run every scale mirrored left ↔ right. */
  flip?: boolean;
  /** Scale factors of the image (default [1]); each in (0, 4]. */
  scales?: readonly number[];
}

/** TTA with defaults filled in: scales sorted ascending, without duplicates. */
export interface ResolvedTta {
  flip: boolean;
  scales: number[];
}

/** One augmented view: the image scaled by `scale` and mirrored when `flip`. */
export interface TtaView {
  scale: number;
  flip: boolean;
}

export const NO_TTA: Readonly<ResolvedTta> = Object.freeze({ flip: false, scales: [1] as number[] });

const TTA_HINT = 'write e.g. --tta flip, --tta scales=0.75,1,1.25 or --tta flip,scales=0.5,1,1.5 (or none)';

/** Validates TTA options and fills defaults in (SoftsegError on a bad scale). */
export function resolveTta(options: TtaOptions | undefined): ResolvedTta {
  const scales = options?.scales === undefined ? [1] : [...options.scales];
  if (scales.length === 0) throw new SoftsegError('TTA needs at least one scale', { hint: TTA_HINT });
  for (const s of scales) {
    if (!(typeof s === 'number' && Number.isFinite(s) && s > 0 && s <= 4)) {
      throw new SoftsegError(`TTA scale must be a number in (0, 4], got ${String(s)}`, { hint: TTA_HINT });
    }
  }
  return { flip: options?.flip ?? false, scales: [...new Set(scales)].sort((a, b) => a - b) };
}

/** Parses the `--tta` flag, e.g. `flip,scales=0.75,1,1.25`; `none` or an empty string mean no TTA. */
export function parseTta(spec: string): ResolvedTta {
  const items = spec.split(',').map((s) => s.trim());
  if (items.length === 1 && (items[0] === '' || items[0]!.toLowerCase() === 'none')) return { ...NO_TTA, scales: [1] };
  let flip = false;
  let scales: number[] | undefined;
  let inScales = false;
  for (const item of items) {
    if (item === '') throw new SoftsegError(`bad --tta "${spec}": empty item`, { hint: TTA_HINT });
    const lower = item.toLowerCase();
    if (lower.startsWith('scales=') || lower.startsWith('scale=')) {
      if (scales) throw new SoftsegError(`bad --tta "${spec}": scales given twice`, { hint: TTA_HINT });
      scales = [parseScale(item.slice(item.indexOf('=') + 1), spec)];
      inScales = true;
    } else if (inScales && /^[0-9.]/.test(item)) {
      scales!.push(parseScale(item, spec));
    } else if (lower === 'flip' || lower === 'hflip') {
      flip = true;
      inScales = false;
    } else {
      throw new SoftsegError(`bad --tta "${spec}": unknown item "${item}"`, { hint: TTA_HINT });
    }
  }
  return resolveTta({ flip, scales });
}

function parseScale(text: string, spec: string): number {
  const v = Number(text);
  if (text.trim() === '' || !Number.isFinite(v)) throw new SoftsegError(`bad --tta "${spec}": "${text}" is not a number`, { hint: TTA_HINT });
  if (!(v > 0 && v <= 4)) throw new SoftsegError(`bad --tta "${spec}": scale ${v} is outside (0, 4]`, { hint: TTA_HINT });
  return v;
}

/** The canonical flag form: `none`, `flip`, `scales=0.75,1,1.25` or `flip,scales=…`. */
export function formatTta(tta: ResolvedTta): string {
  const parts: string[] = [];
  if (tta.flip) parts.push('flip');
  if (tta.scales.length !== 1 || tta.scales[0] !== 1) parts.push(`scales=${tta.scales.join(',')}`);
  return parts.length === 0 ? 'none' : parts.join(',');
}

export function isIdentityTta(tta: ResolvedTta): boolean {
  return !tta.flip && tta.scales.length === 1 && tta.scales[0] === 1;
}

/** Every view of a TTA configuration (scales × {plain, mirrored}). */
export function ttaViews(tta: ResolvedTta): TtaView[] {
  return tta.scales.flatMap((scale) => (tta.flip ? [{ scale, flip: false }, { scale, flip: true }] : [{ scale, flip: false }]));
}

/** The size of an h×w image scaled by `scale` (rounded, at least 1 pixel). */
function scaledSize(h: number, w: number, scale: number): [number, number] {
  return [Math.max(1, Math.round(h * scale)), Math.max(1, Math.round(w * scale))];
}

/**
 * Class probabilities [vh, vw, C] (HWC) of each of several normalised RGB images (HWC, all vh×vw): the
 * teacher's forward pass at one size.
 */
export type ProbabilityForward = (images: Float32Array[], height: number, width: number) => Promise<Float32Array[]>;

/**
 * Runs `forward` on every TTA view of a batch of same-size normalised images (HWC, h×w) and returns, per image,
 * the mean class probabilities [h, w, C] over the views at the original resolution.
 */
export async function applyTta(images: Float32Array[], height: number, width: number, numClasses: number, tta: ResolvedTta, forward: ProbabilityForward): Promise<Float32Array[]> {
  const views = ttaViews(tta);
  if (views.length === 1 && views[0]!.scale === 1 && !views[0]!.flip) return forward(images, height, width);
  const sums = images.map(() => new Float32Array(height * width * numClasses));
  for (const view of views) {
    const [vh, vw] = scaledSize(height, width, view.scale);
    const inputs = images.map((img) => {
      const scaled = resizeBilinear(img, height, width, 3, vh, vw);
      return view.flip ? flipHorizontal(scaled, vh, vw, 3) : scaled;
    });
    const probs = await forward(inputs, vh, vw);
    probs.forEach((p, i) => {
      const unflipped = view.flip ? flipHorizontal(p, vh, vw, numClasses) : p;
      const back = resizeBilinear(unflipped, vh, vw, numClasses, height, width);
      const sum = sums[i]!;
      for (let j = 0; j < sum.length; j++) sum[j]! += back[j]!;
    });
  }
  const inv = 1 / views.length;
  for (const sum of sums) for (let j = 0; j < sum.length; j++) sum[j]! *= inv;
  return sums;
}
