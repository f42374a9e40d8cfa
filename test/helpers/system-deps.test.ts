import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chmod, mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isCI, missingSystemDependency, requireChromium } from './system-deps.js';

async function fakeBin(name: string, executable = true): Promise<{ dir: string; path: string }> {
  const dir = await mkdtemp(join(tmpdir(), 'softseg-deps-'));
  const path = join(dir, name);
  await writeFile(path, '#!/bin/sh\nexit 0\n');
  await chmod(path, executable ? 0o755 : 0o644);
  return { dir, path };
}

test('requireChromium finds chromium or chromium-browser on PATH, or CHROMIUM_PATH', async () => {
  const a = await fakeBin('chromium');
  assert.deepEqual(requireChromium({ PATH: a.dir }), { path: a.path });
  const b = await fakeBin('chromium-browser');
  assert.deepEqual(requireChromium({ PATH: b.dir }), { path: b.path });
  assert.deepEqual(requireChromium({ PATH: '/nonexistent', CHROMIUM_PATH: a.path }), { path: a.path });
});

test('a missing chromium is a skip with the reason and the install script outside CI', async () => {
  const empty = await mkdtemp(join(tmpdir(), 'softseg-deps-empty-'));
  const noExec = await fakeBin('chromium', false);
  for (const env of [{ PATH: empty }, { PATH: noExec.dir }, { PATH: empty, CI: 'false' }, { PATH: empty, CI: '0' }]) {
    const r = requireChromium(env);
    assert.ok('skip' in r, JSON.stringify(env));
    assert.match(r.skip, /chromium is not installed: run scripts\/install-system-deps\.sh/);
  }
  const r = requireChromium({ PATH: empty, CHROMIUM_PATH: noExec.path });
  assert.deepEqual(r, { skip: `CHROMIUM_PATH=${noExec.path} is not an executable file` });
});

test('under CI=true a missing dependency is a failure, not a skip', async () => {
  const empty = await mkdtemp(join(tmpdir(), 'softseg-deps-empty-'));
  assert.throws(() => requireChromium({ PATH: empty, CI: 'true' }), /chromium is not installed.*CI=true: missing system dependencies fail the tests on CI/);
  assert.throws(() => missingSystemDependency('no GPU', { CI: '1' }), /^Error: no GPU \(CI=1/);
  assert.deepEqual(missingSystemDependency('no GPU', {}), { skip: 'no GPU' });
  assert.equal(isCI({ CI: 'true' }), true);
  assert.equal(isCI({ CI: 'TRUE' }), true);
  assert.equal(isCI({}), false);
});
