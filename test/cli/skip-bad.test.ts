// Issue 13 §4 at the command line: `predict`, `eval` and `label` check their files before any work — each
// problem on its own line naming the file, exit ≠ 0 — and with --skip-bad leave them out with a count and a
// list; `cache info` on a missing folder is an error.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { copyFile, mkdir, readFile, readdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createModel } from '../../src/models/registry.js';
import { IMAGENET_NORMALIZATION } from '../../src/augment/normalize.js';
import { writeMask } from '../../src/data/decode.js';
import { generateShapesDataset, shapesClasses } from '../../src/data/synthetic.js';
import { saveRunModel } from '../../src/engine/trainer.js';
import { useBackend } from '../helpers/backend.js';
import { softseg } from '../helpers/cli.js';

let root = '';
let truncated = '';
const wasm = ['--backend', 'wasm'];

before(async () => {
  root = await mkdtemp(join(tmpdir(), 'softseg-skip-bad-'));
  await generateShapesDataset(join(root, 'photos'), { count: 6, size: 32, numClasses: 3, seed: 4, unlabeled: true });
  truncated = join(root, 'photos', 'images', 'shape_0002.png');
  const bytes = await readFile(truncated);
  await writeFile(truncated, bytes.subarray(0, Math.floor(bytes.length * 0.6)));
  await useBackend('wasm');
  const model = createModel('unet-lite', { numClasses: 3, width: 0.25, seed: 5 });
  await saveRunModel(model, join(root, 'run', 'model'), { architecture: 'unet-lite', modelOptions: { numClasses: 3, width: 0.25, aux: false }, numClasses: 3, ignoreIndex: 255, classes: shapesClasses(3).classNames, normalization: IMAGENET_NORMALIZATION });
  model.dispose();
});
after(async () => {
  await rm(root, { recursive: true, force: true });
});

/** stderr lines that name `file` (the CLI may prefix them with "Error:" or "Warning:"). */
const linesNaming = (stderr: string, file: string) => stderr.split('\n').filter((l) => l.includes(file));

test('predict: a truncated image stops the run before any output, on its own line; --skip-bad predicts the rest and lists it', async () => {
  const images = join(root, 'photos', 'images');
  const stop = await softseg('predict', '--model', join(root, 'run'), '--images', images, '--out', join(root, 'pred-stop'), ...wasm);
  assert.notEqual(stop.code, 0);
  assert.equal(linesNaming(stop.stderr, truncated).length, 1, stop.stderr);
  assert.match(linesNaming(stop.stderr, truncated)[0]!, /cannot decode image/);
  assert.match(stop.stderr, /1 problem\(s\) in .*--skip-bad/);
  assert.ok(!existsSync(join(root, 'pred-stop')), 'nothing was written');

  const args = ['predict', '--model', join(root, 'run'), '--images', images, '--out', join(root, 'pred-skip'), '--skip-bad', ...wasm];
  const skip = await softseg(...args);
  assert.equal(skip.code, 0, skip.stderr);
  assert.match(skip.stdout, /5 written, 0 already there, 1 bad skipped \(--skip-bad\)/);
  assert.equal(linesNaming(skip.stderr, truncated).length, 1, skip.stderr);
  // --json: the list in the result (the five outputs exist now; the bad image is still named).
  const json = await softseg(...args, '--json');
  assert.equal(json.code, 0, json.stderr);
  const r = JSON.parse(json.stdout);
  assert.deepEqual([r.written, r.skipped], [0, 5]);
  assert.deepEqual(r.bad.map((p: { file: string }) => p.file), [truncated]);
  assert.deepEqual((await readdir(join(root, 'pred-skip'))).filter((f) => f.endsWith('.png')).sort(), ['shape_0000.png', 'shape_0001.png', 'shape_0003.png', 'shape_0004.png', 'shape_0005.png']);
});

