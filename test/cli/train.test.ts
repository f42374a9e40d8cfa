// `softseg train` as a user runs it: a generated data set, a short run, resume after a kill, bad input.
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { generateShapesDataset } from '../../src/data/synthetic.js';
import { repoRoot } from '../helpers/backend.js';
import { bin, softseg } from '../helpers/cli.js';

let root = '';

const trainLines = async (runDir: string) =>
  (await readFile(join(runDir, 'metrics.jsonl'), 'utf8')).trim().split('\n').map((l) => JSON.parse(l)).filter((l) => l.type === 'train');

before(async () => {
  root = await mkdtemp(join(tmpdir(), 'softseg-cli-train-'));
  await generateShapesDataset(join(root, 'shapes'), { splits: { train: 16, val: 4 }, size: 32, numClasses: 4, seed: 3 });
});

test('train writes the model, metadata, checkpoints and metrics; --json reports the result', async () => {
  const out = join(root, 'run');
  const { code, stdout, stderr } = await softseg('train', '--data', join(root, 'shapes/train'), '--val', join(root, 'shapes/val'), '--model', 'mobile-unet',
    '--out', out, '--steps', '6', '--crop', '32', '--batch-size', '4', '--backend', 'wasm', '--json');
  assert.equal(code, 0, stderr);
  const result = JSON.parse(stdout);
  assert.equal(result.steps, 6);
  assert.equal(result.interrupted, false);
  assert.ok(typeof result.bestMetric === 'number');
  const meta = JSON.parse(await readFile(join(out, 'model', 'softseg.json'), 'utf8'));
  assert.equal(meta.architecture, 'mobile-unet');
  assert.equal(meta.numClasses, 4);
  assert.equal(meta.backend.name, 'wasm');
  assert.deepEqual(meta.normalization.mean, [0.485, 0.456, 0.406]);
  assert.equal(meta.training.steps, 6);
  for (const f of ['model/model.json', 'model/weights.bin', 'best/model.json', 'config.json', 'checkpoints/latest.json']) assert.ok(existsSync(join(out, f)), f);
  assert.equal((await trainLines(out)).at(-1).step, 6);
});

test('a config file sets options and flags override it', async () => {
  const out = join(root, 'run-config');
  const cfg = join(root, 'train.yaml');
  await writeFile(cfg, `data: ${join(root, 'shapes/train')}\nmodel: mobile-unet\nsteps: 3\ncrop: 32\nbatch-size: 8\nlr: 0.01\n`);
  const { code, stderr } = await softseg('train', '--config', cfg, '--out', out, '--batch-size', '4', '--backend', 'wasm');
  assert.equal(code, 0, stderr);
  const saved = JSON.parse(await readFile(join(out, 'config.json'), 'utf8'));
  assert.equal(saved.batchSize, 4);
  assert.equal(saved.lr, 0.01);
  assert.equal(saved.steps, 3);
  await writeFile(cfg, 'learning-rate: 3\n');
  const bad = await softseg('train', '--config', cfg, '--out', out);
  assert.notEqual(bad.code, 0);
  assert.match(bad.stderr, /unknown option "learningRate"/);
});

