// Every zoo architecture deploys with plain TensorFlow.js, as the README promises: `softseg train --steps 1` →
// model/ and best/ name only stock layer classes → Node with nothing but @tensorflow/tfjs loads them (a child
// process) → headless Chromium runs the README's web-page snippet with tf.min.js → both give softseg's own
// predict on the same image (≤ 1e-4 relative). A model.json written before the stock-only form still works
// with `predict` and `eval`, and the README's one-line conversion makes it deployable.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { cp, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import sharp from 'sharp';
import * as tf from '@tensorflow/tfjs';
import { listModels } from '../../src/models/registry.js';
import { normalizeImage } from '../../src/augment/normalize.js';
import { generateShapesDataset } from '../../src/data/synthetic.js';
import { openTrainedModel } from '../../src/inference/model-dir.js';
import { predictProbabilities } from '../../src/inference/predict.js';
import { repoRoot, useBackend } from '../helpers/backend.js';
import { softseg } from '../helpers/cli.js';
import { requireChromium } from '../helpers/system-deps.js';

const exec = promisify(execFile);

/** The test image: H×W is a multiple of neither 8 nor 16, so the snippet's padding is exercised. */
const H = 40;
const W = 44;
const FOLDERS = ['model', 'best'] as const;
const TF_MIN_JS = join(repoRoot, 'node_modules/@tensorflow/tfjs/dist/tf.min.js');
/** What the README's page loads: the TensorFlow.js softseg depends on (the test serves node_modules' copy instead). */
const CDN_TF = `https://cdn.jsdelivr.net/npm/@tensorflow/tfjs@${tf.version.tfjs}/dist/tf.min.js`;
/** The browser output against softseg's: max |a − b| over max |b| (probabilities, so b's scale is ≤ 1). */
const TOLERANCE = 1e-4;
const HALF_PIXEL = 'mobile-unet-half-pixel';

/** A deterministic RGB image, H×W×3 bytes. */
function testImage(): Uint8Array {
  return Uint8Array.from({ length: H * W * 3 }, (_, i) => {
    const p = Math.floor(i / 3), y = Math.floor(p / W), x = p % W, c = i % 3;
    return (x * 5 + y * 3 + c * 70 + ((x * y) % 17) * 6) % 256;
  });
}

