// The run folder rules of train/distill/ssl: a non-empty --out is refused without --resume or --overwrite,
// --overwrite clears only a run, --resume on nothing says it starts fresh and continues a run with its own options.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, readdir, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SoftsegError } from '../../src/errors.js';
import { LOCK, clearRunDir, dataChanges, dataRecord, lockRunDir, planRunDir, recordedRunOptions, resumeDifferences } from '../../src/recipes/run-dir.js';
import { spawnSync } from 'node:child_process';
import { hostname } from 'node:os';
import { openDataset, openUnlabeled } from '../../src/data/dataset.js';
import { TRAIN_DEFAULTS, trainSupervised } from '../../src/recipes/supervised.js';
import { DISTILL_OPTIONS } from '../../src/recipes/recipe-options.js';
import { generateShapesDataset } from '../../src/data/synthetic.js';
import { initBackend } from '../../src/backends/select.js';

const none = { resume: false, overwrite: false };

async function runFolder(withCheckpoint: boolean): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'softseg-rundir-'));
  await mkdir(join(dir, 'model'));
  await writeFile(join(dir, 'model', 'model.json'), '{}');
  await writeFile(join(dir, 'metrics.jsonl'), '{"type":"train","step":10}\n');
  await writeFile(join(dir, 'config.json'), '{}');
  if (withCheckpoint) {
    await mkdir(join(dir, 'checkpoints', 'step-0000010'), { recursive: true });
    await writeFile(join(dir, 'checkpoints', 'latest.json'), JSON.stringify({ checkpoint: 'step-0000010', step: 10 }));
  }
  return dir;
}

const usageError = (pattern: RegExp) => (e: unknown) => e instanceof SoftsegError && e.exitCode === 2 && pattern.test(e.oneLine());

test('a missing or empty folder is a new run; --resume there says it starts a new run', async () => {
  const empty = await mkdtemp(join(tmpdir(), 'softseg-rundir-'));
  for (const dir of [empty, join(empty, 'not-yet')]) {
    assert.deepEqual(await planRunDir(dir, none), { mode: 'new', clear: [], warnings: [] });
    assert.deepEqual(await planRunDir(dir, { resume: true, overwrite: false }), { mode: 'new', clear: [], warnings: [`--resume: ${dir} holds no run yet; starting a new run`] });
  }
  await writeFile(join(empty, 'config.json.123.abcd.tmp'), 'x');
  assert.equal((await planRunDir(empty, none)).mode, 'new', 'a leftover temporary file does not make a folder a run');
});

test('a non-empty folder is refused without --resume or --overwrite, naming what it holds', async () => {
  const dir = await runFolder(true);
  await assert.rejects(planRunDir(dir, none), usageError(/--out .* is not empty \(it holds checkpoints, config\.json, metrics\.jsonl, model\) — pass --resume to continue that run, --overwrite to replace it/));
  const file = join(dir, 'config.json');
  await assert.rejects(planRunDir(file, none), usageError(/--out .*config\.json is not a folder/));
  await assert.rejects(planRunDir(dir, { resume: true, overwrite: true }), usageError(/--resume and --overwrite are alternatives/));
});

test('--resume needs a checkpoint in a non-empty folder', async () => {
  assert.deepEqual(await planRunDir(await runFolder(true), { resume: true, overwrite: false }), { mode: 'resume', clear: [], warnings: [] });
  await assert.rejects(planRunDir(await runFolder(false), { resume: true, overwrite: false }), usageError(/--resume: .* has no checkpoint to resume from .* pass --overwrite instead/));
});

