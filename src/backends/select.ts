// Backend selection: tfjs-node-gpu, WebGPU (Dawn over Vulkan; see webgpu.ts), tfjs-node (all optional and often
// absent), the embedded wasm backend (with the project's kernels registered) or the pure-JS cpu backend (test
// oracle / last resort).
import * as tf from '@tensorflow/tfjs';
import { availableParallelism } from 'node:os';
import { SoftsegError } from '../errors.js';
import { registerProjectKernels } from './kernels/index.js';
import { packageStatus } from './packages.js';
import { configureWasmThreads, planWasmThreads, shutdownThreadedWasm, threadedWasmThreads } from './threads.js';
import {
  adapterLine,
  gpuDeviceNodes,
  probeWebGpuAdapter,
  registerWebGpuBackend,
  setWebGpuLoaderForTesting,
  shutdownWebGpu,
  WEBGPU_INSTALL_HINT,
  WEBGPU_PACKAGE,
  type AdapterProbe,
  type WebGpuAdapterInfo,
} from './webgpu.js';

export type BackendRequest = 'auto' | 'tensorflow' | 'webgpu' | 'wasm' | 'cpu';
export type BackendName = 'tensorflow' | 'webgpu' | 'wasm' | 'cpu';
export const BACKEND_REQUESTS: readonly BackendRequest[] = ['auto', 'tensorflow', 'webgpu', 'wasm', 'cpu'];

/** The TF.js version every @tensorflow/* package of this project is pinned to. */
export const TFJS_VERSION = '4.22.0';

export interface BackendOptions {
  backend?: BackendRequest;
  /**
   * Threads for wasm. 1 (the default) is the stock SIMD build; 2+ opts in to the threaded-SIMD build run on
   * worker_threads (see threads.ts), capped at the machine's logical cores and 8. `threads` in the result says
   * what was obtained and `reason` why, if less. Fixed once a wasm backend exists in the process.
   */
  threads?: number;
}

export interface BackendInfo {
  /** The TF.js backend now active. */
  name: BackendName;
  requested: BackendRequest;
  /** One human-readable line: what was tried and why this backend was chosen. */
  reason: string;
  /** Threads the backend computes with (for tensorflow: the host's parallelism, libtensorflow's own pool). */
  threads: number;
  /** The npm package providing the backend (tensorflow only). */
  package?: string;
  /** The GPU the webgpu backend runs on (webgpu only). */
  adapter?: WebGpuAdapterInfo;
  /** Whether project kernels are registered (wasm, webgpu). */
  projectKernels: boolean;
}

const TFJS_NODE = '@tensorflow/tfjs-node';
const TFJS_NODE_GPU = '@tensorflow/tfjs-node-gpu';
const short = (pkg: string): string => pkg.replace('@tensorflow/', '');

/** What the user has to do to get the tensorflow backend. */
export const TENSORFLOW_INSTALL_HINT =
  `npm install ${TFJS_NODE}@${TFJS_VERSION} (CPU), or ${TFJS_NODE_GPU}@${TFJS_VERSION} for NVIDIA GPUs ` +
  '(Linux x64 or Windows x64 with an NVIDIA driver, CUDA 11.2 and cuDNN 8.1 — the CUDA/cuDNN that its ' +
  'libtensorflow 2.9 build links against); both download libtensorflow while installing, so they need internet access';

type Importer = (specifier: string) => Promise<unknown>;
const defaultImporter: Importer = (specifier) => import(specifier);
let importer: Importer = defaultImporter;
let resolver: ((specifier: string) => boolean) | undefined;

/**
 * Test hook: replaces how optional backend packages are found and loaded, and the WebGPU adapter probe (by
 * default, when `installed` is given, WebGPU counts as installed only if `installed('webgpu')`). Pass nothing to restore.
 */
