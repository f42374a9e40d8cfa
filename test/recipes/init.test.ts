// --init (train, distill and ssl): a run starts from a trained model's weights, layer by layer; a classifier with
// another class count or an aux head the model lacks starts fresh (fine-tuning), anything else is refused; a
// resumed run restores its checkpoint and no longer needs the init folder.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../../src/backends/select.js';
import { generateShapesDataset } from '../../src/data/synthetic.js';
import { SoftsegError } from '../../src/errors.js';
import type { SegModel } from '../../src/models/base.js';
import { saveModel } from '../../src/models/io.js';
import { createModel } from '../../src/models/registry.js';
import { loadInit } from '../../src/recipes/run.js';
import { TRAIN_DEFAULTS, trainSupervised } from '../../src/recipes/supervised.js';

await initBackend({ backend: 'wasm' });

const weightsOf = (m: SegModel): Map<string, Float32Array> =>
  new Map(m.model.layers.flatMap((l) => l.getWeights().map((w, i) => [`${l.name}/${i}`, w.dataSync() as Float32Array] as const)));

async function saved(options: { numClasses: number; width?: number; aux?: boolean }, name = 'mobile-unet'): Promise<{ dir: string; weights: Map<string, Float32Array> }> {
  const dir = await mkdtemp(join(tmpdir(), 'softseg-init-'));
  const m = createModel(name, { width: 0.25, seed: 1, ...options });
  await saveModel(m, join(dir, 'model'));
  const weights = weightsOf(m);
  m.dispose();
  return { dir, weights };
}

test('--init copies every layer of the trained model; the student\'s own initialisation is gone', async () => {
  const from = await saved({ numClasses: 3 });
  const student = createModel('mobile-unet', { numClasses: 3, width: 0.25, seed: 2 });
  const before = weightsOf(student);
  const warnings: string[] = [];
  assert.equal(await loadInit(from.dir, student, { onWarning: (w) => warnings.push(w) }), join(from.dir, 'model'));
  const after = weightsOf(student);
  assert.equal(after.size, from.weights.size);
  for (const [k, w] of from.weights) {
    assert.deepEqual(after.get(k), w, k);
    if (w.some((v) => v !== 0 && v !== 1)) assert.notDeepEqual(before.get(k), w, `${k} differed before`);
  }
  assert.deepEqual(warnings, []);
  student.dispose();
});

test('--init to another class count: the classifier starts fresh, every other layer from the model, and the run is told', async () => {
  const from = await saved({ numClasses: 3 });
  const student = createModel('mobile-unet', { numClasses: 5, width: 0.25, seed: 2, aux: true });
  const before = weightsOf(student);
  const warnings: string[] = [];
  const tensors = tf.memory().numTensors;
  await loadInit(from.dir, student, { onWarning: (w) => warnings.push(w) });
  assert.equal(tf.memory().numTensors, tensors, 'the loaded model is disposed');
  const after = weightsOf(student);
  for (const [k, w] of after) {
    const layer = k.split('/')[0]!;
    if (layer === 'logits' || layer.startsWith('aux')) assert.deepEqual(w, before.get(k), `${k} keeps the student's own initialisation`);
    else assert.deepEqual(w, from.weights.get(k), `${k} comes from the model`);
  }
  assert.equal(warnings.length, 1);
  assert.match(warnings[0]!, /^--init .*: aux_conv, aux_bn, logits, aux_logits start from random weights \(its model has 3 classes, this run 5; its model has no aux head\); every other layer starts from /);
  student.dispose();
});

