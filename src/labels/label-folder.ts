/**
 * `softseg label`: a teacher over image folders into the cache, once per image. Decoding the next batch,
 * teacher inference and encoding + writing entries overlap (p-queue); entries that are already valid are
 * skipped (a killed run resumes), and `shard i/n` splits the images by content hash so several processes
 * or machines sharing one cache directory label disjoint parts. The images to label are decoded once before the
 * teacher runs (cached like training's check): a bad file stops the run before any work, one line per problem,
 * or with `skipBad` is left out and listed.
 */
import { availableParallelism } from 'node:os';
import PQueue from 'p-queue';
import type { DataProblem } from '../data/dataset.js';
import { decodeImage, type DecodedImage } from '../data/decode.js';
import { checkOutputFolder } from '../data/fs-util.js';
import { checkedDataset, imageFileSet } from '../data/validate.js';
import { SoftsegError, usageError } from '../errors.js';
import { DEFAULT_K, type CacheMode } from '../cache/format.js';
import { hashImagesIn, type HashedImage } from '../cache/images.js';
import type { TeacherCache } from '../cache/store.js';
import { sharedEntryEncoder } from '../cache/encoder.js';
import type { Teacher, TeacherKind } from '../teachers/teacher.js';

export interface Shard {
  index: number;
  count: number;
}

/** Parses `i/n` (1-based i, as people count shards: 1/2 and 2/2). */
export function parseShard(text: string): Shard {
  const m = /^(\d+)\/(\d+)$/.exec(text.trim());
  const index = m ? Number(m[1]) : NaN, count = m ? Number(m[2]) : NaN;
  if (!m || count < 1 || index < 1 || index > count) throw new SoftsegError(`--shard must be i/n with 1 ≤ i ≤ n (e.g. 1/4), got ${text}`);
  return { index: index - 1, count };
}

/** Whether an image (by content hash) belongs to a shard: the same answer on every machine. */
export function inShard(hash: string, shard: Shard): boolean {
  return parseInt(hash.slice(0, 8), 16) % shard.count === shard.index;
}

/**
 * Encoder threads by default, 1 to 8: the cores a TF.js teacher leaves (it runs on this thread), or every core for
 * an onnxruntime teacher (its threads leave this one idle; 2 cores, onnx unet-lite 64²: 151–156 → 160–170 img/s).
 * A fast teacher labels more images per second than one thread encodes (an entry is 5–14 ms of CPU at 64²–128²).
 */
export function defaultEncodeThreads(kind: TeacherKind = 'tfjs'): number {
  return Math.max(1, Math.min(8, availableParallelism() - (kind === 'onnx' ? 0 : 1)));
}

export interface LabelOptions {
  mode?: CacheMode;
  /** Top-k classes per pixel for soft labels. */
  k?: number;
  shard?: Shard;
  /** Images sent to the teacher at once (same-size images share one forward pass). */
  batchSize?: number;
  /** Relabel images that already have valid entries. */
  overwrite?: boolean;
  /** Leave out unreadable images (listed in `bad`) instead of stopping before any work. */
  skipBad?: boolean;
  onProgress?: (done: number, total: number) => void;
  /** Hashing all images first can take a moment on big folders. */
  onHashing?: (done: number, total: number) => void;
  /**
   * Worker threads that encode entries while the teacher runs (default: cores − 1 for a TF.js teacher, cores for
   * an ONNX one, 1 to 8; 0 = encode on the
   * main thread).
   */
  encodeThreads?: number;
}

export interface LabelResult {
  /** Images found in the folders. */
  images: number;
  /** Images of this shard. */
  inShard: number;
  /** Newly labelled now. */
  labelled: number;
  /** Already valid in the cache (skipped). */
  skipped: number;
  /** Images left out as unreadable (skipBad), each with its problem. */
  bad: DataProblem[];
  /** Seconds spent, and images labelled per second. */
  seconds: number;
  imagesPerSec: number;
  /** Bytes written. */
  bytes: number;
  fingerprint: string;
  /** Worker threads that encoded entries (0 = the main thread), and why not, when a worker could not start. */
  encoder: { threads: number; fallbackReason?: string };
}

