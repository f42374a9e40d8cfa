// Backend selection: auto falls back to wasm naming what is missing; an explicit tensorflow request fails clearly.
import { afterEach, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import {
  initBackend,
  installedOptionalPackages,
  isSoftwareAdapter,
  packageStatus,
  setBackendLoaderForTesting,
  shutdownBackend,
  TENSORFLOW_INSTALL_HINT,
  type WebGpuAdapterInfo,
} from '../../src/backends/index.js';
import { SoftsegError } from '../../src/errors.js';

const absent = { installed: () => false, import: async (p: string) => { throw new Error(`should not import ${p}`); } };

afterEach(() => setBackendLoaderForTesting());

describe('initBackend', () => {
  test('auto falls back to wasm and names the absent packages', async () => {
    setBackendLoaderForTesting(absent);
    const info = await initBackend({ backend: 'auto' });
    assert.equal(info.name, 'wasm');
    assert.equal(info.requested, 'auto');
    assert.equal(info.reason, 'tfjs-node-gpu not installed; webgpu not installed; tfjs-node not installed; using wasm');
    assert.equal(info.threads, 1);
    assert.equal(info.projectKernels, true);
    assert.equal(tf.getBackend(), 'wasm');
    assert.ok(tf.getKernel('Conv2DBackpropFilter', 'wasm'), 'project kernels registered');
  });

  test('auto is idempotent', async () => {
    setBackendLoaderForTesting(absent);
    const a = await initBackend({ backend: 'auto' });
    const b = await initBackend({ backend: 'auto' });
    assert.equal(a, b);
    assert.equal(await initBackend(), b, 'auto is the default');
  });

  test('auto in this checkout (real package resolution) never throws', async () => {
    const info = await initBackend({ backend: 'auto' });
    assert.ok(['tensorflow', 'webgpu', 'wasm'].includes(info.name));
    if (info.name === 'wasm') assert.match(info.reason, /tfjs-node-gpu .*; .*webgpu.*; tfjs-node .*; using wasm/);
  });

  test('an installed package that fails to load is reported, and auto moves on', async () => {
    setBackendLoaderForTesting({
      installed: (p) => p === '@tensorflow/tfjs-node',
      import: async () => { throw new Error('libtensorflow.so.2: cannot open shared object file\nmore'); },
    });
    const info = await initBackend({ backend: 'auto' });
    assert.equal(info.name, 'wasm');
    assert.equal(
      info.reason,
      'tfjs-node-gpu not installed; webgpu not installed; tfjs-node is installed but failed to load (libtensorflow.so.2: cannot open shared object file); using wasm',
    );
  });

  test('explicit tensorflow when absent is a SoftsegError saying how to install it', async () => {
    setBackendLoaderForTesting(absent);
    await assert.rejects(initBackend({ backend: 'tensorflow' }), (err: unknown) => {
      assert.ok(err instanceof SoftsegError);
      assert.match(err.message, /tensorflow backend is unavailable: tfjs-node-gpu not installed; tfjs-node not installed/);
      assert.equal(err.hint, TENSORFLOW_INSTALL_HINT);
      assert.match(err.oneLine(), /npm install @tensorflow\/tfjs-node@4\.22\.0/);
      assert.match(err.oneLine(), /tfjs-node-gpu@4\.22\.0/);
      assert.match(err.oneLine(), /CUDA .* cuDNN/);
      return true;
    });
  });

  test('asking for threads once wasm already runs single-threaded keeps 1 thread and says why', async () => {
    setBackendLoaderForTesting(absent);
    const info = await initBackend({ backend: 'wasm', threads: 4 });
    assert.equal(info.name, 'wasm');
    assert.equal(info.threads, 1);
    assert.match(info.reason, /4 threads requested, but the single-threaded wasm backend is already initialised in this process; using 1/);
  });

  test('cpu works and bad options are SoftsegErrors', async () => {
    const info = await initBackend({ backend: 'cpu' });
    assert.equal(info.name, 'cpu');
    assert.equal(tf.getBackend(), 'cpu');
    assert.equal(info.reason, 'cpu requested');
    await assert.rejects(initBackend({ backend: 'gpu' as never }), SoftsegError);
    await assert.rejects(initBackend({ backend: 'wasm', threads: 0 }), SoftsegError);
    // Back to wasm after cpu: not served from the stale cache.
    assert.equal((await initBackend({ backend: 'wasm' })).name, 'wasm');
    assert.equal(tf.getBackend(), 'wasm');
  });
});

describe('installedOptionalPackages', () => {
  test('reports each optional package with a version when installed', () => {
    const all = installedOptionalPackages();
    assert.deepEqual(Object.keys(all).sort(), ['@tensorflow/tfjs-backend-webgpu', '@tensorflow/tfjs-node', '@tensorflow/tfjs-node-gpu', 'onnxruntime-node', 'webgpu']);
    for (const s of Object.values(all)) {
      assert.equal(typeof s.installed, 'boolean');
      if (s.installed) assert.match(s.version ?? '', /^\d+\.\d+/);
    }
  });

  test('resolves a present package without loading it, and an absent one as not installed', () => {
    const tfjs = packageStatus('@tensorflow/tfjs');
    assert.equal(tfjs.installed, true);
    assert.equal(tfjs.version, '4.22.0');
    assert.deepEqual(packageStatus('@softseg/definitely-not-a-package'), { name: '@softseg/definitely-not-a-package', installed: false });
  });
});

describe('webgpu in the backend chain (adapters simulated)', () => {
  const adapter = (over: Partial<WebGpuAdapterInfo>): WebGpuAdapterInfo => ({
    vendor: 'nvidia', architecture: 'hopper', device: '', description: 'NVIDIA H200', software: false, features: [],
    limits: { maxBufferSize: 2 ** 32, maxStorageBufferBindingSize: 2 ** 31, maxComputeWorkgroupStorageSize: 32768, maxComputeInvocationsPerWorkgroup: 1024, maxComputeWorkgroupsPerDimension: 65535, maxStorageBuffersPerShaderStage: 16 },
    ...over,
  });
  // Registers a TF.js backend named 'webgpu' that is really the cpu backend: the chain's decisions are under
  // test here, not the GPU (test/backends/webgpu.test.ts runs the real one).
  const fakeRegister = (info: WebGpuAdapterInfo) => async (): Promise<WebGpuAdapterInfo> => {
    const Cpu = tf.findBackend('cpu')!.constructor as new () => tf.KernelBackend;
    tf.registerBackend('webgpu', () => new Cpu(), 0);
    return info;
  };
  const onlyWebGpu = (p: string): boolean => p === 'webgpu';
  afterEach(() => shutdownBackend());

  test('auto chooses webgpu on a hardware adapter, after tfjs-node-gpu and before tfjs-node', async () => {
    await initBackend({ backend: 'cpu' });
    const h200 = adapter({});
    setBackendLoaderForTesting({ installed: onlyWebGpu, webgpu: { probe: async () => ({ ok: true, adapter: h200 }), register: fakeRegister(h200) } });
    const info = await initBackend({ backend: 'auto' });
    assert.equal(info.name, 'webgpu');
    assert.equal(tf.getBackend(), 'webgpu');
    assert.equal(info.reason, 'tfjs-node-gpu not installed; using webgpu on nvidia hopper (NVIDIA H200), hardware');
    assert.equal(info.adapter, h200);
    shutdownBackend();
    assert.equal(tf.findBackendFactory('webgpu'), null, 'shutdownBackend removes the webgpu backend');
  });

  test('auto never chooses a software adapter; an explicit webgpu request does', async () => {
    await initBackend({ backend: 'cpu' });
    const lavapipe = adapter({ vendor: 'mesa', architecture: 'software', description: 'llvmpipe', software: true });
    const hooks = { installed: onlyWebGpu, webgpu: { probe: async () => ({ ok: true as const, adapter: lavapipe }), register: fakeRegister(lavapipe) } };
    setBackendLoaderForTesting(hooks);
    const auto = await initBackend({ backend: 'auto' });
    assert.equal(auto.name, 'wasm');
    assert.match(auto.reason, /webgpu: only a software adapter \(mesa software \(llvmpipe\), software \(CPU\)\), which auto does not use \(--backend webgpu does\); tfjs-node not installed; using wasm$/);
    setBackendLoaderForTesting(hooks);
    const explicit = await initBackend({ backend: 'webgpu' });
    assert.equal(explicit.name, 'webgpu');
    assert.equal(explicit.reason, 'webgpu requested; adapter mesa software (llvmpipe), software (CPU)');
  });

  test('an explicit webgpu request without an adapter is a SoftsegError naming the cause and the fix', async () => {
    setBackendLoaderForTesting({
      installed: onlyWebGpu,
      webgpu: { probe: async () => ({ ok: false, why: 'no WebGPU adapter (libvulkan.so.1 not found; run scripts/install-system-deps.sh, or install libvulkan1)', hint: 'a GPU needs its driver' }) },
    });
    await assert.rejects(initBackend({ backend: 'webgpu' }), (err: unknown) => {
      assert.ok(err instanceof SoftsegError);
      assert.equal(err.oneLine(), 'the webgpu backend is unavailable: no WebGPU adapter (libvulkan.so.1 not found; run scripts/install-system-deps.sh, or install libvulkan1) — a GPU needs its driver');
      return true;
    });
    setBackendLoaderForTesting(absent);
    await assert.rejects(initBackend({ backend: 'webgpu' }), /the webgpu backend is unavailable: webgpu not installed/);
  });

  test('software adapters are recognised by Dawn\'s fallback flag or their names', () => {
    assert.equal(isSoftwareAdapter({ vendor: 'mesa', architecture: 'software', description: 'llvmpipe: Mesa 25.0.7', isFallbackAdapter: true }), true);
    assert.equal(isSoftwareAdapter({ vendor: 'google', architecture: 'swiftshader', description: 'SwiftShader Device (Subzero)' }), true);
    assert.equal(isSoftwareAdapter({ vendor: 'microsoft', description: 'Microsoft Basic Render Driver' }), true);
    assert.equal(isSoftwareAdapter({ vendor: 'nvidia', architecture: 'hopper', description: 'NVIDIA H200', isFallbackAdapter: false }), false);
    assert.equal(isSoftwareAdapter({ vendor: 'amd', architecture: 'rdna-3', description: 'AMD Radeon RX 7900 XTX (RADV NAVI31)' }), false);
  });
});