test('--init of another architecture or width is refused naming both models', async () => {
  const unet = await saved({ numClasses: 3 }, 'unet-lite');
  const wide = await saved({ numClasses: 3, width: 0.5 });
  for (const [dir, pattern] of [
    [unet.dir, /^--init .*: its model is unet-lite \(width 0\.25, no aux head, 3 classes\), this run trains mobile-unet \(width 0\.25, no aux head, 3 classes\)/],
    [wide.dir, /its model is mobile-unet \(width 0\.5, .*\), this run trains mobile-unet \(width 0\.25, /],
  ] as const) {
    const student = createModel('mobile-unet', { numClasses: 3, width: 0.25, seed: 2 });
    await assert.rejects(loadInit(dir, student), (e: unknown) => e instanceof SoftsegError && pattern.test(e.message) && /same --model, --width and --upsampling/.test(e.hint ?? ''));
    student.dispose();
  }
  const student = createModel('mobile-unet', { numClasses: 3, width: 0.25 });
  await assert.rejects(loadInit(join(unet.dir, 'nothing-here'), student), (e: unknown) => e instanceof SoftsegError && /no model found/.test(e.message));
  student.dispose();
});

test('train --init starts from the model (a tiny learning rate keeps its weights), records it, and resumes without it', async () => {
  const root = await mkdtemp(join(tmpdir(), 'softseg-init-'));
  await generateShapesDataset(join(root, 'data'), { count: 8, size: 32, numClasses: 3, seed: 1 });
  const from = await saved({ numClasses: 3 });
  const env = { backend: await initBackend({ backend: 'wasm' }), version: 'test' };
  const config = { ...TRAIN_DEFAULTS, data: join(root, 'data'), out: join(root, 'run'), model: 'mobile-unet', width: 0.25, batchSize: 2, steps: 4, checkpointEvery: 2, lr: 1e-9, seed: 5, init: from.dir };
  const stop = new AbortController();
  const first = await trainSupervised(config, { ...env, signal: stop.signal, onEvent: (e) => { if (e.type === 'checkpoint' && e.step === 2) stop.abort(); } });
  assert.ok(first.result.steps < 4, 'stopped before the end');
  // The init folder is gone: a resumed run restores its checkpoint and does not need it.
  await rm(from.dir, { recursive: true });
  const run = await trainSupervised({ ...config, resume: true }, env);
  assert.equal(run.result.steps, 4);
  const { openTrainedModel } = await import('../../src/inference/model-dir.js');
  const trained = await openTrainedModel(join(root, 'run'));
  const after = weightsOf(trained.model);
  for (const l of trained.model.model.layers) {
    for (const [i, w] of l.trainableWeights.entries()) {
      const k = `${l.name}/${l.weights.indexOf(w)}`;
      const a = after.get(k)!, b = from.weights.get(k)!;
      assert.ok(a.every((v, j) => Math.abs(v - b[j]!) < 1e-6), `${k} (${i}) stays at the model's value`);
    }
  }
  trained.model.dispose();
  assert.equal(JSON.parse(await readFile(join(root, 'run', 'config.json'), 'utf8')).init, from.dir);
});

test('distill/ssl: the student\'s upsampling is the one given, else --init\'s model\'s, else half-pixel', async () => {
  const { writeSoftsegJson } = await import('../../src/inference/softseg-json.js');
  const { resolveStudentUpsampling } = await import('../../src/recipes/run.js');
  const resolved = async (c: { init?: string; upsampling?: 'aligned' | 'half-pixel' }) => {
    const config = { ...TRAIN_DEFAULTS, upsampling: undefined, ...c } as unknown as typeof TRAIN_DEFAULTS;
    await resolveStudentUpsampling(config);
    return config.upsampling;
  };
  const old = await saved({ numClasses: 3 }); // no softseg.json: a model from before the option, aligned
  const half = await saved({ numClasses: 3 });
  await writeSoftsegJson(join(half.dir, 'model'), { architecture: 'mobile-unet', modelOptions: { numClasses: 3, width: 0.25, upsampling: 'half-pixel' } });
  assert.equal(await resolved({}), 'half-pixel');
  assert.equal(await resolved({ init: old.dir }), 'aligned');
  assert.equal(await resolved({ init: half.dir }), 'half-pixel');
  assert.equal(await resolved({ init: old.dir, upsampling: 'half-pixel' }), 'half-pixel', 'a given value wins (loadInit then names the mismatch)');
  assert.equal(await resolved({ init: join(old.dir, 'missing') }), 'half-pixel', 'an unreadable --init is left to loadInit to name');
});
