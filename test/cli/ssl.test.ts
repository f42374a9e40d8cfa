// `softseg ssl`: a fixed teacher through the cache and a mean teacher from --init both write a run that
// records the teacher; bad flag combinations fail with one clear line.
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { createModel } from '../../src/models/registry.js';
import { saveRunModel } from '../../src/engine/trainer.js';
import { generateShapesDataset } from '../../src/data/synthetic.js';
import { IMAGENET_NORMALIZATION } from '../../src/augment/normalize.js';
import { openCache } from '../../src/cache/store.js';
import { repoRoot, useBackend } from '../helpers/backend.js';

const exec = promisify(execFile);
const bin = join(repoRoot, 'bin/run.js');
let root = '';

async function softseg(...args: string[]) {
  try {
    const { stdout, stderr } = await exec(process.execPath, [bin, ...args], { cwd: repoRoot });
    return { code: 0, stdout, stderr };
  } catch (e) {
    const err = e as { code: number; stdout: string; stderr: string };
    return { code: err.code, stdout: err.stdout, stderr: err.stderr };
  }
}

before(async () => {
  root = await mkdtemp(join(tmpdir(), 'softseg-ssl-cli-'));
  await generateShapesDataset(join(root, 'data'), { count: 4, size: 32, numClasses: 4, seed: 2 });
  await generateShapesDataset(join(root, 'extra'), { count: 4, size: 32, numClasses: 4, seed: 3, unlabeled: true });
  await useBackend('cpu');
  const teacher = createModel('unet-lite', { numClasses: 4, width: 0.25, seed: 5 });
  await saveRunModel(teacher, join(root, 'teacher', 'model'), { architecture: 'unet-lite', numClasses: 4, normalization: IMAGENET_NORMALIZATION });
  teacher.dispose();
  // A stand-in for a supervised run of the student architecture.
  const sup = createModel('mobile-unet', { numClasses: 4, width: 0.25, seed: 6 });
  await saveRunModel(sup, join(root, 'sup', 'model'), { architecture: 'mobile-unet', numClasses: 4, normalization: IMAGENET_NORMALIZATION });
  sup.dispose();
});

const common = () => ['--data', join(root, 'data'), '--unlabeled', join(root, 'extra'), '--model', 'mobile-unet', '--width', '0.25', '--crop', '32', '--batch-size', '4', '--backend', 'wasm', '--json'];

test('ssl with a fixed teacher labels the unlabeled images into the cache and records the teacher', async () => {
  const r = await softseg('ssl', ...common(), '--teacher', join(root, 'teacher'), '--cache', join(root, 'cache'), '--out', join(root, 'fixed'), '--steps', '2', '--val', join(root, 'data'));
  assert.equal(r.code, 0, r.stderr);
  const out = JSON.parse(r.stdout);
  assert.equal(out.steps, 2);
  assert.equal(out.cacheMisses, 4, 'only the unlabeled images need the teacher');
  assert.equal((await openCache(join(root, 'cache')).info()).entries, 4);
  const meta = JSON.parse(await readFile(join(root, 'fixed', 'model', 'softseg.json'), 'utf8'));
  assert.equal(meta.recipe, 'ssl');
  assert.equal(meta.teacher.kind, 'fixed');
  assert.equal(meta.teacher.fingerprint, out.teacher.fingerprint);
  assert.equal(meta.teacher.cache, join(root, 'cache'));
  assert.equal(meta.ssl.pseudo, 'soft');
  assert.equal(meta.ssl.cutmix, 0.5);
  // The student's defaults are plain PyTorch's: half-pixel upsampling, AdamW decay 1e-2 on every parameter, floor
  // mask resampling (bench/README.md, *plain's choices as the teacher recipes' defaults*).
  assert.equal(meta.modelOptions.upsampling, 'half-pixel');
  const config = JSON.parse(await readFile(join(root, 'fixed', 'config.json'), 'utf8'));
  assert.deepEqual([config.upsampling, config.weightDecay, config.weightDecayAll, config.maskSampling, config.augmentation.maskSampling], ['half-pixel', 0.01, true, 'floor', 'floor']);
  const train = (await readFile(join(root, 'fixed', 'metrics.jsonl'), 'utf8')).trim().split('\n').map((l) => JSON.parse(l)).find((m) => m.type === 'train');
  for (const k of ['ce_main', 'jml_main', 'u_kl', 'u_jml', 'u_weight', 'u_dominant_share']) assert.ok(Number.isFinite(train[k]), k);
});

