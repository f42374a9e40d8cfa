// Worker thread for the entry encoder (encoder.ts): encodes entries off the main thread.
import { parentPort } from 'node:worker_threads';
import { serveRequests } from '../worker-pool.js';
import { encodeEntry, type EncodeOptions } from './format.js';

export interface EncodeRequest {
  probs: Float32Array;
  options: EncodeOptions;
}

serveRequests<EncodeRequest, Uint8Array>(parentPort!, (q) => encodeEntry(q.probs, q.options), (bytes) => [bytes.buffer as ArrayBuffer]);