/** The README's web-page example (the one ```html block under "Use the student in a web page"). */
async function readmeSnippet(): Promise<string> {
  const readme = await readFile(join(repoRoot, 'README.md'), 'utf8');
  const section = readme.split(/^## /m).find((s) => s.startsWith('Use the student in a web page'));
  const html = section?.match(/```html\n([\s\S]*?)```/)?.[1];
  assert.ok(html, 'README has an html block under "## Use the student in a web page"');
  assert.ok(html.includes(CDN_TF), `the README snippet loads ${CDN_TF}`);
  return html;
}

/** Largest difference relative to the largest magnitude of `expected`. */
function relativeError(actual: ArrayLike<number>, expected: ArrayLike<number>): number {
  assert.equal(actual.length, expected.length);
  let diff = 0, scale = 0;
  for (let i = 0; i < expected.length; i++) {
    diff = Math.max(diff, Math.abs(actual[i]! - expected[i]!));
    scale = Math.max(scale, Math.abs(expected[i]!));
  }
  return diff / scale;
}

/**
 * The plain-Node check: a script that imports @tensorflow/tfjs and node:fs only (asserted below), loads each
 * model.json over HTTP with tf.loadLayersModel and writes its probabilities on the image, normalised and padded
 * as softseg.json says.
 */
const PLAIN_NODE_SCRIPT = `
import * as tf from '@tensorflow/tfjs';
import { readFileSync, writeFileSync } from 'node:fs';
const [imagePath, height, width, outPath, ...urls] = process.argv.slice(1);
const [h, w] = [Number(height), Number(width)];
const rgb = readFileSync(imagePath);
const results = {};
for (const url of urls) {
  const model = await tf.loadLayersModel(url + 'model.json');
  const meta = await (await fetch(url + 'softseg.json')).json();
  const probs = tf.tidy(() => {
    const x = tf.tensor3d(Float32Array.from(rgb), [h, w, 3]).div(255).sub(meta.normalization.mean).div(meta.normalization.std);
    const m = meta.sizeMultiple;
    const padded = x.pad([[0, Math.ceil(h / m) * m - h], [0, Math.ceil(w / m) * m - w], [0, 0]]);
    return tf.softmax(model.predict(padded.expandDims(0)).squeeze([0]).slice([0, 0, 0], [h, w, -1]));
  });
  results[url] = { classes: model.layers.map((l) => l.getClassName()), probs: Array.from(await probs.data()) };
}
writeFileSync(outPath, JSON.stringify({ backend: tf.getBackend(), results }));
`;

describe('every zoo model deploys with plain TensorFlow.js', () => {
  let root = '';
  let server: Server;
  let base = '';
  let page = '';
  const image = testImage();
  /** softseg's own probabilities (wasm backend), by `${arch}/${folder}`. */
  const expected = new Map<string, Float32Array>();
  const runDir = (arch: string) => join(root, 'runs', arch);
  /** Every architecture, and mobile-unet with half-pixel upsampling (stock layers of another shape: models/upsample.ts). */
  const variants = [...listModels(), HALF_PIXEL];
  const trainFlags = (v: string) => (v === HALF_PIXEL ? ['--model', 'mobile-unet', '--upsampling', 'half-pixel'] : ['--model', v]);

  before(async () => {
    root = await mkdtemp(join(tmpdir(), 'softseg-deploy-'));
    await generateShapesDataset(join(root, 'shapes'), { splits: { train: 4, val: 2 }, size: 32, numClasses: 4, seed: 5 });
    for (const arch of variants) {
      const r = await softseg('train', '--data', join(root, 'shapes/train'), '--val', join(root, 'shapes/val'), ...trainFlags(arch), '--width', '0.5',
        '--out', runDir(arch), '--steps', '1', '--crop', '32', '--batch-size', '2', '--eval-every', '1', '--backend', 'wasm');
      assert.equal(r.code, 0, `${arch}: ${r.stderr}`);
    }
    await useBackend();
    for (const arch of variants) {
      for (const folder of FOLDERS) {
        const { model, meta } = await openTrainedModel(join(runDir(arch), folder));
        const probs = predictProbabilities(model, normalizeImage(image, meta.normalization), H, W);
        expected.set(`${arch}/${folder}`, (await probs.data()) as Float32Array);
        probs.dispose();
        model.dispose();
      }
    }
    page = (await readmeSnippet()).replace(CDN_TF, '/tf.min.js');
    const png = await sharp(Buffer.from(image), { raw: { width: W, height: H, channels: 3 } }).png().toBuffer();
    server = createServer((req, res) => {
      const url = req.url ?? '/';
      void (async () => {
        let body: Buffer | string | null = null;
        let type = 'application/octet-stream';
        const m = url.match(/^\/([\w-]+)\/(model|best)\/(index\.html|photo\.jpg|model\/(model\.json|weights\.bin|softseg\.json))$/);
        if (url === '/tf.min.js') [body, type] = [await readFile(TF_MIN_JS), 'text/javascript'];
        else if (m && variants.includes(m[1]!)) {
          if (m[3] === 'index.html') [body, type] = [`<!doctype html>\n<meta charset="utf-8">\n${page}`, 'text/html; charset=utf-8'];
          else if (m[3] === 'photo.jpg') [body, type] = [png, 'image/png'];
          else [body, type] = [await readFile(join(runDir(m[1]!), m[2]!, m[4]!)), m[4]!.endsWith('.json') ? 'application/json' : type];
        }
        if (url === '/favicon.ico') res.writeHead(204).end(); // the browser asks for it; not part of the page
        else res.writeHead(body === null ? 404 : 200, { 'content-type': type }).end(body ?? 'not found');
      })().catch((e: Error) => res.writeHead(500).end(`${url}: ${e.message}`));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });

  after(async () => {
    server?.close();
    await rm(root, { recursive: true, force: true });
  });

  it('softseg train saves model/ and best/ naming only stock TensorFlow.js layer classes', async () => {
    for (const arch of variants) {
      for (const folder of FOLDERS) {
        const json = JSON.parse(await readFile(join(runDir(arch), folder, 'model.json'), 'utf8')) as { modelTopology: { config: { layers: { class_name: string }[] } } };
        const classes = new Set(json.modelTopology.config.layers.map((l) => l.class_name));
        const stock = tf.serialization.SerializationMap.getMap().classNameMap;
        for (const c of classes) assert.ok(!c.startsWith('Softseg') && stock[c], `${arch}/${folder}: layer class ${c}`);
      }
    }
  });

  it('Node with only @tensorflow/tfjs (no softseg module) loads each model and predicts what softseg predicts', async (t) => {
    const imports = [...PLAIN_NODE_SCRIPT.matchAll(/^import .* from '([^']+)';$/gm)].map((m) => m[1]);
    assert.deepEqual(imports, ['@tensorflow/tfjs', 'node:fs']);
    const imagePath = join(root, 'image.rgb');
    const outPath = join(root, 'plain-node.json');
    await writeFile(imagePath, image);
    const urls = variants.flatMap((arch) => FOLDERS.map((f) => `${base}/${arch}/${f}/model/`));
    await exec(process.execPath, ['--input-type=module', '-e', PLAIN_NODE_SCRIPT, imagePath, String(H), String(W), outPath, ...urls], { cwd: repoRoot, maxBuffer: 16 << 20 });
    const out = JSON.parse(await readFile(outPath, 'utf8')) as { backend: string; results: Record<string, { classes: string[]; probs: number[] }> };
    for (const arch of variants) {
      for (const folder of FOLDERS) {
        const r = out.results[`${base}/${arch}/${folder}/model/`]!;
        assert.ok(!r.classes.some((c) => c.startsWith('Softseg')), `${arch}/${folder}: ${r.classes.join(', ')}`);
        const rel = relativeError(r.probs, expected.get(`${arch}/${folder}`)!);
        assert.ok(rel <= TOLERANCE, `${arch}/${folder} on plain tfjs (${out.backend}): relative error ${rel}`);
        t.diagnostic(`${arch}/${folder}: plain tfjs (${out.backend}) vs softseg predict: relative error ${rel.toExponential(2)}`);
      }
    }
  });

  it("headless Chromium runs the README's web-page snippet with tf.min.js and predicts what softseg predicts", async (t) => {
    const chromium = requireChromium(); // skips outside CI when Chromium is missing; fails under CI
    if ('skip' in chromium) return t.skip(chromium.skip);
    const { chromium: launcher } = await import('playwright-core');
    const browser = await launcher.launch({
      executablePath: chromium.path,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    });
    try {
      // model/ of each architecture (best/ is written by the same save path and checked in Node above).
      for (const arch of variants) {
        for (const folder of ['model'] as const) {
          const started = Date.now();
          const tab = await browser.newPage();
          const problems: string[] = [];
          tab.on('console', (m) => {
            if (m.type() === 'error') problems.push(`console error: ${m.text()}`);
          });
          tab.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
          tab.on('response', (r) => {
            if (r.status() >= 400) problems.push(`HTTP ${r.status()}: ${r.url()}`);
          });
          tab.on('request', (r) => {
            if (!r.url().startsWith(`${base}/`)) problems.push(`request outside the test server: ${r.url()}`);
          });
          await tab.goto(`${base}/${arch}/${folder}/index.html`, { waitUntil: 'load' });
          const got = (await tab.evaluate(`(async () => {
            const probs = await segment(document.querySelector('img'));
            const out = { backend: tf.getBackend(), shape: probs.shape, data: Array.from(await probs.data()) };
            probs.dispose();
            return out;
          })()`)) as { backend: string; shape: number[]; data: number[] };
          await tab.close();
          assert.deepEqual(problems, [], `${arch}/${folder}`);
          assert.deepEqual(got.shape, [H, W, 4], `${arch}/${folder}`);
          const rel = relativeError(got.data, expected.get(`${arch}/${folder}`)!);
          assert.ok(rel <= TOLERANCE, `${arch}/${folder} in Chromium (${got.backend}): relative error ${rel}`);
          t.diagnostic(`${arch}/${folder}: Chromium (tf.min.js, ${got.backend}) vs softseg predict: relative error ${rel.toExponential(2)}, ${Date.now() - started} ms`);
        }
      }
    } finally {
      await browser.close();
    }
  });
});

describe('a deeplabv3 model.json written before the stock-only form (softseg up to 9487cec)', () => {
  const FIXTURE = join(repoRoot, 'test/models/fixtures/deeplabv3-0.1.0');
  let root = '';

  before(async () => {
    root = await mkdtemp(join(tmpdir(), 'softseg-legacy-'));
    await generateShapesDataset(join(root, 'shapes'), { splits: { val: 2 }, size: 32, numClasses: 3, seed: 2 });
  });

  after(async () => {
    await rm(root, { recursive: true, force: true });
  });

  it('still works with softseg predict and eval', async () => {
    assert.match(await readFile(join(FIXTURE, 'model.json'), 'utf8'), /"class_name":"SoftsegBroadcastLike"/);
    const p = await softseg('predict', '--model', FIXTURE, '--images', join(root, 'shapes/val/images'), '--out', join(root, 'pred'), '--backend', 'wasm');
    assert.equal(p.code, 0, p.stderr);
    // The fixture's classes are a, b, c; the shapes set's have other names: --num-classes says to score it anyway.
    const e = await softseg('eval', '--model', FIXTURE, '--data', join(root, 'shapes/val'), '--num-classes', '3', '--backend', 'wasm', '--json');
    assert.equal(e.code, 0, e.stderr);
    const metrics = JSON.parse(e.stdout) as { mIoUD: number; classNames: string[] };
    assert.ok(Number.isFinite(metrics.mIoUD));
    const q = await softseg('eval', '--pred', join(root, 'pred'), '--data', join(root, 'shapes/val'), '--json');
    assert.equal(q.code, 0, q.stderr);
    assert.equal((JSON.parse(q.stdout) as { mIoUD: number }).mIoUD, metrics.mIoUD, 'eval --model and eval of predict’s masks agree');
  });

  it("the README's one-line conversion rewrites it with stock layer classes and the same predictions", async () => {
    const readme = await readFile(join(repoRoot, 'README.md'), 'utf8');
    const command = readme.match(/`(node --input-type=module -e "[^`]*")`/)?.[1];
    assert.ok(command, 'README gives the conversion command');
    const script = command.match(/-e "(.*)"$/)![1]!.replaceAll('runs/x/model', join(root, 'old').replaceAll('\\', '/'));
    await cp(FIXTURE, join(root, 'old'), { recursive: true });
    await exec(process.execPath, ['--input-type=module', '-e', script], { cwd: repoRoot });
    const json = await readFile(join(root, 'old', 'model.json'), 'utf8');
    assert.doesNotMatch(json, /"class_name":"Softseg/);
    assert.ok(existsSync(join(root, 'old', 'softseg.json')));
    await useBackend('cpu');
    const { model } = await openTrainedModel(join(root, 'old'));
    const { logits } = JSON.parse(await readFile(join(FIXTURE, 'expected.json'), 'utf8')) as { logits: number[] };
    const x = tf.tensor4d(Float32Array.from({ length: 16 * 16 * 3 }, (_, i) => Math.sin(i * 0.37) * 2), [1, 16, 16, 3]);
    const y = model.apply(x, false).main;
    assert.ok(relativeError(await y.data(), logits) < 1e-6);
    // The file itself, read by TF.js's own loader (it names no softseg class, so nothing softseg registered is used).
    const bin = await readFile(join(root, 'old', 'weights.bin'));
    const parsed = JSON.parse(json) as tf.io.ModelJSON;
    const plain = await tf.loadLayersModel(
      tf.io.fromMemory({ modelTopology: parsed.modelTopology, weightSpecs: parsed.weightsManifest[0]!.weights, weightData: new Uint8Array(bin).buffer }),
    );
    const z = plain.predict(x) as tf.Tensor;
    assert.ok(relativeError(await z.data(), logits) < 1e-6);
    tf.dispose([x, y, z]);
    model.dispose();
    plain.dispose();
  });
});
