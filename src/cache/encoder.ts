/**
 * Entry encoding off the main thread. A teacher on the wasm backend (or any TF.js backend) runs on the main
 * thread, so the top-k pass, the tail model's fit and deflate would otherwise take turns with inference; on a
 * worker thread they overlap with it (`softseg label`: encode ‖ the next batch's inference).
 * Falls back to encoding in this thread when a worker cannot start (the reason is kept in `fallbackReason`).
 */
import { Worker } from 'node:worker_threads';
import { SoftsegError } from '../errors.js';
import { encodeEntry, type EncodeOptions } from './format.js';
import type { EncodeReply, EncodeRequest } from './encode-worker.js';

export interface EntryEncoder {
  /** Encodes an entry; `probs` may be transferred to the worker (do not use it afterwards). */
  encode(probs: Float32Array, options: EncodeOptions): Promise<Uint8Array>;
  close(): Promise<void>;
  /** Worker threads in use (0 = this thread). */
  readonly threads: number;
  readonly fallbackReason?: string;
}

/**
 * A worker running encode-worker next to this module. Built (.js): the script itself. From source under tsx
 * (.ts): workers do not inherit tsx's module hooks on Node 20, so a bootstrap registers them first.
 */
function startWorker(): Worker {
  if (!import.meta.url.endsWith('.ts')) return new Worker(new URL('./encode-worker.js', import.meta.url));
  const script = new URL('./encode-worker.ts', import.meta.url).href;
  return new Worker(`import('tsx/esm/api').then((tsx) => { tsx.register(); return import(${JSON.stringify(script)}); });`, { eval: true });
}

class InlineEncoder implements EntryEncoder {
  readonly threads = 0;
  constructor(readonly fallbackReason?: string) {}
  encode(probs: Float32Array, options: EncodeOptions): Promise<Uint8Array> {
    return encodeEntry(probs, options);
  }
  async close(): Promise<void> {}
}

class WorkerEncoder implements EntryEncoder {
  private nextId = 0;
  private readonly pending = new Map<number, { resolve: (b: Uint8Array) => void; reject: (e: unknown) => void }>();
  private readonly load: number[];
  private failure: Error | null = null;

  constructor(private readonly workers: Worker[]) {
    this.load = workers.map(() => 0);
    workers.forEach((w, i) => {
      w.on('message', (reply: EncodeReply) => {
        const job = this.pending.get(reply.id);
        if (!job) return;
        this.pending.delete(reply.id);
        if (--this.load[i]! === 0) w.unref();
        if ('bytes' in reply) job.resolve(reply.bytes);
        else {
          const e = reply.error;
          job.reject(e.softseg ? new SoftsegError(e.message, { file: e.file, hint: e.hint }) : new Error(e.message));
        }
      });
      w.on('error', (err) => this.fail(err));
      w.on('exit', (code) => { if (code !== 0) this.fail(new Error(`entry encoder worker exited with code ${code}`)); });
      w.unref(); // an idle encoder never keeps the process alive; a busy one does (ref'ed while it has jobs)
    });
  }

  get threads(): number {
    return this.workers.length;
  }

  private fail(err: Error): void {
    this.failure ??= err;
    for (const job of this.pending.values()) job.reject(err);
    this.pending.clear();
  }

  encode(probs: Float32Array, options: EncodeOptions): Promise<Uint8Array> {
    if (this.failure) return Promise.reject(this.failure);
    const i = this.load.indexOf(Math.min(...this.load));
    if (this.load[i]!++ === 0) this.workers[i]!.ref();
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      // a view into a larger buffer (a batch's output) is copied; a whole buffer is transferred
      const whole = probs.byteOffset === 0 && probs.byteLength === probs.buffer.byteLength && probs.buffer instanceof ArrayBuffer;
      const payload = whole ? probs : probs.slice();
      this.workers[i]!.postMessage({ id, probs: payload, options } satisfies EncodeRequest, [payload.buffer as ArrayBuffer]);
    });
  }

  async close(): Promise<void> {
    await Promise.all(this.workers.map((w) => w.terminate()));
  }
}

/**
 * `threads` worker threads (default 1), or this thread when `threads` is 0 or a worker does not start.
 * A worker that has started is checked with one tiny encode before it is trusted.
 */
export async function createEntryEncoder(threads = 1): Promise<EntryEncoder> {
  if (threads <= 0) return new InlineEncoder();
  const workers: Worker[] = [];
  try {
    for (let i = 0; i < threads; i++) workers.push(startWorker());
    const encoder = new WorkerEncoder(workers);
    const probe = new Float32Array([0.75, 0.25]);
    await encoder.encode(probe, { width: 1, height: 1, numClasses: 2, mode: 'soft', fingerprint: 'probe', imageHash: 'probe' });
    return encoder;
  } catch (err) {
    await Promise.all(workers.map((w) => w.terminate().catch(() => undefined)));
    return new InlineEncoder(`encoder worker did not start (${(err as Error).message}); encoding on the main thread`);
  }
}

const shared = new Map<number, Promise<EntryEncoder>>();

/**
 * One encoder per thread count for the whole process, started on first use and kept (its workers are unref'ed,
 * so they never keep the process alive): a worker's start-up and its JIT warm-up are paid once, not per call.
 */
export function sharedEntryEncoder(threads = 1): Promise<EntryEncoder> {
  let e = shared.get(threads);
  if (!e) {
    e = createEntryEncoder(threads);
    shared.set(threads, e);
  }
  return e;
}
