// The WebGPU backend: TF.js's webgpu backend (@tensorflow/tfjs-backend-webgpu) on Dawn's Node bindings (the npm
// package `webgpu`, which drives the GPU through Vulkan on Linux: an NVIDIA/AMD/Intel driver's Vulkan ICD, or
// Mesa's lavapipe on the CPU). Both packages are optional dependencies; nothing here loads them until asked.
//
// We request the adapter and device ourselves rather than let tfjs-backend-webgpu do it: its factory pushes
// `['bgra8unorm-storage']` (an array) into requiredFeatures, which Dawn rejects, and we want to know (and show)
// which adapter it is before choosing it. tfjs-backend-webgpu's constructor checks `navigator.gpu`, so we define
// it while the backend lives and remove it again in `shutdownWebGpu()`.
import * as tf from '@tensorflow/tfjs';
import { readdirSync } from 'node:fs';
import { registerWebGpuKernels } from './kernels/webgpu/index.js';
import { packageStatus } from './packages.js';

export const WEBGPU_PACKAGE = 'webgpu';
const TFJS_WEBGPU_PACKAGE = '@tensorflow/tfjs-backend-webgpu';
/** The versions this project is tested with (package.json pins the same). */
const WEBGPU_VERSION = '0.6.2';

export const WEBGPU_INSTALL_HINT = `npm install ${WEBGPU_PACKAGE}@${WEBGPU_VERSION} ${TFJS_WEBGPU_PACKAGE}@4.22.0 (both are optional dependencies of softseg; the first ships Dawn's prebuilt binary)`;
/** What to do when there is no Vulkan driver. */
const VULKAN_DRIVER_HINT =
  'a GPU needs its driver with Vulkan support (NVIDIA: the proprietary driver; in containers set NVIDIA_DRIVER_CAPABILITIES to include graphics); ' +
  "for a CPU Vulkan driver (tests) run scripts/install-system-deps.sh, which installs Mesa's lavapipe";

/** The limits `softseg info` shows and that bound what the backend can run. */
const KEY_LIMITS = [
  'maxBufferSize',
  'maxStorageBufferBindingSize',
  'maxComputeWorkgroupStorageSize',
  'maxComputeInvocationsPerWorkgroup',
  'maxComputeWorkgroupsPerDimension',
  'maxStorageBuffersPerShaderStage',
] as const;

export interface WebGpuAdapterInfo {
  vendor: string;
  architecture: string;
  device: string;
  description: string;
  /** A CPU implementation (lavapipe/llvmpipe, SwiftShader, WARP): `auto` never chooses it. */
  software: boolean;
  limits: Record<(typeof KEY_LIMITS)[number], number>;
  features: string[];
}

export type AdapterProbe = { ok: true; adapter: WebGpuAdapterInfo } | { ok: false; why: string; hint: string };

// The few members of Dawn's objects this module uses (the package's own types pull in @webgpu/types globally).
interface GpuAdapterLike {
  info: { vendor: string; architecture: string; device: string; description: string; isFallbackAdapter?: boolean };
  features: Set<string>;
  limits: Record<string, number>;
  requestDevice(descriptor?: { requiredFeatures?: string[]; requiredLimits?: Record<string, number> }): Promise<GpuDeviceLike>;
}
interface GpuDeviceLike {
  destroy(): void;
  features: Set<string>;
  onuncapturederror: ((event: { error: { message: string } }) => void) | null;
}
interface GpuLike {
  requestAdapter(options?: { powerPreference?: string }): Promise<GpuAdapterLike | null>;
}
interface WebGpuModule { create(flags: string[]): GpuLike; globals: Record<string, unknown> }

type Importer = (specifier: string) => Promise<unknown>;
let importer: Importer = (specifier) => import(specifier);
let probeOverride: (() => Promise<AdapterProbe>) | undefined;
let registerOverride: (() => Promise<WebGpuAdapterInfo>) | undefined;

/**
 * Test hook: replaces how the packages are imported, the adapter probe, or the device creation and backend
 * registration (which must then register a TF.js backend named 'webgpu' itself). Pass nothing to restore.
 */
