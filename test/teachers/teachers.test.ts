import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { createModel } from '../../src/models/registry.js';
import { saveRunModel } from '../../src/engine/trainer.js';
import { normalizeImage } from '../../src/augment/normalize.js';
import { SoftsegError } from '../../src/errors.js';
import { predictProbabilities } from '../../src/inference/predict.js';
import { onnxMetadataProps, setOnnxRuntimeLoaderForTesting } from '../../src/teachers/onnx.js';
import { openTeacher, type Teacher, type TeacherOptions } from '../../src/teachers/teacher.js';
import { parseTta } from '../../src/teachers/tta.js';
import { useBackend } from '../helpers/backend.js';
import { layersModelToOnnx } from './export-onnx.js';
import { encodeOnnx, saveTinyNetGraph, saveTinyNetLayers, testImage, tinyNetOnnx, tinyNetWeights, writeBytes, type TinyNetWeights } from './nets.js';

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}

function assertProbabilities(p: Float32Array, h: number, w: number, c: number): void {
  assert.equal(p.length, h * w * c);
  for (let i = 0; i < h * w; i += 7) {
    let s = 0;
    for (let k = 0; k < c; k++) s += p[i * c + k]!;
    assert.ok(Math.abs(s - 1) < 1e-5, `pixel ${i} sums to ${s}`);
  }
}

async function rejects(promise: Promise<unknown>, needle: RegExp, file?: string): Promise<SoftsegError> {
  let caught: unknown;
  try {
    await promise;
  } catch (err) {
    caught = err;
  }
  assert.ok(caught instanceof SoftsegError, `expected a SoftsegError, got ${String(caught)}`);
  assert.match(caught.oneLine(), needle);
  if (file) assert.equal(caught.file, file);
  return caught;
}

async function withTeacher<T>(path: string, options: TeacherOptions, fn: (t: Teacher) => Promise<T>): Promise<T> {
  const t = await openTeacher(path, options);
  try {
    return await fn(t);
  } finally {
    await t.dispose();
  }
}

