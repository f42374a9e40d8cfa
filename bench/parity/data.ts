// The parity data set: a segmentation set generated here with the traits that make real data hard — small
// objects (radius 4–14 px at 96²), thin ignore rings on every object boundary, 11 classes with geometric
// class imbalance (class 1 ≈ 14× as frequent as class 10), ~80% background with distractor patches that look
// like objects, classes that share colours and differ in texture, few labeled images, and a validation split
// whose appearance differs (colour cast, contrast, noise, background texture). Deterministic in (seed, split,
// index). Not tuned to any result: the parameters were fixed before the first parity run.
//   node --import tsx bench/parity/data.ts --out DIR [--size 96 --train 300 --unlabeled 1000 --val 300 --seed 0]
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import PQueue from 'p-queue';
import sharp from 'sharp';
import { writeMask, type Rgb } from '../../src/data/decode.js';
import { writeFileAtomic } from '../../src/data/fs-util.js';
import { randomFor } from '../../src/data/seed.js';
import type { Random } from '../../src/random.js';

export const PARITY_CLASSES = 11;
const IGNORE = 255;

/** Object classes 1..10: colour (pairs share hues) and texture (grating period, orientation; 0 = flat). */
const CLASSES: { color: Rgb; period: number; angle: number; dots: boolean }[] = [
  { color: [200, 60, 50], period: 0, angle: 0, dots: false },
  { color: [205, 70, 55], period: 4, angle: 0.4, dots: false },
  { color: [50, 80, 200], period: 0, angle: 0, dots: true },
  { color: [60, 90, 190], period: 5, angle: 1.6, dots: false },
  { color: [60, 170, 70], period: 3, angle: 0.8, dots: false },
  { color: [70, 160, 80], period: 0, angle: 0, dots: true },
  { color: [210, 190, 60], period: 6, angle: 2.4, dots: false },
  { color: [200, 180, 70], period: 0, angle: 0, dots: false },
  { color: [170, 60, 180], period: 4, angle: 1.2, dots: true },
  { color: [60, 180, 190], period: 0, angle: 0, dots: false },
];

function pickClass(rng: Random): number {
  // p(c) ∝ 0.75^(c−1), c = 1..10
  const w = CLASSES.map((_, i) => 0.75 ** i);
  let u = rng.next() * w.reduce((a, b) => a + b, 0);
  for (let i = 0; i < w.length; i++) if ((u -= w[i]!) < 0) return i + 1;
  return w.length;
}

/** One image and its mask. `val` draws the shifted appearance. */
export function renderParity(rng: Random, size: number, val: boolean): { image: Uint8Array; mask: Uint8Array } {
  const px = size * size;
  const color = new Float32Array(px * 3);
  const mask = new Uint8Array(px);
  const s = size / 96;
  // Background: two blended textured regions.
  const bases = [0, 1].map(() => [rng.uniform(60, 160), rng.uniform(60, 160), rng.uniform(50, 150)]);
  const f = val ? [0.25, 0.9] : [0.05, 0.5];
  const g = [0, 1].map(() => ({ a: rng.uniform(8, 25), fx: rng.uniform(f[0]!, f[1]!) / s, fy: rng.uniform(-f[1]!, f[1]!) / s, ph: rng.uniform(0, 6.283) }));
  const split = { fx: rng.uniform(-1, 1), fy: rng.uniform(-1, 1), c: rng.uniform(0.3, 0.7) * size };
  for (let y = 0; y < size; y++) {
    for (let x = 0; x < size; x++) {
      const i = y * size + x;
      const t = 1 / (1 + Math.exp(-((split.fx * (x - split.c) + split.fy * (y - split.c)) / (4 * s))));
      const tex = g[0]!.a * Math.sin(g[0]!.fx * x + g[0]!.fy * y + g[0]!.ph) + g[1]!.a * Math.sin(g[1]!.fx * y - g[1]!.fy * x + g[1]!.ph);
      for (let c = 0; c < 3; c++) color[i * 3 + c] = bases[0]![c]! * t + bases[1]![c]! * (1 - t) + tex * (1 - 0.2 * c);
    }
  }
  // Objects (and distractors: object-like patches with random colour and texture, labelled background).
  const nObjects = 2 + rng.int(5);
  const nDistractors = rng.int(3);
  for (let k = 0; k < nObjects + nDistractors; k++) {
    const distractor = k >= nObjects;
    const cls = distractor ? 0 : pickClass(rng);
    const spec = distractor
      ? { color: [rng.uniform(40, 220), rng.uniform(40, 220), rng.uniform(40, 220)] as Rgb, period: rng.next() < 0.5 ? 0 : rng.uniform(3, 6), angle: rng.uniform(0, 3.14), dots: rng.next() < 0.3 }
      : CLASSES[cls - 1]!;
    const r = rng.uniform(4, 14) * s;
    const cx = rng.uniform(0.05, 0.95) * size, cy = rng.uniform(0.05, 0.95) * size;
    const harmonics = [2, 3, 5].map((m) => ({ m, a: rng.uniform(0, 0.25), ph: rng.uniform(0, 6.283) }));
    const rot = rng.uniform(0, 6.283);
    const jit = [0, 1, 2].map(() => rng.uniform(-18, 18));
    const x0 = Math.max(0, Math.floor(cx - 1.6 * r)), x1 = Math.min(size, Math.ceil(cx + 1.6 * r));
    const y0 = Math.max(0, Math.floor(cy - 1.6 * r)), y1 = Math.min(size, Math.ceil(cy + 1.6 * r));
    const ca = Math.cos(spec.angle + rot), sa = Math.sin(spec.angle + rot);
    for (let y = y0; y < y1; y++) {
      for (let x = x0; x < x1; x++) {
        const dx = x + 0.5 - cx, dy = y + 0.5 - cy;
        const th = Math.atan2(dy, dx);
        const rr = r * (1 + harmonics.reduce((a, h) => a + h.a * Math.sin(h.m * th + h.ph), 0));
        if (dx * dx + dy * dy > rr * rr) continue;
        const i = y * size + x;
        mask[i] = cls;
        let shade = 1;
        if (spec.period > 0) shade = 1 + 0.28 * Math.sin((6.283 * (dx * ca + dy * sa)) / (spec.period * s));
        if (spec.dots) shade *= (Math.floor(x / (3 * s)) + Math.floor(y / (3 * s))) % 2 === 0 ? 1.2 : 0.8;
        for (let c = 0; c < 3; c++) color[i * 3 + c] = spec.color[c]! * shade + jit[c]!;
      }
    }
  }
  // Thin ignore rings: every pixel with a 4-neighbour of another label (both sides of each boundary).
  const out = mask.slice();
  for (let y = 0; y < size; y++) {
    for (let x = 0; x < size; x++) {
      const i = y * size + x, m = mask[i]!;
      if ((x > 0 && mask[i - 1] !== m) || (x < size - 1 && mask[i + 1] !== m) || (y > 0 && mask[i - size] !== m) || (y < size - 1 && mask[i + size] !== m)) out[i] = IGNORE;
    }
  }
  // Appearance: the validation split has a colour cast, lower contrast and more noise.
  const cast = val ? [1.12, 0.96, 0.82] : [1, 1, 1];
  const contrast = val ? rng.uniform(0.7, 0.9) : rng.uniform(0.9, 1.1);
  const noise = val ? rng.uniform(10, 20) : rng.uniform(4, 12);
  const image = new Uint8Array(px * 3);
  for (let i = 0; i < px * 3; i++) {
    const v = (color[i]! * cast[i % 3]! - 128) * contrast + 128 + (rng.next() + rng.next() - 1) * noise;
    image[i] = v < 0 ? 0 : v > 255 ? 255 : Math.round(v);
  }
  return { image, mask: out };
}

