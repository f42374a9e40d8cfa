// The ssl recipe: its objective against hand-computed values and the reference KD vectors, CutMix, the mean
// teacher's EMA update, the collapse guard (unit and on a forced collapse), and config errors.
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, readdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { createModel } from '../../src/models/registry.js';
import { initBackend, type BackendInfo } from '../../src/backends/select.js';
import { generateShapesDataset } from '../../src/data/synthetic.js';
import { saveRunModel } from '../../src/engine/trainer.js';
import { IMAGENET_NORMALIZATION } from '../../src/augment/normalize.js';
import { EmaTeacher } from '../../src/engine/ema.js';
import { cutmix } from '../../src/augment/cutmix.js';
import { SoftsegError } from '../../src/errors.js';
import { Random } from '../../src/random.js';
import {
  CollapseGuard, SSL_DEFAULTS, sslObjective, trainSsl, unlabeledViews, unlabeledWeightAt, type SslConfig,
} from '../../src/recipes/ssl.js';
import { hardLabelObjective } from '../../src/losses/objectives.js';
import { referenceVectorsPath } from '../helpers/backend.js';

let backend: BackendInfo;
let root = '';
const close = (a: number, b: number, tol = 1e-5) => Math.abs(a - b) <= tol * Math.max(1, Math.abs(b));
const value = async (t: tf.Tensor) => (await t.data())[0]!;

before(async () => {
  backend = await initBackend({ backend: (process.env.SOFTSEG_TEST_BACKEND as 'wasm') ?? 'wasm' });
  root = await mkdtemp(join(tmpdir(), 'softseg-ssl-'));
  await generateShapesDataset(join(root, 'data'), { count: 4, size: 32, numClasses: 3, seed: 2 });
  await generateShapesDataset(join(root, 'extra'), { count: 4, size: 32, numClasses: 3, seed: 3, unlabeled: true });
});

const softmax = (z: number[]) => {
  const m = Math.max(...z);
  const e = z.map((v) => Math.exp(v - m));
  const s = e.reduce((a, b) => a + b, 0);
  return e.map((v) => v / s);
};

/** JML1 per batch with smooth 1 over the given active classes; q, y: per pixel, per class. */
function jml(q: number[][], y: number[][], active: boolean[]): number {
  let sum = 0, count = 0;
  for (let c = 0; c < active.length; c++) {
    if (!active[c]) continue;
    let tp = 0, fp = 0, fn = 0;
    for (let i = 0; i < q.length; i++) {
      tp += Math.min(q[i]![c]!, y[i]![c]!);
      fp += Math.max(q[i]![c]! - y[i]![c]!, 0);
      fn += Math.max(y[i]![c]! - q[i]![c]!, 0);
    }
    sum += 1 - (tp + 1) / (tp + fp + fn + 1);
    count++;
  }
  return count ? sum / count : 0;
}

test('λ_u ramps linearly from 0 after the warm-up over as many steps; no warm-up = full weight', () => {
  assert.equal(unlabeledWeightAt(0, 1, 0), 1);
  assert.equal(unlabeledWeightAt(3, 2, 4), 0);
  assert.equal(unlabeledWeightAt(4, 2, 4), 0);
  assert.equal(unlabeledWeightAt(6, 2, 4), 1);
  assert.equal(unlabeledWeightAt(8, 2, 4), 2);
  assert.equal(unlabeledWeightAt(100, 2, 4), 2);
});