export function setBackendLoaderForTesting(hooks?: {
  import?: Importer;
  installed?: (pkg: string) => boolean;
  webgpu?: { probe?: () => Promise<AdapterProbe>; register?: () => Promise<WebGpuAdapterInfo> };
}): void {
  importer = hooks?.import ?? defaultImporter;
  resolver = hooks?.installed;
  const installed = hooks?.installed;
  const probe = hooks?.webgpu?.probe ?? (installed && !installed(WEBGPU_PACKAGE) ? async (): Promise<AdapterProbe> => ({ ok: false, why: `${WEBGPU_PACKAGE} not installed`, hint: WEBGPU_INSTALL_HINT }) : undefined);
  setWebGpuLoaderForTesting({ probe, register: hooks?.webgpu?.register });
  webGpuHooked = probe !== undefined;
  current = undefined;
}

const isInstalled = (pkg: string): boolean => (resolver ? resolver(pkg) : packageStatus(pkg).installed);

let current: BackendInfo | undefined;
let wasmLoaded = false;
/** A test replaced the WebGPU probe: use it even on a machine without GPU device nodes. */
let webGpuHooked = false;

/** Loads tfjs-node(-gpu); the result says why not when it cannot. */
async function loadTensorflow(pkg: string): Promise<{ ok: true } | { ok: false; why: string; cause?: unknown }> {
  if (!isInstalled(pkg)) return { ok: false, why: `${short(pkg)} not installed` };
  try {
    await importer(pkg);
  } catch (cause) {
    const msg = cause instanceof Error ? cause.message.split('\n')[0] : String(cause);
    return { ok: false, why: `${short(pkg)} is installed but failed to load (${msg})`, cause };
  }
  if (tf.findBackend('tensorflow') === null && tf.findBackendFactory('tensorflow') === null) {
    return { ok: false, why: `${short(pkg)} loaded but registered no 'tensorflow' backend (version mismatch with @tensorflow/tfjs ${tf.version_core}?)` };
  }
  return { ok: true };
}

/** Registers and starts the webgpu backend; the result says why not when it cannot. */
async function loadWebGpu(softwareAllowed: boolean): Promise<{ ok: true; adapter: WebGpuAdapterInfo } | { ok: false; why: string; hint?: string; cause?: unknown }> {
  const nodes = softwareAllowed || webGpuHooked ? true : gpuDeviceNodes();
  if (nodes !== true && nodes.length === 0) {
    return { ok: false, why: 'webgpu: no GPU device (/dev/nvidia*, /dev/dri/renderD*)' };
  }
  const probe = await probeWebGpuAdapter();
  if (!probe.ok) return { ok: false, why: probe.why, hint: probe.hint };
  if (probe.adapter.software && !softwareAllowed) {
    return { ok: false, why: `webgpu: only a software adapter (${adapterLine(probe.adapter)}), which auto does not use (--backend webgpu does)` };
  }
  try {
    const adapter = await registerWebGpuBackend();
    await activate('webgpu');
    return { ok: true, adapter };
  } catch (cause) {
    shutdownWebGpu();
    const msg = cause instanceof Error ? cause.message.split('\n')[0] : String(cause);
    return { ok: false, why: `webgpu: the ${adapterLine(probe.adapter)} adapter failed to start (${msg})`, cause };
  }
}

async function activate(name: BackendName): Promise<void> {
  if (name === 'wasm' && !wasmLoaded) {
    await import('@tensorflow/tfjs-backend-wasm');
    wasmLoaded = true;
  }
  if (name === 'wasm') registerProjectKernels();
  if (tf.getBackend() !== name || tf.findBackend(name) === null) {
    const ok = await tf.setBackend(name);
    if (!ok) throw new SoftsegError(`could not initialise the TF.js '${name}' backend`);
  }
  await tf.ready();
}

/**
 * Chooses and initialises the TF.js backend. Idempotent: a second call with the same request returns the
 * first result without re-initialising anything. Always enables TF.js production mode.
 */
