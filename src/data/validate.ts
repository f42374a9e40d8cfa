// Validating a data set before any work: every file is checked (images and masks decoded in full, so a truncated
// or corrupt file is found here and not 45 steps into training), in parallel, with the per-file facts cached by
// (path, size, mtime, ctime) under `<root>/.softseg/validation.json` so a second run over an unchanged set only
// stats files. `checkedDataset` turns the problems into one error (a line per problem) or, with skipBad, drops them.
import { readFile, stat } from 'node:fs/promises';
import { join, relative, sep } from 'node:path';
import PQueue from 'p-queue';
import sharp from 'sharp';
import { SoftsegError } from '../errors.js';
import { decodeMask } from './decode.js';
import { writeFileAtomic } from './fs-util.js';
import type { DataProblem, Dataset, DatasetItem } from './dataset.js';

export interface ValidateOptions {
  /** Files read in parallel (default 4). */
  concurrency?: number;
  /** Use and update the cache file (default true). */
  cache?: boolean;
  /** Decode every image in full (default true: finds truncated and corrupt files); false reads headers only. */
  deep?: boolean;
  /** Report images whose channel count differs from most (default true; training needs one input kind). */
  channels?: boolean;
}

export interface ValidationReport {
  /** Every problem, sorted by file: scan problems first found by openDataset, then per-file checks. */
  problems: DataProblem[];
  /** Files examined now. */
  checked: number;
  /** Files answered from the cache. */
  cached: number;
  /** Ids of items that have a problem (their image or mask). */
  badIds: string[];
  /** Why the cache could not be written, when it could not (validation still succeeded). */
  cacheError?: string;
  /** The smallest height and width among the images without a problem (null when there is none). */
  smallest: [number, number] | null;
}

/** The cached facts about one file (facts, not verdicts: the verdict depends on numClasses etc.). */
interface FileFacts {
  size: number;
  mtimeMs: number;
  ctimeMs: number;
  width?: number;
  height?: number;
  channels?: number;
  /** An image's EXIF orientation when it is not 1 (width and height above are after it is applied). */
  orientation?: number;
  /** Distinct values present in a mask, ascending. */
  values?: number[];
  /** Deep (full-decode) check of an image. */
  deep?: boolean;
  error?: string;
}

interface CacheFile {
  version: number;
  /** What mask decoding depended on (the palette for RGB masks). */
  maskKey: string;
  files: Record<string, FileFacts>;
}

// 2: masks saved as gray RGB(A) or 16-bit grayscale ids are read (version 1 recorded them as errors).
const CACHE_VERSION = 2;
export const VALIDATION_CACHE = join('.softseg', 'validation.json');

function errorText(err: unknown): string {
  if (err instanceof SoftsegError) return err.hint ? `${err.message} — ${err.hint}` : err.message;
  return (err instanceof Error ? err.message : String(err)).split('\n')[0]!;
}

async function readCache(path: string, maskKey: string): Promise<Record<string, FileFacts>> {
  try {
    const json = JSON.parse(await readFile(path, 'utf8')) as CacheFile;
    if (json.version !== CACHE_VERSION || typeof json.files !== 'object' || json.files === null) return {};
    if (json.maskKey === maskKey) return json.files;
    // Mask facts depend on the palette: keep only the image entries.
    return Object.fromEntries(Object.entries(json.files).filter(([, f]) => f.values === undefined && f.channels !== undefined));
  } catch {
    return {};
  }
}

async function imageFacts(path: string, deep: boolean): Promise<Omit<FileFacts, 'size' | 'mtimeMs' | 'ctimeMs'>> {
  try {
    const meta = await sharp(path, { failOn: 'error' }).metadata();
    if (!meta.width || !meta.height) return { error: 'cannot read image size' };
    let { width, height } = meta;
    const oriented = (meta as { autoOrient?: { width: number; height: number } }).autoOrient;
    if (oriented) ({ width, height } = oriented);
    else if ((meta.orientation ?? 1) >= 5) [width, height] = [height, width];
    if (deep) await sharp(path, { failOn: 'error' }).raw().toBuffer();
    const orientation = meta.orientation !== undefined && meta.orientation !== 1 ? { orientation: meta.orientation } : {};
    return { width, height, channels: meta.channels ?? 3, deep, ...orientation };
  } catch (err) {
    return { error: `cannot decode image (${errorText(err)})` };
  }
}

async function maskFacts(path: string, palette: Dataset['palette']): Promise<Omit<FileFacts, 'size' | 'mtimeMs' | 'ctimeMs'>> {
  try {
    const m = await decodeMask(path, { palette });
    const seen = new Uint8Array(256);
    for (let i = 0; i < m.data.length; i++) seen[m.data[i]!] = 1;
    const values: number[] = [];
    for (let v = 0; v < 256; v++) if (seen[v]) values.push(v);
    return { width: m.width, height: m.height, values };
  } catch (err) {
    return { error: errorText(err) };
  }
}

