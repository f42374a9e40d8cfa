// The README's commands, run as a newcomer would: the set-up command's demo (quick variant), then every
// fenced block marked `sh runnable` in order, in one working folder, with shorter runs where marked.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { repoRoot } from '../helpers/backend.js';

const exec = promisify(execFile);
const bin = join(repoRoot, 'bin/run.js');

/** Shell commands of the README's fenced blocks whose info string is `sh runnable`. */
export function runnableCommands(readme: string): string[] {
  const blocks = [...readme.matchAll(/```sh runnable\n([\s\S]*?)```/g)].map((m) => m[1]!);
  return blocks.flatMap((b) => b.split('\n').map((l) => l.trim()).filter((l) => l && !l.startsWith('#')));
}

/** `./bin/run.js a b c` → argv for node; quick variants: fewer steps. */
function argv(command: string): string[] {
  const words = command.split(/\s+/);
  assert.equal(words[0], './bin/run.js', `README command does not start with ./bin/run.js: ${command}`);
  return words.slice(1).map((w, i, all) => (all[i - 1] === '--steps' ? '4' : w));
}

test('README: the two set-up commands are the ones documented, and the demo runs end to end (quick)', async () => {
  const readme = await readFile(join(repoRoot, 'README.md'), 'utf8');
  const setup = [...readme.matchAll(/```sh\n([\s\S]*?)```/g)].map((m) => m[1]!.trim());
  assert.equal(setup[0], 'npm ci && ./bin/run.js demo');
  assert.equal(setup[1], 'npm test');
  const ci = await readFile(join(repoRoot, '.ci/run'), 'utf8');
  assert.match(ci, /^npm ci\b/m);
  assert.match(ci, /^npm test$/m, '.ci/run runs exactly the README\'s test command');
});

test('README: the demo and then every runnable workflow command succeed in one working folder', async () => {
  const cwd = await mkdtemp(join(tmpdir(), 'softseg-readme-'));
  const demo = await exec(process.execPath, [bin, 'demo', '--quick', '--backend', 'wasm'], { cwd, maxBuffer: 16 << 20 });
  assert.match(demo.stdout, /^model\s+architecture\s+mIoU\s+mIoU\^I\s+ECE %\s+params\s+train img\/s$/m);
  for (const row of ['teacher', 'student, JML-KD', 'student, CE only']) assert.match(demo.stdout, new RegExp(`^${row}\\s+\\S+\\s+\\d+\\.\\d\\s+\\d+\\.\\d`, 'm'));
  assert.ok(existsSync(join(cwd, 'softseg-demo', 'report.html')));

  // The commands it printed run as printed, from the same folder (a shell reads them; fewer steps).
  const printed = demo.stdout.split('The commands it ran (repeat them on your own data):\n')[1]!.split('\n\n')[0]!.split('\n').map((l) => l.trim());
  assert.deepEqual(printed.map((c) => c.split(' ')[1]), ['train', 'label', 'distill', 'train', 'eval', 'eval', 'eval', 'report']);
  for (const command of printed) {
    assert.ok(command.startsWith(`${bin} `), `printed with this checkout's bin/run.js (cwd is outside it): ${command}`);
    await exec('sh', ['-c', command.replace(/--steps \d+/, '--steps 2')], { cwd, maxBuffer: 16 << 20, env: { ...process.env, SOFTSEG_BACKEND: 'wasm' } }).catch((e: { stderr: string }) => {
      assert.fail(`the demo's printed command failed: ${command}\n${e.stderr}`);
    });
  }

  const commands = runnableCommands(await readFile(join(repoRoot, 'README.md'), 'utf8'));
  assert.ok(commands.length >= 8, `found ${commands.length} runnable commands`);
  for (const command of commands) {
    await exec(process.execPath, [bin, ...argv(command)], { cwd, maxBuffer: 16 << 20, env: { ...process.env, SOFTSEG_BACKEND: 'wasm' } }).catch((e: { stderr: string }) => {
      assert.fail(`README command failed: ${command}\n${e.stderr}`);
    });
  }
  for (const out of ['runs/teacher/model/model.json', 'runs/student/model/softseg.json', 'predictions/color', 'report.html']) assert.ok(existsSync(join(cwd, out)), out);
});
