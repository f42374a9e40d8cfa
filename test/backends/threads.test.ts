// Opt-in wasm threads: planning against the machine, the threaded backend agreeing with the cpu backend, the
// project kernel suite on the threaded binary, and processes that used threads exiting by themselves.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import * as tf from '@tensorflow/tfjs';
import { initBackend, shutdownBackend } from '../../src/backends/select.js';
import {
  configureWasmThreads,
  MAX_WASM_THREADS,
  planWasmThreads,
  setThreadedWasmForTesting,
  threadedWasmInstalled,
  threadedWasmThreads,
} from '../../src/backends/threads.js';
import { SoftsegError } from '../../src/errors.js';
import { repoRoot } from '../helpers/backend.js';

const cores = availableParallelism();
const noThreads = cores < 2 ? `this machine has ${cores} logical core; wasm threads need at least 2` : false;
const threadsTs = pathToFileURL(join(repoRoot, 'src/backends/threads.ts')).href;
const selectTs = pathToFileURL(join(repoRoot, 'src/backends/select.ts')).href;

interface ChildResult { code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string; exitedAfterMarkMs?: number }

/** Runs node with tsx; `mark` is a stdout line after which the time to exit is measured. */
function runNode(args: string[], opts: { timeoutMs: number; mark?: string }): Promise<ChildResult> {
  return new Promise((resolve, reject) => {
    // Without NODE_TEST_CONTEXT a test file run by the child reports plain TAP instead of the runner's protocol.
    const env = { ...process.env };
    delete env.NODE_TEST_CONTEXT;
    const child = spawn(process.execPath, ['--import', 'tsx', ...args], { cwd: repoRoot, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    let markedAt: number | undefined;
    child.stdout.on('data', (d: Buffer) => {
      stdout += d.toString();
      if (opts.mark !== undefined && markedAt === undefined && stdout.includes(opts.mark)) markedAt = performance.now();
    });
    child.stderr.on('data', (d: Buffer) => { stderr += d.toString(); });
    const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs);
    child.on('error', reject);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr, exitedAfterMarkMs: markedAt === undefined ? undefined : performance.now() - markedAt });
    });
  });
}

describe('planWasmThreads', () => {
  test('1 thread (or none asked) is the stock backend', () => {
    assert.deepEqual(planWasmThreads(undefined, 8), { threads: 1 });
    assert.deepEqual(planWasmThreads(1, 1), { threads: 1 });
  });

  test('a request within the machine is granted', () => {
    assert.deepEqual(planWasmThreads(2, 2), { threads: 2 });
    assert.deepEqual(planWasmThreads(3, 16), { threads: 3 });
  });

  test('more than the cores, or than the backend supports, is capped with a reason', () => {
    assert.deepEqual(planWasmThreads(4, 2), { threads: 2, note: '4 threads requested, but this machine has 2 logical cores; using 2' });
    assert.deepEqual(planWasmThreads(32, 64), {
      threads: MAX_WASM_THREADS,
      note: `32 threads requested, but the wasm backend uses at most ${MAX_WASM_THREADS}; using ${MAX_WASM_THREADS}`,
    });
    assert.deepEqual(planWasmThreads(2, 1), { threads: 1, note: '2 threads requested, but this machine has 1 logical core; using 1' });
  });

  test('bad counts are SoftsegErrors', () => {
    assert.throws(() => planWasmThreads(0, 4), SoftsegError);
    assert.throws(() => planWasmThreads(2.5, 4), SoftsegError);
  });
});