test('predict: images whose outputs would be one file (a.png and a.jpg; sub-folder color/ against the colour maps) are problems before any work', async () => {
  const images = join(root, 'clash');
  await mkdir(join(images, 'color'), { recursive: true });
  const source = join(root, 'photos', 'images', 'shape_0000.png');
  for (const f of ['a.png', 'a.jpg', 'b.png', 'color/b.png']) await copyFile(source, join(images, f));
  const stop = await softseg('predict', '--model', join(root, 'run'), '--images', images, '--out', join(root, 'pred-clash'), ...wasm);
  assert.notEqual(stop.code, 0);
  assert.match(linesNaming(stop.stderr, join(images, 'a.png'))[0] ?? '', /its output .*pred-clash\/a\.png would overwrite a\.jpg's/, stop.stderr);
  assert.match(linesNaming(stop.stderr, join(images, 'color', 'b.png'))[0] ?? '', /its output .*pred-clash\/color\/b\.png would overwrite b\.png's/, stop.stderr);
  assert.ok(!existsSync(join(root, 'pred-clash')), 'nothing was written');

  const skip = await softseg('predict', '--model', join(root, 'run'), '--images', images, '--out', join(root, 'pred-clash'), '--skip-bad', '--json', ...wasm);
  assert.equal(skip.code, 0, skip.stderr);
  const r = JSON.parse(skip.stdout);
  assert.deepEqual([r.images, r.written, r.skipped], [4, 2, 0]);
  assert.deepEqual(r.bad.map((p: { file: string }) => p.file).sort(), [join(images, 'a.png'), join(images, 'color', 'b.png')]);
  assert.deepEqual((await readdir(join(root, 'pred-clash'))).sort(), ['a.png', 'b.png', 'color']);
  assert.deepEqual((await readdir(join(root, 'pred-clash', 'color'))).sort(), ['a.png', 'b.png']);
});

test('eval: a mask value out of range and an image without a mask are each named before any work; --skip-bad scores the rest and lists them', async () => {
  const data = join(root, 'labeled');
  await generateShapesDataset(data, { count: 5, size: 32, numClasses: 3, seed: 6 });
  const oob = new Uint8Array(32 * 32).fill(1);
  oob[40] = 7;
  const badMask = join(data, 'masks', 'shape_0001.png');
  await writeMask(badMask, oob, 32, 32);
  const orphan = join(data, 'images', 'shape_0003.png');
  await rm(join(data, 'masks', 'shape_0003.png'));

  for (const how of [['--model', join(root, 'run')], ['--pred', join(data, 'masks')]]) {
    const stop = await softseg('eval', ...how, '--data', data, ...wasm);
    assert.notEqual(stop.code, 0, `${how[0]}: ${stop.stdout}`);
    assert.match(linesNaming(stop.stderr, badMask).join('\n'), /value 7, not a class id/, stop.stderr);
    assert.match(linesNaming(stop.stderr, orphan).join('\n'), /image has no mask/, stop.stderr);
    assert.match(stop.stderr, /2 problem\(s\) in /);
  }
  const skip = await softseg('eval', '--model', join(root, 'run'), '--data', data, '--skip-bad', ...wasm);
  assert.equal(skip.code, 0, skip.stderr);
  assert.match(skip.stdout, /1 item\(s\) skipped \(--skip-bad\)/);
  assert.equal(linesNaming(skip.stderr, badMask).length, 1, skip.stderr);
  assert.equal(linesNaming(skip.stderr, orphan).length, 1, skip.stderr);
  const json = await softseg('eval', '--model', join(root, 'run'), '--data', data, '--skip-bad', '--json', ...wasm);
  assert.equal(json.code, 0, json.stderr);
  const r = JSON.parse(json.stdout);
  assert.equal(r.numImages, 3, 'the three good items are scored');
  assert.equal(r.badItems, 1);
  assert.deepEqual(r.bad.map((p: { file: string }) => p.file).sort(), [orphan, badMask].sort());
});

test('label: a truncated image stops the run before the teacher runs; --skip-bad labels the rest and lists it', async () => {
  const images = join(root, 'photos', 'images');
  const stop = await softseg('label', '--teacher', join(root, 'run'), '--images', images, '--cache', join(root, 'cache-stop'), ...wasm);
  assert.notEqual(stop.code, 0);
  assert.equal(linesNaming(stop.stderr, truncated).length, 1, stop.stderr);
  assert.ok(!existsSync(join(root, 'cache-stop')), 'nothing was written to the cache');

  const args = ['label', '--teacher', join(root, 'run'), '--images', images, '--cache', join(root, 'cache'), '--skip-bad', ...wasm];
  const skip = await softseg(...args);
  assert.equal(skip.code, 0, skip.stderr);
  assert.match(skip.stdout, /5 labelled, 0 already cached, 1 unreadable skipped \(--skip-bad\)/);
  assert.equal(linesNaming(skip.stderr, truncated).length, 1, skip.stderr);
  const json = await softseg(...args, '--json');
  assert.equal(json.code, 0, json.stderr);
  const r = JSON.parse(json.stdout);
  assert.deepEqual([r.labelled, r.skipped], [0, 5]);
  assert.deepEqual(r.bad.map((p: { file: string }) => p.file), [truncated]);
});

test('a file where --out or --cache names a folder: exit 2 with one line naming it, before any work (predict, label, distill, cache verify)', async () => {
  const file = join(root, 'a-file');
  await writeFile(file, 'not a folder');
  const images = join(root, 'photos', 'images');
  const runs: [string[], RegExp][] = [
    [['predict', '--model', join(root, 'run'), '--images', images, '--out', file, '--skip-bad'], /--out .*a-file is not a folder/],
    [['label', '--teacher', join(root, 'run'), '--images', images, '--cache', file, '--skip-bad'], /--cache .*a-file is not a folder/],
    [['distill', '--teacher', join(root, 'run'), '--cache', file, '--data', join(root, 'labeled'), '--out', join(root, 'kd-file'), '--steps', '1', '--crop', '32', '--skip-bad'], /--cache .*a-file is not a folder/],
  ];
  for (const [args, pattern] of runs) {
    const r = await softseg(...args, ...wasm);
    assert.equal(r.code, 2, `${args[0]}: ${r.stderr}`);
    assert.equal(r.stderr.split('\n').filter((l) => l.startsWith('Error:')).length, 1, r.stderr);
    assert.match(r.stderr, pattern);
  }
  assert.equal(await readFile(file, 'utf8'), 'not a folder');
  const verify = await softseg('cache', 'verify', file);
  assert.notEqual(verify.code, 0);
  assert.match(verify.stderr, /a-file: not a folder/);
});

test('cache info on a folder that does not exist fails and names it', async () => {
  const missing = join(root, 'no-such-cache');
  const r = await softseg('cache', 'info', missing);
  assert.notEqual(r.code, 0);
  assert.match(r.stderr, new RegExp(`${missing}: cache folder not found`));
});