export function setWebGpuLoaderForTesting(hooks?: { import?: Importer; probe?: () => Promise<AdapterProbe>; register?: () => Promise<WebGpuAdapterInfo> }): void {
  importer = hooks?.import ?? ((specifier) => import(specifier));
  probeOverride = hooks?.probe;
  registerOverride = hooks?.register;
  probed = undefined;
}

let gpu: GpuLike | undefined;
let probed: Promise<AdapterProbe> | undefined;
/** The adapter of the last successful probe, not yet turned into a device (an adapter gives one device). */
let freshAdapter: GpuAdapterLike | undefined;
let device: GpuDeviceLike | undefined;
let active: WebGpuAdapterInfo | undefined;
let definedNavigator: 'global' | 'gpu' | undefined;

/** Whether an adapter is a CPU implementation. Dawn marks lavapipe as a fallback adapter with architecture "software". */
export function isSoftwareAdapter(info: { vendor?: string; architecture?: string; device?: string; description?: string; isFallbackAdapter?: boolean }): boolean {
  if (info.isFallbackAdapter === true) return true;
  const text = `${info.vendor ?? ''} ${info.architecture ?? ''} ${info.device ?? ''} ${info.description ?? ''}`;
  return /\b(software|llvmpipe|lavapipe|swiftshader|warp)\b|microsoft basic render/i.test(text);
}

/** Why libvulkan.so.1 cannot be loaded, or null when it can (Linux only; elsewhere Dawn uses Metal/D3D12). */
function vulkanLoaderProblem(): string | null {
  if (process.platform !== 'linux') return null;
  try {
    process.dlopen({ exports: {} } as NodeJS.Module, 'libvulkan.so.1');
  } catch (e) {
    const msg = e instanceof Error ? e.message : String(e);
    // dlopen succeeded and only Node's module registration failed: the library is there.
    if (/did not self-register|Module did not/i.test(msg)) return null;
    return 'libvulkan.so.1 not found';
  }
  return null;
}

/**
 * Linux: whether a GPU device node exists (/dev/nvidia0…, /dev/dri/renderD*). Without one only a software
 * adapter can exist, so `auto` need not load Dawn (which costs ~0.3 s and prints Vulkan warnings on stderr).
 * Elsewhere: always true (unknown).
 */
export function gpuDeviceNodes(dev = '/dev'): string[] | true {
  if (process.platform !== 'linux') return true;
  const found: string[] = [];
  try {
    for (const name of readdirSync(dev)) if (/^nvidia\d+$/.test(name)) found.push(`${dev}/${name}`);
  } catch { /* no /dev: none */ }
  try {
    for (const name of readdirSync(`${dev}/dri`)) if (name.startsWith('renderD')) found.push(`${dev}/dri/${name}`);
  } catch { /* no /dev/dri */ }
  return found;
}

function describe(adapter: GpuAdapterLike): WebGpuAdapterInfo {
  const { vendor, architecture, device: dev, description, isFallbackAdapter } = adapter.info;
  const limits = {} as WebGpuAdapterInfo['limits'];
  for (const k of KEY_LIMITS) limits[k] = Number(adapter.limits[k]);
  return {
    vendor: vendor || 'unknown',
    architecture: architecture || '',
    device: dev || '',
    description: description || '',
    software: isSoftwareAdapter({ vendor, architecture, device: dev, description, isFallbackAdapter }),
    limits,
    features: [...adapter.features].sort(),
  };
}

async function loadDawn(): Promise<WebGpuModule> {
  const m = (await importer(WEBGPU_PACKAGE)) as WebGpuModule & { default?: WebGpuModule };
  const mod = typeof m.create === 'function' ? m : m.default;
  if (mod === undefined || typeof mod.create !== 'function') throw new Error(`${WEBGPU_PACKAGE} has no create()`);
  return mod;
}

