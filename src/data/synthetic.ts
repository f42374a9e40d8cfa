// A synthetic segmentation data set for tests, the demo and experiments: coloured shapes (one class each, with
// confusable pairs: similar colours, similar shapes) on textured noisy backgrounds (class 0), written as PNG
// images + grayscale or palette class-id masks + dataset.json. Deterministic in (seed, split, index).
import { mkdir } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import PQueue from 'p-queue';
import sharp from 'sharp';
import { SoftsegError } from '../errors.js';
import type { Random } from '../random.js';
import { writeMask, writePaletteMask, type Rgb } from './decode.js';
import type { DatasetJson } from './dataset.js';
import { writeFileAtomic } from './fs-util.js';
import { randomFor } from './seed.js';

type Shape = 'circle' | 'square' | 'triangle' | 'stripes' | 'ring' | 'diamond' | 'cross' | 'ellipse' | 'frame';

/** The classes after background, in order: name, colour, shape. Pairs 1/2 and 3/5 share colours nearly. */
export const SHAPE_CLASSES: readonly { name: string; color: Rgb; shape: Shape }[] = [
  { name: 'circle', color: [215, 45, 45], shape: 'circle' },
  { name: 'square', color: [230, 85, 40], shape: 'square' },
  { name: 'triangle', color: [45, 70, 215], shape: 'triangle' },
  { name: 'stripes', color: [45, 175, 65], shape: 'stripes' },
  { name: 'ring', color: [60, 95, 230], shape: 'ring' },
  { name: 'diamond', color: [220, 200, 45], shape: 'diamond' },
  { name: 'cross', color: [195, 55, 200], shape: 'cross' },
  { name: 'ellipse', color: [45, 195, 200], shape: 'ellipse' },
  { name: 'frame', color: [235, 235, 235], shape: 'frame' },
];
export const MAX_SHAPE_CLASSES = SHAPE_CLASSES.length + 1;

export interface ShapesOptions {
  /** Images per set (ignored for splits given with counts). */
  count?: number;
  /** Side of the square images (default 64). */
  size?: number;
  /** Classes including background (2..10, default 5). */
  numClasses?: number;
  seed?: number;
  /** Write sub-sets dir/<name>/ with these image counts instead of one set in dir. */
  splits?: Record<string, number>;
  /** Palette PNG masks (VOC style) instead of 8-bit grayscale. */
  paletteMasks?: boolean;
  /** Images only (no masks/). */
  unlabeled?: boolean;
  /** Image file format (default png). */
  imageFormat?: 'png' | 'jpeg';
}

export interface ShapesResult {
  /** The set's folder (or the parent of the splits). */
  root: string;
  /** Folder of each split (when splits were asked for). */
  splits: Record<string, string>;
  count: number;
  classNames: string[];
  palette: Rgb[];
}

/** One generated image and its mask, in memory. */
export function renderShapes(rng: Random, size: number, numClasses: number): { image: Uint8Array; mask: Uint8Array } {
  const px = size * size;
  const image = new Uint8Array(px * 3);
  const mask = new Uint8Array(px);
  // Textured background: an earthy base colour, two sinusoid gratings and pixel noise.
  const base = [rng.uniform(70, 150), rng.uniform(70, 150), rng.uniform(60, 140)];
  const g1 = { a: rng.uniform(10, 30), fx: rng.uniform(0.05, 0.5), fy: rng.uniform(0.05, 0.5), ph: rng.uniform(0, 6.283) };
  const g2 = { a: rng.uniform(5, 20), fx: rng.uniform(-0.6, 0.6), fy: rng.uniform(-0.6, 0.6), ph: rng.uniform(0, 6.283) };
  const bg = new Float32Array(px);
  for (let y = 0; y < size; y++) {
    for (let x = 0; x < size; x++) {
      bg[y * size + x] = g1.a * Math.sin(g1.fx * x + g1.fy * y + g1.ph) + g2.a * Math.sin(g2.fx * x + g2.fy * y + g2.ph);
    }
  }
  const color = new Float32Array(px * 3);
  for (let i = 0; i < px; i++) {
    color[i * 3] = base[0]! + bg[i]!;
    color[i * 3 + 1] = base[1]! + bg[i]! * 0.8;
    color[i * 3 + 2] = base[2]! + bg[i]! * 0.6;
  }
  // Shapes, painted in order (later ones on top).
  const nShapes = 1 + rng.int(4);
  for (let s = 0; s < nShapes; s++) {
    const cls = 1 + rng.int(numClasses - 1);
    const spec = SHAPE_CLASSES[cls - 1]!;
    const r = rng.uniform(0.1, 0.24) * size;
    const cx = rng.uniform(0.15, 0.85) * size, cy = rng.uniform(0.15, 0.85) * size;
    const angle = rng.uniform(0, Math.PI);
    const ca = Math.cos(angle), sa = Math.sin(angle);
    const aspect = rng.uniform(0.45, 0.7);
    const jit = [rng.uniform(-20, 20), rng.uniform(-20, 20), rng.uniform(-20, 20)];
    const period = rng.uniform(3, 6);
    const x0 = Math.max(0, Math.floor(cx - 1.1 * r - 1)), x1 = Math.min(size, Math.ceil(cx + 1.1 * r + 1));
    const y0 = Math.max(0, Math.floor(cy - 1.1 * r - 1)), y1 = Math.min(size, Math.ceil(cy + 1.1 * r + 1));
    for (let y = y0; y < y1; y++) {
      for (let x = x0; x < x1; x++) {
        const dx = x + 0.5 - cx, dy = y + 0.5 - cy;
        const u = (dx * ca + dy * sa) / r, v = (-dx * sa + dy * ca) / r; // rotated, unit radius
        let inside: boolean;
        switch (spec.shape) {
          case 'circle': inside = dx * dx + dy * dy <= r * r; break;
          case 'square': inside = Math.abs(u) <= 0.75 && Math.abs(v) <= 0.75; break;
          case 'triangle': inside = v <= 0.5 && v >= -1 + 1.732 * Math.abs(u); break;
          case 'stripes': inside = Math.abs(u) <= 0.9 && Math.abs(v) <= 0.9 && Math.floor((u * r) / period) % 2 === 0; break;
          case 'ring': { const d = Math.sqrt(dx * dx + dy * dy) / r; inside = d <= 1 && d >= 0.55; break; }
          case 'diamond': inside = Math.abs(u) + Math.abs(v) <= 0.95; break;
          case 'cross': inside = (Math.abs(u) <= 0.25 && Math.abs(v) <= 0.9) || (Math.abs(v) <= 0.25 && Math.abs(u) <= 0.9); break;
          case 'ellipse': inside = u * u + (v * v) / (aspect * aspect) <= 1; break;
          case 'frame': inside = Math.max(Math.abs(u), Math.abs(v)) <= 0.8 && Math.max(Math.abs(u), Math.abs(v)) >= 0.55; break;
        }
        if (!inside) continue;
        const i = y * size + x;
        mask[i] = cls;
        const shade = 1 + 0.15 * (u * 0.5 - v * 0.5);
        color[i * 3] = spec.color[0] * shade + jit[0]!;
        color[i * 3 + 1] = spec.color[1] * shade + jit[1]!;
        color[i * 3 + 2] = spec.color[2] * shade + jit[2]!;
      }
    }
  }
  const noise = rng.uniform(6, 16);
  for (let i = 0; i < px * 3; i++) {
    const v = color[i]! + (rng.next() + rng.next() - 1) * noise;
    image[i] = v < 0 ? 0 : v > 255 ? 255 : Math.round(v);
  }
  return { image, mask };
}

