/**
 * One training sample from its files: decode (image, mask checked against the class range), the seeded
 * augmentation, and optionally the teacher's soft labels from the cache resampled through the same geometry.
 * Plain data in, plain arrays out, so it runs in the loader's own thread or on a sample worker
 * (sample-worker.ts) — the same code either way, so batches are identical.
 */
import { performance } from 'node:perf_hooks';
import { augmentSample, drawGeometry, type AugmentOptions } from '../augment/augment.js';
import type { WarpSpec } from '../augment/geometric.js';
import { CorruptEntryError } from '../cache/format.js';
import { readSoftCrop } from '../cache/reader.js';
import { rememberedImageHash } from '../cache/images.js';
import { BadFileError, SoftsegError } from '../errors.js';
import { processWide, rebuildSoftsegError, startPool } from '../worker-pool.js';
import { decodeImage, decodeMask, type DecodedImage, type DecodedMask } from './decode.js';
import { randomFor } from './seed.js';

/** Cached teacher outputs to attach to each sample (read where the sample is prepared). */
export interface SoftCacheSource {
  dir: string;
  fingerprint: string;
  temperature: number;
}

export interface SampleRequest {
  image: string;
  mask?: string;
  palette?: readonly (readonly number[])[];
  numClasses: number;
  ignoreIndex: number;
  seed: number;
  epoch: number;
  index: number;
  augment: AugmentOptions;
  /** Return the keep mask (1 on image content, 0 on padding). */
  keep: boolean;
  soft?: SoftCacheSource;
  /** Keep the decoded image and mask in this thread's memory. */
  cacheImages?: boolean;
}

export interface PreparedSample {
  image: Float32Array;
  strongImage?: Float32Array;
  mask?: Uint8Array;
  keep?: Uint8Array;
  /** Crop-sized soft labels, when requested and cached. */
  soft?: Float32Array;
  classes?: number;
  /** The geometry drawn (for soft labels computed elsewhere after a miss). */
  geometry: WarpSpec;
  /** Why the soft labels are missing: 'miss' (no entry) or the corrupt entry's message. */
  softMissing?: string;
  decodeMs: number;
  augmentMs: number;
}

const decoded = new Map<string, { image: DecodedImage; mask?: DecodedMask }>();

/** Drops images (by path) from this thread's decoded-image memory (a loader closing with cacheImages). */
export function forgetDecoded(paths: readonly string[]): void {
  for (const p of paths) decoded.delete(p);
}

/** Decodes a sample's image and mask (checked against the class range), from this thread's memory with cacheImages. */
export async function loadSampleFiles(q: Pick<SampleRequest, 'image' | 'mask' | 'palette' | 'numClasses' | 'ignoreIndex' | 'cacheImages'>): Promise<{ image: DecodedImage; mask?: DecodedMask }> {
  const hit = q.cacheImages ? decoded.get(q.image) : undefined;
  if (hit) return hit;
  try {
    return await decodeSampleFiles(q);
  } catch (e) {
    // A file's own problem (what --skip-bad may skip), told apart from every other failure.
    if (e instanceof SoftsegError && e.file !== undefined && !(e instanceof BadFileError)) throw new BadFileError(e.message, { file: e.file, hint: e.hint, cause: e });
    throw e;
  }
}

async function decodeSampleFiles(q: Pick<SampleRequest, 'image' | 'mask' | 'palette' | 'numClasses' | 'ignoreIndex' | 'cacheImages'>): Promise<{ image: DecodedImage; mask?: DecodedMask }> {
  const [image, mask] = await Promise.all([decodeImage(q.image), q.mask ? decodeMask(q.mask, { palette: q.palette }) : Promise.resolve(undefined)]);
  if (mask) {
    if (mask.width !== image.width || mask.height !== image.height) {
      throw new SoftsegError(`mask is ${mask.width}x${mask.height} but its image is ${image.width}x${image.height}`, {
        file: q.mask,
        hint: 'fix the mask, or validate with --skip-bad to leave the item out',
      });
    }
    const m = mask.data;
    for (let i = 0; i < m.length; i++) {
      const v = m[i]!;
      if (v >= q.numClasses && v !== q.ignoreIndex) {
        throw new SoftsegError(`mask has value ${v}, not a class id (0..${q.numClasses - 1}) nor the ignore index ${q.ignoreIndex}`, {
          file: q.mask,
          hint: 'fix the mask, pass the right --num-classes/--ignore-index, or validate with --skip-bad',
        });
      }
    }
  }
  const loaded = { image, mask };
  if (q.cacheImages) decoded.set(q.image, loaded);
  return loaded;
}

export async function prepareSample(q: SampleRequest): Promise<PreparedSample> {
  const t0 = performance.now();
  const { image, mask } = await loadSampleFiles(q);
  const t1 = performance.now();
  const rng = randomFor(q.seed, q.epoch, q.index);
  const geometry = drawGeometry(image.width, image.height, rng, q.augment);
  const soft = q.soft ? readSoft(q.image, q.soft, geometry) : undefined;
  soft?.catch(() => undefined); // awaited below
  const out = augmentSample(
    { image: image.data, mask: mask?.data, width: image.width, height: image.height, keep: q.keep ? new Uint8Array(image.width * image.height).fill(1) : undefined },
    rng, q.augment, geometry,
  );
  const prepared: PreparedSample = {
    image: out.image, strongImage: out.strongImage, mask: out.mask, keep: out.keep, geometry, decodeMs: t1 - t0, augmentMs: performance.now() - t1,
  };
  if (soft) Object.assign(prepared, await soft);
  return prepared;
}

async function readSoft(path: string, source: SoftCacheSource, warp: WarpSpec): Promise<Pick<PreparedSample, 'soft' | 'classes' | 'softMissing'>> {
  try {
    const crop = await readSoftCrop({ ...source, imageHash: await rememberedImageHash(path), warp });
    return crop ? { soft: crop.soft, classes: crop.numClasses } : { softMissing: 'miss' };
  } catch (err) {
    if (err instanceof CorruptEntryError) return { softMissing: err.message };
    throw err;
  }
}

/** The arrays of a prepared sample, for transferring it between threads. */
export function sampleBuffers(s: PreparedSample): ArrayBuffer[] {
  const arrays = [s.image, s.strongImage, s.mask, s.keep, s.soft].filter((a): a is Float32Array | Uint8Array => a !== undefined);
  return [...new Set(arrays.map((a) => a.buffer as ArrayBuffer))];
}

export interface SamplePreparer {
  prepare(q: SampleRequest): Promise<PreparedSample>;
  /** Worker threads (0: this thread). */
  readonly threads: number;
  readonly fallbackReason?: string;
}

/**
 * Sample workers shared by every loader of this process (started on first use; ref'ed only while busy), or this
 * thread when `threads` is 0 or the workers do not start.
 */
export const samplePreparer: (threads: number) => Promise<SamplePreparer> = processWide(async (threads) => {
  const inline = (fallbackReason?: string): SamplePreparer => ({ threads: 0, fallbackReason, prepare: prepareSample });
  if (threads <= 0) return inline();
  const { pool, reason } = await startPool<SampleRequest, PreparedSample>(import.meta.url, 'sample-worker', threads, rebuildSoftsegError);
  if (!pool) return inline(`sample worker did not start (${reason}); preparing samples on the main thread`);
  return { threads: pool.size, prepare: (q) => pool.call(q) };
});