async function runProbe(): Promise<AdapterProbe> {
  for (const pkg of [WEBGPU_PACKAGE, TFJS_WEBGPU_PACKAGE]) {
    if (!packageStatus(pkg).installed) return { ok: false, why: `${pkg} not installed`, hint: WEBGPU_INSTALL_HINT };
  }
  const loader = vulkanLoaderProblem();
  if (loader !== null) {
    return { ok: false, why: `no WebGPU adapter (${loader}; run scripts/install-system-deps.sh, or install libvulkan1)`, hint: VULKAN_DRIVER_HINT };
  }
  try {
    const dawn = await loadDawn();
    gpu ??= dawn.create([]);
    const adapter = await gpu.requestAdapter({ powerPreference: 'high-performance' });
    if (adapter === null) {
      return { ok: false, why: 'no WebGPU adapter (the Vulkan loader found no usable driver; Mesa older than 23 is refused by Dawn)', hint: VULKAN_DRIVER_HINT };
    }
    freshAdapter = adapter;
    return { ok: true, adapter: describe(adapter) };
  } catch (cause) {
    const msg = cause instanceof Error ? cause.message.split('\n')[0] : String(cause);
    return { ok: false, why: `${WEBGPU_PACKAGE} is installed but failed to load (${msg})`, hint: WEBGPU_INSTALL_HINT };
  }
}

/**
 * Finds the WebGPU adapter Dawn would use (the high-performance one), without creating a device. Cached: a later
 * call returns the same answer. Never throws; `{ ok: false, why, hint }` says what is missing.
 */
export function probeWebGpuAdapter(): Promise<AdapterProbe> {
  if (active) return Promise.resolve({ ok: true, adapter: active });
  probed ??= probeOverride ? probeOverride() : runProbe();
  return probed;
}

function defineNavigatorGpu(g: GpuLike): void {
  const holder = globalThis as { navigator?: { gpu?: unknown } };
  if (holder.navigator === undefined) {
    Object.defineProperty(globalThis, 'navigator', { value: { gpu: g }, configurable: true, writable: true });
    definedNavigator = 'global';
  } else if (holder.navigator.gpu === undefined) {
    Object.defineProperty(holder.navigator, 'gpu', { value: g, configurable: true, writable: true });
    definedNavigator = 'gpu';
  }
}

function removeNavigatorGpu(): void {
  const holder = globalThis as { navigator?: { gpu?: unknown } };
  if (definedNavigator === 'global') delete holder.navigator;
  else if (definedNavigator === 'gpu' && holder.navigator) delete holder.navigator.gpu;
  definedNavigator = undefined;
}

/**
 * Creates the device on the probed adapter and registers TF.js's 'webgpu' backend on it (not yet active:
 * `tf.setBackend('webgpu')` does that). Throws with the probe's reason when there is no adapter.
 */
export async function registerWebGpuBackend(): Promise<WebGpuAdapterInfo> {
  if (active && tf.findBackendFactory('webgpu') !== null) return active;
  if (registerOverride) return (active = await registerOverride());
  const probe = await probeWebGpuAdapter();
  if (!probe.ok) throw Object.assign(new Error(probe.why), { hint: probe.hint });
  if (freshAdapter === undefined) {
    // The adapter was used up by an earlier device (after a shutdown): ask again.
    probed = undefined;
    const again = await probeWebGpuAdapter();
    if (!again.ok || freshAdapter === undefined) throw new Error(again.ok ? 'no WebGPU adapter' : again.why);
  }
  const adapter = freshAdapter as GpuAdapterLike;
  freshAdapter = undefined;
  // Import the TF.js backend before navigator.gpu exists, so that it does not register its own factory.
  const tfwebgpu = (await importer(TFJS_WEBGPU_PACKAGE)) as { WebGPUBackend?: new (d: unknown, info?: unknown) => tf.KernelBackend; default?: { WebGPUBackend?: new (d: unknown, info?: unknown) => tf.KernelBackend } };
  const WebGPUBackend = tfwebgpu.WebGPUBackend ?? tfwebgpu.default?.WebGPUBackend;
  if (WebGPUBackend === undefined) throw new Error(`${TFJS_WEBGPU_PACKAGE} exports no WebGPUBackend`);
  registerWebGpuKernels();
  const dawn = await loadDawn();
  Object.assign(globalThis, dawn.globals); // GPUBufferUsage, GPUMapMode, … which the backend uses as globals
  // The limits tfjs-backend-webgpu's own factory asks for (the adapter's maxima), and timestamps for profiling.
  const requiredLimits: Record<string, number> = {};
  for (const k of ['maxComputeWorkgroupStorageSize', 'maxComputeWorkgroupsPerDimension', 'maxStorageBufferBindingSize', 'maxBufferSize', 'maxComputeWorkgroupSizeX', 'maxComputeInvocationsPerWorkgroup']) {
    requiredLimits[k] = adapter.limits[k]!;
  }
  const requiredFeatures = adapter.features.has('timestamp-query') ? ['timestamp-query'] : [];
  device = await adapter.requestDevice({ requiredFeatures, requiredLimits });
  // A shader that fails to compile or a bad dispatch is reported here, not to the caller, and leaves garbage
  // in the output: keep the first such error and make the next read fail with it (see patchReads).
  device.onuncapturederror = (event) => {
    deviceError ??= event.error.message.split('\n').map((l) => l.trim()).filter(Boolean).slice(0, 3).join(' ');
  };
  defineNavigatorGpu(gpu!);
  const info = describe(adapter);
  const dev = device;
  patchReads(WebGPUBackend);
  if (tf.findBackendFactory('webgpu') !== null) tf.removeBackend('webgpu');
  // Priority 0: never the default backend by accident; initBackend selects it explicitly.
  tf.registerBackend('webgpu', () => new WebGPUBackend(dev, adapter.info), 0);
  active = info;
  return info;
}

