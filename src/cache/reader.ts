/**
 * Soft labels for training, read off the main thread: a cache entry is read, checked, reconstructed at the
 * requested temperature and resampled through the sample's augmentation (warpSoft) on a worker thread, so a
 * training step on the main thread never waits on cache reads, inflate or the per-pixel soft-label work —
 * what reaches it is the crop-sized map. Falls back to this thread when a worker cannot start.
 */
import { warpSoft, type WarpSpec } from '../augment/geometric.js';
import { SoftsegError } from '../errors.js';
import { defaultWorkerThreads, rebuildSoftsegError, startPool, type SerializedError } from '../worker-pool.js';
import { CorruptEntryError } from './format.js';
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

/** What a reader worker does for one request (also the in-thread fallback). null: no entry. */
export async function readSoftCrop(q: SoftCropRequest): Promise<SoftCrop | null> {
  let cache = caches.get(q.dir);
  if (!cache) caches.set(q.dir, (cache = openCache(q.dir)));
  const record = await cache.get(q.fingerprint, q.imageHash, { temperature: q.temperature, mode: 'soft' });
  if (!record) return null;
  if (!record.soft) throw new SoftsegError(`the cache entry of ${record.header.imageName || q.imageHash} holds no soft labels (labelled with --mode pseudo?)`, { hint: 'relabel with --mode soft or both' });
  const soft = q.warp ? warpSoft(record.soft, record.width, record.height, q.warp) : record.soft;
  return { soft, numClasses: record.numClasses, width: record.width, height: record.height };
}

function rebuildError(e: SerializedError): Error {
  if (e.name === 'CorruptEntryError') return new CorruptEntryError(e.fields.entryPath ?? '<entry>', e.fields.reason ?? e.message, e.fields.imageName);
  return rebuildSoftsegError(e);
}

export interface SoftLabelReader {
  read(request: SoftCropRequest): Promise<SoftCrop | null>;
  readonly threads: number;
  readonly fallbackReason?: string;
  close(): Promise<void>;
}

/** A reader on `threads` worker threads (default: cores − 1, 1 to 4), or in this thread (0, or when workers do not start). */
export async function createSoftLabelReader(threads = defaultWorkerThreads()): Promise<SoftLabelReader> {
  const inline = (fallbackReason?: string): SoftLabelReader => ({ threads: 0, fallbackReason, read: readSoftCrop, close: async () => undefined });
  if (threads <= 0) return inline();
  const { pool, reason } = await startPool<SoftCropRequest, SoftCrop | null>(import.meta.url, 'reader-worker', threads, rebuildError, async (p) => {
    // an empty folder answers "no entry": the worker loaded and answered
    if ((await p.call({ dir: '/nonexistent-softseg-probe', fingerprint: '0'.repeat(64), imageHash: '0'.repeat(64), temperature: 1 })) !== null) throw new Error('probe answered an entry');
  });
  if (!pool) return inline(`soft-label reader worker did not start (${reason}); reading on the main thread`);
  return { threads: pool.size, read: (q) => pool.call(q), close: () => pool.close() };
}
