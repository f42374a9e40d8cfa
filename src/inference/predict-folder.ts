/**
 * `softseg predict`: a trained model over a folder of images (recursively) → class-id masks at the original
 * resolution (8-bit grayscale PNG), colour visualisations, optional overlays and probability maps (.npy).
 * Decoding the next image and writing the previous results overlap with inference; existing outputs are
 * skipped, so an interrupted run continues where it stopped. Every image to predict is decoded once before the
 * first prediction (cached like training's check): a bad file stops the run before any work, one line per
 * problem, or with `skipBad` is left out and listed.
 */
import { existsSync } from 'node:fs';
import { extname, join } from 'node:path';
import PQueue from 'p-queue';
import sharp from 'sharp';
import { normalizeImage } from '../augment/normalize.js';
import { IMAGE_EXTENSIONS } from '../data/dataset.js';
import type { DataProblem } from '../data/dataset.js';
import { colorizeMask, decodeImage, fullPalette, writeMask, type DecodedImage } from '../data/decode.js';
import { checkOutputFolder, listFilesRecursive, writeFileAtomic } from '../data/fs-util.js';
import { checkedDataset, imageFileSet } from '../data/validate.js';
import { SoftsegError, usageError } from '../errors.js';
import type { TrainedModel } from './model-dir.js';
import { predictProbabilities, type PredictOptions } from './predict.js';

export interface PredictFolderOptions extends PredictOptions {
  overlay?: boolean;
  probs?: boolean;
  /** Recompute outputs that already exist (default: skip them). */
  overwrite?: boolean;
  /** Leave out unreadable images (listed in `bad`) instead of stopping before any work. */
  skipBad?: boolean;
  onProgress?: (done: number, total: number, skipped: number) => void;
}

export interface PredictFolderResult {
  images: number;
  written: number;
  /** Images whose outputs were there already. */
  skipped: number;
  /** Images left out as unreadable (skipBad), each with its problem. */
  bad: DataProblem[];
  outDir: string;
}

/** A NumPy .npy (v1.0) file of float32 data with the given shape, readable with numpy.load. */
export function encodeNpy(data: Float32Array, shape: number[]): Uint8Array {
  let header = `{'descr': '<f4', 'fortran_order': False, 'shape': (${shape.join(', ')}${shape.length === 1 ? ',' : ''}), }`;
  const total = 10 + header.length + 1;
  header += ' '.repeat((64 - (total % 64)) % 64) + '\n';
  const out = new Uint8Array(10 + header.length + data.byteLength);
  out.set([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 1, 0], 0);
  new DataView(out.buffer).setUint16(8, header.length, true);
  out.set(new TextEncoder().encode(header), 10);
  out.set(new Uint8Array(data.buffer, data.byteOffset, data.byteLength), 10 + header.length);
  return out;
}