test('ssl with a mean teacher from --init (hard pseudo-labels) writes the run and the teacher', async () => {
  const r = await softseg('ssl', ...common(), '--ema', '0.99', '--init', join(root, 'sup'), '--pseudo', 'hard', '--cutmix', '1', '--out', join(root, 'ema'), '--steps', '2', '--no-weight-decay-all');
  assert.equal(r.code, 0, r.stderr);
  const meta = JSON.parse(await readFile(join(root, 'ema', 'model', 'softseg.json'), 'utf8'));
  // Without --upsampling the student takes --init's model's (aligned: a model saved before the option), whose
  // weights it continues; --no-weight-decay-all turns the default off.
  assert.equal(meta.modelOptions.upsampling, 'aligned');
  assert.equal(JSON.parse(await readFile(join(root, 'ema', 'config.json'), 'utf8')).weightDecayAll, false);
  assert.equal(meta.teacher.kind, 'ema');
  assert.equal(meta.teacher.momentum, 0.99);
  assert.equal(meta.teacher.init, join(root, 'sup', 'model'));
  assert.equal(meta.ssl.confidenceThreshold, 0.95);
  assert.ok(existsSync(join(root, 'ema', 'ema-teacher', 'model.json')));
});

test('ssl: bad flag combinations give one clear line', async () => {
  const noStart = await softseg('ssl', ...common(), '--ema', '0.999', '--out', join(root, 'bad'), '--steps', '1');
  assert.notEqual(noStart.code, 0);
  assert.match(noStart.stderr, /--ema needs a supervised start: --init RUN_DIR .* or --unlabeled-warmup STEPS/);
  const cut = await softseg('ssl', ...common().filter((a) => a !== '--json'), '--teacher', join(root, 'teacher'), '--cache', join(root, 'cache'), '--cutmix', 'lots', '--out', join(root, 'bad'));
  assert.equal(cut.code, 2);
  assert.match(cut.stderr, /--cutmix must be a number/);
});

test('a mean-teacher run killed (kill -9) mid-way and resumed ends exactly as an uninterrupted one: checkpoints hold the teacher', async () => {
  const args = (out: string) => ['ssl', '--data', join(root, 'data'), '--unlabeled', join(root, 'extra'), '--model', 'mobile-unet', '--width', '0.25', '--crop', '32',
    '--batch-size', '4', '--backend', 'wasm', '--ema', '0.9', '--init', join(root, 'sup'), '--out', out, '--steps', '40', '--checkpoint-every', '4', '--collapse-share', '1', '--seed', '3'];
  const whole = await softseg(...args(join(root, 'mt-whole')));
  assert.equal(whole.code, 0, whole.stderr);

  const out = join(root, 'mt-killed');
  const child = spawn(process.execPath, [bin, ...args(out)], { cwd: repoRoot, stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  // kill -9 as soon as the first checkpoint (step 4) is reported: the process gets no chance to save anything more.
  await new Promise<void>((resolveCheckpoint) => child.stderr.on('data', (d: Buffer) => {
    stderr += d.toString();
    if (/checkpoint @ \d+/.test(stderr)) resolveCheckpoint();
  }));
  child.kill('SIGKILL');
  await new Promise((r) => child.on('exit', r));
  const killedAt = JSON.parse(await readFile(join(out, 'checkpoints', 'latest.json'), 'utf8')).step as number;
  assert.ok(killedAt >= 4 && killedAt < 40, `killed after step ${killedAt}`);
  assert.ok(existsSync(join(out, 'checkpoints', `step-${String(killedAt).padStart(7, '0')}`, 'ema-teacher', 'model.json')), 'the checkpoint holds the mean teacher');

  const resumed = await softseg(...args(out), '--resume');
  assert.equal(resumed.code, 0, resumed.stderr);
  assert.doesNotMatch(resumed.stderr, /restarting the teacher/);
  assert.match(resumed.stderr, new RegExp(`resuming from .* at step ${killedAt}/40`));
  for (const file of ['model/weights.bin', 'ema-teacher/weights.bin']) {
    assert.ok((await readFile(join(out, file))).equals(await readFile(join(root, 'mt-whole', file))), `${file}: resumed = uninterrupted`);
  }
});
