// `softseg distill`: cache misses run the teacher and are written; a full cache needs no teacher run.
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createModel } from '../../src/models/registry.js';
import { saveRunModel } from '../../src/engine/trainer.js';
import { generateShapesDataset } from '../../src/data/synthetic.js';
import { IMAGENET_NORMALIZATION } from '../../src/augment/normalize.js';
import { openCache } from '../../src/cache/store.js';
import { useBackend } from '../helpers/backend.js';
import { softseg } from '../helpers/cli.js';

let root = '';

before(async () => {
  root = await mkdtemp(join(tmpdir(), 'softseg-distill-'));
  await generateShapesDataset(join(root, 'data'), { count: 6, size: 32, numClasses: 4, seed: 2 });
  await generateShapesDataset(join(root, 'extra'), { count: 4, size: 32, numClasses: 4, seed: 3, unlabeled: true });
  await useBackend('cpu');
  const teacher = createModel('unet-lite', { numClasses: 4, width: 0.25, seed: 5 });
  await saveRunModel(teacher, join(root, 'teacher', 'model'), { architecture: 'unet-lite', numClasses: 4, normalization: IMAGENET_NORMALIZATION });
  teacher.dispose();
});

test('distill labels cache misses on the fly, records the teacher, and then trains from the cache alone', async () => {
  const common = ['--teacher', join(root, 'teacher'), '--data', join(root, 'data'), '--crop', '32', '--batch-size', '4', '--backend', 'wasm', '--json'];
  const first = await softseg('distill', ...common, '--cache', join(root, 'cache'), '--unlabeled', join(root, 'extra'), '--out', join(root, 'kd'), '--steps', '3', '--temperature', '2');
  assert.equal(first.code, 0, first.stderr);
  const r = JSON.parse(first.stdout);
  assert.equal(r.steps, 3);
  assert.equal(r.cacheMisses, 10, 'every labeled and unlabeled image was labelled once');
  const info = await openCache(join(root, 'cache')).info();
  assert.equal(info.entries, 10);
  const meta = JSON.parse(await readFile(join(root, 'kd', 'model', 'softseg.json'), 'utf8'));
  assert.equal(meta.recipe, 'distill');
  assert.equal(meta.teacher.fingerprint, r.teacher.fingerprint);
  assert.equal(meta.teacher.temperature, 2);

  const second = await softseg('distill', ...common, '--cache', join(root, 'cache'), '--out', join(root, 'kd2'), '--steps', '2', '--no-teacher');
  assert.equal(second.code, 0, second.stderr);
  assert.equal(JSON.parse(second.stdout).cacheMisses, 0);

  const empty = await softseg('distill', ...common, '--cache', join(root, 'empty-cache'), '--out', join(root, 'kd3'), '--steps', '2', '--no-teacher');
  assert.notEqual(empty.code, 0);
  assert.match(empty.stderr, /no cached teacher output for shape_000\d/);
});