export async function predictFolder(trained: TrainedModel, imagesDir: string, outDir: string, options: PredictFolderOptions = {}): Promise<PredictFolderResult> {
  for (const [flag, v] of [['tile', options.tileSize], ['max-pixels', options.maxPixels]] as const) {
    if (v !== undefined && !(Number.isInteger(v) && v >= 1)) throw usageError(`--${flag} must be a positive integer, got ${v}`);
  }
  await checkOutputFolder(outDir, '--out', 'the predicted masks');
  let files: string[];
  try {
    files = (await listFilesRecursive(imagesDir)).filter((f) => (IMAGE_EXTENSIONS as readonly string[]).includes(extname(f).toLowerCase()));
  } catch (e) {
    throw new SoftsegError(`cannot read the image folder: ${(e as Error).message}`, { file: imagesDir });
  }
  if (files.length === 0) throw new SoftsegError('no images found (PNG, JPEG, WebP or TIFF, searched recursively)', { file: imagesDir });
  const { meta, model } = trained;
  const palette = fullPalette(meta.palette ?? undefined);
  const stem = (f: string) => f.slice(0, f.length - extname(f).length);
  const outputs = (f: string) => ({
    mask: join(outDir, `${stem(f)}.png`),
    color: join(outDir, 'color', `${stem(f)}.png`),
    overlay: join(outDir, 'overlay', `${stem(f)}.jpg`),
    probs: join(outDir, 'probs', `${stem(f)}.npy`),
  });
  const done = (f: string) => {
    const o = outputs(f);
    return existsSync(o.mask) && existsSync(o.color) && (!options.overlay || existsSync(o.overlay)) && (!options.probs || existsSync(o.probs));
  };
  // Two images whose outputs would be the same file (a.jpg and a.png; images/color/x.png and x.png's colour map):
  // the first keeps it, each other one is a problem found before any work, like an unreadable file.
  const owners = new Map<string, string>();
  const clashes: DataProblem[] = [];
  const unique = files.filter((f) => {
    const paths = Object.values(outputs(f));
    const taken = paths.find((p) => owners.has(p));
    if (taken !== undefined) {
      clashes.push({ file: join(imagesDir, f), kind: 'duplicate-id', reason: `its output ${taken} would overwrite ${owners.get(taken)}'s; rename one of them` });
      return false;
    }
    for (const p of paths) owners.set(p, f);
    return true;
  });
  const pending = options.overwrite ? unique : unique.filter((f) => !done(f));
  const skipped = unique.length - pending.length;
  const checked = await checkedDataset(imageFileSet(imagesDir, pending.map((f) => join(imagesDir, f)), clashes), {
    skipBad: options.skipBad === true, where: imagesDir, hint: 'fix or remove them, or pass --skip-bad to predict the other images', channels: false, allowEmpty: true,
  });
  const bad = [...checked.skipped.problems];
  const readable = new Set(checked.ds.items.map((it) => it.image));
  const todo = pending.filter((f) => readable.has(join(imagesDir, f)));
  const writes = new PQueue({ concurrency: 2 });
  let written = 0;
  let writeError: unknown = null;
  // A file that changed since the check: stops the run, or with skipBad joins the list.
  const load = (f: string): Promise<DecodedImage | SoftsegError> => decodeImage(join(imagesDir, f)).catch((e: unknown) => {
    if (options.skipBad && e instanceof SoftsegError) return e;
    throw e;
  });
  let next = todo.length > 0 ? load(todo[0]!) : null;
  for (let i = 0; i < todo.length; i++) {
    const f = todo[i]!;
    const image = await next!;
    next = i + 1 < todo.length ? load(todo[i + 1]!) : null;
    next?.catch(() => undefined); // surfaced when awaited
    if (image instanceof SoftsegError) {
      bad.push({ file: image.file ?? join(imagesDir, f), kind: 'corrupt-image', reason: image.message });
      continue;
    }
    const { width: w, height: h } = image;
    const prob = predictProbabilities(model, normalizeImage(image.data, meta.normalization), h, w, options);
    const labels = prob.argMax(-1);
    const [classes, probs] = await Promise.all([labels.data(), options.probs ? prob.data() : Promise.resolve(null)]);
    labels.dispose();
    prob.dispose();
    const mask = Uint8Array.from(classes as Int32Array);
    const o = outputs(f);
    // Bounded: at most a few images' outputs wait to be written while the next image runs.
    if (writes.size > 4) await writes.onSizeLessThan(4);
    writes.add(async () => {
      await writeMask(o.mask, mask, w, h);
      const rgb = colorizeMask(mask, palette);
      await writeFileAtomic(o.color, await sharp(rgb, { raw: { width: w, height: h, channels: 3 } }).png().toBuffer());
      if (options.overlay) {
        const blend = new Uint8Array(rgb.length);
        for (let j = 0; j < rgb.length; j++) blend[j] = Math.round(0.55 * image.data[j]! + 0.45 * rgb[j]!);
        await writeFileAtomic(o.overlay, await sharp(blend, { raw: { width: w, height: h, channels: 3 } }).jpeg({ quality: 90 }).toBuffer());
      }
      if (probs) await writeFileAtomic(o.probs, encodeNpy(probs as Float32Array, [h, w, meta.numClasses]));
      written++;
      options.onProgress?.(written + skipped + bad.length, files.length, skipped);
    }).catch((e: unknown) => (writeError ??= e));
    if (writeError) break;
  }
  await writes.onIdle();
  if (writeError) throw writeError;
  return { images: files.length, written, skipped, bad, outDir };
}
