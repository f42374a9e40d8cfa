// `softseg label`: ONNX and TF.js teachers give the same entries, shards split the work exactly, a killed run
// resumes, and a corrupt entry is relabelled.
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { readFile, writeFile, mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generateShapesDataset } from '../../src/data/synthetic.js';
import { openCache, type TeacherCache } from '../../src/cache/store.js';
import { saveTinyNetLayers, tinyNetOnnx, tinyNetWeights, writeBytes } from '../teachers/nets.js';
import { repoRoot } from '../helpers/backend.js';
import { bin, softseg } from '../helpers/cli.js';

let root = '';

/** Entry file contents keyed by image hash. */
async function entryBytes(cache: TeacherCache): Promise<Map<string, Buffer>> {
  const out = new Map<string, Buffer>();
  for await (const e of cache.entries()) out.set(e.imageHash, await readFile(e.path));
  return out;
}

before(async () => {
  root = await mkdtemp(join(tmpdir(), 'softseg-label-'));
  await generateShapesDataset(join(root, 'imgs'), { count: 24, size: 32, numClasses: 4, seed: 11, unlabeled: true });
  const w = tinyNetWeights(6, 4, 3);
  await writeBytes(join(root, 'tiny.onnx'), tinyNetOnnx(w));
  await saveTinyNetLayers(w, join(root, 'tiny-tfjs'));
});

test('the same network as ONNX and as TF.js gives the same cache entries (soft labels and pseudo-labels)', async () => {
  for (const [teacher, cache] of [[join(root, 'tiny.onnx'), 'c-onnx'], [join(root, 'tiny-tfjs', 'model.json'), 'c-tfjs']]) {
    const r = await softseg('label', '--teacher', teacher!, '--images', join(root, 'imgs'), '--cache', join(root, cache!), '--mode', 'both', '--backend', 'wasm', '--json');
    assert.equal(r.code, 0, r.stderr);
    const res = JSON.parse(r.stdout);
    assert.equal(res.labelled, 24);
    // the bytes reported are the bytes on disk (entries are written concurrently)
    let onDisk = 0;
    for await (const e of openCache(join(root, cache!)).entries()) onDisk += e.bytes;
    assert.equal(res.bytes, onDisk);
  }
  const a = openCache(join(root, 'c-onnx')), b = openCache(join(root, 'c-tfjs'));
  const [fa] = (await a.info()).teachers.map((t) => t.fingerprint);
  const [fb] = (await b.info()).teachers.map((t) => t.fingerprint);
  assert.notEqual(fa, fb, 'different model files, different fingerprints');
  let worst = 0, agree = 0, total = 0;
  for await (const e of a.entries()) {
    const x = (await a.get(fa!, e.imageHash, { mode: 'both', temperature: 2 }))!;
    const y = (await b.get(fb!, e.imageHash, { mode: 'both', temperature: 2 }))!;
    for (let i = 0; i < x.soft!.length; i++) worst = Math.max(worst, Math.abs(x.soft![i]! - y.soft![i]!));
    x.pseudo!.labels.forEach((l, i) => ((agree += l === y.pseudo!.labels[i] ? 1 : 0), total++));
  }
  assert.ok(worst < 1e-3, `reconstructed soft labels differ by ${worst}`);
  assert.ok(agree / total > 0.999, `pseudo-label agreement ${agree}/${total}`);
});

test('two shards labelled by two processes on one cache equal one unsharded run', async () => {
  const teacher = join(root, 'tiny.onnx');
  const common = ['--teacher', teacher, '--images', join(root, 'imgs'), '--backend', 'wasm', '--json'];
  const full = await softseg('label', ...common, '--cache', join(root, 'c-full'));
  assert.equal(full.code, 0, full.stderr);
  const [s1, s2] = await Promise.all(['1/2', '2/2'].map((s) => softseg('label', ...common, '--cache', join(root, 'c-shared'), '--shard', s)));
  assert.equal(s1!.code, 0, s1!.stderr);
  assert.equal(s2!.code, 0, s2!.stderr);
  const n1 = JSON.parse(s1!.stdout).labelled, n2 = JSON.parse(s2!.stdout).labelled;
  assert.ok(n1 > 0 && n2 > 0 && n1 + n2 === 24, `shards labelled ${n1} + ${n2}`);
  const whole = await entryBytes(openCache(join(root, 'c-full')));
  const union = await entryBytes(openCache(join(root, 'c-shared')));
  assert.deepEqual([...union.keys()].sort(), [...whole.keys()].sort());
  for (const [hash, bytes] of whole) assert.ok(bytes.equals(union.get(hash)!), `entry ${hash} differs`);
});

test('a killed label run resumes and skips valid entries; a corrupt entry is detected and relabelled', async () => {
  const many = join(root, 'many');
  await generateShapesDataset(many, { count: 120, size: 64, numClasses: 4, seed: 12, unlabeled: true });
  const cacheDir = join(root, 'c-kill');
  const args = [bin, 'label', '--teacher', join(root, 'tiny-tfjs', 'model.json'), '--images', many, '--cache', cacheDir, '--backend', 'wasm', '--batch-size', '4'];
  const child = spawn(process.execPath, args, { cwd: repoRoot, stdio: 'ignore' });
  const cache = openCache(cacheDir);
  const deadline = Date.now() + 60_000;
  while (Date.now() < deadline) {
    const n = await cache.info().then((i) => i.entries, () => 0);
    if (n >= 8) break;
    await new Promise((r) => setTimeout(r, 50));
  }
  child.kill('SIGKILL');
  await new Promise((r) => child.on('exit', r));
  const before = (await cache.info()).entries;
  assert.ok(before >= 8 && before < 120, `killed with ${before} entries`);
  const resumed = await softseg(...args.slice(1), '--json');
  assert.equal(resumed.code, 0, resumed.stderr);
  const r = JSON.parse(resumed.stdout);
  assert.equal(r.skipped, before);
  assert.equal(r.labelled, 120 - before);
  assert.equal((await softseg('cache', 'verify', cacheDir)).code, 0);

  // Flip a byte in one entry: verify names it, label relabels exactly that one.
  let victim = '';
  for await (const e of cache.entries()) {
    victim = e.path;
    break;
  }
  const bytes = await readFile(victim);
  bytes[bytes.length - 3]! ^= 0xff;
  await writeFile(victim, bytes);
  const bad = await softseg('cache', 'verify', cacheDir);
  assert.equal(bad.code, 1);
  assert.match(bad.stdout + bad.stderr, /shape_\d+/);
  const again = JSON.parse((await softseg(...args.slice(1), '--json')).stdout);
  assert.equal(again.labelled, 1);
  assert.equal((await softseg('cache', 'verify', cacheDir)).code, 0);
});

test('--k above the teacher\'s classes is a usage error (exit 2) before any work', async () => {
  const r = await softseg('label', '--teacher', join(root, 'tiny-tfjs', 'model.json'), '--images', join(root, 'imgs'), '--cache', join(root, 'c-k'), '--k', '100', '--backend', 'wasm');
  assert.equal(r.code, 2, r.stderr);
  assert.match(r.stderr, /^Error: --k must be an integer from 1 to the teacher's 4 classes, got 100$/m);
  assert.equal(existsSync(join(root, 'c-k', 'entries')), false);
});
