// An ONNX teacher without softseg metadata (as PyTorch exports it) labelled once with explicit preprocessing
// flags is found again by distill and ssl without repeating them — zero cache misses — and preprocessing flags
// that differ from what the cache holds for that teacher are an error that names the difference.
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generateShapesDataset } from '../../src/data/synthetic.js';
import { openCache } from '../../src/cache/store.js';
import { tinyNetOnnx, tinyNetWeights, writeBytes } from '../teachers/nets.js';
import { softseg } from '../helpers/cli.js';

let root = '';
const PRE = ['--mean', '0.5,0.5,0.5', '--std', '0.25,0.25,0.25', '--tta', 'flip'];

before(async () => {
  root = await mkdtemp(join(tmpdir(), 'softseg-onnx-teacher-'));
  await generateShapesDataset(join(root, 'data'), { count: 6, size: 32, numClasses: 4, seed: 21 });
  await generateShapesDataset(join(root, 'extra'), { count: 4, size: 32, numClasses: 4, seed: 22, unlabeled: true });
  await writeBytes(join(root, 'teacher.onnx'), tinyNetOnnx(tinyNetWeights(6, 4, 5))); // no metadata_props
  for (const folder of ['data', 'extra']) {
    const r = await softseg('label', '--teacher', join(root, 'teacher.onnx'), '--images', join(root, folder), '--cache', join(root, 'cache'), ...PRE, '--num-classes', '4', '--backend', 'wasm', '--json');
    assert.equal(r.code, 0, r.stderr);
  }
});

const common = () => ['--teacher', join(root, 'teacher.onnx'), '--cache', join(root, 'cache'), '--data', join(root, 'data'), '--unlabeled', join(root, 'extra'), '--crop', '32', '--batch-size', '4', '--steps', '2', '--backend', 'wasm', '--json'];

test('distill and ssl find the labelled ONNX teacher without its flags: no misses, no second teacher in the cache', async () => {
  const before = (await openCache(join(root, 'cache')).registeredTeachers()).map((t) => t.fingerprint);
  assert.equal(before.length, 1);
  const kd = await softseg('distill', ...common(), '--out', join(root, 'kd'), '--no-teacher');
  assert.equal(kd.code, 0, kd.stderr);
  assert.equal(JSON.parse(kd.stdout).cacheMisses, 0);
  assert.equal(JSON.parse(kd.stdout).teacher.fingerprint, before[0]);
  const kd2 = await softseg('distill', ...common(), '--out', join(root, 'kd2'));
  assert.equal(kd2.code, 0, kd2.stderr);
  assert.equal(JSON.parse(kd2.stdout).cacheMisses, 0);
  const ssl = await softseg('ssl', ...common(), '--out', join(root, 'ssl'));
  assert.equal(ssl.code, 0, ssl.stderr);
  assert.equal(JSON.parse(ssl.stdout).cacheMisses, 0);
  // the same flags as `label`, given again, are the same teacher
  const same = await softseg('distill', ...common(), ...PRE, '--out', join(root, 'kd3'), '--no-teacher');
  assert.equal(same.code, 0, same.stderr);
  const after = (await openCache(join(root, 'cache')).registeredTeachers()).map((t) => t.fingerprint);
  assert.deepEqual(after, before);
});

test('preprocessing flags that differ from the cached teacher are an error naming the difference', async () => {
  const r = await softseg('distill', ...common(), '--mean', '0.485,0.456,0.406', '--std', '0.25,0.25,0.25', '--tta', 'flip', '--out', join(root, 'kd-bad'));
  assert.notEqual(r.code, 0);
  assert.match(r.stderr, /--mean 0\.485,0\.456,0\.406 here vs 0\.5,0\.5,0\.5 in the cache/);
  assert.doesNotMatch(r.stderr, /--std 0\.25/, 'only what differs is named');
  const s = await softseg('ssl', ...common(), '--tta', 'none', '--mean', '0.5,0.5,0.5', '--std', '0.25,0.25,0.25', '--out', join(root, 'ssl-bad'));
  assert.notEqual(s.code, 0);
  assert.match(s.stderr, /--tta none here vs flip in the cache/);
});