test('--overwrite clears a previous run (and nothing is cleared by planning); a folder with other files is never cleared', async () => {
  const dir = await runFolder(true);
  await writeFile(join(dir, 'metrics.jsonl.99.ffff.tmp'), 'x');
  const plan = await planRunDir(dir, { resume: false, overwrite: true });
  assert.equal(plan.mode, 'new');
  assert.equal((await readdir(dir)).length, 5, 'planning changes nothing');
  await clearRunDir(plan);
  assert.deepEqual(await readdir(dir), []);

  const mixed = await runFolder(true);
  await writeFile(join(mixed, 'notes.txt'), 'mine');
  await assert.rejects(planRunDir(mixed, { resume: false, overwrite: true }), usageError(/--overwrite: .* holds files that are not a softseg run's \(notes\.txt\); it is not cleared/));
  await assert.rejects(planRunDir(mixed, none), usageError(/is not empty .* — choose another --out$/));
  assert.ok(existsSync(join(mixed, 'notes.txt')) && existsSync(join(mixed, 'model', 'model.json')));
});

test('train, distill and ssl all refuse a non-empty run folder before opening any data', async () => {
  const { TRAIN_DEFAULTS, trainSupervised } = await import('../../src/recipes/supervised.js');
  const { DISTILL_DEFAULTS, trainDistill } = await import('../../src/recipes/distill.js');
  const { SSL_DEFAULTS, trainSsl } = await import('../../src/recipes/ssl.js');
  const out = await runFolder(true);
  const env = { backend: { name: 'cpu', reason: 'test', threads: 1 }, version: 'test' } as never;
  const data = join(out, 'no-such-data');
  const refused = usageError(/is not empty/);
  await assert.rejects(trainSupervised({ ...TRAIN_DEFAULTS, data, out }, env), refused);
  await assert.rejects(trainDistill({ ...DISTILL_DEFAULTS, data, out, teacher: 't', cache: 'c' }, env), refused);
  await assert.rejects(trainSsl({ ...SSL_DEFAULTS, data, out, teacher: 't', cache: 'c', unlabeled: [data] }, env), refused);
});

test('a run\'s recorded options: schema keys (deprecated names renamed) and the resolved steps and augmentation, without --resume/--overwrite', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'softseg-rundir-'));
  assert.equal(await recordedRunOptions(dir, DISTILL_OPTIONS), null);
  const augmentation = { scale: [0.75, 1.25], flip: 0.5 };
  await writeFile(join(dir, 'config.json'), JSON.stringify({
    model: 'mobile-unet', threshold: 0.05, steps: 20, augmentation, data: 'd', resume: true, overwrite: true, numClasses: 5, notAnOption: 1, warmupSteps: null,
  }));
  // A run recorded before --upsampling, --weight-decay-all and --mask-sampling trained as their first value says
  // (aligned, kernels only, centre), not as distill's defaults now say (half-pixel, every parameter, floor).
  const before = { upsampling: 'aligned', weightDecayAll: false, maskSampling: 'centre' };
  assert.deepEqual(await recordedRunOptions(dir, DISTILL_OPTIONS), { model: 'mobile-unet', classThreshold: 0.05, steps: 20, augmentation, data: 'd', numClasses: 5, ...before });
  await writeFile(join(dir, 'config.json'), JSON.stringify({ model: 'mobile-unet', upsampling: 'half-pixel', weightDecayAll: true, maskSampling: 'floor' }));
  assert.deepEqual(await recordedRunOptions(dir, DISTILL_OPTIONS), { model: 'mobile-unet', upsampling: 'half-pixel', weightDecayAll: true, maskSampling: 'floor' });
  await writeFile(join(dir, 'config.json'), '{"model": ');
  await assert.rejects(recordedRunOptions(dir, DISTILL_OPTIONS), (e: unknown) => e instanceof SoftsegError && /config\.json: cannot read the run's options/.test(e.oneLine()));
});

