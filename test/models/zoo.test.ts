// The model zoo: shapes, parameter counts, width multiplier, seeding, save/load, and that a few Adam
// steps lower the loss without leaking tensors. Runs on the cpu backend at tiny sizes (the cpu
// Conv2DBackpropFilter is very slow at larger ones; wasm cannot train convs until the project's
// kernels land).
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { SoftsegError } from '../../src/errors.js';
import { scaleChannels, withoutAux, type SegModel } from '../../src/models/base.js';
import { asppRates } from '../../src/models/deeplabv3.js';
import { loadModel, loadSegModel, saveModel } from '../../src/models/io.js';
import { AtrousConv2D } from '../../src/models/layers.js';
import { createModel, listModels, modelInfo, sizeMultiple } from '../../src/models/registry.js';

before(async () => {
  tf.enableProdMode();
  await tf.setBackend('cpu');
});

/** Small widths keep the cpu backend fast; the architecture is unchanged. */
const FAST_WIDTH: Record<string, number> = { unet: 0.25, 'unet-lite': 0.5, 'mobile-unet': 1, deeplabv3: 0.5 };

/** Training-test input size: the cpu Conv2DBackpropFilter costs ~2.5 s per unet-lite step at 32², ~4× less at 16². */
const TRAIN_SIZE = 16;

function weightsOf(m: SegModel): Float32Array[] {
  return m.model.getWeights().map((w) => w.dataSync() as Float32Array);
}

/** Hand count of a U-Net's weights (BN moving stats included) for stage channels `c`. */
function unetParams(c: number[], cin: number, k: number, aux = 0): number {
  const conv = (a: number, b: number) => 9 * a * b;
  const bn = (n: number) => 4 * n;
  let total = 0;
  c.forEach((ci, i) => {
    total += conv(i === 0 ? cin : c[i - 1]!, ci) + conv(ci, ci) + 2 * bn(ci);
  });
  for (let i = c.length - 2; i >= 0; i--) total += conv(c[i + 1]! + c[i]!, c[i]!) + bn(c[i]!);
  total += c[0]! * k + k;
  if (aux) total += conv(c[c.length - 1]!, aux) + bn(aux) + aux * k + k;
  return total;
}

/** Square-vs-background batch: 2×size×size×3 images and one-hot labels over 3 classes. */
function squareBatch(size: number): { x: tf.Tensor4D; y: tf.Tensor4D } {
  return tf.tidy(() => {
    const labels = new Int32Array(2 * size * size);
    const q = size / 4;
    for (let n = 0; n < 2; n++)
      for (let i = 0; i < size; i++)
        for (let j = 0; j < size; j++) {
          const inSquare = i >= q + n * 2 && i < 3 * q && j >= q && j < 3 * q - n * 2;
          labels[(n * size + i) * size + j] = inSquare ? 1 + n : 0;
        }
    const y = tf.oneHot(tf.tensor3d(labels, [2, size, size]), 3).toFloat() as tf.Tensor4D;
    const noise = tf.randomNormal([2, size, size, 3], 0, 0.1, 'float32', 7);
    const x = tf.add(tf.matMul(y.reshape([-1, 3]), tf.tensor2d([[-1, -1, -1], [1, 0.5, 0], [0, 0.5, 1]])).reshape([2, size, size, 3]), noise) as tf.Tensor4D;
    return { x, y };
  });
}