test('ssl objective = train\'s labeled objective + λ_u·(0.25·KL + 0.75·JML) against hand-computed values (soft and hard pseudo-labels)', async () => {
  // Row 0 labeled (2 pixels), row 1 unlabeled (2 pixels, both inside the crop), 3 classes.
  const zl = [[2, 0.5, -1], [0, 1, 0.3]];
  const zu = [[1.5, 0.2, -0.4], [-0.3, 0.8, 0.1]];
  const pu = [[0.97, 0.025, 0.005], [0.3, 0.6, 0.1]];
  const logits = tf.tensor4d([...zl.flat(), ...zu.flat()], [2, 1, 2, 3]);
  const labels = tf.tensor3d([0, 2, 255, 255], [2, 1, 2], 'int32');
  const teacherProb = tf.tensor4d([0, 0, 0, 0, 0, 0, ...pu.flat()], [2, 1, 2, 3]);
  const keep = tf.tensor3d([0, 0, 1, 1], [2, 1, 2]);
  const q = zu.map(softmax);
  const base: SslConfig = { ...SSL_DEFAULTS, unlabeled: ['x'], unlabeledWarmup: 4 };
  const labeled = hardLabelObjective({ main: tf.slice(logits, 0, 1) }, tf.slice(labels, 0, 1), { ceWeight: 0.25, jmlWeight: 0.75, mainWeight: 1, auxWeight: 0, jdt: { ignoreIndex: 255 } });
  const lTotal = await value(labeled.total);

  // Soft: KL over both pixels; JML on classes with teacher max > 0.01 (all three here: 0.97/0.6/0.1).
  const kl = pu.reduce((s, p, i) => s + p.reduce((a, pc, c) => a + pc * (Math.log(pc) - Math.log(q[i]![c]!)), 0), 0) / 2;
  const jSoft = jml(q, pu, [true, true, true]);
  const soft = sslObjective(base, 255)({ main: logits }, { images: logits, labels, teacherProb, keep, step: 6 });
  assert.ok(close(await value(soft.parts.u_kl!), kl), `u_kl ${await value(soft.parts.u_kl!)} vs ${kl}`);
  assert.ok(close(await value(soft.parts.u_jml!), jSoft), `u_jml ${await value(soft.parts.u_jml!)} vs ${jSoft}`);
  assert.equal(await value(soft.parts.u_weight!), 0.5);
  assert.ok(close(await value(soft.total), lTotal + 0.5 * (0.25 * kl + 0.75 * jSoft)));
  assert.ok(close(await value(soft.parts.ce_main!), await value(labeled.parts.ce_main!)), 'labeled terms as in train');
  // Student argmax: class 0 and class 1 → the dominant class takes half of the unlabeled pixels.
  assert.equal(await value(soft.parts.u_dominant_share!), 0.5);

  // Soft with --class-threshold 0.2: class 2 (max 0.1) leaves the JML average.
  const soft2 = sslObjective({ ...base, classThreshold: 0.2 }, 255)({ main: logits }, { images: logits, labels, teacherProb, keep, step: 8 });
  assert.ok(close(await value(soft2.parts.u_jml!), jml(q, pu, [true, true, false])));

  // During the warm-up the unlabeled loss is off (λ_u = 0) and the total is the labeled one.
  const warm = sslObjective(base, 255)({ main: logits }, { images: logits, labels, teacherProb, keep, step: 2 });
  assert.equal(await value(warm.parts.u_weight!), 0);
  assert.equal(await value(warm.parts.u_kl!), 0);
  assert.ok(close(await value(warm.total), lTotal));

  // Hard, τ = 0.95: only pixel 0 (confidence 0.97) gets a pseudo-label, class 0; CE + JML on it (PRESENT: class 0).
  const hard = sslObjective({ ...base, pseudo: 'hard', unlabeledWarmup: 0 }, 255)({ main: logits }, { images: logits, labels, teacherProb, keep, step: 0 });
  const ce = -Math.log(q[0]![0]!);
  const jHard = jml([q[0]!], [[1, 0, 0]], [true, false, false]);
  assert.ok(close(await value(hard.parts.u_ce!), ce));
  assert.ok(close(await value(hard.parts.u_jml!), jHard));
  assert.equal(await value(hard.parts.u_confident!), 0.5);
  assert.ok(close(await value(hard.total), lTotal + 0.25 * ce + 0.75 * jHard));
  tf.dispose([logits, labels, teacherProb, keep, labeled.total, ...Object.values(labeled.parts)]);
  for (const r of [soft, soft2, warm, hard]) tf.dispose([r.total, ...Object.values(r.parts)]);
});