test('a run killed mid-training resumes with --resume alone (its options from config.json) and ends as the uninterrupted run', async () => {
  const out = join(root, 'run-killed');
  const args = [bin, 'train', '--data', join(root, 'shapes/train'), '--model', 'mobile-unet', '--out', out, '--steps', '40', '--crop', '32', '--batch-size', '4', '--checkpoint-every', '2', '--backend', 'wasm'];
  const child = spawn(process.execPath, args, { cwd: repoRoot, stdio: 'ignore' });
  // Kill -9 once a checkpoint exists: at most the steps since it are lost, and it is never half-written.
  const deadline = Date.now() + 60_000;
  while (!existsSync(join(out, 'checkpoints', 'latest.json')) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
  child.kill('SIGKILL');
  await new Promise((r) => child.on('exit', r));
  const latest = JSON.parse(await readFile(join(out, 'checkpoints', 'latest.json'), 'utf8'));
  assert.ok(latest.step >= 2 && latest.step < 40);
  // --resume needs no other flag: the run's options come from its config.json (without them this would be a
  // unet-lite run of 20 steps at batch 8, and refused by the checkpoint).
  const { code, stderr } = await softseg('train', '--out', out, '--resume', '--backend', 'wasm');
  assert.equal(code, 0, stderr);
  assert.match(stderr, new RegExp(`resuming from .*step-0*${latest.step} at step ${latest.step}/40`));
  assert.doesNotMatch(stderr, /data changed/, 'the same files: no warning');
  const lines = await trainLines(out);
  assert.equal(lines.at(-1).step, 40);
  const saved = JSON.parse(await readFile(join(out, 'config.json'), 'utf8'));
  assert.deepEqual([saved.model, saved.batchSize, saved.checkpointEvery, saved.data], ['mobile-unet', 4, 2, join(root, 'shapes/train')]);
  // …and it ends exactly as the same run uninterrupted.
  const whole = join(root, 'run-whole');
  const uninterrupted = await softseg(...args.slice(1).map((a) => (a === out ? whole : a)));
  assert.equal(uninterrupted.code, 0, uninterrupted.stderr);
  assert.ok((await readFile(join(out, 'model', 'weights.bin'))).equals(await readFile(join(whole, 'model', 'weights.bin'))), 'resumed = uninterrupted');
});

test('bad input: a label out of range stops before training with the file named and a non-zero exit', async () => {
  const data = join(root, 'bad');
  await generateShapesDataset(data, { count: 4, size: 32, numClasses: 4, seed: 5 });
  const mask = new Uint8Array(32 * 32).fill(7);
  await sharp(Buffer.from(mask), { raw: { width: 32, height: 32, channels: 1 } }).toColourspace('b-w').png().toFile(join(data, 'masks', 'shape_0002.png'));
  const { code, stderr } = await softseg('train', '--data', data, '--out', join(root, 'bad-run'), '--steps', '2', '--crop', '32', '--batch-size', '2', '--backend', 'wasm');
  assert.notEqual(code, 0);
  assert.match(stderr, /masks\/shape_0002\.png: .*value 7/);
  assert.ok(!existsSync(join(root, 'bad-run', 'checkpoints')));
  const skipped = await softseg('train', '--data', data, '--out', join(root, 'bad-run'), '--steps', '2', '--crop', '32', '--batch-size', '2', '--backend', 'wasm', '--skip-bad');
  assert.equal(skipped.code, 0, skipped.stderr);
  assert.match(skipped.stderr, /skipped 1 bad item/);
});

test('a --val set or an eval set whose dataset.json declares other classes is refused before any work, naming the file; --num-classes overrides it', async () => {
  const other = join(root, 'shapes3');
  await generateShapesDataset(other, { count: 4, size: 32, numClasses: 3, seed: 6 });
  const out = join(root, 'run-val3');
  const train = await softseg('train', '--data', join(root, 'shapes/train'), '--val', other, '--model', 'mobile-unet', '--out', out, '--steps', '2', '--crop', '32', '--batch-size', '4', '--backend', 'wasm');
  assert.equal(train.code, 1, train.stderr);
  assert.match(train.stderr, new RegExp(`${join(other, 'dataset.json')}: declares 3 classes, but the training set .*shapes/train has 4`));
  assert.ok(!existsSync(out), 'nothing written');
  const evaluated = await softseg('eval', '--model', join(root, 'run'), '--data', other, '--backend', 'wasm');
  assert.equal(evaluated.code, 1, evaluated.stderr);
  assert.match(evaluated.stderr, new RegExp(`${join(other, 'dataset.json')}: declares 3 classes, but the model .*run has 4`));
  const overridden = await softseg('eval', '--model', join(root, 'run'), '--data', other, '--num-classes', '4', '--backend', 'wasm', '--json');
  assert.equal(overridden.code, 0, overridden.stderr);
});

test('a non-empty --out is refused (exit 2) and left as it was; --overwrite replaces the run; --resume with --overwrite is a usage error', async () => {
  const out = join(root, 'run-twice');
  const args = ['train', '--data', join(root, 'shapes/train'), '--val', join(root, 'shapes/val'), '--model', 'mobile-unet', '--out', out, '--steps', '4', '--crop', '32', '--batch-size', '4', '--backend', 'wasm'];
  const first = await softseg(...args);
  assert.equal(first.code, 0, first.stderr);
  const before = await readFile(join(out, 'metrics.jsonl'), 'utf8');
  const weights = await readFile(join(out, 'model', 'weights.bin'));

  const again = await softseg(...args.map((a) => (a === '4' ? '6' : a)));
  assert.equal(again.code, 2, again.stderr);
  assert.equal(again.stderr.trim().split('\n').filter((l) => l.startsWith('Error:')).length, 1);
  assert.match(again.stderr, /^Error: --out .*run-twice is not empty \(it holds best, checkpoints, config\.json, metrics\.jsonl, model\) — pass --resume to continue that run, --overwrite to replace it/m);
  assert.equal(await readFile(join(out, 'metrics.jsonl'), 'utf8'), before);
  assert.deepEqual(await readFile(join(out, 'model', 'weights.bin')), weights);

  const both = await softseg(...args, '--resume', '--overwrite');
  assert.equal(both.code, 2);
  assert.match(both.stderr, /--overwrite.*cannot also be provided when using --resume|--resume.*--overwrite/);

  const over = await softseg(...args.map((a) => (a === '4' ? '6' : a)), '--overwrite');
  assert.equal(over.code, 0, over.stderr);
  const lines = await trainLines(out);
  assert.deepEqual(lines.map((l) => l.step), [6], 'metrics.jsonl holds the new run only');
  assert.equal(JSON.parse(await readFile(join(out, 'checkpoints', 'latest.json'), 'utf8')).step, 6);
  assert.equal(JSON.parse(await readFile(join(out, 'config.json'), 'utf8')).steps, 6);
});

test('--resume on a missing folder says it starts a new run; a resume with other options is refused (exit 2) and changes nothing', async () => {
  const out = join(root, 'run-resume-new');
  const args = ['train', '--data', join(root, 'shapes/train'), '--model', 'mobile-unet', '--out', out, '--steps', '2', '--crop', '32', '--batch-size', '4', '--backend', 'wasm'];
  const fresh = await softseg(...args, '--resume');
  assert.equal(fresh.code, 0, fresh.stderr);
  assert.match(fresh.stderr, /--resume: .*run-resume-new holds no run yet; starting a new run/);
  const config = await readFile(join(out, 'config.json'), 'utf8');
  const metrics = await readFile(join(out, 'metrics.jsonl'), 'utf8');
  // Another architecture and step count: named, with the run's values, before any work.
  const failed = await softseg(...args.map((a) => (a === 'mobile-unet' ? 'unet-lite' : a === '2' ? '4' : a)), '--resume');
  assert.equal(failed.code, 2, failed.stderr);
  assert.match(failed.stderr, /^Error: --resume: --model unet-lite \(the run has mobile-unet\), --steps 4 \(the run has 2\) — a resumed run continues with the options it started with/m);
  // The same from a config file: named by its key, with the file.
  const cfg = join(root, 'resume.yaml');
  await writeFile(cfg, 'lr: 0.01\n');
  const fromFile = await softseg('train', '--config', cfg, '--out', out, '--resume', '--backend', 'wasm');
  assert.equal(fromFile.code, 2, fromFile.stderr);
  assert.match(fromFile.stderr, /resume\.yaml: --resume: lr 0\.01 \(the run has 0\.001\)/);
  // Given values equal to the run's are fine; paths may change (a moved data set).
  assert.equal(await readFile(join(out, 'config.json'), 'utf8'), config);
  assert.equal(await readFile(join(out, 'metrics.jsonl'), 'utf8'), metrics);
  const same = await softseg(...args, '--resume', '--lr', '1e-3', '--eval-every', '1');
  assert.equal(same.code, 0, same.stderr);
});

test('Ctrl-C: a checkpoint is written, then the process exits with code 130; the run resumes from it', async () => {
  const out = join(root, 'run-sigint');
  const args = [bin, 'train', '--data', join(root, 'shapes/train'), '--model', 'mobile-unet', '--out', out, '--steps', '400', '--crop', '32', '--batch-size', '4', '--checkpoint-every', '1000', '--backend', 'wasm'];
  const child = spawn(process.execPath, args, { cwd: repoRoot, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '', stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  // The first progress line (step 10) says training runs; then Ctrl-C.
  await new Promise<void>((resolveStarted) => {
    child.stderr.on('data', (d: Buffer) => {
      stderr += d.toString();
      if (/step\s+\d+\/400/.test(stderr)) resolveStarted();
    });
  });
  // While it trains, a second process may neither continue nor replace the run: exit 2, the run untouched.
  for (const flag of ['--resume', '--overwrite']) {
    const second = await softseg(...args.slice(1), flag);
    assert.equal(second.code, 2, second.stderr);
    assert.match(second.stderr, new RegExp(`--out ${out} is in use by another softseg process \\(pid ${child.pid},`));
  }
  assert.equal(child.exitCode, null, 'the first run was still training (else this test checked nothing)');
  child.kill('SIGINT');
  const code = await new Promise<number | null>((r) => child.on('exit', (c) => r(c)));
  assert.equal(code, 130, stderr);
  const latest = JSON.parse(await readFile(join(out, 'checkpoints', 'latest.json'), 'utf8'));
  assert.ok(latest.step >= 10 && latest.step < 400, `checkpoint at ${latest.step}`);
  assert.match(stdout, new RegExp(`stopped at step ${latest.step}; continue with: softseg train --out ${out} --resume`));
  assert.ok(existsSync(join(out, 'config.json')), 'the interrupted run recorded its configuration with its checkpoint');
});

test('train --init fine-tunes the first run\'s model on data with another class count; the new classifier is announced', async () => {
  const other = join(root, 'shapes6');
  await generateShapesDataset(other, { count: 8, size: 32, numClasses: 6, seed: 4 });
  const out = join(root, 'run-init');
  const { code, stderr } = await softseg('train', '--data', other, '--model', 'mobile-unet', '--init', join(root, 'run'), '--out', out, '--steps', '2', '--crop', '32', '--batch-size', '4', '--backend', 'wasm');
  assert.equal(code, 0, stderr);
  assert.match(stderr, /--init .*run: logits starts from random weights \(its model has 4 classes, this run 6\); every other layer starts from .*run\/model/);
  assert.equal(JSON.parse(await readFile(join(out, 'model', 'softseg.json'), 'utf8')).training.init, join(root, 'run'));
  const wrong = await softseg('train', '--data', other, '--model', 'unet-lite', '--init', join(root, 'run'), '--out', join(root, 'run-init2'), '--steps', '2', '--crop', '32', '--backend', 'wasm');
  assert.equal(wrong.code, 1);
  assert.match(wrong.stderr, /--init .*run: its model is mobile-unet \(width 1, no aux head, 4 classes\), this run trains unet-lite/);
  assert.ok(!existsSync(join(root, 'run-init2', 'config.json')), 'nothing written');
});
