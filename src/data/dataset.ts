// Opening a data set folder: `images/` (+ `masks/` when labeled) paired by relative path stem, plus the optional
// `dataset.json` (class names, number of classes, ignore index, palette). Items come out sorted by id.
import { readFile, stat } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { extname, join, resolve } from 'node:path';
import { SoftsegError } from '../errors.js';
import { compareCodePoints, listFilesRecursive } from './fs-util.js';
import type { Rgb } from './decode.js';
import { dropBadItems, validateDataset } from './validate.js';

/** Extensions read as images (via sharp). */
export const IMAGE_EXTENSIONS = ['.png', '.jpg', '.jpeg', '.webp', '.tif', '.tiff'] as const;
/** Extensions read as masks. */
export const MASK_EXTENSIONS = ['.png'] as const;
export const DEFAULT_IGNORE_INDEX = 255;

export interface DatasetItem {
  /** Relative path stem with `/` separators, e.g. `a/x` for images/a/x.jpg ↔ masks/a/x.png. */
  id: string;
  /** Absolute path of the image. */
  image: string;
  /** Absolute path of the mask (labeled sets). */
  mask?: string;
}

/** What validation reports: one file and one reason, with a machine-readable kind. */
export interface DataProblem {
  file: string;
  reason: string;
  kind: DataProblemKind;
}

export type DataProblemKind =
  | 'empty-folder'
  | 'missing-mask'
  | 'missing-image'
  | 'duplicate-id'
  | 'bad-mask-file'
  | 'corrupt-image'
  | 'corrupt-mask'
  | 'size-mismatch'
  | 'label-out-of-range'
  | 'mixed-channels';

export interface Dataset {
  /** Absolute path of the data set folder. */
  root: string;
  labeled: boolean;
  items: DatasetItem[];
  /** Number of classes (0 only for an unlabeled set with nothing saying it). */
  numClasses: number;
  classNames: string[];
  ignoreIndex: number;
  /** Colour of each class id (from dataset.json, else undefined: use vocPalette()). */
  palette?: Rgb[];
  /** Pairing problems found while scanning (orphan images/masks, duplicate stems, empty folders). */
  scanProblems: DataProblem[];
  /** With skipBad: the problems that made items drop out, and how many items dropped. */
  skipped?: { count: number; problems: DataProblem[] };
}

export interface OpenDatasetOptions {
  /** Expect `masks/` (default true). */
  labeled?: boolean;
  /** Overrides dataset.json. */
  numClasses?: number;
  /** Overrides dataset.json; default 255. */
  ignoreIndex?: number;
  /** Validate now and drop bad items instead of failing later (the count is in `skipped`). */
  skipBad?: boolean;
  /** Parallel file reads for skipBad validation (default 4). */
  concurrency?: number;
}

/** The optional `dataset.json` at a data set's root. */
export interface DatasetJson {
  classes?: string[];
  numClasses?: number;
  ignoreIndex?: number;
  palette?: Rgb[];
}

function extOf(name: string): string {
  const slash = name.lastIndexOf('/');
  const dot = name.lastIndexOf('.');
  return dot > slash ? name.slice(dot).toLowerCase() : '';
}

function stemOf(name: string): string {
  const slash = name.lastIndexOf('/');
  const dot = name.lastIndexOf('.');
  return dot > slash + 1 ? name.slice(0, dot) : name;
}

async function isDir(path: string): Promise<boolean> {
  try {
    return (await stat(path)).isDirectory();
  } catch {
    return false;
  }
}

/** Reads and checks `dataset.json` (undefined when absent). */
export async function readDatasetJson(root: string): Promise<DatasetJson | undefined> {
  const file = join(root, 'dataset.json');
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new SoftsegError(`cannot read dataset.json (${(err as Error).message})`, { file, cause: err });
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new SoftsegError(`dataset.json is not valid JSON (${(err as Error).message})`, { file, cause: err });
  }
  const bad = (what: string): never => {
    throw new SoftsegError(`dataset.json: ${what}`, {
      file,
      hint: 'expected { "classes"?: string[], "numClasses"?: number, "ignoreIndex"?: number, "palette"?: [r, g, b][] }',
    });
  };
  if (typeof json !== 'object' || json === null || Array.isArray(json)) bad('must be a JSON object');
  const j = json as Record<string, unknown>;
  if (j.classes !== undefined && (!Array.isArray(j.classes) || !j.classes.every((c) => typeof c === 'string'))) bad('"classes" must be an array of strings');
  if (j.numClasses !== undefined && (!Number.isInteger(j.numClasses) || (j.numClasses as number) < 1 || (j.numClasses as number) > 256)) bad('"numClasses" must be an integer from 1 to 256');
  if (j.ignoreIndex !== undefined && (!Number.isInteger(j.ignoreIndex) || (j.ignoreIndex as number) < 0 || (j.ignoreIndex as number) > 255)) bad('"ignoreIndex" must be an integer from 0 to 255');
  if (
    j.palette !== undefined &&
    (!Array.isArray(j.palette) ||
      !j.palette.every((c) => Array.isArray(c) && c.length === 3 && c.every((v) => Number.isInteger(v) && v >= 0 && v <= 255)))
  ) {
    bad('"palette" must be an array of [r, g, b] colours (0..255), one per class id');
  }
  return {
    classes: j.classes as string[] | undefined,
    numClasses: j.numClasses as number | undefined,
    ignoreIndex: j.ignoreIndex as number | undefined,
    palette: j.palette as Rgb[] | undefined,
  };
}

