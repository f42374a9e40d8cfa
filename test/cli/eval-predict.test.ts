// `softseg eval` and `softseg predict`: perfect and known-confusion scores, original-resolution outputs.
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { cp, mkdir, mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { createModel } from '../../src/models/registry.js';
import { saveRunModel } from '../../src/engine/trainer.js';
import { decodeMask } from '../../src/data/decode.js';
import { IMAGENET_NORMALIZATION } from '../../src/augment/normalize.js';
import { repoRoot, useBackend } from '../helpers/backend.js';
import { softseg } from '../helpers/cli.js';

let root = '';

const png = (data: Uint8Array, w: number, h: number, channels: 1 | 3) => {
  const img = sharp(Buffer.from(data), { raw: { width: w, height: h, channels } });
  return (channels === 1 ? img.toColourspace('b-w') : img).png().toBuffer();
};

before(async () => {
  root = await mkdtemp(join(tmpdir(), 'softseg-eval-'));
  // Two 4×4 images, 3 classes. Ground truth and a prediction with known confusions.
  const gt = [
    [0, 0, 1, 1, 0, 0, 1, 1, 2, 2, 2, 2, 2, 2, 2, 2],
    [0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 255, 255, 255, 255],
  ];
  const pred = [
    [0, 0, 1, 1, 0, 1, 1, 1, 2, 2, 2, 2, 2, 2, 0, 2],
    [0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 2, 2, 1, 1, 1, 1],
  ];
  for (const d of ['data/images', 'data/masks', 'pred', 'perfect']) await mkdir(join(root, d), { recursive: true });
  await writeFile(join(root, 'data', 'dataset.json'), JSON.stringify({ classes: ['sky', 'road', 'car'] }));
  for (let i = 0; i < 2; i++) {
    await writeFile(join(root, 'data/images', `im${i}.png`), await png(new Uint8Array(48).fill(100), 4, 4, 3));
    await writeFile(join(root, 'data/masks', `im${i}.png`), await png(Uint8Array.from(gt[i]!), 4, 4, 1));
    await writeFile(join(root, 'pred', `im${i}.png`), await png(Uint8Array.from(pred[i]!), 4, 4, 1));
  }
  await cp(join(root, 'data/masks'), join(root, 'perfect'), { recursive: true });
});

test('eval --pred: perfect predictions score 100; known confusions give the hand-computed values', async () => {
  const perfect = JSON.parse((await softseg('eval', '--pred', join(root, 'perfect'), '--data', join(root, 'data'), '--json')).stdout);
  assert.equal(perfect.mIoUD, 100);
  assert.equal(perfect.mIoUI, 100);
  assert.equal(perfect.Acc, 100);

  const r = await softseg('eval', '--pred', join(root, 'pred'), '--data', join(root, 'data'), '--json');
  assert.equal(r.code, 0, r.stderr);
  const m = JSON.parse(r.stdout);
  // Confusion over valid pixels (rows = truth): sky 12 → 11 sky, 1 road; road 8 → 6 road, 2 car; car 8 → 7 car, 1 sky.
  assert.deepEqual(m.confusion, [[11, 1, 0], [0, 6, 2], [1, 0, 7]]);
  const iou = [11 / (12 + 1), 6 / (8 + 1), 7 / (8 + 2)].map((v) => 100 * v);
  iou.forEach((v, c) => assert.ok(Math.abs(m.perClassIoU[c] - v) < 1e-4));
  assert.ok(Math.abs(m.mIoUD - (iou[0]! + iou[1]! + iou[2]!) / 3) < 1e-4);
  assert.ok(Math.abs(m.Acc - (100 * 24) / 28) < 1e-4);
  assert.deepEqual(m.classNames, ['sky', 'road', 'car']);
  // One worst-q% key per metric (q = 5 by default); the reference's averages over the q sweep have their own name.
  assert.equal(typeof m.mIoUI5, 'number');
  assert.equal(typeof m.mIoUIWorstAvg, 'number');
  assert.deepEqual(Object.keys(m).filter((k) => /Q$/.test(k)), []);
  // Every key is documented in the README (mAcc…/mDice… keys alongside their mIoU… name).
  const readme = await readFile(join(repoRoot, 'README.md'), 'utf8');
  for (const k of Object.keys(m)) assert.ok(readme.includes(`\`${k.replace(/^m(Acc|Dice)(?=[DIC])/, 'mIoU')}\``), `eval --json key ${k} is not in the README`);

  const table = await softseg('eval', '--pred', join(root, 'pred'), '--data', join(root, 'data'));
  assert.match(table.stdout, /^2 car\s+70\.00/m);
});

test('eval --pred: every missing prediction is named before any scoring, then every one of the wrong size, one line each', async () => {
  const dir = join(root, 'pred-bad');
  await mkdir(dir, { recursive: true });
  const none = await softseg('eval', '--pred', dir, '--data', join(root, 'data'));
  assert.equal(none.code, 1);
  assert.deepEqual(none.stderr.split('\n').filter((l) => l.startsWith(dir)), [0, 1].map((i) => `${join(dir, `im${i}.png`)}: no prediction for im${i}`));
  assert.match(none.stderr, /2 problem\(s\) in .*softseg predict/);
  for (let i = 0; i < 2; i++) await writeFile(join(dir, `im${i}.png`), await png(new Uint8Array(12), 4, 3, 1));
  const small = await softseg('eval', '--pred', dir, '--data', join(root, 'data'));
  assert.equal(small.code, 1);
  assert.deepEqual(small.stderr.split('\n').filter((l) => l.startsWith(dir)), [0, 1].map((i) => `${join(dir, `im${i}.png`)}: prediction is 4×3 but the ground truth is 4×4`));
});

test('predict writes masks at the original resolution, whole-image and by sliding window, and skips finished images', async () => {
  await useBackend('cpu');
  const model = createModel('mobile-unet', { numClasses: 3, seed: 1 });
  const runDir = join(root, 'run');
  await saveRunModel(model, join(runDir, 'model'), { architecture: 'mobile-unet', numClasses: 3, classes: ['sky', 'road', 'car'], normalization: IMAGENET_NORMALIZATION });
  model.dispose();
  const images = join(root, 'odd');
  await mkdir(join(images, 'sub'), { recursive: true });
  const rgb = new Uint8Array(37 * 45 * 3).map((_, i) => (i * 7) % 255);
  await writeFile(join(images, 'sub', 'a.png'), await png(rgb, 45, 37, 3));
  for (const [out, extra] of [['p1', []], ['p2', ['--max-pixels', '400', '--tile', '16']]] as const) {
    const r = await softseg('predict', '--model', runDir, '--images', images, '--out', join(root, out), '--overlay', '--probs', '--backend', 'wasm', ...extra);
    assert.equal(r.code, 0, r.stderr);
    const mask = await decodeMask(join(root, out, 'sub', 'a.png'));
    assert.deepEqual([mask.width, mask.height], [45, 37]);
    assert.ok(mask.data.every((v) => v < 3));
    const meta = await sharp(join(root, out, 'overlay', 'sub', 'a.jpg')).metadata();
    assert.deepEqual([meta.width, meta.height], [45, 37]);
    const npy = await readFile(join(root, out, 'probs', 'sub', 'a.npy'));
    assert.match(npy.subarray(10, 80).toString(), /'shape': \(37, 45, 3\)/);
  }
  const again = await softseg('predict', '--model', runDir, '--images', images, '--out', join(root, 'p1'), '--json');
  assert.equal(JSON.parse(again.stdout).skipped, 1);
  const wrong = await softseg('predict', '--model', join(root, 'nowhere'), '--images', images, '--out', join(root, 'p3'));
  assert.notEqual(wrong.code, 0);
  assert.match(wrong.stderr, /nowhere: no model found/);
  // A run stopped before it wrote model/ (checkpoints only): the error says how to get a model, and its checkpoint predicts.
  const stopped = join(root, 'stopped');
  await cp(join(runDir, 'model'), join(stopped, 'checkpoints', 'step-0000007'), { recursive: true });
  await writeFile(join(stopped, 'checkpoints', 'latest.json'), JSON.stringify({ checkpoint: 'step-0000007', step: 7 }));
  const early = await softseg('predict', '--model', stopped, '--images', images, '--out', join(root, 'p5'));
  assert.equal(early.code, 1);
  assert.match(early.stderr, /stopped: no model yet: the run stopped at step 7 before writing model\/ — continue it with `softseg train --out .*stopped --resume` \(or distill\/ssl\), or pass its last checkpoint, .*stopped\/checkpoints\/step-0000007$/m);
  const fromCheckpoint = await softseg('predict', '--model', join(stopped, 'checkpoints', 'step-0000007'), '--images', images, '--out', join(root, 'p5'));
  assert.equal(fromCheckpoint.code, 0, fromCheckpoint.stderr);
  const tile = await softseg('predict', '--model', runDir, '--images', images, '--out', join(root, 'p4'), '--tile', '0');
  assert.equal(tile.code, 2, tile.stderr);
  assert.match(tile.stderr, /^Error: --tile must be a positive integer, got 0$/m);
});
