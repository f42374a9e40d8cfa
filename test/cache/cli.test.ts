// `softseg cache info | verify | prune` as a user runs them (needs `npm run build`).
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { hashImageFile, openCache } from '../../src/cache/store.js';
import { synthProbs } from './synth.js';
import { softseg } from '../helpers/cli.js';

const FP_A = 'c3'.repeat(32), FP_B = 'd4'.repeat(32);
let root = '', cacheDir = '', imgDir = '';
const hashes: string[] = [];

before(async () => {
  root = await mkdtemp(join(tmpdir(), 'softseg-cache-cli-'));
  cacheDir = join(root, 'cache');
  imgDir = join(root, 'images');
  await mkdir(join(imgDir, 'sub'), { recursive: true });
  const cache = openCache(cacheDir);
  await cache.registerTeacher(FP_A, { kind: 'onnx', format: 'onnx', source: 'teacher.onnx' });
  for (let i = 0; i < 3; i++) {
    const path = join(imgDir, i === 2 ? 'sub/c.png' : `${'ab'[i]}.png`);
    await writeFile(path, `fake image ${i}`);
    hashes.push(await hashImageFile(path));
    await cache.put(FP_A, hashes[i]!, synthProbs('teacher', 16, 12, 21, i), { width: 16, height: 12, numClasses: 21, mode: 'both', imageName: path });
  }
  await cache.put(FP_B, hashes[0]!, synthProbs('teacher', 16, 12, 5, 1), { width: 16, height: 12, numClasses: 5, mode: 'pseudo', imageName: 'a.png' });
});

test('cache info: table and --json per teacher', async () => {
  const r = await softseg('cache', 'info', cacheDir);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /c3c3c3c3c3c3c3c3\s+3/);
  assert.match(r.stdout, /4 entries/);
  const j = JSON.parse((await softseg('cache', 'info', cacheDir, '--json')).stdout);
  assert.equal(j.entries, 4);
  const a = j.teachers.find((t: { fingerprint: string }) => t.fingerprint === FP_A);
  assert.equal(a.description.kind, 'onnx');
  assert.deepEqual(a.numClasses, [21]);
});

test('cache verify: clean → exit 0; a flipped byte → one line naming the image, exit 1', async () => {
  const ok = await softseg('cache', 'verify', cacheDir);
  assert.equal(ok.code, 0, ok.stderr);
  assert.match(ok.stdout, /4 entries checked, 0 bad/);
  const path = openCache(cacheDir).entryPath(FP_A, hashes[1]!);
  const buf = await readFile(path);
  buf[buf.length - 30] ^= 1;
  await writeFile(path, buf);
  const bad = await softseg('cache', 'verify', cacheDir);
  assert.equal(bad.code, 1);
  const lines = bad.stdout.split('\n').filter((l) => l.startsWith('BAD '));
  assert.equal(lines.length, 1);
  assert.match(lines[0]!, /b\.png.*checksum/);
  const j = await softseg('cache', 'verify', cacheDir, '--json');
  assert.equal(j.code, 1);
  assert.equal(JSON.parse(j.stdout).problems.length, 1);
  await writeFile(path, (buf[buf.length - 30] ^= 1, buf)); // repair
});

test('cache prune: --keep-teacher drops other teachers, --images drops missing images, --dry-run changes nothing', async () => {
  const dry = await softseg('cache', 'prune', cacheDir, '--keep-teacher', FP_A.slice(0, 16), '--dry-run', '--json');
  assert.equal(dry.code, 0, dry.stderr);
  assert.equal(JSON.parse(dry.stdout).removed.length, 1);
  assert.equal(JSON.parse((await softseg('cache', 'info', cacheDir, '--json')).stdout).entries, 4);
  const r = await softseg('cache', 'prune', cacheDir, '--keep-teacher', FP_A.slice(0, 16));
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /removed 1 files/);
  // sub/c.png disappears; a.png is renamed (content-addressed: its entry stays)
  const { rm, rename } = await import('node:fs/promises');
  await rm(join(imgDir, 'sub/c.png'));
  await rename(join(imgDir, 'a.png'), join(imgDir, 'sub/renamed.png'));
  const p = await softseg('cache', 'prune', cacheDir, '--images', imgDir, '--json');
  assert.equal(p.code, 0, p.stderr);
  assert.deepEqual(JSON.parse(p.stdout).removed.map((x: { imageName: string }) => x.imageName.split('/').pop()), ['c.png']);
  assert.equal(JSON.parse((await softseg('cache', 'info', cacheDir, '--json')).stdout).entries, 2);
  const none = await softseg('cache', 'prune', cacheDir);
  assert.equal(none.code, 2);
});