export async function initBackend(options: BackendOptions = {}): Promise<BackendInfo> {
  const requested = options.backend ?? 'auto';
  if (!BACKEND_REQUESTS.includes(requested)) {
    throw new SoftsegError(`unknown backend '${String(requested)}'`, { hint: `use one of ${BACKEND_REQUESTS.join(', ')}` });
  }
  if (options.threads !== undefined && (!Number.isInteger(options.threads) || options.threads < 1)) {
    throw new SoftsegError(`threads must be a positive integer, got ${String(options.threads)}`);
  }
  if (current && current.requested === requested && tf.getBackend() === current.name) {
    const sameThreads = options.threads === undefined || current.name !== 'wasm' || planWasmThreads(options.threads).threads === current.threads;
    if (sameThreads) return current;
  }
  tf.enableProdMode();

  const tried: string[] = [];
  if (requested === 'webgpu') {
    const r = await loadWebGpu(true);
    if (!r.ok) throw new SoftsegError(`the webgpu backend is unavailable: ${r.why}`, { hint: r.hint, cause: r.cause });
    current = { name: 'webgpu', requested, reason: `webgpu requested; adapter ${adapterLine(r.adapter)}`, threads: 1, adapter: r.adapter, projectKernels: true };
    return current;
  }
  if (requested === 'auto' || requested === 'tensorflow') {
    let cause: unknown;
    // auto: tfjs-node-gpu, then WebGPU on a hardware adapter, then tfjs-node.
    const chain = requested === 'auto' ? [TFJS_NODE_GPU, 'webgpu', TFJS_NODE] : [TFJS_NODE_GPU, TFJS_NODE];
    for (const pkg of chain) {
      if (pkg === 'webgpu') {
        const r = await loadWebGpu(false);
        if (r.ok) {
          current = { name: 'webgpu', requested, reason: [...tried, `using webgpu on ${adapterLine(r.adapter)}`].join('; '), threads: 1, adapter: r.adapter, projectKernels: true };
          return current;
        }
        tried.push(r.why);
        continue;
      }
      const r = await loadTensorflow(pkg);
      if (r.ok) {
        await activate('tensorflow');
        const reason = [...tried, `using ${short(pkg)}`].join('; ');
        current = { name: 'tensorflow', requested, reason, threads: availableParallelism(), package: pkg, projectKernels: false };
        return current;
      }
      tried.push(r.why);
      cause ??= r.cause;
    }
    if (requested === 'tensorflow') {
      throw new SoftsegError(`the tensorflow backend is unavailable: ${tried.join('; ')}`, { hint: TENSORFLOW_INSTALL_HINT, cause });
    }
  }

  const name: BackendName = requested === 'cpu' ? 'cpu' : 'wasm';
  let threads = 1;
  if (name === 'wasm') {
    const t = await configureWasmThreads(options.threads);
    if (t.note) tried.push(t.note);
    await activate(name);
    threads = threadedWasmThreads() ?? t.threads;
  } else {
    await activate(name);
    if (options.threads !== undefined && options.threads > 1) tried.push('the cpu backend is single-threaded');
  }
  const reason = requested === 'auto' ? [...tried, `using ${name}`].join('; ') : [`${name} requested`, ...tried].join('; ');
  current = { name, requested, reason, threads, projectKernels: name === 'wasm', package: undefined };
  return current;
}

/**
 * Releases what keeps a process alive or holds memory after training: with webgpu, disposes the backend and
 * destroys its device; with threaded wasm, disposes the backend (its tensors become invalid) and stops its
 * worker threads. Safe to call always; a later `initBackend` starts
 * afresh. A threaded process also exits by itself (its pool threads do not hold the event loop open).
 */
export function shutdownBackend(): void {
  if (current?.name === 'webgpu' || tf.findBackendFactory('webgpu') !== null) {
    shutdownWebGpu();
    current = undefined;
  }
  if (threadedWasmThreads() === undefined) return;
  shutdownThreadedWasm();
  current = undefined;
}

/** The result of the last successful `initBackend`, if any. */
export function currentBackend(): BackendInfo | undefined {
  return current;
}