export interface ParitySplits {
  train: string;
  unlabeled: string;
  val: string;
}

/** Writes train/ (labeled), unlabeled/ (images only) and val/ under `dir`; same options → same files. */
export async function writeParityDataset(dir: string, o: { size?: number; train?: number; unlabeled?: number; val?: number; seed?: number } = {}): Promise<ParitySplits> {
  const size = o.size ?? 96, seed = o.seed ?? 0;
  const sets: [keyof ParitySplits, number, boolean, boolean][] = [['train', o.train ?? 300, false, true], ['unlabeled', o.unlabeled ?? 1000, false, false], ['val', o.val ?? 300, true, true]];
  const queue = new PQueue({ concurrency: 4 });
  const paths = {} as ParitySplits;
  for (const [k, [name, count, val, labeled]] of sets.entries()) {
    const root = join(dir, name);
    paths[name] = root;
    await mkdir(join(root, 'images'), { recursive: true });
    if (labeled) await mkdir(join(root, 'masks'), { recursive: true });
    const classes = ['background', ...CLASSES.map((_, i) => `class${i + 1}`)];
    await writeFileAtomic(join(root, 'dataset.json'), JSON.stringify({ classes, numClasses: PARITY_CLASSES, ignoreIndex: IGNORE }, null, 2) + '\n');
    for (let i = 0; i < count; i++) {
      void queue.add(async () => {
        const { image, mask } = renderParity(randomFor(seed, 0x9a41, k, i), size, val);
        const id = `img_${String(i).padStart(5, '0')}`;
        const png = await sharp(Buffer.from(image.buffer), { raw: { width: size, height: size, channels: 3 } }).png({ compressionLevel: 3 }).toBuffer();
        await writeFileAtomic(join(root, 'images', `${id}.png`), png);
        if (labeled) await writeMask(join(root, 'masks', `${id}.png`), mask, size, size);
      });
    }
  }
  await queue.onIdle();
  return paths;
}

if (process.argv[1] && import.meta.url.endsWith(process.argv[1].split('/').pop()!)) {
  const arg = (name: string, fb: string) => { const i = process.argv.indexOf(`--${name}`); return i >= 0 ? process.argv[i + 1]! : fb; };
  const out = arg('out', '/tmp/parity-data');
  const p = await writeParityDataset(out, { size: Number(arg('size', '96')), train: Number(arg('train', '300')), unlabeled: Number(arg('unlabeled', '1000')), val: Number(arg('val', '300')), seed: Number(arg('seed', '0')) });
  console.log(JSON.stringify(p));
}