const patched = new WeakSet<object>();
let deviceError: string | undefined;

/** The first uncaptured WebGPU error since the last call (and clears it). */
function takeWebGpuError(): string | undefined {
  const e = deviceError;
  deviceError = undefined;
  return e;
}

/**
 * - Synchronous reads (dataSync, arraySync, bufferSync) of data on the GPU need OffscreenCanvas, which Node
 *   lacks: the stock error is "OffscreenCanvas is not defined". Replace it with one that says what to do
 *   instead. (Data already on the CPU — just uploaded or read before — is still returned.)
 * - Async reads throw when the device reported an error since the last read, rather than return garbage.
 */
function patchReads(Backend: new (...args: never[]) => tf.KernelBackend): void {
  const proto = Backend.prototype as unknown as {
    readSync(dataId: object): unknown;
    read(dataId: object): Promise<unknown>;
    tensorMap: { get(id: object): { values?: unknown; dtype: string; complexTensorInfos?: unknown } };
  };
  if (patched.has(proto)) return;
  const originalRead = proto.read;
  proto.read = async function (this: typeof proto, dataId: object) {
    const values = await originalRead.call(this, dataId);
    const error = takeWebGpuError();
    if (error !== undefined) throw new Error(`webgpu device error: ${error}`);
    return values;
  };
  const original = proto.readSync;
  proto.readSync = function (this: typeof proto, dataId: object) {
    const data = this.tensorMap.get(dataId);
    if (data.values == null && data.dtype !== 'string' && data.complexTensorInfos == null && typeof (globalThis as { OffscreenCanvas?: unknown }).OffscreenCanvas === 'undefined') {
      throw new Error('the webgpu backend cannot read GPU data synchronously in Node (dataSync/arraySync/bufferSync): use await tensor.data() or tensor.array()');
    }
    return original.call(this, dataId);
  };
  patched.add(proto);
}

/** The adapter of the registered webgpu backend, if any. */
export function activeWebGpuAdapter(): WebGpuAdapterInfo | undefined {
  return active;
}

/**
 * Disposes the webgpu backend (its tensors become invalid), destroys the device and removes `navigator.gpu`,
 * so that nothing of Dawn keeps the process alive. Safe to call when there is none.
 */
export function shutdownWebGpu(): void {
  if (active === undefined) return;
  if (tf.findBackendFactory('webgpu') !== null) tf.removeBackend('webgpu');
  device?.destroy();
  device = undefined;
  deviceError = undefined;
  active = undefined;
  probed = undefined;
  removeNavigatorGpu();
}

/** One line naming an adapter, e.g. "nvidia ampere (NVIDIA A100), hardware". */
export function adapterLine(a: WebGpuAdapterInfo): string {
  const what = [a.vendor, a.architecture].filter(Boolean).join(' ');
  const name = a.description || a.device;
  return `${what}${name ? ` (${name})` : ''}, ${a.software ? 'software (CPU)' : 'hardware'}`;
}
