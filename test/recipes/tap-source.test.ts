// RecipeEnv.tapSource (what bench/parity/replay.ts records a run's batches with): it sees every batch the engine
// trains on, in order, and watching changes nothing about the run.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { initBackend, type BackendInfo } from '../../src/backends/select.js';
import type { HostBatch } from '../../src/engine/trainer.js';
import { TRAIN_DEFAULTS, trainSupervised } from '../../src/recipes/supervised.js';
import { distillFixture } from '../helpers/distill-fixture.js';

let root = '';
let backend: BackendInfo;

before(async () => {
  backend = await initBackend({ backend: 'wasm' });
  root = await distillFixture('softseg-tap-', { labeled: 6, unlabeled: 0, numClasses: 3 });
});
after(async () => {
  await rm(root, { recursive: true, force: true });
});

test('tapSource sees every batch the run trains on, and tapping changes nothing', async () => {
  const config = { ...TRAIN_DEFAULTS, data: join(root, 'data'), model: 'mobile-unet', width: 0.25, crop: 32, batchSize: 2, steps: 4, seed: 3, checkpointEvery: 100 };
  const seen: HostBatch[] = [];
  const tapped = await trainSupervised({ ...config, out: join(root, 'tapped') }, {
    backend, version: 'test',
    tapSource: (s) => ({ ...s, next: async () => { const b = await s.next(); seen.push({ ...b, images: b.images.slice(), masks: b.masks?.slice() }); return b; } }),
  });
  const plain = await trainSupervised({ ...config, out: join(root, 'plain') }, { backend, version: 'test' });
  assert.equal(seen.length, 4);
  for (const b of seen) {
    assert.equal(b.n, 2);
    assert.deepEqual(b.size, [32, 32]);
    assert.equal(b.images.length, 2 * 32 * 32 * 3);
    assert.ok(b.masks!.some((v) => v > 0 && v < 3), 'the masks hold object classes');
  }
  assert.notDeepEqual(seen[0]!.images, seen[1]!.images, 'each step gets its own batch');
  assert.equal(tapped.result.lastLoss, plain.result.lastLoss);
});