describe('teachers', () => {
  let dir: string;
  let w: TinyNetWeights;
  let onnxPath: string, layersDir: string;
  const images = [testImage(37, 29, 1), testImage(64, 48, 2), testImage(37, 29, 3), testImage(16, 70, 4)];

  before(async () => {
    await useBackend();
    dir = await mkdtemp(join(tmpdir(), 'softseg-teachers-'));
    w = tinyNetWeights(6, 4, 7);
    onnxPath = join(dir, 'tiny.onnx');
    layersDir = join(dir, 'tiny-tfjs');
    await writeBytes(onnxPath, tinyNetOnnx(w));
    await saveTinyNetLayers(w, layersDir);
  });
  after(async () => {
    setOnnxRuntimeLoaderForTesting();
    await rm(dir, { recursive: true, force: true });
  });

  it('the same network as ONNX and as a TF.js LayersModel gives the same probabilities (with and without TTA, batched)', async () => {
    const before = tf.memory().numTensors;
    for (const tta of [undefined, 'flip', 'flip,scales=0.75,1,1.25']) {
      const options: TeacherOptions = { tta: tta ? parseTta(tta) : undefined };
      const viaOnnx = await withTeacher(onnxPath, options, async (t) => {
        assert.equal(t.kind, 'onnx');
        assert.equal(t.numClasses, 4);
        return t.predictBatch(images);
      });
      const viaTfjs = await withTeacher(join(layersDir, 'model.json'), options, async (t) => {
        assert.equal(t.kind, 'tfjs');
        assert.equal(t.describe.format, 'layers-model');
        const batch = await t.predictBatch(images);
        // One image at a time gives the same as the batch.
        assert.ok(maxAbsDiff(await t.predict(images[1]!), batch[1]!) < 1e-6);
        return batch;
      });
      images.forEach((img, i) => {
        assertProbabilities(viaOnnx[i]!, img.height, img.width, 4);
        const d = maxAbsDiff(viaOnnx[i]!, viaTfjs[i]!);
        assert.ok(d <= 1e-5, `tta ${tta}, image ${i}: max |onnx − tfjs| = ${d}`);
      });
    }
    assert.equal(tf.memory().numTensors, before, 'no tensors leak');
  });

  it('a TF.js GraphModel (graph-model model.json) gives the same probabilities too', async () => {
    const graphDir = join(dir, 'tiny-graph');
    await saveTinyNetGraph(w, graphDir);
    const before = tf.memory().numTensors;
    const tta = parseTta('flip,scales=0.75,1');
    const viaGraph = await withTeacher(graphDir, { tta }, async (t) => {
      assert.equal(t.describe.format, 'graph-model');
      assert.equal(t.numClasses, 4);
      return t.predictBatch(images);
    });
    const viaOnnx = await withTeacher(onnxPath, { tta }, (t) => t.predictBatch(images));
    images.forEach((_, i) => assert.ok(maxAbsDiff(viaGraph[i]!, viaOnnx[i]!) <= 1e-5));
    assert.equal(tf.memory().numTensors, before);
  });

  it('TTA changes the result but keeps it close; the folder of a TF.js model opens too', async () => {
    const plain = await withTeacher(layersDir, {}, (t) => t.predict(images[0]!));
    const tta = await withTeacher(layersDir, { tta: parseTta('flip,scales=0.75,1,1.25') }, (t) => t.predict(images[0]!));
    const d = maxAbsDiff(plain, tta);
    assert.ok(d > 1e-4 && d < 0.9, `tta difference ${d}`);
  });

  it('NHWC, fixed-size, fixed-batch and probability-output ONNX models', async () => {
    const nhwc = join(dir, 'nhwc.onnx');
    await writeBytes(nhwc, tinyNetOnnx(w, { layout: 'nhwc' }));
    const ref = await withTeacher(onnxPath, {}, (t) => t.predictBatch(images));
    const got = await withTeacher(nhwc, {}, async (t) => {
      assert.equal(t.describe.layout, 'nhwc');
      return t.predictBatch(images);
    });
    images.forEach((_, i) => assert.ok(maxAbsDiff(ref[i]!, got[i]!) < 1e-5));

    const probs = join(dir, 'probs.onnx');
    await writeBytes(probs, tinyNetOnnx(w, { probabilities: true, batch: 1 }));
    const viaProbs = await withTeacher(probs, { outputs: 'probabilities' }, async (t) => {
      assert.equal(t.describe.batch, 1);
      return t.predictBatch(images);
    });
    images.forEach((_, i) => assert.ok(maxAbsDiff(ref[i]!, viaProbs[i]!) < 1e-5));

    // Fixed 32×32 input: images are resized to it and the probabilities back, identically for ONNX and TF.js.
    const fixed = join(dir, 'fixed.onnx');
    await writeBytes(fixed, tinyNetOnnx(w, { size: [32, 32], batch: 2 }));
    const a = await withTeacher(fixed, { tta: parseTta('flip') }, async (t) => {
      assert.deepEqual(t.describe.size, [32, 32]);
      return t.predictBatch(images);
    });
    const b = await withTeacher(layersDir, { size: 32, tta: parseTta('flip') }, (t) => t.predictBatch(images));
    images.forEach((img, i) => {
      assertProbabilities(a[i]!, img.height, img.width, 4);
      assert.ok(maxAbsDiff(a[i]!, b[i]!) < 1e-5);
    });
    // A model whose scores come out at half resolution: upsampled bilinearly before the softmax.
    const strided = join(dir, 'strided.onnx');
    await writeBytes(strided, encodeOnnx({
      input: { name: 'x', dims: ['N', 3, 'H', 'W'] },
      output: { name: 'y', dims: ['N', 2, 'h', 'w'] },
      initializers: [{ name: 'k', dims: [2, 3, 1, 1], data: Float32Array.from([1, 0, 0, 0, 0, 1]) }],
      nodes: [{ op: 'Conv', inputs: ['x', 'k'], outputs: ['y'], attrs: { kernel_shape: [1, 1], strides: [2, 2] } }],
    }));
    await withTeacher(strided, {}, async (t) => {
      assert.equal(t.numClasses, 2);
      const p = await t.predict(images[3]!);
      assertProbabilities(p, images[3]!.height, images[3]!.width, 2);
    });
    await rejects(openTeacher(fixed, { tta: parseTta('scales=0.5,1') }), /multi-scale TTA needs a model that takes any input size/, fixed);
    await rejects(openTeacher(fixed, { size: 64 }), /does not match the model's fixed input size 32x32/, fixed);
  });

  it('a softseg run directory: metadata from softseg.json, same output as predict, and its ONNX export agrees', async () => {
    const seg = createModel('unet-lite', { numClasses: 3, width: 0.5, seed: 3 });
    const runDir = join(dir, 'run');
    const normalization = { mean: [0.5, 0.4, 0.3] as [number, number, number], std: [0.2, 0.25, 0.3] as [number, number, number] };
    await saveRunModel(seg, join(runDir, 'model'), { architecture: 'unet-lite', numClasses: 3, classes: ['sky', 'road', 'car'], normalization, inputSize: [32, 32] });
    const img = testImage(40, 24, 5);
    const expected = tf.tidy(() => predictProbabilities(seg, normalizeImage(img.data, normalization), img.height, img.width).dataSync() as Float32Array);
    const onnxBytes = layersModelToOnnx(seg.model, { softseg: JSON.stringify({ classes: ['sky', 'road', 'car'], normalization }) });
    seg.dispose();
    const viaRun = await withTeacher(runDir, {}, async (t) => {
      assert.equal(t.describe.format, 'softseg');
      assert.deepEqual(t.classes, ['sky', 'road', 'car']);
      assert.deepEqual(t.normalization, normalization);
      assert.equal(t.describe.multiple, 8);
      return t.predict(img);
    });
    assert.ok(maxAbsDiff(viaRun, expected) < 1e-5);
    const unetOnnx = join(dir, 'unet-lite.onnx');
    await writeBytes(unetOnnx, onnxBytes);
    assert.deepEqual(Object.keys(onnxMetadataProps(onnxBytes)), ['softseg']);
    const viaOnnx = await withTeacher(unetOnnx, { multiple: 8 }, async (t) => {
      assert.deepEqual(t.classes, ['sky', 'road', 'car']);
      assert.deepEqual(t.normalization, normalization);
      return t.predict(img);
    });
    const d = maxAbsDiff(viaOnnx, expected);
    assert.ok(d <= 1e-5, `unet-lite onnx vs tfjs: ${d}`);
  });

  it('fingerprints: stable across opens, change with a weight byte, the normalisation or the TTA, not with the path', async () => {
    const fp = async (path: string, o: TeacherOptions = {}) => withTeacher(path, o, async (t) => t.fingerprint);
    const base = await fp(onnxPath);
    assert.match(base, /^[0-9a-f]{64}$/);
    assert.equal(await fp(onnxPath), base);
    const copy = join(dir, 'elsewhere', 'renamed.onnx');
    await writeBytes(copy, await readFile(onnxPath));
    assert.equal(await fp(copy), base);
    assert.notEqual(await fp(onnxPath, { mean: [0.5, 0.5, 0.5] }), base);
    assert.notEqual(await fp(onnxPath, { tta: parseTta('flip') }), base);
    assert.equal(await fp(onnxPath, { tta: parseTta('none') }), base);
    assert.notEqual(await fp(onnxPath, { tta: parseTta('flip,scales=0.75,1') }), await fp(onnxPath, { tta: parseTta('flip') }));
    const w2 = { ...w, b2: Float32Array.from(w.b2) };
    w2.b2[0] = w2.b2[0]! + 1e-3;
    const changed = join(dir, 'changed.onnx');
    await writeBytes(changed, tinyNetOnnx(w2));
    assert.notEqual(await fp(changed), base);

    const tfBase = await fp(layersDir);
    assert.equal(await fp(join(layersDir, 'model.json')), tfBase);
    assert.notEqual(tfBase, base);
    const weightsFile = join(layersDir, 'weights.bin');
    const original = await readFile(weightsFile);
    const flipped = Buffer.from(original);
    flipped[flipped.length - 1] = flipped[flipped.length - 1]! ^ 1;
    await writeFile(weightsFile, flipped);
    try {
      assert.notEqual(await fp(layersDir), tfBase);
    } finally {
      await writeFile(weightsFile, original);
    }
    assert.equal(await fp(layersDir), tfBase);
    assert.notEqual(await fp(layersDir, { std: [0.3, 0.3, 0.3] }), tfBase);
  });

  it('clear errors for bad teachers and options', async () => {
    await rejects(openTeacher(join(dir, 'missing.onnx')), /teacher not found/, join(dir, 'missing.onnx'));
    const junk = join(dir, 'junk.onnx');
    await writeFile(junk, 'this is not a protobuf');
    await rejects(openTeacher(junk), /not a usable ONNX model/, junk);
    const notJson = join(dir, 'bad', 'model.json');
    await writeBytes(notJson, new TextEncoder().encode('{ nope'));
    await rejects(openTeacher(notJson), /not a TensorFlow.js model/, notJson);
    await rejects(openTeacher(join(dir, 'bad')), /not a TensorFlow.js model/, notJson);
    const txt = join(dir, 'weights.txt');
    await writeFile(txt, 'x');
    await rejects(openTeacher(txt), /not a teacher model/, txt);
    await rejects(openTeacher(dir), /no model found/, dir);
    await rejects(openTeacher(onnxPath, { numClasses: 5 }), /class count mismatch: the model output says 4, --num-classes says 5/, onnxPath);
    await rejects(openTeacher(layersDir, { numClasses: 3 }), /class count mismatch/, join(layersDir, 'model.json'));
    await rejects(openTeacher(onnxPath, { layout: 'nhwc' }), /--layout nhwc, but the model's input \[N, 3, H, W\] does not match: it looks NCHW — pass --layout nchw/, onnxPath);
    const nhwc = join(dir, 'nhwc2.onnx');
    await writeBytes(nhwc, tinyNetOnnx(w, { layout: 'nhwc' }));
    await rejects(openTeacher(nhwc, { layout: 'nchw' }), /--layout nchw, .*it looks NHWC/, nhwc);
    await rejects(openTeacher(onnxPath, { mean: [1, 2] }), /--mean needs 3 numbers/);
    await rejects(openTeacher(onnxPath, { tta: { scales: [0] } }), /TTA scale/);
    const weightless = join(dir, 'noweights');
    await saveTinyNetLayers(w, weightless);
    await rm(join(weightless, 'weights.bin'));
    await rejects(openTeacher(weightless), /missing weights file/, join(weightless, 'weights.bin'));
    await withTeacher(onnxPath, {}, async (t) => {
      await assert.rejects(t.predict({ data: new Uint8Array(5), width: 2, height: 2 }), /expected 2×2×3 RGB bytes/);
    });
    const t = await openTeacher(onnxPath);
    await t.dispose();
    await rejects(t.predict(images[0]!), /after dispose/);
  });

  it('0..255 statistics are accepted and mean the same as 0..1 ones', async () => {
    const a = await withTeacher(onnxPath, { mean: [123.675, 116.28, 103.53], std: [58.395, 57.12, 57.375] }, async (t) => [t.normalization, t.fingerprint] as const);
    const b = await withTeacher(onnxPath, { mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225] }, async (t) => [t.normalization, t.fingerprint] as const);
    assert.ok(maxAbsDiff(a[0].mean, b[0].mean) < 1e-9 && maxAbsDiff(a[0].std, b[0].std) < 1e-9);
  });

  it('onnxruntime-node missing: a SoftsegError that says how to install it', async () => {
    setOnnxRuntimeLoaderForTesting(async () => {
      throw Object.assign(new Error("Cannot find package 'onnxruntime-node'"), { code: 'ERR_MODULE_NOT_FOUND' });
    });
    try {
      const err = await rejects(openTeacher(onnxPath), /onnxruntime-node is not installed; it is needed to run ONNX teachers/, onnxPath);
      assert.match(err.hint ?? '', /npm install onnxruntime-node/);
      assert.match(err.hint ?? '', /ONNXRUNTIME_NODE_INSTALL=skip/);
      // TF.js teachers still work.
      await withTeacher(layersDir, {}, async (t) => assert.equal(t.kind, 'tfjs'));
    } finally {
      setOnnxRuntimeLoaderForTesting();
    }
    await withTeacher(onnxPath, {}, async (t) => assert.equal(t.kind, 'onnx'));
  });
});
