// Issue 13 §4: a truncated image (valid header, cut-off data) in the labeled set or an unlabeled folder is found
// before training starts — named, one line per problem — and --skip-bad trains without it, naming it.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { initBackend, type BackendInfo } from '../../src/backends/select.js';
import { SoftsegError } from '../../src/errors.js';
import { distillFixture } from '../helpers/distill-fixture.js';
import { DISTILL_DEFAULTS, trainDistill } from '../../src/recipes/distill.js';
import { TRAIN_DEFAULTS, trainSupervised } from '../../src/recipes/supervised.js';

let root = '';
let backend: BackendInfo;

async function truncate(path: string): Promise<void> {
  const bytes = await readFile(path);
  await writeFile(path, bytes.subarray(0, Math.floor(bytes.length * 0.6)));
}

before(async () => {
  backend = await initBackend({ backend: 'wasm' });
  root = await distillFixture('softseg-bad-files-', { labeled: 6, unlabeled: 6, numClasses: 3 });
});
after(async () => {
  await rm(root, { recursive: true, force: true });
});

const isProblems = (file: string) => (err: unknown) =>
  err instanceof SoftsegError && /^1 problem\(s\) in /.test(err.message) && err.details?.length === 1 && err.details[0]!.startsWith(`${file}: cannot decode image`);

test('train: a truncated image stops the run before its first step; --skip-bad trains without it and names it', async () => {
  const data = join(root, 'data');
  const bad = join(data, 'images', 'shape_0004.png');
  await truncate(bad);
  const config = { ...TRAIN_DEFAULTS, data, model: 'mobile-unet', width: 0.25, crop: 32, batchSize: 2, steps: 6, seed: 1 };
  await assert.rejects(trainSupervised({ ...config, out: join(root, 'train-stop') }, { backend, version: 'test' }), isProblems(bad));
  assert.ok(!existsSync(join(root, 'train-stop', 'checkpoints')), 'no step ran');
  const warnings: string[] = [];
  // 6 steps of 2 with 5 items: every item is met, the truncated one would be too.
  const r = await trainSupervised({ ...config, out: join(root, 'train-skip'), skipBad: true }, { backend, version: 'test', onWarning: (w) => warnings.push(w) });
  assert.equal(r.result.steps, 6);
  assert.ok(warnings.some((w) => /skipped 1 bad item\(s\) \(--skip-bad\)/.test(w)), warnings.join('\n'));
  assert.ok(warnings.some((w) => w.startsWith(`skipped ${bad}: cannot decode image`)), warnings.join('\n'));
  await writeFile(bad, await readFile(join(data, 'images', 'shape_0000.png')));
});

test('distill: a truncated unlabeled image stops the run before its first step; --skip-bad skips it and names it', async () => {
  const bad = join(root, 'extra', 'images', 'shape_0001.png');
  await truncate(bad);
  const config = {
    ...DISTILL_DEFAULTS, data: join(root, 'data'), unlabeled: [join(root, 'extra')], teacher: join(root, 'teacher'), cache: join(root, 'cache'),
    model: 'mobile-unet', width: 0.25, crop: 32, batchSize: 4, steps: 6, seed: 1,
  };
  await assert.rejects(trainDistill({ ...config, out: join(root, 'kd-stop') }, { backend, version: 'test' }), isProblems(bad));
  assert.ok(!existsSync(join(root, 'kd-stop', 'checkpoints')), 'no step ran');
  const warnings: string[] = [];
  const r = await trainDistill({ ...config, out: join(root, 'kd-skip'), skipBad: true }, { backend, version: 'test', onWarning: (w) => warnings.push(w) });
  assert.equal(r.result.steps, 6);
  assert.ok(warnings.some((w) => w.startsWith(`skipped ${bad}: cannot decode image`)), warnings.join('\n'));
});