test('ssl unlabeled terms = the reference KD vectors\' teacher components (kl_main, jml_teacher_main) through the training objective', async () => {
  interface T { shape: number[]; data: number[] }
  const nhwc = (t: T) => tf.tidy(() => {
    const x: tf.Tensor = tf.tensor(t.data, t.shape);
    return tf.transpose(x, [0, 2, 3, 1]) as tf.Tensor4D;
  });
  const file = JSON.parse(await readFile(referenceVectorsPath(), 'utf8')) as { cases: { id: string; kind: string; options: Record<string, any>; inputs: Record<string, T>; expected: Record<string, any> }[] };
  const cases = file.cases.filter((c) => c.kind === 'kd_loss');
  assert.ok(cases.length >= 6);
  for (const c of cases) {
    const o = c.options;
    const config: SslConfig = { ...SSL_DEFAULTS, unlabeled: ['x'], temperature: o.temperature, teacherClasses: o.classes_teacher_term, classThreshold: o.threshold };
    const logits = nhwc(c.inputs.logits!);
    const label = tf.tensor3d(c.inputs.label!.data, c.inputs.label!.shape as [number, number, number], 'int32');
    const teacherProb = tf.tidy(() => tf.softmax(tf.div(nhwc(c.inputs.teacher_logits!), o.temperature))) as tf.Tensor4D;
    // Unlabeled rows: no ground truth; the keep mask is the case's non-ignored pixels.
    const keep = tf.tidy(() => tf.cast(tf.notEqual(label, 255), 'float32')) as tf.Tensor3D;
    const none = tf.fill(label.shape, 255, 'int32') as tf.Tensor3D;
    const r = sslObjective(config, 255)({ main: logits }, { images: logits, labels: none, teacherProb, keep, step: 0 });
    const k = c.expected.components;
    const kl = await value(r.parts.u_kl!), j = await value(r.parts.u_jml!);
    assert.ok(close(kl, k.kl_main), `${c.id} u_kl ${kl} vs ${k.kl_main}`);
    assert.ok(close(j, k.jml_teacher_main), `${c.id} u_jml ${j} vs ${k.jml_teacher_main}`);
    assert.ok(close(await value(r.total), 0.25 * k.kl_main + 0.75 * k.jml_teacher_main), c.id);
    tf.dispose([logits, label, teacherProb, keep, none, r.total, ...Object.values(r.parts)]);
  }
});

test('CutMix pastes the same box of another image into the student view, the soft pseudo-labels and the keep mask (pixel-exact)', () => {
  const n = 3, H = 8, W = 6, C = 2;
  const images = new Float32Array(n * H * W * 3).map((_, i) => i);
  const probs = new Float32Array(n * H * W * C).map((_, i) => 0.5 + i);
  const keep = new Uint8Array(n * H * W).map((_, i) => (i * 7) % 3 === 0 ? 1 : 0);
  const [i0, p0, k0] = [images.slice(), probs.slice(), keep.slice()];
  const boxes = cutmix([{ data: images, channels: 3 }, { data: probs, channels: C }, { data: keep, channels: 1 }], n, [H, W], 1, new Random(11));
  assert.ok(boxes.length >= 2, 'p = 1 mixes (almost) every image');
  const again = cutmix([{ data: i0.slice(), channels: 3 }], n, [H, W], 1, new Random(11));
  assert.deepEqual(again, boxes, 'seeded: the same generator gives the same boxes');
  for (const [data, orig, ch] of [[images, i0, 3], [probs, p0, C], [keep, k0, 1]] as const) {
    for (let row = 0; row < n; row++) {
      const b = boxes.find((x) => x.row === row);
      for (let y = 0; y < H; y++) {
        for (let x = 0; x < W; x++) {
          const inside = b !== undefined && y >= b.y0 && y < b.y1 && x >= b.x0 && x < b.x1;
          assert.ok(!b || b.from !== row);
          const src = inside ? b.from : row;
          for (let c = 0; c < ch; c++) {
            assert.equal(data[((row * H + y) * W + x) * ch + c], orig[((src * H + y) * W + x) * ch + c], `row ${row} (${y}, ${x}) channel ${c}`);
          }
        }
      }
    }
  }
  const none = cutmix([{ data: images, channels: 3 }], n, [H, W], 0, new Random(1));
  assert.equal(none.length, 0);
  assert.equal(cutmix([{ data: images, channels: 3 }], 1, [H, W], 1, new Random(1)).length, 0, 'one image: nothing to mix with');
});

