// The training loop: checkpoints, resume = uninterrupted, interruption, NaN stop, metrics and best model.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { appendFile, mkdtemp, readFile, readdir, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { createModel } from '../../src/models/registry.js';
import { loadModel } from '../../src/models/io.js';
import { hardLabelObjective } from '../../src/losses/index.js';
import { Random } from '../../src/random.js';
import { train, type BatchSource, type HostBatch } from '../../src/engine/trainer.js';
import { SoftsegError } from '../../src/errors.js';
import { useBackend } from '../helpers/backend.js';

const S = 16, C = 3, N = 2;

/** Deterministic in the step: batch s is the same whether or not the run was resumed. */
function source(startStep: number): BatchSource {
  let step = startStep;
  return {
    async next(): Promise<HostBatch> {
      const rng = new Random(1000 + step++);
      const images = new Float32Array(N * S * S * 3);
      const masks = new Int32Array(N * S * S);
      for (let i = 0; i < N * S * S; i++) {
        masks[i] = rng.int(C);
        for (let c = 0; c < 3; c++) images[i * 3 + c] = (masks[i] === c ? 1 : -1) + 0.3 * rng.normal();
      }
      return { images, masks, n: N, size: [S, S] };
    },
    close() {},
  };
}

const newModel = () => createModel('mobile-unet', { numClasses: C, seed: 42 });
const objective = (out: Parameters<typeof hardLabelObjective>[0], b: { labels?: tf.Tensor3D }) => hardLabelObjective(out, b.labels!);

async function losses(runDir: string): Promise<number[]> {
  const lines = (await readFile(join(runDir, 'metrics.jsonl'), 'utf8')).trim().split('\n').map((l) => JSON.parse(l));
  return lines.filter((l) => l.type === 'train').map((l) => l.loss);
}

test('a resumed run reaches the same losses and weights as an uninterrupted one', async () => {
  await useBackend('wasm');
  const base = await mkdtemp(join(tmpdir(), 'softseg-train-'));
  const common = { objective, makeSource: source, steps: 12, logEvery: 1, checkpointEvery: 4, metadata: { test: true }, optimizer: { lr: 0.01 } };

  const a = newModel();
  await train({ ...common, runDir: join(base, 'a'), model: a });

  // Interrupted at step 4 (abort while step 4 is reported → checkpoint at 4), then resumed in a fresh model.
  const ctrl = new AbortController();
  const b1 = newModel();
  const r1 = await train({ ...common, runDir: join(base, 'b'), model: b1, signal: ctrl.signal, onEvent: (e) => { if (e.type === 'step' && e.step === 4) ctrl.abort(); } });
  assert.equal(r1.interrupted, true);
  assert.equal(r1.steps, 4);
  b1.dispose();
  const b2 = newModel();
  const r2 = await train({ ...common, runDir: join(base, 'b'), model: b2, resume: true });
  assert.equal(r2.steps, 12);

  const la = await losses(join(base, 'a')), lb = await losses(join(base, 'b'));
  assert.equal(lb.length, 12);
  la.forEach((l, i) => assert.ok(Math.abs(l - lb[i]!) <= 1e-5 * Math.abs(l), `step ${i + 1}: ${l} vs ${lb[i]}`));
  const wa = a.model.getWeights(), wb = b2.model.getWeights();
  wa.forEach((w, i) => assert.ok(tf.max(tf.abs(tf.sub(w, wb[i]!))).dataSync()[0]! < 1e-5));
  // The final model and its metadata are written; only the last two checkpoints are kept.
  assert.ok(existsSync(join(base, 'a', 'model', 'model.json')));
  assert.deepEqual(JSON.parse(await readFile(join(base, 'a', 'model', 'softseg.json'), 'utf8')).test, true);
  assert.deepEqual((await readdir(join(base, 'a', 'checkpoints'))).sort(), ['latest.json', 'step-0000008', 'step-0000012']);
  const reloaded = await loadModel(join(base, 'a', 'model'));
  reloaded.dispose();
  a.dispose();
  b2.dispose();
});

