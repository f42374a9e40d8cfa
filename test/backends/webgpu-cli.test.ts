// The CLI on the webgpu backend as a user runs it: `train`, and `label` + `distill` with a TF.js teacher, end to
// end (their losses next to wasm's), `info` naming the adapter, and a one-line error without a Vulkan driver.
import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { generateShapesDataset } from '../../src/data/synthetic.js';
import { repoRoot } from '../helpers/backend.js';
import { bin, softseg, type CliResult } from '../helpers/cli.js';
import { distillFixture } from '../helpers/distill-fixture.js';
import { requireWebGpu } from '../helpers/system-deps.js';

let root = '';
let skip: string | undefined;

before(async () => {
  const dep = await requireWebGpu();
  if ('skip' in dep) skip = dep.skip;
  root = await mkdtemp(join(tmpdir(), 'softseg-cli-webgpu-'));
  await generateShapesDataset(join(root, 'shapes'), { splits: { train: 16, val: 4 }, size: 32, numClasses: 4, seed: 3 });
});

const lastTrainLoss = async (runDir: string): Promise<number> =>
  (await readFile(join(runDir, 'metrics.jsonl'), 'utf8')).trim().split('\n').map((l) => JSON.parse(l)).filter((l) => l.type === 'train').at(-1).loss;

test('train --backend webgpu runs end to end and ends at the loss the wasm backend reaches', async (t) => {
  if (skip !== undefined) return t.skip(skip);
  const runs: Record<string, CliResult & { loss: number }> = {};
  for (const backend of ['wasm', 'webgpu']) {
    const out = join(root, `run-${backend}`);
    const r = await softseg('train', '--data', join(root, 'shapes/train'), '--val', join(root, 'shapes/val'), '--model', 'mobile-unet',
      '--out', out, '--steps', '6', '--crop', '32', '--batch-size', '4', '--backend', backend, '--json');
    assert.equal(r.code, 0, r.stderr);
    const meta = JSON.parse(await readFile(join(out, 'model', 'softseg.json'), 'utf8'));
    assert.equal(meta.backend.name, backend);
    runs[backend] = { ...r, loss: await lastTrainLoss(out) };
  }
  const result = JSON.parse(runs.webgpu!.stdout);
  assert.equal(result.steps, 6);
  assert.ok(typeof result.bestMetric === 'number');
  const { wasm, webgpu } = { wasm: runs.wasm!.loss, webgpu: runs.webgpu!.loss };
  assert.ok(Math.abs(wasm - webgpu) <= 1e-3 * wasm, `loss after 6 steps: wasm ${wasm}, webgpu ${webgpu}`);
});

test('label with a TF.js teacher, then distill from its cache, on --backend webgpu: the same loss as on wasm', async (t) => {
  if (skip !== undefined) return t.skip(skip);
  const fixture = await distillFixture('softseg-cli-webgpu-distill-', { labeled: 8, unlabeled: 0, numClasses: 4 });
  const teacher = join(fixture, 'teacher', 'model');
  const losses: Record<string, number> = {};
  for (const backend of ['wasm', 'webgpu']) {
    const cache = join(fixture, `cache-${backend}`);
    const label = await softseg('label', '--teacher', teacher, '--images', join(fixture, 'data', 'images'), '--cache', cache, '--backend', backend, '--json');
    assert.equal(label.code, 0, label.stderr);
    assert.equal(JSON.parse(label.stdout).labelled, 8);
    const distill = await softseg('distill', '--data', join(fixture, 'data'), '--cache', cache, '--teacher', teacher, '--model', 'mobile-unet',
      '--out', join(fixture, `distill-${backend}`), '--steps', '3', '--crop', '32', '--batch-size', '4', '--backend', backend, '--json');
    assert.equal(distill.code, 0, distill.stderr);
    const result = JSON.parse(distill.stdout);
    assert.equal(result.steps, 3);
    losses[backend] = result.lastLoss;
  }
  assert.ok(Math.abs(losses.wasm! - losses.webgpu!) <= 1e-3 * Math.abs(losses.wasm!), `distill loss after 3 steps: wasm ${losses.wasm}, webgpu ${losses.webgpu}`);
});

test('info --backend webgpu names the adapter and says it is used', async (t) => {
  if (skip !== undefined) return t.skip(skip);
  const r = await softseg('info', '--backend', 'webgpu', '--json');
  assert.equal(r.code, 0, r.stderr);
  const info = JSON.parse(r.stdout);
  assert.equal(info.backend.name, 'webgpu');
  assert.equal(info.gpu.available, true);
  assert.equal(info.gpu.used, true);
  assert.equal(typeof info.gpu.adapter.software, 'boolean');
  assert.ok(info.gpu.adapter.limits.maxStorageBufferBindingSize > 0);
  assert.equal(info.optionalPackages.webgpu.installed, true);
  const text = await softseg('info', '--backend', 'webgpu');
  assert.match(text.stdout, /^gpu +.+, (hardware|software \(CPU\)) — used \(backend webgpu\)$/m);
  assert.match(text.stdout, /^gpu limits +buffer \d+ MiB, storage binding \d+ MiB/m);
});

test('--backend webgpu without a Vulkan driver is one line naming the problem and the fix, exit 1', async (t) => {
  if (skip !== undefined) return t.skip(skip);
  // The Vulkan loader reads its driver list from these variables: point them at nothing.
  const env = { ...process.env, VK_ICD_FILENAMES: '/nonexistent/icd.json', VK_DRIVER_FILES: '/nonexistent/icd.json' };
  const r = await promisify(execFile)(process.execPath, [bin, 'info', '--backend', 'webgpu'], { cwd: repoRoot, env }).then(
    () => ({ code: 0, stderr: '' }),
    (e: { code: number; stderr: string }) => e,
  );
  assert.equal(r.code, 1);
  const errors = r.stderr.split('\n').filter((l) => l.startsWith('Error:'));
  assert.equal(errors.length, 1, r.stderr);
  assert.match(errors[0]!, /^Error: the webgpu backend is unavailable: no WebGPU adapter \(the Vulkan loader found no usable driver; .*\) — .*scripts\/install-system-deps\.sh/);
});
