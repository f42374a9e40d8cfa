// The commands the demo prints run as printed: the CLI is named the way this installation runs it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, symlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cliInvocation } from '../../src/demo/demo.js';
import { repoRoot } from '../helpers/backend.js';

const cli = join(repoRoot, 'bin/run.js');

test('in the checkout (the README\'s set-up), the demo prints ./bin/run.js', () => {
  assert.equal(cliInvocation(cli, repoRoot, { PATH: '/usr/bin:/bin' }), './bin/run.js');
  assert.equal(cliInvocation(cli, join(repoRoot, 'bin'), { PATH: '' }), './run.js');
});

test('outside the checkout it prints the path of bin/run.js', async () => {
  const elsewhere = await mkdtemp(join(tmpdir(), 'softseg-demo-cwd-'));
  assert.equal(cliInvocation(cli, elsewhere, { PATH: '/usr/bin' }), cli);
  assert.equal(cliInvocation('/opt/my tools/bin/run.js', elsewhere, {}), `'/opt/my tools/bin/run.js'`);
});

test('when `softseg` on PATH is this installation (npm link, a global install), it prints softseg', async () => {
  const bin = await mkdtemp(join(tmpdir(), 'softseg-demo-path-'));
  await symlink(cli, join(bin, 'softseg'));
  assert.equal(cliInvocation(cli, repoRoot, { PATH: `/usr/bin:${bin}` }), 'softseg');
  const other = await mkdtemp(join(tmpdir(), 'softseg-demo-other-'));
  await symlink('/bin/true', join(other, 'softseg'));
  assert.equal(cliInvocation(cli, repoRoot, { PATH: other }), './bin/run.js', 'another program called softseg is not this one');
});