test('mean teacher: after one update θ_t = m·θ_t + (1 − m)·θ_s exactly, batch-norm moving statistics included', async () => {
  const student = createModel('mobile-unet', { numClasses: 3, width: 0.25, seed: 1 });
  const m = 0.9;
  const ema = new EmaTeacher(student, m);
  try {
    // A training-mode forward pass moves the student's BN statistics; then perturb every weight.
    tf.tidy(() => {
      student.apply(tf.randomNormal([2, 32, 32, 3], 0, 1, 'float32', 3) as tf.Tensor4D, true);
    });
    const weights = student.model.weights;
    assert.ok(weights.some((w) => /moving_mean/.test(w.name)) && weights.some((w) => /moving_variance/.test(w.name)));
    const rng = new Random(5);
    student.model.setWeights(weights.map((w) => {
      const shape = w.shape as number[];
      return tf.tensor(Float32Array.from({ length: shape.reduce((a, b) => a * b, 1) }, () => rng.uniform(0.1, 2)), shape);
    }));
    const before = await Promise.all(ema.model.model.weights.map((w) => w.read().data()));
    const s = await Promise.all(weights.map((w) => w.read().data()));
    ema.update();
    const after = await Promise.all(ema.model.model.weights.map((w) => w.read().data()));
    const fm = Math.fround(m), f1m = Math.fround(1 - m);
    let checked = 0, bn = 0;
    ema.model.model.weights.forEach((w, i) => {
      for (let j = 0; j < after[i]!.length; j++) {
        const expected = Math.fround(Math.fround(before[i]![j]! * fm) + Math.fround(s[i]![j]! * f1m));
        assert.equal(after[i]![j], expected, `${w.name}[${j}]`);
        checked++;
      }
      if (/moving_(mean|variance)/.test(w.name)) bn++;
    });
    assert.ok(checked > 1000 && bn > 4);
  } finally {
    ema.dispose();
    student.dispose();
  }
});

test('collapse guard: warns on the first bad check, stops after `patience` consecutive ones, resets on a good one; val mIoU drop', () => {
  const warnings: string[] = [];
  const stops: string[] = [];
  const g = new CollapseGuard({ share: 0.95, patience: 3, onWarning: (w) => warnings.push(w), onStop: (r) => stops.push(r) });
  g.onStep(10, { u_dominant_share: 0.99, u_weight: 0 }); // unlabeled loss not on yet: not a check
  g.onStep(20, { u_dominant_share: 0.99, u_weight: 1 });
  g.onStep(30, { u_dominant_share: 0.97, u_weight: 1 });
  g.onStep(40, { u_dominant_share: 0.5, u_weight: 1 });
  g.onStep(50, { u_dominant_share: 0.99, u_weight: 1 });
  g.onStep(60, { u_dominant_share: 0.99, u_weight: 1 });
  assert.equal(warnings.length, 1);
  assert.match(warnings[0]!, /possible collapse: one class takes 99\.0%/);
  assert.equal(stops.length, 0);
  g.onStep(70, { u_dominant_share: 0.98, u_weight: 1 });
  assert.equal(stops.length, 1);
  assert.match(g.reason!, /3 consecutive/);

  const e: string[] = [];
  const h = new CollapseGuard({ share: 0.95, patience: 2, onStop: (r) => e.push(r) });
  h.onEval(10, { mIoUD: 60 });
  h.onEval(20, { mIoUD: 50 });
  h.onEval(30, { mIoUD: 40 });
  assert.equal(e.length, 0);
  h.onEval(40, { mIoUD: 30 });
  assert.equal(e.length, 1);
  assert.match(h.reason!, /val mIoU 30\.00 at step 40 is more than 15 points below its best 60\.00/);
});

