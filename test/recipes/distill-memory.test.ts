// Issue 13 §2: a long distill run with unlabeled images holds flat memory. Before the fix every loader batch
// stayed reachable until the loader closed (~ one batch of memory per step: 7 MB at 96², 11 classes, batch 8).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { initBackend, type BackendInfo } from '../../src/backends/select.js';
import type { TrainingEvent } from '../../src/engine/trainer.js';
import { distillFixture } from '../helpers/distill-fixture.js';
import { DISTILL_DEFAULTS, trainDistill } from '../../src/recipes/distill.js';
import { settledRss } from '../helpers/memory.js';

let root = '';
let backend: BackendInfo;
const MB = 2 ** 20;

before(async () => {
  backend = await initBackend({ backend: 'wasm' });
  root = await distillFixture('softseg-distill-memory-', { labeled: 16, unlabeled: 48, numClasses: 10 });
});
after(async () => {
  await rm(root, { recursive: true, force: true });
});

test('distill --unlabeled: RSS after warm-up stays flat (step 100 vs step 400)', async () => {
  // 32², 10 classes, batch 8: a batch is ~0.45 MB of host arrays, so the old growth was ~135 MB over these
  // 300 steps; the tolerance leaves room for allocator noise and the backend's memory settling.
  const rss = new Map<number, number>();
  const onEvent = (e: TrainingEvent) => {
    if (e.type === 'step' && (e.step === 100 || e.step === 400)) rss.set(e.step, settledRss());
  };
  await trainDistill({
    ...DISTILL_DEFAULTS, data: join(root, 'data'), unlabeled: [join(root, 'extra')], teacher: join(root, 'teacher'), cache: join(root, 'cache'),
    out: join(root, 'run'), model: 'mobile-unet', width: 0.25, crop: 32, batchSize: 8, steps: 400, checkpointEvery: 1000, seed: 1,
  }, { backend, version: 'test', onEvent });
  const [at100, at400] = [rss.get(100)!, rss.get(400)!];
  const growth = (at400 - at100) / MB;
  console.log(`distill RSS: step 100 ${(at100 / MB).toFixed(1)} MB, step 400 ${(at400 / MB).toFixed(1)} MB (${growth >= 0 ? '+' : ''}${growth.toFixed(1)} MB)`);
  assert.ok(growth < 40, `RSS grew ${growth.toFixed(1)} MB from step 100 to step 400 (${(at100 / MB).toFixed(1)} → ${(at400 / MB).toFixed(1)} MB)`);
});