function channelWord(c: number): string {
  return c === 1 ? 'grayscale' : c === 2 ? 'grayscale + alpha' : c === 3 ? 'RGB' : c === 4 ? 'RGBA' : `${c} channels`;
}

/**
 * Checks every file of a data set and returns one problem per file and reason: unreadable or corrupt image,
 * image without mask, mask without image, mask size ≠ image size, mask value ≥ numClasses that is not the
 * ignore index, empty folder, mixed channel counts. Never throws for a bad file; a failure to write the cache
 * is reported in `cacheError` only.
 */
export async function validateDataset(ds: Dataset, options: ValidateOptions = {}): Promise<ValidationReport> {
  const concurrency = Math.max(1, options.concurrency ?? 4);
  const useCache = options.cache ?? true;
  const deep = options.deep ?? true;
  const cachePath = join(ds.root, VALIDATION_CACHE);
  const maskKey = JSON.stringify(ds.palette ?? null);
  const old = useCache ? await readCache(cachePath, maskKey) : {};
  const fresh: Record<string, FileFacts> = {};
  let checked = 0;
  let cached = 0;

  const rel = (p: string): string => relative(ds.root, p).split(sep).join('/');
  const queue = new PQueue({ concurrency });
  const facts = new Map<string, FileFacts>();

  const examine = async (path: string, kind: 'image' | 'mask'): Promise<void> => {
    const key = rel(path);
    let st;
    try {
      st = await stat(path);
    } catch (err) {
      facts.set(path, { size: -1, mtimeMs: 0, ctimeMs: 0, error: `cannot read file (${errorText(err)})` });
      return;
    }
    const hit = old[key];
    if (
      hit &&
      hit.size === st.size &&
      hit.mtimeMs === st.mtimeMs &&
      hit.ctimeMs === st.ctimeMs &&
      (kind === 'mask' ? hit.values !== undefined || hit.error !== undefined : hit.values === undefined) &&
      (kind === 'mask' || !deep || hit.deep || hit.error !== undefined)
    ) {
      cached++;
      facts.set(path, hit);
      fresh[key] = hit;
      return;
    }
    checked++;
    const f: FileFacts = {
      size: st.size,
      mtimeMs: st.mtimeMs,
      ctimeMs: st.ctimeMs,
      ...(st.size === 0 ? { error: 'file is empty' } : kind === 'image' ? await imageFacts(path, deep) : await maskFacts(path, ds.palette)),
    };
    facts.set(path, f);
    fresh[key] = f;
  };

  for (const item of ds.items) {
    void queue.add(() => examine(item.image, 'image'));
    if (item.mask) void queue.add(() => examine(item.mask!, 'mask'));
  }
  await queue.onIdle();

  const problems: DataProblem[] = [...ds.scanProblems];
  const bad = new Set<string>();
  const channelCounts = new Map<number, number>();
  for (const item of ds.items) {
    const img = facts.get(item.image)!;
    if (img.error) {
      problems.push({ file: item.image, kind: 'corrupt-image', reason: img.error });
      bad.add(item.id);
    } else channelCounts.set(img.channels!, (channelCounts.get(img.channels!) ?? 0) + 1);
    if (!item.mask) continue;
    const m = facts.get(item.mask)!;
    if (m.error) {
      problems.push({ file: item.mask, kind: 'corrupt-mask', reason: m.error });
      bad.add(item.id);
      continue;
    }
    if (!img.error && (m.width !== img.width || m.height !== img.height)) {
      problems.push({
        file: item.mask,
        kind: 'size-mismatch',
        reason: m.width === img.height && m.height === img.width && (img.orientation ?? 1) >= 5
          ? `mask is ${m.width}x${m.height} but its image is ${img.width}x${img.height} once turned upright by its EXIF orientation (${img.orientation}), which softseg applies: the mask fits the image as stored; save the image upright (e.g. ImageMagick's mogrify -auto-orient) or turn the mask to match`
          : `mask is ${m.width}x${m.height} but its image is ${img.width}x${img.height}`,
      });
      bad.add(item.id);
    }
    const outOfRange = m.values!.filter((v) => v >= ds.numClasses && v !== ds.ignoreIndex);
    if (outOfRange.length > 0) {
      const shown = outOfRange.slice(0, 8).join(', ') + (outOfRange.length > 8 ? ', ...' : '');
      problems.push({
        file: item.mask,
        kind: 'label-out-of-range',
        reason: `mask has value${outOfRange.length > 1 ? 's' : ''} ${shown}, not a class id (0..${ds.numClasses - 1}) nor the ignore index ${ds.ignoreIndex}`,
      });
      bad.add(item.id);
    }
  }
  if (channelCounts.size > 1 && options.channels !== false) {
    const total = [...channelCounts.values()].reduce((a, b) => a + b, 0);
    const [major, majorCount] = [...channelCounts.entries()].sort((a, b) => b[1] - a[1] || a[0] - b[0])[0]!;
    for (const item of ds.items) {
      const img = facts.get(item.image)!;
      if (img.error || img.channels === major) continue;
      problems.push({
        file: item.image,
        kind: 'mixed-channels',
        reason: `image is ${channelWord(img.channels!)} while ${majorCount} of ${total} images are ${channelWord(major)}`,
      });
      bad.add(item.id);
    }
  }
  problems.sort((a, b) => (a.file < b.file ? -1 : a.file > b.file ? 1 : a.kind < b.kind ? -1 : a.kind > b.kind ? 1 : 0));

  let cacheError: string | undefined;
  const changed = checked > 0 || Object.keys(old).some((k) => !(k in fresh));
  if (useCache && changed) {
    const body: CacheFile = { version: CACHE_VERSION, maskKey, files: fresh };
    try {
      await writeFileAtomic(cachePath, JSON.stringify(body));
    } catch (err) {
      cacheError = errorText(err);
    }
  }
  let minH = Infinity, minW = Infinity;
  for (const item of ds.items) {
    const img = facts.get(item.image)!;
    if (bad.has(item.id) || img.error || !img.width || !img.height) continue;
    minH = Math.min(minH, img.height);
    minW = Math.min(minW, img.width);
  }
  const smallest: [number, number] | null = Number.isFinite(minH) ? [minH, minW] : null;
  return { problems, checked, cached, badIds: [...bad].sort(), cacheError, smallest };
}