test('the strong view: the --strong-aug preset, each value overridden by its --strong-* option; the geometry is the run\'s', () => {
  const preset = unlabeledViews({ ...SSL_DEFAULTS });
  assert.deepEqual(preset.strongView, { brightness: 0.5, contrast: 0.5, saturation: 0.5, grayscale: 0.2, blur: { p: 0.5, sigma: [0.1, 2] } });
  assert.deepEqual(preset.augment, { scale: [0.75, 1.25], flip: 0.5 });
  const given = unlabeledViews({ ...SSL_DEFAULTS, strongBrightness: 0.1, strongGrayscale: 0, strongBlur: 0, scale: '0.5,2' });
  assert.deepEqual(given.strongView, { brightness: 0.1, contrast: 0.5, saturation: 0.5, grayscale: 0, blur: false });
  assert.deepEqual(given.augment, { scale: [0.5, 2], flip: 0.5 });
  // the `default` preset has no photometric jitter; a blur given on top of it gets the preset-less σ range
  const plain = unlabeledViews({ ...SSL_DEFAULTS, strongAug: 'default', strongBlur: 0.3 });
  assert.deepEqual(plain.strongView, { brightness: 0, contrast: 0, saturation: 0, grayscale: 0, blur: { p: 0.3, sigma: [0.1, 2] } });
});

test('bad ssl configurations fail with clear messages before training', async () => {
  const base: SslConfig = { ...SSL_DEFAULTS, data: join(root, 'data'), unlabeled: [join(root, 'extra')], out: join(root, 'bad'), steps: 1, crop: 32, batchSize: 2 };
  const env = { backend, version: 'test' };
  const fails = async (c: Partial<SslConfig>, pattern: RegExp) => {
    await assert.rejects(trainSsl({ ...base, ...c }, env), (e: unknown) => e instanceof SoftsegError && pattern.test(e.message + ' ' + (e.hint ?? '')));
  };
  await fails({}, /needs a teacher: --teacher T --cache CACHE .* or --ema M --init RUN_DIR/);
  await fails({ unlabeled: [], teacher: 't', cache: 'c' }, /at least one --unlabeled/);
  await fails({ teacher: 't', cache: 'c', ema: 0.99 }, /alternatives/);
  await fails({ teacher: 't' }, /--teacher needs --cache/);
  await fails({ ema: 0.99 }, /--ema needs a supervised start.*random weights/);
  await fails({ ema: 1.5, init: 'x' }, /--ema must be a number in \(0, 1\), got 1.5/);
  await fails({ ema: 0.99, init: 'x', cache: 'c' }, /--cache is for a fixed --teacher/);
  await fails({ teacher: 't', cache: 'c', cutmix: 2 }, /--cutmix/);
  await fails({ teacher: 't', cache: 'c', strongBlur: 1.5 }, /--strong-blur must be a number in \[0, 1\], got 1.5/);
  await fails({ teacher: 't', cache: 'c', unlabeledRatio: 1 }, /--unlabeled-ratio/);
  await fails({ teacher: 't', cache: 'c', confidenceThreshold: 0 }, /--confidence-threshold must be a number in \(0, 1\], got 0/);
  // --init of another architecture.
  const other = createModel('unet-lite', { numClasses: 3, width: 0.25, seed: 4 });
  await saveRunModel(other, join(root, 'other', 'model'), { architecture: 'unet-lite', numClasses: 3, normalization: IMAGENET_NORMALIZATION });
  other.dispose();
  await fails({ ema: 0.99, init: join(root, 'other'), model: 'mobile-unet', width: 0.25 }, /--init .*its model is unet-lite .*this run trains mobile-unet/);
});