export async function labelFolders(teacher: Teacher, cache: TeacherCache, dirs: readonly string[], o: LabelOptions = {}): Promise<LabelResult> {
  if (o.k !== undefined && !(Number.isInteger(o.k) && o.k >= 1 && o.k <= teacher.numClasses)) {
    throw usageError(`--k must be an integer from 1 to the teacher's ${teacher.numClasses} classes, got ${o.k}`);
  }
  await checkOutputFolder(cache.dir, '--cache', 'the teacher outputs');
  const started = performance.now();
  const all = await hashImagesIn(dirs, o.onHashing);
  if (all.length === 0) throw new SoftsegError('no images found (PNG, JPEG, WebP or TIFF, searched recursively)', { file: dirs.join(', ') });
  // Identical files (same content) are one cache entry.
  const unique = [...new Map(all.map((im) => [im.hash, im])).values()];
  const mine = o.shard ? unique.filter((im) => inShard(im.hash, o.shard!)) : unique;
  // which entries are valid already (a resumed run): a bounded number of reads in flight, never thousands
  const checks = new PQueue({ concurrency: 16 });
  const valid = o.overwrite ? mine.map(() => false) : await Promise.all(mine.map((im) => checks.add(() => cache.has(teacher.fingerprint, im.hash))));
  const unlabelled = mine.filter((_, i) => !valid[i]);
  const skipped = mine.length - unlabelled.length;
  // Check the images to label before the teacher runs, per folder (each keeps its validation cache).
  const bad: DataProblem[] = [];
  const readable = new Set<string>();
  for (const dir of dirs) {
    const inDir = unlabelled.filter((im) => im.dir === dir).map((im) => im.path);
    if (inDir.length === 0) continue;
    const checked = await checkedDataset(imageFileSet(dir, inDir), {
      skipBad: o.skipBad === true, where: dir, hint: 'fix or remove them, or pass --skip-bad to label the other images', channels: false, allowEmpty: true,
    });
    bad.push(...checked.skipped.problems);
    for (const it of checked.ds.items) readable.add(it.image);
  }
  const todo = unlabelled.filter((im) => readable.has(im.path));
  await cache.registerTeacher(teacher.fingerprint, teacher.describe);
  const mode = o.mode ?? 'soft';
  const k = Math.min(o.k ?? DEFAULT_K, teacher.numClasses);
  const B = Math.max(1, o.batchSize ?? 8);
  const encoder = await sharedEntryEncoder(todo.length > 0 ? o.encodeThreads ?? defaultEncodeThreads(teacher.kind) : 0);
  // With encoder workers, a whole batch's entries are handed over at once: the teacher's inference blocks this
  // thread, so an entry still queued here would wait for the next gap between batches to reach a worker.
  const writes = new PQueue({ concurrency: encoder.threads > 0 ? 2 * B : 2 });
  let labelled = 0, bytes = 0;
  let failure: unknown = null;
  // A file that changed since the check stops the run, or with skipBad joins the list.
  const decodeBatch = (start: number) =>
    Promise.all(todo.slice(start, start + B).map(async (im): Promise<{ im: HashedImage; image: DecodedImage } | null> => {
      try {
        return { im, image: await decodeImage(im.path) };
      } catch (e) {
        const err = e instanceof SoftsegError ? e : new SoftsegError(`cannot decode image: ${(e as Error).message}`, { file: im.path });
        if (!o.skipBad) throw err;
        bad.push({ file: im.path, kind: 'corrupt-image', reason: err.message });
        return null;
      }
    }));
  let next: Promise<({ im: HashedImage; image: DecodedImage } | null)[]> | null = todo.length > 0 ? decodeBatch(0) : null;
  o.onProgress?.(skipped, mine.length);
  for (let start = 0; start < todo.length && !failure; start += B) {
    const decoded = (await next!).filter((d) => d !== null);
    next = start + B < todo.length ? decodeBatch(start + B) : null;
    next?.catch(() => undefined); // surfaced when awaited
    if (decoded.length === 0) continue;
    const probs = await teacher.predictBatch(decoded.map((d) => d.image));
    // Writing is bounded: at most two batches of entries wait while the next batch runs.
    if (writes.size > 2 * B) await writes.onSizeLessThan(B);
    decoded.forEach(({ im, image }, j) => {
      writes
        .add(async () => {
          // (not `bytes += await …`: that reads `bytes` before the await and loses concurrent writes' counts)
          const written = await cache.put(teacher.fingerprint, im.hash, probs[j]!, { width: image.width, height: image.height, numClasses: teacher.numClasses, mode, k, imageName: im.name }, encoder);
          bytes += written;
          labelled++;
          o.onProgress?.(skipped + labelled, mine.length);
        })
        .catch((e: unknown) => (failure ??= e));
    });
  }
  await writes.onIdle();
  if (failure) throw failure;
  const seconds = (performance.now() - started) / 1000;
  return {
    images: all.length, inShard: mine.length, labelled, skipped, bad, seconds, imagesPerSec: labelled / seconds, bytes, fingerprint: teacher.fingerprint,
    encoder: { threads: encoder.threads, fallbackReason: encoder.fallbackReason },
  };
}
