// Worker thread for EntryEncoder (encoder.ts): encodes entries off the main thread.
import { parentPort } from 'node:worker_threads';
import { SoftsegError } from '../errors.js';
import { encodeEntry, type EncodeOptions } from './format.js';

export interface EncodeRequest {
  id: number;
  probs: Float32Array;
  options: EncodeOptions;
}

export type EncodeReply =
  | { id: number; bytes: Uint8Array }
  | { id: number; error: { message: string; file?: string; hint?: string; softseg: boolean } };

parentPort!.on('message', (req: EncodeRequest) => {
  encodeEntry(req.probs, req.options).then(
    (bytes) => parentPort!.postMessage({ id: req.id, bytes } satisfies EncodeReply, [bytes.buffer as ArrayBuffer]),
    (err: unknown) => {
      const e = err as Error & { file?: string; hint?: string };
      parentPort!.postMessage({ id: req.id, error: { message: e.message, file: e.file, hint: e.hint, softseg: err instanceof SoftsegError } } satisfies EncodeReply);
    },
  );
});