/** The name of class `i` when no dataset.json names it. */
export const defaultClassName = (i: number): string => `class ${i}`;

/** Class names as a data set or a model records them, or undefined when they are only the defaults. */
export function givenClassNames(names: readonly string[] | null | undefined): readonly string[] | undefined {
  return names && names.some((n, i) => n !== defaultClassName(i)) ? names : undefined;
}

/** The classes a data set's dataset.json declares: a count, and names when it lists them (undefined: none declared). */
export async function declaredClasses(root: string): Promise<{ numClasses: number; names?: string[]; file: string } | undefined> {
  const json = await readDatasetJson(root);
  const numClasses = json?.numClasses ?? json?.classes?.length;
  return numClasses === undefined ? undefined : { numClasses, names: json?.classes, file: join(root, 'dataset.json') };
}

/**
 * A data set used with classes it did not define (a validation set against the training set's, an evaluation set
 * against a model's): when its dataset.json declares another count, or other names in the same places, the
 * scores would compare different things — an error naming the file. Nothing is checked where either side
 * declares nothing (names are compared only when both list them).
 */
export async function checkDeclaredClasses(dir: string, expected: { numClasses: number; names?: readonly string[] }, against: string): Promise<void> {
  const own = await declaredClasses(resolve(dir));
  if (!own) return;
  const hint = `use the same classes as ${against}, or pass --num-classes to override the file`;
  if (own.names && own.names.length !== own.numClasses) {
    throw new SoftsegError(`dataset.json lists ${own.names.length} class names but says numClasses ${own.numClasses}`, { file: own.file, hint });
  }
  if (own.numClasses !== expected.numClasses) {
    throw new SoftsegError(`declares ${own.numClasses} classes, but ${against} has ${expected.numClasses}`, { file: own.file, hint });
  }
  if (!own.names || !expected.names) return;
  const at = own.names.findIndex((name, i) => name !== expected.names![i]);
  if (at >= 0) throw new SoftsegError(`class ${at} is "${own.names[at]}", but "${expected.names[at]}" in ${against}`, { file: own.file, hint });
}

/**
 * Scans a data set folder. Pairing problems (an image without a mask, a mask without an image, two files with
 * the same stem, an empty folder) do not throw: they are kept in `scanProblems` for {@link validateDataset}
 * to report together with the per-file checks. Throws a SoftsegError when the folder layout or the class
 * count is unusable. With `skipBad`, validates right away and drops every item with a problem.
 */
