// What a fresh clone's set-up does and does not do: npm commands without warnings from the project's own
// config, no system package installed by `npm test`, and the system packages' script run by CI and named by
// the README.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { readFile, readdir } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { promisify } from 'node:util';
import { repoRoot } from './helpers/backend.js';

const exec = promisify(execFile);

async function filesUnder(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readdir(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) out.push(...(await filesUnder(p)));
    else if (/\.(ts|js|mjs|sh)$/.test(e.name)) out.push(p);
  }
  return out;
}

test('npm commands in the checkout print no warning about the project\'s npm config', async () => {
  const { stdout, stderr } = await exec('npm', ['pkg', 'get', 'name'], { cwd: repoRoot });
  assert.equal(stdout.trim(), '"softseg"');
  assert.doesNotMatch(stderr, /Unknown (project|user|env) config/);
  assert.equal(existsSync(join(repoRoot, '.npmrc')), false, 'no .npmrc: onnxruntime-node\'s download is skipped by ONNXRUNTIME_NODE_INSTALL where it matters');
});

test('every dependency with an install script is reviewed in package.json\'s allowScripts (npm ≥ 11.16 lists unreviewed ones; npm 12 blocks them)', async () => {
  const pkg = JSON.parse(await readFile(join(repoRoot, 'package.json'), 'utf8')) as { allowScripts?: Record<string, boolean> };
  const lock = JSON.parse(await readFile(join(repoRoot, 'package-lock.json'), 'utf8')) as { packages: Record<string, { hasInstallScript?: boolean }> };
  const withScripts = Object.entries(lock.packages).filter(([, p]) => p.hasInstallScript).map(([path]) => path.replace(/^.*node_modules\//, ''));
  assert.ok(withScripts.includes('onnxruntime-node'), 'the lockfile is read');
  assert.deepEqual(withScripts.filter((name) => typeof pkg.allowScripts?.[name] !== 'boolean'), [], 'not in allowScripts');
  // onnxruntime-node's script only downloads CUDA libraries softseg does not use; run offline it fails and npm drops
  // the optional package. The libtensorflow download is what makes tfjs-node work at all.
  assert.equal(pkg.allowScripts?.['onnxruntime-node'], false);
  assert.equal(pkg.allowScripts?.['@tensorflow/tfjs-node'], true);
  assert.equal(pkg.allowScripts?.['@tensorflow/tfjs-node-gpu'], true);
});

test('npm test installs nothing: no test, benchmark or npm script runs apt-get or the system-deps script', async () => {
  const offenders: string[] = [];
  for (const f of [...await filesUnder(join(repoRoot, 'test')), ...await filesUnder(join(repoRoot, 'bench'))]) {
    if (f === join(repoRoot, 'test/setup.test.ts')) continue;
    const text = await readFile(f, 'utf8');
    if (/apt-get|ensure-chromium|(exec|spawn)[^\n]*install-system-deps/.test(text)) offenders.push(relative(repoRoot, f));
  }
  assert.deepEqual(offenders, []);
  const { scripts } = JSON.parse(await readFile(join(repoRoot, 'package.json'), 'utf8')) as { scripts: Record<string, string> };
  for (const name of ['test', 'test:unit', 'prepare', 'build', 'typecheck', 'lint']) assert.doesNotMatch(scripts[name] ?? '', /install-system-deps|apt-get/, name);
});

test('CI installs the system packages before npm test, with the script the README names', async () => {
  const ci = (await readFile(join(repoRoot, '.ci/run'), 'utf8')).split('\n');
  const install = ci.indexOf('scripts/install-system-deps.sh');
  assert.ok(install >= 0, '.ci/run calls scripts/install-system-deps.sh');
  assert.ok(install < ci.indexOf('npm test'), 'before npm test');
  assert.match(ci.join('\n'), /^export ONNXRUNTIME_NODE_INSTALL=skip$/m);
  const readme = await readFile(join(repoRoot, 'README.md'), 'utf8');
  assert.match(readme, /scripts\/install-system-deps\.sh/);
  assert.match(readme, /ONNXRUNTIME_NODE_INSTALL=skip/);
});
