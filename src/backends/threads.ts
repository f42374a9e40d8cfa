// Opt-in multithreading for the wasm backend in Node.
//
// tfjs-backend-wasm 4.22 ships a threaded-SIMD build (emscripten pthreads + XNNPACK's pthreadpool), but its
// `init()` never uses it in Node: the `WASM_HAS_MULTITHREAD_SUPPORT` flag is hard-wired to false there, and
// forcing the flag fails because `init()` hands emscripten blob: URLs for the pthread worker script and the main
// script, which `worker_threads` rejects (ERR_WORKER_PATH). On top of that the C++ side sizes its pool as
// min(requested, 8, logical cores / 2), so a 2-core machine gets 1 thread whatever `setThreadsCount` says.
//
// This module instantiates the package's own threaded-SIMD glue and binary itself, at runtime, with:
//  - pthread workers created as `eval` workers (no file path needed, `execArgv: []` so a tsx/--import loader
//    of the parent is not re-run in every worker) that run the package's own pthread worker script;
//  - the glue file's absolute path as `mainScriptUrlOrBlob`, which the worker script reads from disk;
//  - the wasm import `emscripten_num_logical_cores` answering 2·threads, so the C++ cap equals the request
//    (the caller has already limited the request to the machine's parallelism);
// then registers a 'wasm' backend factory building the package's `BackendWasm` on that module. The package's
// kernels (and the project's) are keyed by backend name, so they run unchanged on the threaded module.
//
// Process exit: emscripten `ref()`s the worker of every running pthread, and pthreadpool's threads never end,
// so a threaded process would never exit by itself. The pool's workers are `unref()`ed once the backend is
// built (they only ever work while the main thread blocks in a kernel), and the idle pre-spawned workers are
// terminated; `shutdownThreadedWasm()` tears everything down deterministically.
import * as tf from '@tensorflow/tfjs';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { availableParallelism } from 'node:os';
import { Worker as NodeWorker } from 'node:worker_threads';
import { SoftsegError } from '../errors.js';

/** The glue pre-spawns 8 pthread workers (PTHREAD_POOL_SIZE) and the C++ side caps the pool at 8 threads. */
export const MAX_WASM_THREADS = 8;

/** tfjs-backend-wasm registers 'wasm' with this priority; the threaded factory keeps it. */
const WASM_PRIORITY = 2;

/** How long building the threaded module (compiling, starting and loading the workers) may take. */
const INIT_TIMEOUT_MS = 60_000;

const PKG = '@tensorflow/tfjs-backend-wasm';
const GLUE = `${PKG}/wasm-out/tfjs-backend-wasm-threaded-simd.js`;
const WORKER_SCRIPT = `${PKG}/wasm-out/tfjs-backend-wasm-threaded-simd.worker.js`;
const BINARY = `${PKG}/wasm-out/tfjs-backend-wasm-threaded-simd.wasm`;

let testOverrides: { workerScript?: string } = {};

/** Test hook: replaces the package's pthread worker script module (e.g. with a broken one). Pass nothing to restore. */
export function setThreadedWasmForTesting(overrides: { workerScript?: string } = {}): void {
  testOverrides = overrides;
}

/** The parts of the emscripten module (and its pthread runtime) this file touches. */
interface EmWorker {
  ref(): void;
  unref(): void;
  terminate(): Promise<number>;
}
interface ThreadedModule {
  cwrap(name: string, returnType: string | null, argTypes: string[]): (...args: number[]) => number;
  PThread: { unusedWorkers: EmWorker[]; runningWorkers: EmWorker[]; terminateAllThreads(): void };
  tfjs?: Record<string, unknown>;
}
type Factory = (config: Record<string, unknown>) => Promise<ThreadedModule>;
type WasmPackage = typeof import('@tensorflow/tfjs-backend-wasm');

/** The bits of the WebAssembly JS API used here (the project's lib settings do not declare it). */
interface WebAssemblyApi {
  Memory: new (descriptor: { initial: number; maximum: number; shared: boolean }) => { buffer: ArrayBufferLike };
  Module: { imports(module: object): Array<{ module: string; name: string; kind: string }> };
  compile(bytes: Uint8Array): Promise<object>;
  instantiate(module: object, imports: object): Promise<object>;
}
const wasmApi = (): WebAssemblyApi => (globalThis as unknown as { WebAssembly: WebAssemblyApi }).WebAssembly;

