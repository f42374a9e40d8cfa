/**
 * Soft labels for a training crop: a cache entry read, checked, rebuilt at the requested temperature and
 * resampled through the sample's augmentation (warpSoft). The loader's sample workers call this
 * (src/data/sample.ts), so a training step never waits on cache reads, inflate or per-pixel soft-label work.
 */
import { warpSoft, type WarpSpec } from '../augment/geometric.js';
import { SoftsegError } from '../errors.js';
import { openCache, type TeacherCache } from './store.js';

export interface SoftCropRequest {
  dir: string;
  fingerprint: string;
  imageHash: string;
  temperature: number;
  /** The sample's geometry; without it the full-size map comes back. */
  warp?: WarpSpec;
}

export interface SoftCrop {
  /** [h, w, C] soft labels (the warp's output size, or the entry's). */
  soft: Float32Array;
  numClasses: number;
  /** The entry's (source image's) size. */
  width: number;
  height: number;
}

const caches = new Map<string, TeacherCache>();

/** One crop's soft labels; null when the image has no entry. Throws CorruptEntryError for a corrupt one. */
export async function readSoftCrop(q: SoftCropRequest): Promise<SoftCrop | null> {
  let cache = caches.get(q.dir);
  if (!cache) caches.set(q.dir, (cache = openCache(q.dir)));
  const record = await cache.get(q.fingerprint, q.imageHash, { temperature: q.temperature, mode: 'soft' });
  if (!record) return null;
  if (!record.soft) throw new SoftsegError(`the cache entry of ${record.header.imageName || q.imageHash} holds no soft labels (labelled with --mode pseudo?)`, { hint: 'relabel with --mode soft or both' });
  const soft = q.warp ? warpSoft(record.soft, record.width, record.height, q.warp) : record.soft;
  return { soft, numClasses: record.numClasses, width: record.width, height: record.height };
}
