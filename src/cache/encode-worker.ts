// Worker thread for the entry encoder (encoder.ts): encodes entries off the main thread, and writes them.
import { parentPort } from 'node:worker_threads';
import { writeFileAtomicSync } from '../data/fs-util.js';
import { serveRequests } from '../worker-pool.js';
import { encodeEntrySync, type EncodeOptions } from './format.js';

export interface EncodeRequest {
  probs: Float32Array;
  options: EncodeOptions;
  /** Write the entry here (atomically) and answer its length, instead of answering its bytes. */
  path?: string;
}

// Synchronous on purpose: this thread does nothing else, and handing compression or file writes to libuv's pool
// would add threads that compete with the teacher for the cores.
serveRequests<EncodeRequest, Uint8Array | number>(
  parentPort!,
  async ({ probs, options, path }) => {
    const bytes = encodeEntrySync(probs, options);
    if (path === undefined) return bytes;
    writeFileAtomicSync(path, bytes);
    return bytes.length;
  },
  (result) => (typeof result === 'number' ? [] : [result.buffer as ArrayBuffer]),
);