/** What the package's `init()` attaches to the module before `BackendWasm` can use it. */
function attachTfjsApi(module: ThreadedModule): void {
  module.tfjs = {
    init: module.cwrap('init', null, []),
    initWithThreadsCount: module.cwrap('init_with_threads_count', null, ['number']),
    getThreadsCount: module.cwrap('get_threads_count', 'number', []),
    registerTensor: module.cwrap('register_tensor', null, ['number', 'number', 'number']),
    disposeData: module.cwrap('dispose_data', null, ['number']),
    dispose: module.cwrap('dispose', null, []),
  };
}

export interface ThreadPlan {
  /** Threads to run with (1 = the stock single-threaded SIMD backend). */
  threads: number;
  /** Why fewer threads than requested, when that is so. */
  note?: string;
}

/** How many wasm threads a request gets on a machine with `cores` logical cores. Pure; throws on bad input. */
export function planWasmThreads(requested: number | undefined, cores: number = availableParallelism()): ThreadPlan {
  if (requested === undefined || requested === 1) return { threads: 1 };
  if (!Number.isInteger(requested) || requested < 1) {
    throw new SoftsegError(`threads must be a positive integer, got ${String(requested)}`);
  }
  const limit = Math.min(cores, MAX_WASM_THREADS);
  if (limit < 2) {
    return { threads: 1, note: `${requested} threads requested, but this machine has ${cores} logical core${cores === 1 ? '' : 's'}; using 1` };
  }
  if (requested > limit) {
    const why = cores <= MAX_WASM_THREADS ? `this machine has ${cores} logical cores` : `the wasm backend uses at most ${MAX_WASM_THREADS}`;
    return { threads: limit, note: `${requested} threads requested, but ${why}; using ${limit}` };
  }
  return { threads: requested };
}

interface State {
  threads: number;
  module: ThreadedModule;
  /** The package's own 'wasm' factory, restored by `shutdownThreadedWasm()`. */
  originalFactory?: () => tf.KernelBackend | Promise<tf.KernelBackend>;
  /** process listeners the emscripten glue added; removed again at shutdown. */
  addedListeners: Array<{ event: Listened; listener: (...args: unknown[]) => void }>;
}
type Listened = 'uncaughtException' | 'unhandledRejection';
let state: State | undefined;

/** Threads of the installed threaded wasm backend (what XNNPACK's pool reports once built), or undefined. */
export function threadedWasmThreads(): number | undefined {
  if (state === undefined) return undefined;
  const backend = builtWasmBackend() as { wasm?: { tfjs: { getThreadsCount(): number } } } | undefined;
  return backend?.wasm ? backend.wasm.tfjs.getThreadsCount() : state.threads;
}

/** The initialised 'wasm' backend instance, if any. (`tf.findBackend` would start initialising it.) */
function builtWasmBackend(): object | undefined {
  return tf.engine().registry.wasm;
}

async function loadWasmPackage(): Promise<WasmPackage> {
  return await import('@tensorflow/tfjs-backend-wasm');
}

/** Why this Node cannot run the threaded binary, or undefined when it can. */
async function unsupportedReason(): Promise<string | undefined> {
  if (typeof SharedArrayBuffer !== 'function') return 'SharedArrayBuffer is unavailable';
  try {
    const mem = new (wasmApi().Memory)({ initial: 1, maximum: 1, shared: true });
    if (!(mem.buffer instanceof SharedArrayBuffer)) return 'shared WebAssembly memory is unsupported';
  } catch (e) {
    return `shared WebAssembly memory is unsupported (${e instanceof Error ? e.message : String(e)})`;
  }
  if (!(await tf.env().getAsync('WASM_HAS_SIMD_SUPPORT'))) return 'WebAssembly SIMD is unsupported';
  return undefined;
}

/** The source of an eval worker that runs the package's pthread worker script (a string in its CJS module). */
function workerBootstrap(workerScriptModule: string, gluePath: string): string {
  // The script's one string literal holding "\n" was turned into a real newline by its template literal;
  // re-escape newlines so it parses (the script is otherwise a single line).
  return [
    "'use strict';",
    `const source = require(${JSON.stringify(workerScriptModule)}).wasmWorkerContents;`,
    'const escaped = source.split(String.fromCharCode(10)).join(String.fromCharCode(92) + "n");',
    `new Function('require', '__filename', escaped)(require, ${JSON.stringify(gluePath)});`,
  ].join('\n');
}

/** Runs `f` with `globalThis.Worker` answering `Worker` and ignoring writes (the glue assigns it), then restores. */
function withGlobalWorker<T>(Worker: unknown, f: () => T): T {
  const saved = Object.getOwnPropertyDescriptor(globalThis, 'Worker');
  Object.defineProperty(globalThis, 'Worker', { configurable: true, get: () => Worker, set: () => undefined });
  try {
    return f();
  } finally {
    if (saved) Object.defineProperty(globalThis, 'Worker', saved);
    else delete (globalThis as { Worker?: unknown }).Worker;
  }
}

