import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { VectorFile } from '../../src/reference/vectors.js';
import { checkAllVectors, referenceVectorsPath, repoRoot, useBackend } from '../helpers/backend.js';

const run = promisify(execFile);

test('every reference vector case passes on wasm (float32) without leaking tensors', async () => {
  await useBackend('wasm');
  const { failed, count, leaked } = await checkAllVectors();
  assert.deepEqual(failed, []);
  assert.equal(count, 69);
  assert.equal(leaked, 0);
});

test('check:vectors prints one line per case and a summary, and exits 1 on a wrong expected value', async () => {
  const file = JSON.parse(await readFile(referenceVectorsPath(), 'utf8')) as VectorFile;
  // A file the suite has never seen: two real cases, one of them with a corrupted expectation.
  const good = file.cases.find((c) => c.id === 'kd_T2_all')!;
  const bad = structuredClone(file.cases.find((c) => c.id === 'hard_jml1_mixed')!);
  bad.id = 'hard_jml1_mixed_corrupted';
  bad.expected.loss = bad.expected.loss * 1.001;
  const dir = await mkdtemp(join(tmpdir(), 'softseg-vectors-'));
  const path = join(dir, 'custom.json');
  await writeFile(path, JSON.stringify({ ...file, cases: [good, bad] }));
  const script = join(repoRoot, 'scripts/check-vectors.ts');
  const err = await run(process.execPath, ['--import', 'tsx', script, path], { cwd: repoRoot }).then(
    () => null,
    (e: { code: number; stdout: string }) => e,
  );
  assert.ok(err, 'expected a non-zero exit');
  assert.equal(err.code, 1);
  const lines = err.stdout.trim().split('\n');
  assert.match(lines[0]!, /^kd_T2_all\s+pass/);
  assert.match(lines[1]!, /^hard_jml1_mixed_corrupted\s+FAIL.*worst loss/);
  assert.equal(lines.at(-1), '1 passed, 1 failed');

  await writeFile(path, JSON.stringify({ ...file, cases: [good] }));
  const ok = await run(process.execPath, ['--import', 'tsx', script, path], { cwd: repoRoot });
  assert.equal(ok.stdout.trim().split('\n').at(-1), '1 passed, 0 failed');
});

test('check:vectors needs nothing outside the repository: without arguments it checks test/fixtures/reference-vectors.json', async () => {
  const { SOFTSEG_VECTORS: _, ...env } = process.env;
  const cwd = await mkdtemp(join(tmpdir(), 'softseg-vectors-cwd-'));
  const script = join(repoRoot, 'scripts/check-vectors.ts');
  const { stdout, stderr } = await run(process.execPath, ['--import', import.meta.resolve('tsx'), script], { cwd, env });
  assert.match(stderr, /^checking .*test\/fixtures\/reference-vectors\.json$/m);
  assert.equal(stdout.trim().split('\n').at(-1), '69 passed, 0 failed');
});

test('SOFTSEG_VECTORS points check:vectors and the tests at another file', async () => {
  const file = JSON.parse(await readFile(referenceVectorsPath(), 'utf8')) as VectorFile;
  const dir = await mkdtemp(join(tmpdir(), 'softseg-vectors-env-'));
  const path = join(dir, 'one.json');
  await writeFile(path, JSON.stringify({ ...file, cases: [file.cases.find((c) => c.id === 'kd_T2_all')!] }));
  const script = join(repoRoot, 'scripts/check-vectors.ts');
  const { stdout } = await run(process.execPath, ['--import', 'tsx', script], { cwd: repoRoot, env: { ...process.env, SOFTSEG_VECTORS: path } });
  assert.equal(stdout.trim().split('\n').at(-1), '1 passed, 0 failed');
  const saved = process.env.SOFTSEG_VECTORS;
  process.env.SOFTSEG_VECTORS = path;
  try {
    assert.equal(referenceVectorsPath(), path);
  } finally {
    if (saved === undefined) delete process.env.SOFTSEG_VECTORS;
    else process.env.SOFTSEG_VECTORS = saved;
  }
});