test('a resume after a kill logs each step once: records written after the checkpoint it resumes from are dropped', async () => {
  await useBackend('wasm');
  const runDir = await mkdtemp(join(tmpdir(), 'softseg-train-'));
  const common = { objective, makeSource: source, steps: 6, logEvery: 1, checkpointEvery: 4, metadata: {}, optimizer: { lr: 0.01 } };
  const m1 = newModel();
  await train({ ...common, runDir, model: m1 });
  m1.dispose();
  // As if killed after logging steps 5 and 6 (and a half-written line) but before the step-6 checkpoint was published.
  await writeFile(join(runDir, 'checkpoints', 'latest.json'), JSON.stringify({ checkpoint: 'step-0000004', step: 4 }));
  await appendFile(join(runDir, 'metrics.jsonl'), '{"type":"train","st');
  const m2 = newModel();
  const r = await train({ ...common, runDir, model: m2, resume: true });
  m2.dispose();
  assert.equal(r.steps, 6);
  const steps = (await readFile(join(runDir, 'metrics.jsonl'), 'utf8')).trim().split('\n').map((l) => JSON.parse(l)).filter((l) => l.type === 'train').map((l) => l.step);
  assert.deepEqual(steps, [1, 2, 3, 4, 5, 6]);
});

test('beforePublish runs on a complete checkpoint before latest.json names it (a kill between them leaves the previous one published)', async () => {
  await useBackend('wasm');
  const runDir = await mkdtemp(join(tmpdir(), 'softseg-train-'));
  const seen: string[] = [];
  const model = newModel();
  await train({
    objective, makeSource: source, steps: 4, logEvery: 1, checkpointEvery: 2, metadata: {}, optimizer: { lr: 0.01 }, runDir, model,
    beforePublish: async (step, dir) => {
      const published = existsSync(join(runDir, 'checkpoints', 'latest.json'))
        ? JSON.parse(await readFile(join(runDir, 'checkpoints', 'latest.json'), 'utf8')).step : null;
      seen.push(`${step}: ${(await readdir(dir)).includes('state.json') ? 'complete' : 'partial'}, latest ${published}`);
    },
  });
  model.dispose();
  assert.deepEqual(seen, ['2: complete, latest null', '4: complete, latest 2']);
});

test('evaluation picks the best model; a NaN loss stops the run with a clear error and keeps the last checkpoint', async () => {
  await useBackend('wasm');
  const runDir = await mkdtemp(join(tmpdir(), 'softseg-train-'));
  const model = newModel();
  const scores = [0.3, 0.7, 0.5];
  let evals = 0;
  const r = await train({
    runDir, model, objective, makeSource: source, steps: 6, evalEvery: 2, logEvery: 2, metadata: {},
    evaluate: async () => ({ mIoUD: scores[evals++]! }),
  });
  assert.equal(r.bestMetric, 0.7);
  assert.equal(r.bestStep, 4);
  assert.equal(JSON.parse(await readFile(join(runDir, 'best', 'softseg.json'), 'utf8')).step, 4);

  let calls = 0;
  const poisoned = (out: Parameters<typeof hardLabelObjective>[0], b: { labels?: tf.Tensor3D }) => {
    const r = hardLabelObjective(out, b.labels!);
    return ++calls >= 4 ? { total: tf.mul(r.total, NaN) as tf.Scalar, parts: r.parts } : r;
  };
  const nanDir = await mkdtemp(join(tmpdir(), 'softseg-train-'));
  await assert.rejects(
    train({ runDir: nanDir, model, objective: poisoned, makeSource: source, steps: 10, checkpointEvery: 2, metadata: {} }),
    (e: unknown) => e instanceof SoftsegError && /training stopped at step 4: the loss became NaN.*; the last good checkpoint \(step 2\) is kept$/.test(e.message),
  );
  assert.equal(JSON.parse(await readFile(join(nanDir, 'checkpoints', 'latest.json'), 'utf8')).step, 2);
  // A NaN before the first checkpoint: the message does not claim one is kept.
  const noneDir = await mkdtemp(join(tmpdir(), 'softseg-train-'));
  await assert.rejects(
    train({ runDir: noneDir, model, objective: poisoned, makeSource: source, steps: 10, checkpointEvery: 5, metadata: {} }),
    (e: unknown) => e instanceof SoftsegError && /training stopped at step 1: the loss became NaN.*; no checkpoint was written before it$/.test(e.message),
  );
  model.dispose();
});