test('collapse guard stops a forced collapse (mean teacher from a model that predicts one class everywhere) after a checkpoint', async () => {
  // A "supervised" start whose classifier bias makes class 0 win everywhere: its EMA pseudo-labels are all class 0.
  const collapsed = createModel('mobile-unet', { numClasses: 3, width: 0.25, seed: 7 });
  const logits = collapsed.model.getLayer('logits');
  const [kernel] = logits.getWeights();
  logits.setWeights([kernel!, tf.tensor1d([30, 0, 0])]);
  await saveRunModel(collapsed, join(root, 'collapsed', 'model'), { architecture: 'mobile-unet', numClasses: 3, normalization: IMAGENET_NORMALIZATION });
  collapsed.dispose();
  const warnings: string[] = [];
  const tensorsBefore = tf.memory().numTensors;
  const config: SslConfig = {
    ...SSL_DEFAULTS, data: join(root, 'data'), unlabeled: [join(root, 'extra')], out: join(root, 'collapse-run'), steps: 12, crop: 32, batchSize: 4,
    model: 'mobile-unet', width: 0.25, ema: 0.99, init: join(root, 'collapsed'), collapsePatience: 1, cacheImages: true, checkpointEvery: 100,
  };
  await assert.rejects(trainSsl(config, { backend, version: 'test', onWarning: (w) => warnings.push(w) }), (e: unknown) => {
    assert.ok(e instanceof SoftsegError);
    assert.match(e.message, /ssl stopped at step 10: the student collapsed — one class takes 100\.0% of the student's predicted unlabeled pixels/);
    assert.match(e.hint ?? '', /--init/);
    return true;
  });
  assert.equal(tf.memory().numTensors, tensorsBefore, 'no tensor leaks (student, mean teacher, optimizer, batches)');
  const checkpoints = await readdir(join(config.out, 'checkpoints'));
  assert.ok(checkpoints.includes('step-0000010'), `checkpoint at step 10: ${checkpoints.join(', ')}`);
  assert.ok(existsSync(join(config.out, 'ema-teacher', 'model.json')), 'the mean teacher is saved beside the checkpoint');
  const metrics = (await readFile(join(config.out, 'metrics.jsonl'), 'utf8')).trim().split('\n').map((l) => JSON.parse(l));
  const train = metrics.find((m) => m.type === 'train');
  assert.equal(train.u_dominant_share, 1);
  assert.ok(Math.abs(train.u_kl) < 1e-6 && Math.abs(train.u_jml) < 1e-6 && train.u_weight === 1, 'student and teacher agree on class 0 everywhere');
});

test('mean teacher after a supervised warm-up phase: saved with the run, reloaded on --resume', async () => {
  const out = join(root, 'warm-run');
  const warnings: string[] = [];
  const config: SslConfig = {
    ...SSL_DEFAULTS, data: join(root, 'data'), unlabeled: [join(root, 'extra')], out, steps: 6, crop: 32, batchSize: 4, checkpointEvery: 1,
    model: 'mobile-unet', width: 0.25, ema: 0.99, unlabeledWarmup: 2, cacheImages: true, collapseShare: 1,
  };
  const env = { backend, version: 'test', onWarning: (w: string) => warnings.push(w) };
  // Stopped after the warm-up (as Ctrl-C stops it: a checkpoint at the next step), then resumed with the same options.
  const stop = new AbortController();
  const first = await trainSsl(config, { ...env, signal: stop.signal, onEvent: (e) => { if (e.type === 'checkpoint' && e.step === 4) stop.abort(); } });
  assert.deepEqual([first.result.interrupted, first.result.steps], [true, 5]);
  assert.equal(JSON.parse(await readFile(join(out, 'ema-teacher', 'ema.json'), 'utf8')).step, 5);
  const second = await trainSsl({ ...config, resume: true }, env);
  assert.equal(second.result.steps, 6);
  assert.deepEqual(warnings.filter((w) => /mean-teacher/.test(w)), [], 'the saved teacher was reloaded');
  assert.equal(JSON.parse(await readFile(join(out, 'ema-teacher', 'ema.json'), 'utf8')).step, 6);
  const meta = JSON.parse(await readFile(join(out, 'model', 'softseg.json'), 'utf8'));
  assert.deepEqual([meta.teacher.kind, meta.teacher.init, meta.teacher.warmup], ['ema', null, 2]);
});

test('collapse guard: its state survives a checkpoint, so a resumed run stops where the uninterrupted one would', () => {
  const stops: string[] = [];
  const make = () => new CollapseGuard({ share: 0.9, patience: 3, onStop: (r) => stops.push(r) });
  const a = make();
  a.onEval(10, { mIoUD: 60 });
  a.onStep(20, { u_dominant_share: 0.99, u_weight: 1 });
  a.onStep(30, { u_dominant_share: 0.99, u_weight: 1 });
  const saved = JSON.parse(JSON.stringify(a.state()));
  assert.deepEqual(saved, { shareBad: 2, evalBad: 0, best: 60, warned: true });
  const b = make();
  b.restoreState(saved);
  b.onStep(40, { u_dominant_share: 0.99, u_weight: 1 });
  assert.equal(stops.length, 1, 'the third bad check in a row stops the resumed run');
  b.onEval(50, { mIoUD: 40 });
  assert.deepEqual(b.state(), { shareBad: 3, evalBad: 1, best: 60, warned: true }, 'the best val mIoU came back too');
});