/** The class names and palette of a shapes set with `numClasses` classes. */
export function shapesClasses(numClasses: number): { classNames: string[]; palette: Rgb[] } {
  return {
    classNames: ['background', ...SHAPE_CLASSES.slice(0, numClasses - 1).map((c) => c.name)],
    palette: [[0, 0, 0], ...SHAPE_CLASSES.slice(0, numClasses - 1).map((c) => [...c.color] as Rgb)],
  };
}

async function writeSet(dir: string, count: number, splitIndex: number, opts: Required<Omit<ShapesOptions, 'splits' | 'count'>>): Promise<void> {
  const { size, numClasses, seed, paletteMasks, unlabeled, imageFormat } = opts;
  const { classNames, palette } = shapesClasses(numClasses);
  await mkdir(join(dir, 'images'), { recursive: true });
  if (!unlabeled) await mkdir(join(dir, 'masks'), { recursive: true });
  const json: DatasetJson = { classes: classNames, numClasses, ignoreIndex: 255, palette };
  await writeFileAtomic(join(dir, 'dataset.json'), JSON.stringify(json, null, 2) + '\n');
  const digits = Math.max(4, String(count - 1).length);
  const queue = new PQueue({ concurrency: 4 });
  for (let i = 0; i < count; i++) {
    void queue.add(async () => {
      const { image, mask } = renderShapes(randomFor(seed, 0x5a7e, splitIndex, i), size, numClasses);
      const id = `shape_${String(i).padStart(digits, '0')}`;
      const img = sharp(Buffer.from(image.buffer, image.byteOffset, image.byteLength), { raw: { width: size, height: size, channels: 3 } });
      const ext = imageFormat === 'jpeg' ? 'jpg' : 'png';
      const buf = await (imageFormat === 'jpeg' ? img.jpeg({ quality: 92 }) : img.png({ compressionLevel: 3 })).toBuffer();
      await writeFileAtomic(join(dir, 'images', `${id}.${ext}`), buf);
      if (unlabeled) return;
      const maskPath = join(dir, 'masks', `${id}.png`);
      if (paletteMasks) await writePaletteMask(maskPath, mask, size, size, palette);
      else await writeMask(maskPath, mask, size, size);
    });
  }
  await queue.onIdle();
}

/**
 * Writes a shapes data set (or one per split) under `dir`: images/, masks/ (unless unlabeled) and dataset.json
 * with class names and palette. Same options and seed → byte-identical files.
 */
export async function generateShapesDataset(dir: string, options: ShapesOptions = {}): Promise<ShapesResult> {
  const numClasses = options.numClasses ?? 5;
  if (!Number.isInteger(numClasses) || numClasses < 2 || numClasses > MAX_SHAPE_CLASSES) {
    throw new SoftsegError(`shapes data sets have 2 to ${MAX_SHAPE_CLASSES} classes, got ${numClasses}`);
  }
  const size = options.size ?? 64;
  if (!Number.isInteger(size) || size < 8) throw new SoftsegError(`image size must be an integer ≥ 8, got ${size}`);
  const opts = {
    size,
    numClasses,
    seed: (options.seed ?? 0) >>> 0,
    paletteMasks: options.paletteMasks ?? false,
    unlabeled: options.unlabeled ?? false,
    imageFormat: options.imageFormat ?? 'png',
  } as const;
  const root = resolve(dir);
  const { classNames, palette } = shapesClasses(numClasses);
  const splits: Record<string, string> = {};
  let count = 0;
  if (options.splits) {
    let k = 0;
    for (const [name, n] of Object.entries(options.splits)) {
      splits[name] = join(root, name);
      await writeSet(splits[name], n, ++k, opts);
      count += n;
    }
  } else {
    count = options.count ?? 16;
    await writeSet(root, count, 0, opts);
  }
  return { root, splits, count, classNames, palette };
}
