// Backend selection: auto falls back to wasm naming what is missing; an explicit tensorflow request fails clearly.
import { afterEach, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import {
  initBackend,
  installedOptionalPackages,
  packageStatus,
  setBackendLoaderForTesting,
  TENSORFLOW_INSTALL_HINT,
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
    assert.equal(info.reason, 'tfjs-node-gpu not installed; tfjs-node not installed; using wasm');
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
    assert.ok(['tensorflow', 'wasm'].includes(info.name));
    if (info.name === 'wasm') assert.match(info.reason, /tfjs-node-gpu .*; tfjs-node .*; using wasm/);
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
      'tfjs-node-gpu not installed; tfjs-node is installed but failed to load (libtensorflow.so.2: cannot open shared object file); using wasm',
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
    assert.deepEqual(Object.keys(all).sort(), ['@tensorflow/tfjs-node', '@tensorflow/tfjs-node-gpu', 'onnxruntime-node']);
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