test('resume differences: what shapes training must agree (text options in any spelling); paths and cadence may change', () => {
  const recorded = { scale: '0.75, 1.25', lr: 0.001, seed: 0, data: 'here', evalEvery: 5, augmentation: { flip: 0.5 } };
  assert.deepEqual(resumeDifferences({ scale: [0.75, 1.25], lr: 1e-3, data: 'moved', evalEvery: 1, checkpointEvery: 3, resume: true }, recorded), []);
  assert.deepEqual(resumeDifferences({ seed: 1, warmupSteps: 10, lr: undefined }, recorded), ['--seed 1 (the run has 0)', '--warmup-steps 10 (the run has unset)']);
  // Keys compared although not given: a library caller's resolved options against the run's.
  assert.deepEqual(resumeDifferences({ augmentation: { flip: 0 } }, recorded, ['augmentation', 'data']), ['augmentation {"flip":0} (the run has {"flip":0.5})']);
  assert.deepEqual(resumeDifferences({ augmentation: { flip: 0.5, scale: undefined } }, recorded), [], 'an unset field is not in config.json either');
});

test('a library caller resuming a run: its resolved options (crop from the data) agree; a changed one is refused before any step', async () => {
  const root = await mkdtemp(join(tmpdir(), 'softseg-rundir-'));
  await generateShapesDataset(join(root, 'data'), { count: 8, size: 32, numClasses: 3, seed: 1 });
  const { TRAIN_DEFAULTS, trainSupervised } = await import('../../src/recipes/supervised.js');
  const env = { backend: await initBackend({ backend: 'wasm' }), version: 'test' };
  const config = { ...TRAIN_DEFAULTS, data: join(root, 'data'), out: join(root, 'run'), model: 'mobile-unet', width: 0.25, batchSize: 2, steps: 4, checkpointEvery: 2 };
  await trainSupervised(config, env);
  const metrics = await readFile(join(root, 'run', 'metrics.jsonl'), 'utf8');
  await assert.rejects(trainSupervised({ ...config, resume: true, lr: 0.01 }, env), usageError(/^--resume: --lr 0\.01 \(the run has 0\.001\) — a resumed run continues with the options it started with/));
  await assert.rejects(trainSupervised({ ...config, resume: true, augment: 'strong' }, env), usageError(/--augment strong \(the run has default\), augmentation \{/));
  assert.equal(await readFile(join(root, 'run', 'metrics.jsonl'), 'utf8'), metrics, 'nothing written');
  // crop 0 (decided from the data) resolves to the run's 32: the same run, which is done.
  const again = await trainSupervised({ ...config, resume: true }, env);
  assert.equal(again.result.steps, 4);
});

test('dataRecord/dataChanges: a resumed run learns which of its data sets changed since config.json recorded them', async () => {
  const root = await mkdtemp(join(tmpdir(), 'softseg-data-record-'));
  await generateShapesDataset(join(root, 'data'), { count: 4, size: 16, numClasses: 3, seed: 1 });
  await generateShapesDataset(join(root, 'extra'), { count: 3, size: 16, numClasses: 3, seed: 2, unlabeled: true });
  const sets = async () => [await openDataset(join(root, 'data')), await openUnlabeled(join(root, 'extra'), { numClasses: 3, ignoreIndex: 255 })];
  const run = join(root, 'run');
  await mkdir(run);
  const first = await dataRecord(await sets());
  assert.deepEqual(first.map((r) => r.items), [4, 3]);
  assert.deepEqual(await dataChanges(run, first), [], 'no config.json: nothing to compare');
  await writeFile(join(run, 'config.json'), JSON.stringify({ model: 'mobile-unet' }));
  assert.deepEqual(await dataChanges(run, first), [], 'a run recorded before the record: nothing to compare');
  await writeFile(join(run, 'config.json'), JSON.stringify({ model: 'mobile-unet', dataRecord: first }));
  assert.deepEqual(await dataChanges(run, await dataRecord(await sets())), [], 'unchanged');
  // An image of the labeled set rewritten with another size, and one more unlabeled image.
  const image = join(root, 'data', 'images', 'shape_0001.png');
  await writeFile(image, Buffer.concat([await readFile(image), Buffer.alloc(7)]));
  const extra = join(root, 'extra', 'images');
  await writeFile(join(extra, 'more.png'), await readFile(join(extra, (await readdir(extra)).find((f) => f.endsWith('.png'))!)));
  assert.deepEqual(await dataChanges(run, await dataRecord(await sets())), [`${join(root, 'data')}: files changed (4 items)`, `${join(root, 'extra')}: 3 → 4 items`]);
});

test('a run resumed after an image was added to its data says so, and records the data it goes on with', async () => {
  const root = await mkdtemp(join(tmpdir(), 'softseg-data-resume-'));
  const data = join(root, 'data');
  await generateShapesDataset(data, { count: 8, size: 32, numClasses: 3, seed: 1 });
  const warnings: string[] = [];
  const env = { backend: await initBackend({ backend: 'wasm' }), version: 'test', onWarning: (w: string) => warnings.push(w) };
  const config = { ...TRAIN_DEFAULTS, data, out: join(root, 'run'), model: 'mobile-unet', width: 0.25, batchSize: 2, steps: 4, checkpointEvery: 2, seed: 5 };
  const stop = new AbortController();
  await trainSupervised(config, { ...env, signal: stop.signal, onEvent: (e) => { if (e.type === 'checkpoint' && e.step === 2) stop.abort(); } });
  assert.deepEqual(warnings.filter((w) => /data changed/.test(w)), []);
  for (const dir of ['images', 'masks']) await writeFile(join(data, dir, 'added.png'), await readFile(join(data, dir, 'shape_0000.png')));
  const resumed = await trainSupervised({ ...config, resume: true }, env);
  assert.equal(resumed.result.steps, 4);
  const changed = warnings.filter((w) => /data changed/.test(w));
  assert.equal(changed.length, 1, warnings.join('\n'));
  assert.match(changed[0]!, new RegExp(`${data}: 8 → 9 items.*will not equal an uninterrupted run`));
  const recorded = JSON.parse(await readFile(join(root, 'run', 'config.json'), 'utf8')).dataRecord;
  assert.equal(recorded[0].items, 9, 'config.json now records the data the run went on with');
});

test('lockRunDir: one live process per run folder; a killed process\'s mark is taken over, another host\'s honoured; plans ignore the mark', async () => {
  const out = await mkdtemp(join(tmpdir(), 'softseg-lock-'));
  const release = await lockRunDir(out);
  const mark = JSON.parse(await readFile(join(out, LOCK), 'utf8'));
  assert.deepEqual([mark.pid, mark.host], [process.pid, hostname()]);
  await assert.rejects(lockRunDir(out), (e: unknown) => e instanceof SoftsegError && e.exitCode === 2 && new RegExp(`in use by another softseg process \\(pid ${process.pid},`).test(e.message));
  // While it is held, no plan for the folder is made (a --resume or --overwrite from another process stops there).
  await assert.rejects(planRunDir(out, { resume: true, overwrite: false }), /in use by another softseg process/);
  await release();
  assert.ok(!existsSync(join(out, LOCK)));
  // A process that has ended (its pid is free): its mark does not count — a folder holding only it is empty,
  // --overwrite's plan leaves it alone — and is taken over.
  const gone = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' }).stdout;
  await writeFile(join(out, LOCK), JSON.stringify({ pid: Number(gone), host: hostname(), started: 'then' }));
  assert.equal((await planRunDir(out, none)).mode, 'new');
  await writeFile(join(out, 'metrics.jsonl'), '');
  assert.deepEqual((await planRunDir(out, { resume: false, overwrite: true })).clear, [join(out, 'metrics.jsonl')]);
  const again = await lockRunDir(out);
  assert.equal(JSON.parse(await readFile(join(out, LOCK), 'utf8')).pid, process.pid);
  await again();
  await writeFile(join(out, LOCK), JSON.stringify({ pid: 1, host: 'elsewhere', started: 'then' }));
  await assert.rejects(lockRunDir(out), (e: unknown) => e instanceof SoftsegError && /pid 1 on elsewhere/.test(e.message) && (e.hint ?? '').includes(join(out, LOCK)));
});