async function createThreadedModule(threads: number): Promise<{ module: ThreadedModule; added: State['addedListeners'] }> {
  const require = createRequire(import.meta.url);
  const gluePath = require.resolve(GLUE);
  const workerScript = require.resolve(testOverrides.workerScript ?? WORKER_SCRIPT);
  const binaryPath = require.resolve(BINARY);
  const binary = readFileSync(binaryPath);
  const factory = require(gluePath) as Factory;
  const source = workerBootstrap(workerScript, gluePath);
  const message = (e: unknown): string => (e instanceof Error ? e.message : String(e));

  // The glue's ready promise never settles when instantiation fails or a worker never loads: race it.
  let starting = true;
  let abandoned = false;
  let timer: ReturnType<typeof setTimeout> | undefined;
  let fail: (why: string) => void = () => undefined;
  const failed = new Promise<never>((_, reject) => {
    fail = (why) => reject(new Error(why));
    timer = setTimeout(() => fail(`the threaded wasm module did not start within ${INIT_TIMEOUT_MS / 1000} s`), INIT_TIMEOUT_MS);
  });
  failed.catch(() => undefined); // only raced below; never an unhandled rejection

  const spawned: NodeWorker[] = [];
  class PthreadWorker extends NodeWorker {
    constructor() {
      super(source, { eval: true, execArgv: [] });
      spawned.push(this);
    }

    // While starting (and for good once a start failed), a worker that errors or exits fails the start instead
    // of reaching the glue's 'error' handler, which throws from an event listener, i.e. kills the process.
    override emit(event: string | symbol, ...args: unknown[]): boolean {
      if ((starting || abandoned) && event === 'error') {
        fail(`a pthread worker failed: ${message(args[0])}`);
        return true;
      }
      if (starting && event === 'exit') fail(`a pthread worker exited while starting (code ${String(args[0])})`);
      return super.emit(event, ...args);
    }
  }

  const listeners = (event: Listened): Array<(...args: unknown[]) => void> =>
    (event === 'uncaughtException' ? process.listeners('uncaughtException') : process.listeners('unhandledRejection')) as Array<
      (...args: unknown[]) => void
    >;
  const before = { uncaughtException: listeners('uncaughtException'), unhandledRejection: listeners('unhandledRejection') };

  let module: ThreadedModule;
  try {
    const ready = withGlobalWorker(PthreadWorker, () =>
      factory({
        mainScriptUrlOrBlob: gluePath,
        locateFile: (path: string) => (path.endsWith('.wasm') ? binaryPath : workerScript),
        onAbort: (what: unknown) => fail(`aborted: ${String(what)}`),
        instantiateWasm: (info: Record<string, Record<string, unknown>>, receive: (instance: object, module: object) => void) => {
          // num_cores = this / 2 on the C++ side: make its cap the requested count.
          const env = { ...info.env, emscripten_num_logical_cores: () => 2 * threads };
          const api = wasmApi();
          api
            .compile(binary)
            .then(async (compiled) => {
              // A pthreads build imports the (shared) memory the glue made; anything else would compute on its own.
              if (!api.Module.imports(compiled).some((i) => i.module === 'env' && i.name === 'memory' && i.kind === 'memory')) {
                throw new Error(`${BINARY} is not a threaded build (it does not import its memory)`);
              }
              receive(await api.instantiate(compiled, { ...info, env }), compiled);
            })
            .catch((e: unknown) => fail(`instantiation failed: ${message(e)}`));
          return {};
        },
      }),
    );
    module = await Promise.race([ready, failed]);
  } catch (e) {
    abandoned = true;
    for (const w of spawned) void w.terminate();
    for (const event of ['uncaughtException', 'unhandledRejection'] as const) {
      for (const listener of listeners(event)) if (!before[event].includes(listener)) process.removeListener(event, listener);
    }
    throw new Error(message(e), { cause: e });
  } finally {
    starting = false;
    fail = () => undefined; // later aborts are the backend's business (emscripten logs them)
    clearTimeout(timer);
  }
  const added: State['addedListeners'] = [];
  for (const event of ['uncaughtException', 'unhandledRejection'] as const) {
    for (const listener of listeners(event)) {
      if (!before[event].includes(listener)) added.push({ event, listener });
    }
  }
  attachTfjsApi(module);
  return { module, added };
}

/** Keeps the pool's workers from holding the process open and frees the pre-spawned workers nobody uses. */
function releaseIdleWorkers(module: ThreadedModule): void {
  for (const w of module.PThread.runningWorkers) w.unref();
  const idle = module.PThread.unusedWorkers.splice(0);
  for (const w of idle) void w.terminate();
}