export async function openDataset(dir: string, options: OpenDatasetOptions = {}): Promise<Dataset> {
  const labeled = options.labeled ?? true;
  const root = resolve(dir);
  if (!(await isDir(root))) {
    throw new SoftsegError('data set folder not found', { file: root, hint: 'pass a folder that holds images/ and masks/' });
  }
  const imagesDir = join(root, 'images');
  const masksDir = join(root, 'masks');
  if (!(await isDir(imagesDir))) {
    throw new SoftsegError('data set has no images/ folder', {
      file: root,
      hint: labeled ? 'a data set is a folder with images/ and masks/ (paired by file name)' : 'an unlabeled data set is a folder with images/',
    });
  }
  if (labeled && !(await isDir(masksDir))) {
    throw new SoftsegError('labeled data set has no masks/ folder', { file: root, hint: 'add masks/ (one PNG of class ids per image, same name)' });
  }

  const json = await readDatasetJson(root);
  const jsonFile = join(root, 'dataset.json');
  let numClasses = options.numClasses ?? json?.numClasses ?? json?.classes?.length;
  if (numClasses === undefined) {
    if (labeled) {
      throw new SoftsegError('the number of classes is not known', {
        file: root,
        hint: 'pass --num-classes N, or write dataset.json with "classes" (names) or "numClasses"',
      });
    }
    numClasses = 0;
  }
  if (!Number.isInteger(numClasses) || numClasses < (labeled ? 1 : 0) || numClasses > 256) {
    throw new SoftsegError(`number of classes must be an integer from 1 to 256, got ${numClasses}`, { file: options.numClasses !== undefined ? undefined : jsonFile });
  }
  if (json?.classes && json.numClasses !== undefined && json.classes.length !== json.numClasses && options.numClasses === undefined) {
    throw new SoftsegError(`dataset.json lists ${json.classes.length} class names but says numClasses ${json.numClasses}`, { file: jsonFile });
  }
  const ignoreIndex = options.ignoreIndex ?? json?.ignoreIndex ?? DEFAULT_IGNORE_INDEX;
  if (!Number.isInteger(ignoreIndex) || ignoreIndex < 0 || ignoreIndex > 255) {
    throw new SoftsegError(`ignore index must be an integer from 0 to 255, got ${ignoreIndex}`);
  }
  if (ignoreIndex < numClasses) {
    throw new SoftsegError(`ignore index ${ignoreIndex} is a class id (there are ${numClasses} classes)`, {
      hint: 'pick an ignore index ≥ the number of classes (255 is usual)',
    });
  }
  const classNames = Array.from({ length: numClasses }, (_, i) => json?.classes?.[i] ?? defaultClassName(i));

  const scanProblems: DataProblem[] = [];
  const imageFiles = (await listFilesRecursive(imagesDir)).filter((f) => (IMAGE_EXTENSIONS as readonly string[]).includes(extOf(f)));
  if (imageFiles.length === 0) {
    scanProblems.push({ file: imagesDir, kind: 'empty-folder', reason: `no images found (${IMAGE_EXTENSIONS.join(', ')})` });
  }
  const images = new Map<string, string>();
  for (const f of imageFiles) {
    const id = stemOf(f);
    const prev = images.get(id);
    if (prev !== undefined) {
      scanProblems.push({ file: join(imagesDir, f), kind: 'duplicate-id', reason: `another image has the same name (${prev}); only ${prev} is used` });
    } else images.set(id, f);
  }

  const masks = new Map<string, string>();
  if (labeled) {
    const maskFiles = await listFilesRecursive(masksDir);
    let any = false;
    for (const f of maskFiles) {
      const ext = extOf(f);
      if ((MASK_EXTENSIONS as readonly string[]).includes(ext)) {
        any = true;
        const id = stemOf(f);
        if (masks.has(id)) {
          scanProblems.push({ file: join(masksDir, f), kind: 'duplicate-id', reason: `another mask has the same name (${masks.get(id)}); only that one is used` });
        } else masks.set(id, f);
      } else if ((IMAGE_EXTENSIONS as readonly string[]).includes(ext)) {
        any = true;
        scanProblems.push({
          file: join(masksDir, f),
          kind: 'bad-mask-file',
          reason: 'mask is not a PNG (JPEG/WebP/TIFF compression changes class ids)',
        });
      }
    }
    if (!any) scanProblems.push({ file: masksDir, kind: 'empty-folder', reason: 'no masks found (PNG class-id masks)' });
  }

  const items: DatasetItem[] = [];
  for (const [id, f] of images) {
    const image = join(imagesDir, f);
    if (labeled) {
      const m = masks.get(id);
      if (m === undefined) {
        scanProblems.push({ file: image, kind: 'missing-mask', reason: `image has no mask (expected masks/${id}.png)` });
        continue;
      }
      items.push({ id, image, mask: join(masksDir, m) });
    } else items.push({ id, image });
  }
  if (labeled) {
    for (const [id, m] of masks) {
      if (!images.has(id)) scanProblems.push({ file: join(masksDir, m), kind: 'missing-image', reason: `mask has no image (expected images/${id}.png, .jpg, ...)` });
    }
  }
  items.sort((a, b) => compareCodePoints(a.id, b.id));
  scanProblems.sort((a, b) => compareCodePoints(a.file, b.file));

  const ds: Dataset = { root, labeled, items, numClasses, classNames, ignoreIndex, palette: json?.palette, scanProblems };
  if (options.skipBad) {
    const report = await validateDataset(ds, { concurrency: options.concurrency });
    return dropBadItems(ds, report.problems);
  }
  return ds;
}

/**
 * Opens a folder of unlabeled images: a data set folder with images/ (and maybe dataset.json), or simply a
 * folder of image files (searched recursively).
 */
export async function openUnlabeled(dir: string, options: { numClasses: number; ignoreIndex?: number }): Promise<Dataset> {
  const root = resolve(dir);
  if (existsSync(join(root, 'images'))) return openDataset(root, { labeled: false, numClasses: options.numClasses, ignoreIndex: options.ignoreIndex });
  let files: string[];
  try {
    files = await listFilesRecursive(root);
  } catch (e) {
    throw new SoftsegError(`cannot read the folder: ${(e as Error).message}`, { file: root });
  }
  const items = files
    .filter((f) => (IMAGE_EXTENSIONS as readonly string[]).includes(extname(f).toLowerCase()))
    .map((f) => ({ id: f.slice(0, f.length - extname(f).length), image: join(root, f) }));
  if (items.length === 0) throw new SoftsegError('no images found (PNG, JPEG, WebP or TIFF, searched recursively)', { file: root });
  return {
    root, labeled: false, items, numClasses: options.numClasses, classNames: [], ignoreIndex: options.ignoreIndex ?? DEFAULT_IGNORE_INDEX, scanProblems: [],
  };
}
