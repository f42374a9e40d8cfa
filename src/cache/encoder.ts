/**
 * Entry encoding off the main thread. A teacher on the wasm backend (or any TF.js backend) runs on the main
 * thread, so the top-k pass, the tail model's fit, compression and the file write would otherwise take turns with
 * inference; on a worker thread they overlap with it (`softseg label`: encode + write ‖ the next batch's inference).
 * Falls back to encoding in this thread when a worker cannot start (the reason is kept in `fallbackReason`).
 */
import { writeFileAtomic } from '../data/fs-util.js';
import { processWide, rebuildSoftsegError, startPool } from '../worker-pool.js';
import { encodeEntry, type EncodeOptions } from './format.js';
import type { EncodeRequest } from './encode-worker.js';

export interface EntryEncoder {
  /** Encodes an entry; `probs` may be transferred to the worker (do not use it afterwards). */
  encode(probs: Float32Array, options: EncodeOptions): Promise<Uint8Array>;
  /** Encodes an entry and writes it to `path` atomically (temp + rename); resolves to its length in bytes. */
  write(path: string, probs: Float32Array, options: EncodeOptions): Promise<number>;
  close(): Promise<void>;
  /** Worker threads in use (0 = this thread). */
  readonly threads: number;
  readonly fallbackReason?: string;
}

/** Encoding in this thread (compression on libuv's pool). */
export const inlineEntryEncoder: EntryEncoder = {
  threads: 0, encode: encodeEntry, close: async () => undefined,
  write: async (path, probs, options) => {
    const bytes = await encodeEntry(probs, options);
    await writeFileAtomic(path, bytes);
    return bytes.length;
  },
};

/**
 * `threads` worker threads (default 1), or this thread when `threads` is 0 or a worker does not start.
 */
export async function createEntryEncoder(threads = 1): Promise<EntryEncoder> {
  const inline = (fallbackReason?: string): EntryEncoder => ({ ...inlineEntryEncoder, fallbackReason });
  if (threads <= 0) return inline();
  const { pool, reason } = await startPool<EncodeRequest, Uint8Array | number>(import.meta.url, 'encode-worker', threads, rebuildSoftsegError);
  if (!pool) return inline(`encoder worker did not start (${reason}); encoding on the main thread`);
  const call = (probs: Float32Array, options: EncodeOptions, path?: string): Promise<Uint8Array | number> => {
    // a view into a larger buffer (a batch's output) is copied; a whole buffer is transferred
    const whole = probs.byteOffset === 0 && probs.byteLength === probs.buffer.byteLength && probs.buffer instanceof ArrayBuffer;
    const payload = whole ? probs : probs.slice();
    return pool.call({ probs: payload, options, path }, [payload.buffer as ArrayBuffer]);
  };
  return {
    threads: pool.size,
    encode: async (probs, options) => (await call(probs, options)) as Uint8Array,
    // the worker writes the file too: no file-system callbacks on this (the teacher's) thread
    write: async (path, probs, options) => (await call(probs, options, path)) as number,
    close: () => pool.close(),
  };
}

/** One encoder per thread count for the whole process, started on first use (processWide). */
export const sharedEntryEncoder: (threads: number) => Promise<EntryEncoder> = processWide(createEntryEncoder);