/**
 * Replaces the 'wasm' backend factory with one that runs tfjs-backend-wasm's threaded-SIMD build on `threads`
 * threads (2 ≤ threads ≤ 8; plan it with `planWasmThreads`). Call before the wasm backend is first
 * initialised; `tf.setBackend('wasm')` then builds it. Returns once the module and its workers are up.
 * Throws SoftsegError when a wasm backend with another thread count already exists in this process, and a
 * plain Error (with the cause) when this Node cannot run the threaded build.
 */
async function installThreadedWasm(threads: number): Promise<void> {
  if (!Number.isInteger(threads) || threads < 2 || threads > MAX_WASM_THREADS) {
    throw new SoftsegError(`threaded wasm needs 2..${MAX_WASM_THREADS} threads, got ${String(threads)}`);
  }
  const pkg = await loadWasmPackage();
  if (state !== undefined) {
    if (state.threads === threads) return;
    throw new SoftsegError(`the wasm backend already runs ${state.threads} threads in this process; cannot switch to ${threads}`, {
      hint: 'choose the thread count once, before the backend is first used (or call shutdownBackend() first)',
    });
  }
  if (builtWasmBackend() !== undefined) {
    throw new SoftsegError(`the single-threaded wasm backend is already initialised in this process; cannot switch to ${threads} threads`, {
      hint: 'choose the thread count once, before the backend is first used (or call shutdownBackend() first)',
    });
  }
  const why = await unsupportedReason();
  if (why !== undefined) throw new Error(`threaded wasm is unavailable: ${why}`);

  const { module, added } = await createThreadedModule(threads);
  const originalFactory = tf.findBackendFactory('wasm') ?? undefined;
  state = { threads, module, originalFactory, addedListeners: added };
  if (originalFactory !== undefined) tf.removeBackend('wasm');
  const built = module;
  tf.registerBackend('wasm', () => {
    pkg.setThreadsCount(threads);
    const backend = new pkg.BackendWasm(built as unknown as ConstructorParameters<WasmPackage['BackendWasm']>[0]);
    releaseIdleWorkers(built);
    return backend;
  }, WASM_PRIORITY);
}

/**
 * What `initBackend` calls before activating wasm: plans the request against this machine and, for 2+ threads,
 * installs the threaded backend. Never throws for an unusable request: it falls back to what the process can
 * do and says why in `note` (threads stay fixed once a wasm backend exists in the process).
 */
export async function configureWasmThreads(requested: number | undefined): Promise<ThreadPlan> {
  const plan = planWasmThreads(requested);
  if (state !== undefined) {
    if (requested === undefined || plan.threads === state.threads) return { threads: state.threads, note: plan.note };
    return { threads: state.threads, note: `${requested} threads requested, but this process already runs the wasm backend with ${state.threads} threads; keeping ${state.threads}` };
  }
  if (plan.threads === 1) return plan;
  if (builtWasmBackend() !== undefined) {
    return { threads: 1, note: `${requested} threads requested, but the single-threaded wasm backend is already initialised in this process; using 1` };
  }
  try {
    await installThreadedWasm(plan.threads);
  } catch (e) {
    const msg = e instanceof Error ? e.message.split('\n')[0] : String(e);
    return { threads: 1, note: `${requested} threads requested, but threaded wasm failed to start (${msg}); using 1` };
  }
  return { threads: plan.threads, note: plan.note };
}

/** Whether a threaded wasm backend is installed (its factory registered, possibly already built). */
export function threadedWasmInstalled(): boolean {
  return state !== undefined;
}

/**
 * Disposes the threaded wasm backend (its tensors become invalid), stops its worker threads and restores the
 * package's own single-threaded 'wasm' factory. A no-op when no threaded backend is installed.
 */
export function shutdownThreadedWasm(): void {
  if (state === undefined) return;
  const s = state;
  state = undefined;
  // Disposing the backend destroys the thread pool (joining its threads) and terminates the workers.
  if (tf.findBackendFactory('wasm') !== null) tf.removeBackend('wasm');
  // Also when it was never built, or a worker was left over: terminate whatever remains.
  for (const w of [...s.module.PThread.runningWorkers, ...s.module.PThread.unusedWorkers]) void w.terminate();
  s.module.PThread.runningWorkers.length = 0;
  s.module.PThread.unusedWorkers.length = 0;
  for (const { event, listener } of s.addedListeners) process.removeListener(event, listener);
  if (s.originalFactory !== undefined) tf.registerBackend('wasm', s.originalFactory, WASM_PRIORITY);
}
