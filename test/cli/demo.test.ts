// `softseg demo --quick`: the whole workflow end to end on generated data, as a newcomer runs it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { repoRoot } from '../helpers/backend.js';

const exec = promisify(execFile);

test('demo --quick trains a teacher, labels, distills and compares a student, evaluates, and writes the report', async () => {
  const out = join(await mkdtemp(join(tmpdir(), 'softseg-demo-')), 'demo');
  const { stdout } = await exec(process.execPath, [join(repoRoot, 'bin/run.js'), 'demo', '--quick', '--out', out, '--backend', 'wasm'], { cwd: repoRoot, maxBuffer: 16 << 20 });
  assert.match(stdout, /^model\s+architecture\s+mIoU\s+mIoU\^I\s+ECE %\s+params\s+train img\/s$/m);
  for (const row of ['teacher', 'student, JML-KD', 'student, CE only']) assert.match(stdout, new RegExp(`^${row.replace('^', '\\^')}\\s+\\S+\\s+\\d+\\.\\d\\s+\\d+\\.\\d`, 'm'));
  for (const cmd of ['softseg train', 'softseg label', 'softseg distill', 'softseg eval', 'softseg report']) assert.ok(stdout.includes(cmd), cmd);
  assert.ok(existsSync(join(out, 'report.html')));
  for (const run of ['teacher', 'student-kd', 'student-ce']) assert.ok(existsSync(join(out, 'runs', run, 'model', 'model.json')), run);
});