describe('threaded wasm in this process', { skip: noThreads }, () => {
  test('a threaded start that fails falls back to 1 thread, says why, and leaves nothing running', async () => {
    // A "worker script" module that is not JavaScript: every pthread worker dies while starting.
    setThreadedWasmForTesting({ workerScript: join(repoRoot, 'node_modules/@tensorflow/tfjs-backend-wasm/wasm-out/tfjs-backend-wasm-threaded-simd.d.ts') });
    const listenersBefore = process.listenerCount('uncaughtException');
    try {
      const plan = await configureWasmThreads(2);
      assert.equal(plan.threads, 1);
      assert.match(plan.note ?? '', /^2 threads requested, but threaded wasm failed to start \(a pthread worker failed: .*\); using 1$/);
    } finally {
      setThreadedWasmForTesting();
    }
    assert.equal(threadedWasmInstalled(), false);
    assert.equal(process.listenerCount('uncaughtException'), listenersBefore, 'no listener left behind');
    await new Promise((r) => setTimeout(r, 200)); // late worker errors must not crash the process
  });

  test('initBackend({ threads: 2 }) runs 2 threads and matches the cpu backend', async () => {
    const info = await initBackend({ backend: 'wasm', threads: 2 });
    assert.equal(info.name, 'wasm');
    assert.equal(info.threads, 2);
    assert.equal(info.reason, 'wasm requested');
    assert.equal(threadedWasmThreads(), 2, 'XNNPACK pool size');
    assert.ok(threadedWasmInstalled());

    const x = tf.tensor4d(Float32Array.from({ length: 2 * 16 * 16 * 8 }, (_, i) => Math.sin(i)), [2, 16, 16, 8]);
    const w = tf.tensor4d(Float32Array.from({ length: 3 * 3 * 8 * 16 }, (_, i) => Math.cos(i) / 9), [3, 3, 8, 16]);
    const f = (a: tf.Tensor4D, b: tf.Tensor4D): tf.Tensor => tf.relu(tf.conv2d(a, b, 1, 'same')).square().mean();
    const run = (): Float32Array[] => {
      const g = tf.grads(f as (...t: tf.Tensor[]) => tf.Tensor)([x, w]);
      const out = [tf.conv2d(x, w, 1, 'same').dataSync() as Float32Array, ...g.map((t) => t.dataSync() as Float32Array)];
      tf.dispose(g);
      return out;
    };
    const threaded = run();
    await tf.setBackend('cpu');
    const xc = tf.tensor4d(x.dataSync(), x.shape);
    const wc = tf.tensor4d(w.dataSync(), w.shape);
    const g = tf.grads(f as (...t: tf.Tensor[]) => tf.Tensor)([xc, wc]);
    const oracle = [tf.conv2d(xc, wc, 1, 'same').dataSync() as Float32Array, ...g.map((t) => t.dataSync() as Float32Array)];
    tf.dispose([xc, wc, ...g]);
    await tf.setBackend('wasm');
    for (let k = 0; k < oracle.length; k++) {
      let num = 0;
      let den = 1e-12;
      for (let i = 0; i < oracle[k].length; i++) {
        num = Math.max(num, Math.abs(threaded[k][i] - oracle[k][i]));
        den = Math.max(den, Math.abs(oracle[k][i]));
      }
      assert.ok(num / den < 1e-4, `output ${k}: relative error ${num / den}`);
    }
    tf.dispose([x, w]);
  });

  test('the thread count is fixed for the process: another request keeps it and says so', async () => {
    const info = await initBackend({ backend: 'wasm', threads: 1 });
    assert.equal(info.threads, 2);
    assert.match(info.reason, /1 threads requested, but this process already runs the wasm backend with 2 threads; keeping 2/);
  });

  test('shutdownBackend disposes the threaded backend; initBackend starts it again', async () => {
    shutdownBackend();
    assert.equal(threadedWasmInstalled(), false);
    assert.equal(tf.engine().registry.wasm, undefined, 'backend disposed');
    const info = await initBackend({ backend: 'wasm', threads: 2 });
    assert.equal(info.threads, 2);
    assert.equal(tf.sum(tf.ones([64, 64])).dataSync()[0], 4096);
    shutdownBackend();
    shutdownBackend(); // idempotent
  });
});

describe('child processes with threads', { skip: noThreads }, () => {
  test('the project kernel suite passes on the threaded binary wherever it passes single-threaded', async () => {
    // kernels.test.ts selects 'wasm' itself; a preload installs the threaded factory first. Its outcome is
    // compared with a single-threaded run, so a kernel failing for unrelated reasons is not blamed on threads.
    const suite = [join(repoRoot, 'test/backends/kernels.test.ts'), '--test-reporter=tap'];
    const preload =
      `data:text/javascript,import { configureWasmThreads, threadedWasmThreads } from '${threadsTs}';` +
      'const p = await configureWasmThreads(2); if (p.threads !== 2) throw new Error(JSON.stringify(p));' +
      "process.on('exit', () => console.error('[threads at exit] ' + threadedWasmThreads()));";
    const [plain, threaded] = [await runNode(suite, { timeoutMs: 300_000 }), await runNode(['--import', preload, ...suite], { timeoutMs: 300_000 })];
    assert.match(threaded.stderr, /\[threads at exit\] 2/, `the suite did not run on the 2-thread backend:\n${threaded.stderr.slice(-3000)}`);
    const outcomes = (tap: string): Map<string, boolean> =>
      new Map([...tap.matchAll(/^\s*(ok|not ok) \d+ - (.*)$/gm)].map((m) => [m[2], m[1] === 'ok'] as [string, boolean]));
    const before = outcomes(plain.stdout);
    const after = outcomes(threaded.stdout);
    assert.ok(before.size >= 9, `single-threaded run reported ${before.size} tests:\n${plain.stdout.slice(-2000)}`);
    assert.deepEqual([...after.keys()].sort(), [...before.keys()].sort(), 'same tests ran');
    const regressions = [...before].filter(([name, ok]) => ok && !after.get(name)).map(([name]) => name);
    assert.deepEqual(regressions, [], `fail only with threads:\n${threaded.stdout.slice(-4000)}`);
    if (plain.code === 0) assert.equal(threaded.code, 0, threaded.stderr.slice(-2000));
  });

  for (const shutdown of [false, true]) {
    test(`a process that trained with threads exits by itself${shutdown ? ' (after shutdownBackend)' : ''}`, async () => {
      const script = [
        `import * as tf from '@tensorflow/tfjs';`,
        `import { initBackend, shutdownBackend } from '${selectTs}';`,
        `const info = await initBackend({ backend: 'wasm', threads: 2 });`,
        `const w = tf.variable(tf.randomNormal([3, 3, 3, 8]));`,
        `const x = tf.randomNormal([2, 16, 16, 3]);`,
        `const opt = tf.train.adam(0.01);`,
        `for (let i = 0; i < 2; i++) opt.minimize(() => tf.conv2d(x, w, 1, 'same').square().mean());`,
        `console.log('trained threads=' + info.threads);`,
        shutdown ? 'shutdownBackend();' : '',
      ].join('\n');
      const r = await runNode(['--input-type=module', '-e', script], { timeoutMs: 120_000, mark: 'trained' });
      assert.equal(r.signal, null, `killed (hung?):\n${r.stdout}\n${r.stderr.slice(-2000)}`);
      assert.equal(r.code, 0, r.stderr.slice(-2000));
      assert.match(r.stdout, /trained threads=2/);
      assert.ok(r.exitedAfterMarkMs !== undefined && r.exitedAfterMarkMs < 5000, `exited ${r.exitedAfterMarkMs} ms after training`);
    });
  }
});
