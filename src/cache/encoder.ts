/**
 * Entry encoding off the main thread. A teacher on the wasm backend (or any TF.js backend) runs on the main
 * thread, so the top-k pass, the tail model's fit and deflate would otherwise take turns with inference; on a
 * worker thread they overlap with it (`softseg label`: encode ‖ the next batch's inference).
 * Falls back to encoding in this thread when a worker cannot start (the reason is kept in `fallbackReason`).
 */
import { processWide, rebuildSoftsegError, startPool, type WorkerPool } from '../worker-pool.js';
import { encodeEntry, type EncodeOptions } from './format.js';
import type { EncodeRequest } from './encode-worker.js';

export interface EntryEncoder {
  /** Encodes an entry; `probs` may be transferred to the worker (do not use it afterwards). */
  encode(probs: Float32Array, options: EncodeOptions): Promise<Uint8Array>;
  close(): Promise<void>;
  /** Worker threads in use (0 = this thread). */
  readonly threads: number;
  readonly fallbackReason?: string;
}

/**
 * `threads` worker threads (default 1), or this thread when `threads` is 0 or a worker does not start.
 */
export async function createEntryEncoder(threads = 1): Promise<EntryEncoder> {
  const inline = (fallbackReason?: string): EntryEncoder => ({ threads: 0, fallbackReason, encode: encodeEntry, close: async () => undefined });
  if (threads <= 0) return inline();
  const encode = (pool: WorkerPool<EncodeRequest, Uint8Array>, probs: Float32Array, options: EncodeOptions): Promise<Uint8Array> => {
    // a view into a larger buffer (a batch's output) is copied; a whole buffer is transferred
    const whole = probs.byteOffset === 0 && probs.byteLength === probs.buffer.byteLength && probs.buffer instanceof ArrayBuffer;
    const payload = whole ? probs : probs.slice();
    return pool.call({ probs: payload, options }, [payload.buffer as ArrayBuffer]);
  };
  const { pool, reason } = await startPool<EncodeRequest, Uint8Array>(import.meta.url, 'encode-worker', threads, rebuildSoftsegError);
  if (!pool) return inline(`encoder worker did not start (${reason}); encoding on the main thread`);
  return { threads: pool.size, encode: (probs, options) => encode(pool, probs, options), close: () => pool.close() };
}

/** One encoder per thread count for the whole process, started on first use (processWide). */
export const sharedEntryEncoder: (threads: number) => Promise<EntryEncoder> = processWide(createEntryEncoder);
