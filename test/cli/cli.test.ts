// The CLI as a user runs it: the compiled bin (npm test builds first).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { softseg } from '../helpers/cli.js';

test('--help lists every topic', async () => {
  const { code, stdout, stderr } = await softseg('--help');
  assert.equal(code, 0);
  for (const topic of ['train', 'label', 'distill', 'ssl', 'eval', 'predict', 'cache', 'models', 'demo', 'report', 'info']) {
    assert.match(stdout, new RegExp(`^  ${topic}\\s`, 'm'), `topic ${topic} missing from --help`);
  }
  assert.doesNotMatch(stderr, /ModuleLoadError|Warning/);
});

test('info --json reports versions, the backend chosen and why, and optional packages', async () => {
  const { code, stdout, stderr } = await softseg('info', '--json');
  assert.equal(code, 0, stderr);
  const info = JSON.parse(stdout);
  assert.equal(info.tfjs, '4.22.0');
  assert.equal(info.backend.requested, 'auto');
  assert.equal(info.backend.name, 'wasm');
  assert.match(info.backend.reason, /tfjs-node-gpu not installed/);
  assert.ok(info.backend.threads >= 1);
  for (const pkg of ['@tensorflow/tfjs-node', '@tensorflow/tfjs-node-gpu', 'onnxruntime-node']) assert.equal(typeof info.optionalPackages[pkg].installed, 'boolean');
  assert.doesNotMatch(stderr, /Hi there|cpu backend/i, 'no TF.js banner');
});

test('info in a terminal-style table names the backend', async () => {
  const { code, stdout } = await softseg('info', '--backend', 'wasm');
  assert.equal(code, 0);
  assert.match(stdout, /^backend\s+wasm/m);
});

test('asking for an absent optional backend is one clear error line and a non-zero exit', async () => {
  const { code, stderr } = await softseg('info', '--backend', 'tensorflow');
  assert.notEqual(code, 0);
  assert.match(stderr, /npm install @tensorflow\/tfjs-node@4\.22\.0/);
  assert.doesNotMatch(stderr, /at .*\.js:\d+/, 'no stack trace');
});