describe('model zoo', () => {
  it('lists the models and rejects unknown names and bad options with SoftsegError', () => {
    assert.deepEqual(listModels(), ['unet', 'unet-lite', 'mobile-unet', 'deeplabv3']);
    assert.throws(() => createModel('resnet', { numClasses: 2 }), (e: unknown) => e instanceof SoftsegError && /unknown model 'resnet'/.test(e.message) && /unet-lite/.test(e.hint ?? ''));
    assert.throws(() => createModel('unet', { numClasses: 2, width: 0 }), SoftsegError);
    assert.throws(() => createModel('unet', { numClasses: 0 }), SoftsegError);
    assert.throws(() => createModel('unet-lite', { numClasses: 2, inputSize: 60 }), (e: unknown) => e instanceof SoftsegError && /60×60 is not a multiple of 8/.test(e.message));
    assert.equal(sizeMultiple('deeplabv3', { outputStride: 16 }), 16);
    assert.equal(sizeMultiple('mobile-unet'), 8);
  });

  for (const name of listModels()) {
    it(`${name}: logits at input resolution with and without aux, at two sizes`, () => {
      for (const aux of [false, true]) {
        const m = createModel(name, { numClasses: 3, aux, width: FAST_WIDTH[name], seed: 1 });
        assert.equal(m.model.outputs.length, aux ? 2 : 1);
        for (const [h, w] of [[16, 16], [32, 48]] as const) {
          const out = tf.tidy(() => m.apply(tf.zeros([1, h, w, 3]), false));
          assert.deepEqual(out.main.shape, [1, h, w, 3]);
          if (aux) assert.deepEqual(out.aux?.shape, [1, h, w, 3]);
          else assert.equal(out.aux, undefined);
          tf.dispose([out.main, out.aux ?? []]);
        }
        assert.throws(() => m.apply(tf.zeros([1, 20, 20, 3]), false), SoftsegError);
        m.dispose();
      }
    });
  }

  it('deeplabv3 at output stride 16 and a fixed input size', () => {
    const m = createModel('deeplabv3', { numClasses: 2, width: 0.25, outputStride: 16, inputSize: [32, 64], aux: true });
    assert.deepEqual(m.model.outputs.map((o) => o.shape), [[null, 32, 64, 2], [null, 32, 64, 2]]);
    assert.deepEqual(asppRates(16), [1, 2, 3]);
    m.dispose();
  });

  it('unet-lite and unet parameter counts match a hand count; width scales them', () => {
    assert.equal(modelInfo('unet-lite', 64, { numClasses: 1 }).params, 440_577);
    assert.equal(modelInfo('unet-lite', 64, { numClasses: 5 }).params, unetParams([16, 32, 64, 128], 3, 5));
    assert.equal(modelInfo('unet', 64, { numClasses: 5 }).params, unetParams([32, 64, 128, 256], 3, 5));
    assert.equal(modelInfo('unet-lite', 64, { numClasses: 5, aux: true }).params, unetParams([16, 32, 64, 128], 3, 5, 32));
    assert.equal(modelInfo('unet-lite', 64, { numClasses: 5, width: 0.5 }).params, unetParams([8, 16, 32, 64], 3, 5));
    assert.equal(modelInfo('unet', 64, { numClasses: 5, width: 1.5, channels: 1 }).params, unetParams([48, 96, 192, 384], 1, 5));
    assert.equal(scaleChannels(16, 0.1), 4);
    assert.equal(scaleChannels(128, 0.35), 44);
    for (const name of listModels()) {
      const full = modelInfo(name, 64, { numClasses: 3 });
      const half = modelInfo(name, 64, { numClasses: 3, width: 0.5 });
      // Parameters and multiply-adds are dominated by cin × cout terms: roughly a quarter at half width.
      assert.ok(half.params < 0.35 * full.params && half.params > 0.2 * full.params, `${name}: ${half.params} vs ${full.params}`);
      assert.ok(half.multiplyAdds < 0.4 * full.multiplyAdds, name);
      // Multiply-adds scale with the pixel count.
      const big = modelInfo(name, 128, { numClasses: 3 });
      assert.equal(big.params, full.params);
      // (deeplabv3's image-pooling 1×1 conv runs on a 1×1 map whatever the size: slightly under 4×.)
      const ratio = big.multiplyAdds / full.multiplyAdds;
      if (name === 'deeplabv3') assert.ok(ratio > 3.99 && ratio < 4, `${name}: ${ratio}`);
      else assert.equal(big.multiplyAdds, 4 * full.multiplyAdds);
    }
  });

  it('counts multiply-adds analytically (unet-lite by hand)', () => {
    const s = 64;
    const c = [16, 32, 64, 128];
    let macs = 0;
    c.forEach((ci, i) => {
      const px = (s >> i) ** 2;
      macs += px * 9 * ((i === 0 ? 3 : c[i - 1]!) * ci + ci * ci);
    });
    for (let i = 2; i >= 0; i--) macs += (s >> i) ** 2 * 9 * (c[i + 1]! + c[i]!) * c[i]!;
    macs += s * s * 16 * 2;
    assert.equal(modelInfo('unet-lite', s, { numClasses: 2 }).multiplyAdds, macs);
  });

  it('same seed → identical weights, different seed → different', () => {
    for (const name of listModels()) {
      const width = FAST_WIDTH[name];
      const a = createModel(name, { numClasses: 3, width, aux: true, seed: 42 });
      const b = createModel(name, { numClasses: 3, width, aux: true, seed: 42 });
      const c = createModel(name, { numClasses: 3, width, aux: true, seed: 43 });
      const [wa, wb, wc] = [a, b, c].map(weightsOf);
      assert.equal(wa!.length, wb!.length);
      wa!.forEach((w, i) => assert.deepEqual(w, wb![i], `${name} weight ${i}`));
      assert.ok(wa!.some((w, i) => w.length > 16 && w.some((v, j) => v !== wc![i]![j])), `${name}: seeds 42 and 43 gave equal weights`);
      [a, b, c].forEach((m) => m.dispose());
    }
  });

  it('AtrousConv2D equals a dilated tf.conv2d / depthwiseConv2d (sizes not a multiple of the rate included)', () => {
    for (const [depthwise, rate, h, w] of [[false, 2, 8, 8], [false, 3, 7, 10], [true, 2, 9, 8], [true, 4, 8, 8]] as const) {
      const layer = new AtrousConv2D({ filters: 5, kernelSize: 3, rate, depthwise, seed: 3 });
      tf.tidy(() => {
        const x = tf.randomNormal([2, h, w, 4], 0, 1, 'float32', 5) as tf.Tensor4D;
        const y = layer.apply(x) as tf.Tensor4D;
        const k = layer.getWeights()[0] as tf.Tensor4D;
        const ref = depthwise ? tf.depthwiseConv2d(x, k, 1, 'same', 'NHWC', rate) : tf.conv2d(x, k, 1, 'same', 'NHWC', rate);
        assert.deepEqual(y.shape, ref.shape);
        assert.ok(tf.max(tf.abs(tf.sub(y, ref))).dataSync()[0]! < 1e-5);
      });
      layer.dispose();
    }
  });

  describe('save and load', () => {
    let dir = '';
    before(async () => {
      dir = await mkdtemp(join(tmpdir(), 'softseg-zoo-'));
    });
    after(async () => {
      await rm(dir, { recursive: true, force: true });
    });

    for (const name of listModels()) {
      it(`${name}: reloads with identical predictions`, async () => {
        const m = createModel(name, { numClasses: 3, aux: true, width: FAST_WIDTH[name], seed: 9 });
        // One training-mode pass moves the BN statistics away from their initial values.
        tf.dispose(Object.values(tf.tidy(() => m.apply(tf.randomNormal([2, 16, 16, 3], 0, 1, 'float32', 1), true))));
        const target = join(dir, name);
        await saveModel(m, target);
        assert.deepEqual((await readdir(target)).sort(), ['model.json', 'weights.bin']);
        // Only stock layer classes on disk (plain TF.js loads every model); softseg maps dilated convs back.
        const json = await readFile(join(target, 'model.json'), 'utf8');
        assert.doesNotMatch(json, /"class_name":"Softseg/, name);
        const loaded = await loadSegModel(target);
        assert.equal(loaded.name, name);
        const atrous = (s: SegModel) => s.model.layers.filter((l) => l instanceof AtrousConv2D).map((l) => l.name);
        assert.deepEqual(atrous(loaded), atrous(m));
        if (name === 'deeplabv3') assert.equal(atrous(m).length, 6, 'backbone blocks 4–6 and the three dilated ASPP branches');
        assert.deepEqual(loaded.options, m.options);
        const x = tf.randomNormal([1, 32, 32, 3], 0, 1, 'float32', 2) as tf.Tensor4D;
        const [p, q] = [m, loaded].map((s) => s.apply(x, false));
        assert.deepEqual(p!.main.dataSync(), q!.main.dataSync());
        assert.deepEqual(p!.aux!.dataSync(), q!.aux!.dataSync());
        tf.dispose([x, p!.main, p!.aux!, q!.main, q!.aux!]);
        const plain = await loadModel(target);
        assert.equal(plain.countParams(), m.model.countParams());
        // Without the aux head: fewer weights on disk, the same main output.
        const mainOnly = withoutAux(m);
        await saveModel(mainOnly, join(dir, `${name}-main`));
        const reloaded = await loadSegModel(join(dir, `${name}-main`));
        assert.equal(reloaded.options.aux, false);
        assert.ok(reloaded.model.countParams() < m.model.countParams());
        tf.tidy(() => {
          const x1 = tf.randomNormal([1, 16, 16, 3], 0, 1, 'float32', 4) as tf.Tensor4D;
          assert.deepEqual(reloaded.apply(x1, false).main.dataSync(), m.apply(x1, false).main.dataSync());
        });
        [m, loaded, reloaded].forEach((s) => s.dispose());
        plain.dispose();
      });
    }

    it('a loaded deeplabv3 trains: its stock dilated convs are AtrousConv2D again (TF.js has no gradient for dilated convs)', async () => {
      const m = createModel('deeplabv3', { numClasses: 3, width: 0.5, seed: 3 });
      await saveModel(m, join(dir, 'dl-train'));
      const loaded = await loadSegModel(join(dir, 'dl-train'));
      const { x, y } = squareBatch(TRAIN_SIZE);
      const optimizer = tf.train.adam(0.01);
      const before = weightsOf(loaded);
      const loss = optimizer.minimize(() => tf.losses.softmaxCrossEntropy(y, loaded.apply(x, true).main) as tf.Scalar, true)!;
      assert.ok(Number.isFinite(loss.dataSync()[0]!));
      const after = weightsOf(loaded);
      const atrousKernels = loaded.model.weights.map((w, i) => [w.originalName, i] as const).filter(([n]) => /^(block[456]_dw|aspp_r\d_\d_conv)\/kernel$/.test(n));
      assert.equal(atrousKernels.length, 6);
      for (const [n, i] of atrousKernels) assert.ok(after[i]!.some((v, j) => v !== before[i]![j]), `${n} did not change`);
      tf.dispose([x, y, loss]);
      optimizer.dispose();
      [m, loaded].forEach((s) => s.dispose());
    });

    it('a dilated depthwise kernel with weights between its taps is a SoftsegError naming model.json and the layer', async () => {
      const target = join(dir, 'dl-tampered');
      const m = createModel('deeplabv3', { numClasses: 2, width: 0.25, seed: 4 });
      await saveModel(m, target);
      m.dispose();
      const json = JSON.parse(await readFile(join(target, 'model.json'), 'utf8')) as tf.io.ModelJSON;
      const specs = json.weightsManifest[0]!.weights;
      const index = specs.findIndex((w) => w.name === 'block5_dw/depthwise_kernel');
      assert.deepEqual(specs[index]!.shape.slice(0, 2), [5, 5], 'a 3×3 kernel at rate 2 is saved spread onto 5×5');
      const offset = specs.slice(0, index).reduce((s, w) => s + 4 * w.shape.reduce((a, b) => a * b, 1), 0);
      const bin = await readFile(join(target, 'weights.bin'));
      const channels = specs[index]!.shape[2]!;
      bin.writeFloatLE(0.5, offset + 4 * channels); // row 0, column 1: between the taps at columns 0 and 2
      await writeFile(join(target, 'weights.bin'), bin);
      await assert.rejects(loadSegModel(target), (e: unknown) => {
        assert.ok(e instanceof SoftsegError);
        assert.equal(e.file, join(target, 'model.json'));
        assert.match(e.oneLine(), /model\.json: layer block5_dw \(listed in softseg\.dilated with rate 2\) has non-zero kernel weights between the taps/);
        return true;
      });
    });

    it('loadModel on a missing directory is a SoftsegError', async () => {
      await assert.rejects(loadModel(join(dir, 'nope')), SoftsegError);
    });
  });

  describe('training', () => {
    for (const name of listModels()) {
      it(`${name}: five Adam steps lower the loss (main + aux) without leaking tensors`, () => {
        const m = createModel(name, { numClasses: 3, aux: true, width: FAST_WIDTH[name], seed: 0 });
        const { x, y } = squareBatch(TRAIN_SIZE);
        const optimizer = tf.train.adam(0.01);
        const losses: number[] = [];
        const counts: number[] = [];
        for (let step = 0; step < 5; step++) {
          const loss = optimizer.minimize(() => {
            const out = m.apply(x, true);
            const main = tf.losses.softmaxCrossEntropy(y, out.main);
            return tf.add(main, tf.mul(0.4, tf.losses.softmaxCrossEntropy(y, out.aux!))) as tf.Scalar;
          }, true)!;
          losses.push(loss.dataSync()[0]!);
          loss.dispose();
          counts.push(tf.memory().numTensors);
        }
        const final = tf.tidy(() => {
          const out = m.apply(x, true);
          return tf.losses.softmaxCrossEntropy(y, out.main).dataSync()[0]!;
        });
        assert.ok(losses.every(Number.isFinite), `${name}: ${losses.join(', ')}`);
        assert.ok(losses[4]! < losses[0]!, `${name}: losses ${losses.map((l) => l.toFixed(4)).join(' → ')}`);
        assert.ok(final < losses[0]!, `${name}: final ${final}`);
        // Adam's slots are created at the first step; afterwards the count is flat.
        assert.deepEqual(counts.slice(1), Array(4).fill(counts[0]), `${name}: tensors per step ${counts.join(', ')}`);
        optimizer.dispose();
        tf.dispose([x, y]);
        m.dispose();
      });
    }
  });
});
