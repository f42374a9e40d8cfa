/**
 * A small pool of worker threads running one module, for the CPU work that would otherwise take turns with a
 * TF.js backend on the main thread (entry encoding in `softseg label`; the training loader's samples — decode,
 * augmentation, cached soft labels — in `train`/`distill`/`ssl`). Requests go to the least busy worker; a worker is ref'ed only while it has work, so an idle
 * pool never keeps a process alive. Errors cross back as plain data and are rebuilt by the caller.
 */
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import { BadFileError, SoftsegError } from './errors.js';

/** Worker threads to use by default: the cores the main thread leaves, 1 to 4. */
export function defaultWorkerThreads(): number {
  return Math.max(1, Math.min(4, availableParallelism() - 1));
}

/**
 * Starts a worker running the module `name` next to `callerUrl` (the caller's import.meta.url). Built (.js):
 * the script itself. From source under tsx (.ts): Node 20 workers do not inherit tsx's module hooks, so a
 * bootstrap registers them first.
 */
function startModuleWorker(callerUrl: string, name: string): Worker {
  if (!callerUrl.endsWith('.ts')) return new Worker(new URL(`./${name}.js`, callerUrl));
  const script = new URL(`./${name}.ts`, callerUrl).href;
  return new Worker(`import('tsx/esm/api').then((tsx) => { tsx.register(); return import(${JSON.stringify(script)}); });`, { eval: true });
}

/** What a worker module sends back: the request's id and either a result or a serialised error. */
type WorkerReply<R> = { id: number; result: R } | { id: number; error: SerializedError };

export interface SerializedError {
  message: string;
  /** Constructor name and fields the caller may rebuild (file, hint, entryPath, reason, imageName). */
  name: string;
  fields: Record<string, string | undefined>;
}

function serializeError(err: unknown): SerializedError {
  const e = err instanceof Error ? err : new Error(String(err));
  const f = e as unknown as Record<string, unknown>;
  const fields: Record<string, string | undefined> = {};
  for (const k of ['file', 'hint', 'entryPath', 'reason', 'imageName']) if (typeof f[k] === 'string') fields[k] = f[k] as string;
  return { message: e.message, name: e.name, fields };
}

/**
 * `start(threads)` once per thread count for the whole process (a pool's start-up and JIT warm-up are paid
 * once; its workers are ref'ed only while busy, so keeping it never keeps the process alive).
 */
export function processWide<T>(start: (threads: number) => Promise<T>): (threads: number) => Promise<T> {
  const started = new Map<number, Promise<T>>();
  return (threads) => {
    let t = started.get(threads);
    if (!t) started.set(threads, (t = start(threads)));
    return t;
  };
}

/** A SoftsegError (or BadFileError) stays one (the CLI prints it as one line); anything else is a plain Error. */
export function rebuildSoftsegError(e: SerializedError): Error {
  if (e.name === 'BadFileError' && e.fields.file !== undefined) return new BadFileError(e.message, { file: e.fields.file, hint: e.fields.hint });
  return e.name === 'SoftsegError' ? new SoftsegError(e.message, { file: e.fields.file, hint: e.fields.hint }) : new Error(e.message);
}

export class WorkerPool<Q, R> {
  private nextId = 0;
  private readonly pending = new Map<number, { resolve: (r: R) => void; reject: (e: unknown) => void }>();
  private readonly load: number[];
  private failure: Error | null = null;

  constructor(private readonly workers: Worker[], private readonly rebuildError: (e: SerializedError) => Error) {
    this.load = workers.map(() => 0);
    workers.forEach((w, i) => {
      w.on('message', (reply: WorkerReply<R>) => {
        const job = this.pending.get(reply.id);
        if (!job) return;
        this.pending.delete(reply.id);
        if (--this.load[i]! === 0) w.unref();
        if ('result' in reply) job.resolve(reply.result);
        else job.reject(this.rebuildError(reply.error));
      });
      w.on('error', (err) => this.fail(err));
      w.on('exit', (code) => { if (code !== 0) this.fail(new Error(`worker thread exited with code ${code}`)); });
      w.unref(); // after the listeners: adding one refs the port again
    });
  }

  get size(): number {
    return this.workers.length;
  }

  private fail(err: Error): void {
    this.failure ??= err;
    for (const job of this.pending.values()) job.reject(err);
    this.pending.clear();
  }

  /** Sends `request` (with `transfer` moved, not copied) to the least busy worker. */
  call(request: Q, transfer: ArrayBuffer[] = []): Promise<R> {
    return this.send(this.load.indexOf(Math.min(...this.load)), { request }, transfer) as Promise<R>;
  }

  /** Resolves once every worker has loaded its module and answered. */
  async ping(): Promise<void> {
    await Promise.all(this.workers.map((_, i) => this.send(i, { ping: true }, [])));
  }

  private send(i: number, message: { request: Q } | { ping: true }, transfer: ArrayBuffer[]): Promise<R | null> {
    if (this.failure) return Promise.reject(this.failure);
    if (this.load[i]!++ === 0) this.workers[i]!.ref();
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve: resolve as (r: R) => void, reject });
      this.workers[i]!.postMessage({ id, ...message }, transfer);
    });
  }

  async close(): Promise<void> {
    await Promise.all(this.workers.map((w) => w.terminate()));
  }
}

/**
 * Starts `threads` workers of module `name` and waits for each to answer a ping before they are trusted; null
 * (and the reason) when they do not start, so the caller can fall back to this thread.
 */
export async function startPool<Q, R>(
  callerUrl: string, name: string, threads: number, rebuildError: (e: SerializedError) => Error,
): Promise<{ pool: WorkerPool<Q, R> | null; reason?: string }> {
  const workers: Worker[] = [];
  try {
    for (let i = 0; i < threads; i++) workers.push(startModuleWorker(callerUrl, name));
    const pool = new WorkerPool<Q, R>(workers, rebuildError);
    await pool.ping();
    return { pool };
  } catch (err) {
    await Promise.all(workers.map((w) => w.terminate().catch(() => undefined)));
    return { pool: null, reason: (err as Error).message };
  }
}

/** The worker side: answers each request with `handle`'s result (transferring what `transfer` picks) or its error. */
export function serveRequests<Q, R>(
  port: { on(event: 'message', f: (m: { id: number; request?: Q; ping?: true }) => void): void; postMessage(m: unknown, t?: ArrayBuffer[]): void },
  handle: (q: Q) => Promise<R>,
  transfer: (r: R) => ArrayBuffer[],
): void {
  port.on('message', ({ id, request, ping }) => {
    if (ping) {
      port.postMessage({ id, result: null });
      return;
    }
    handle(request!).then(
      (result) => port.postMessage({ id, result } satisfies WorkerReply<R>, transfer(result)),
      (err: unknown) => port.postMessage({ id, error: serializeError(err) } satisfies WorkerReply<R>),
    );
  });
}