/** Files a problem points at, to tell which items it spoils. */
function problemFiles(problems: DataProblem[]): Set<string> {
  return new Set(problems.map((p) => p.file));
}

/**
 * The data set without the items that have a problem; `skipped` records how many items dropped and every
 * problem (orphans included). Throws when nothing usable is left.
 */
export function dropBadItems(ds: Dataset, problems: DataProblem[], o: { allowEmpty?: boolean } = {}): Dataset {
  const files = problemFiles(problems);
  const keep: DatasetItem[] = [];
  let dropped = 0;
  for (const item of ds.items) {
    if (files.has(item.image) || (item.mask !== undefined && files.has(item.mask))) dropped++;
    else keep.push(item);
  }
  if (keep.length === 0 && !o.allowEmpty) {
    const first = problems[0];
    throw new SoftsegError(`no usable items in the data set (${problems.length} problem${problems.length === 1 ? '' : 's'})`, {
      file: ds.root,
      hint: first ? `first: ${first.file}: ${first.reason}` : undefined,
    });
  }
  return { ...ds, items: keep, scanProblems: [], skipped: { count: dropped, problems } };
}

/** One line per problem: `file: reason`. */
export function problemLines(problems: readonly DataProblem[]): string[] {
  return problems.map((p) => `${p.file}: ${p.reason}`);
}

/** Every problem of a set as one error: a summary line, and a line per problem (printed before it). */
export function dataProblemsError(problems: readonly DataProblem[], where: string, hint: string): SoftsegError {
  return new SoftsegError(`${problems.length} problem(s) in ${where}`, { hint, details: problemLines(problems) });
}

/** What `checkedDataset` left out with skipBad: items dropped and the problems that made them drop. */
export interface SkippedFiles {
  count: number;
  problems: DataProblem[];
}

/**
 * Validates a set before any work: without skipBad every problem is one line of the error thrown; with it the
 * items that have a problem drop out and come back in `skipped` (count and list). `where` names the set in
 * messages, `hint` says what to do (e.g. which command's --skip-bad). Nothing left is an error unless `allowEmpty`
 * (a resumed predict or label whose other images are done).
 */
export async function checkedDataset(
  ds: Dataset, o: { skipBad: boolean; where: string; hint: string; channels?: boolean; allowEmpty?: boolean },
): Promise<{ ds: Dataset; skipped: SkippedFiles; smallest: [number, number] | null }> {
  const report = await validateDataset(ds, { channels: o.channels });
  const smallest = report.smallest;
  if (report.problems.length === 0) return { ds, skipped: { count: 0, problems: [] }, smallest };
  if (!o.skipBad) throw dataProblemsError(report.problems, o.where, o.hint);
  const kept = dropBadItems(ds, report.problems, { allowEmpty: o.allowEmpty });
  return { ds: kept, skipped: kept.skipped!, smallest };
}

/**
 * Image files (absolute paths) under a folder as an unlabeled set, to validate with that folder's cache;
 * `scanProblems` are files already left out (reported with the set's own problems).
 */
export function imageFileSet(root: string, paths: readonly string[], scanProblems: DataProblem[] = []): Dataset {
  return {
    root, labeled: false, items: paths.map((p) => ({ id: p, image: p })), numClasses: 0, classNames: [], ignoreIndex: 255, scanProblems,
  };
}
