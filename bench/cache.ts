// The teacher-output cache (issues 5 and 6): size, fidelity, read throughput vs a distillation step:
//   node --import tsx bench/cache.ts [--json --quick --backend auto|wasm|cpu|tensorflow --threads N
//                                     --images 64 --images-large 16 --classes 21 --teacher-steps 200
//                                     --synth-seeds 6 --read-rounds 3 --distill-steps 40 --bare-steps 10]
// 1. bytes/pixel for C = 21 vs float32 [H, W, C] (goal ≥ 20× smaller) and fidelity (mean KL(exact ‖ cached)
//    nats/pixel at T = 1, goal ≤ 1e-3; also T = 2, 4, JML1 distance, argmax agreement) on REAL teacher outputs:
//    a unet-lite teacher with 21 outputs, random init and trained --teacher-steps steps on a generated 5-class
//    shapes set, labelled with `labelFolders` over generated images at 64² and 128² and compared with fresh
//    outputs (`teacherFidelity`); and on synthetic teacher-like distributions (test/cache/synth.ts) written with
//    `cache.put`.
// 2. read throughput: `openCache(dir).get(fp, hash, { temperature: 2, out })` entries/s over the labelled entries
//    (files in the page cache: what a training run sees from its second epoch on).
// 3. a distillation step (mobile-unet 64² batch 8, 21 classes): the bare KD TrainStep on random tensors, and
//    `trainDistill` on the labelled set (cache hits only) with its loaderWaitShare from metrics.jsonl (goal < 5%):
//    ms of cache reads per step (batch × ms/entry, run on the loader's sample workers) vs the step's ms.
import * as tf from '@tensorflow/tfjs';
import { join } from 'node:path';
import { createModel } from '../src/models/registry.js';
import { initBackend, type BackendRequest } from '../src/backends/select.js';
import { entryFidelity, teacherFidelity } from '../src/cache/fidelity.js';
import { hashImagesIn } from '../src/cache/images.js';
import { DEFAULT_COMPRESSION, DEFAULT_K, DEFAULT_SCHEME } from '../src/cache/format.js';
import { openCache } from '../src/cache/store.js';
import { decodeImage } from '../src/data/decode.js';
import { SegOptimizer } from '../src/engine/optimizer.js';
import { TrainStep } from '../src/engine/step.js';
import { labelFolders } from '../src/labels/label-folder.js';
import { DISTILL_DEFAULTS, distillObjective, trainDistill, type DistillConfig } from '../src/recipes/distill.js';
import { openTeacher } from '../src/teachers/teacher.js';
import { synthProbs, type SynthKind } from '../test/cache/synth.js';
import { fmt, median, table } from './common.js';
import { runIfMain, BENCH_VERSION, loadFigure, loadText, makeShapes, makeTeacher, numOpt, progress, readTrainWindows, steadyFigures, tempWorkDir, verdict } from './fixtures.js';

export interface CacheBenchOptions {
  backend: string;
  threads?: number;
  images: number;
  imagesLarge: number;
  classes: number;
  teacherSteps: number;
  synthSeeds: number;
  readRounds: number;
  distillSteps: number;
  bareSteps: number;
  batch: number;
  quick: boolean;
}

export interface SizeRow {
  source: string;
  size: number;
  entries: number;
  bytesPerPixel: number;
  /** float32 bytes per pixel (4 C) ÷ bytesPerPixel. */
  vsFloat32: number;
  kl: Record<string, number>;
  jml1: Record<string, number>;
  pseudoAgreement: number;
  /** Mean probability of the top class (how confident the outputs are). */
  meanTop: number;
}

export interface ReadRow {
  size: number;
  temperature: number;
  entries: number;
  reads: number;
  entriesPerSec: number;
  msPerEntry: number;
}

export interface CacheBenchResult {
  backend: string;
  reason: string;
  threads: number;
  options: CacheBenchOptions;
  k: number;
  scheme: string;
  compression: string;
  teacherTrainSeconds: number;
  teacherLastLoss: number | null;
  sizeRows: SizeRow[];
  readRows: ReadRow[];
  distill: {
    model: string;
    size: number;
    batch: number;
    bareStepMs: number;
    bareStepRuns: number[];
    /** Cache reads per step: batch × ms/entry at T = 2, 64². */
    readMsPerStep: number;
    /** readMsPerStep ÷ bareStepMs. */
    readShareOfBareStep: number;
    pipelineImgS: number;
    pipelineStepMs: number;
    loaderWaitShare: number;
    firstWindowWaitShare: number;
    misses: number;
    steps: number;
  };
  load: { load1: number; load5: number; cores: number };
  wallSeconds: number;
}

export function cacheOptionsFromArgs(a: Record<string, string>): CacheBenchOptions {
  return {
    backend: a.backend ?? 'auto',
    threads: a.threads === undefined ? undefined : Number(a.threads),
    images: numOpt(a, 'images', 64, 16),
    imagesLarge: numOpt(a, 'images-large', 16, 8),
    classes: numOpt(a, 'classes', 21, 21),
    teacherSteps: numOpt(a, 'teacher-steps', 200, 12),
    synthSeeds: numOpt(a, 'synth-seeds', 6, 2),
    readRounds: numOpt(a, 'read-rounds', 3, 1),
    distillSteps: numOpt(a, 'distill-steps', 40, 20),
    bareSteps: numOpt(a, 'bare-steps', 10, 4),
    batch: numOpt(a, 'batch', 8, 8),
    quick: a.quick === 'true',
  };
}

function meanTop(probs: Float32Array[], C: number): number {
  let s = 0, n = 0;
  for (const p of probs) {
    for (let i = 0; i < p.length; i += C) {
      let m = 0;
      for (let c = 0; c < C; c++) if (p[i + c]! > m) m = p[i + c]!;
      s += m;
      n++;
    }
  }
  return s / n;
}

const TEMPERATURES = [1, 2, 4];

export async function runCacheBench(o: CacheBenchOptions): Promise<CacheBenchResult> {
  const start = performance.now();
  const backend = await initBackend({ backend: o.backend as BackendRequest, threads: o.threads });
  const work = await tempWorkDir('cache');
  const C = o.classes;
  try {
    const sets: Record<number, string> = {
      64: await makeShapes(join(work.dir, 'data-64'), { count: o.images, size: 64, seed: 3 }),
      128: await makeShapes(join(work.dir, 'data-128'), { count: o.imagesLarge, size: 128, seed: 4 }),
    };
    progress(`cache: training the unet-lite teacher (${C} outputs) for ${o.teacherSteps} steps …`);
    const trained = await makeTeacher(work.dir, { numClasses: C, steps: o.teacherSteps, data: sets[64], crop: 64, backend, onnx: false });
    const random = await makeTeacher(work.dir, { numClasses: C, steps: 0, backend, onnx: false, seed: 2 });
    const cacheDir = join(work.dir, 'cache');
    const cache = openCache(cacheDir);
    const sizeRows: SizeRow[] = [];

    // 1a. real teacher outputs
    for (const [label, t] of [[`unet-lite trained ${trained.trainedSteps} steps`, trained], ['unet-lite random init', random]] as const) {
      const teacher = await openTeacher(t.modelDir, { numClasses: C });
      try {
        for (const size of [64, 128]) {
          progress(`cache: ${label}, ${size}²: label, then fidelity against fresh outputs …`);
          const res = await labelFolders(teacher, cache, [join(sets[size]!, 'images')], { batchSize: o.batch });
          const images = await hashImagesIn([join(sets[size]!, 'images')]);
          const fid = await teacherFidelity(cache, teacher, images, decodeImage, { temperatures: TEMPERATURES });
          const exact = await teacher.predictBatch(await Promise.all(images.slice(0, 8).map((im) => decodeImage(im.path))));
          const bpp = res.bytes / (res.labelled * size * size);
          sizeRows.push({
            source: label, size, entries: res.labelled, bytesPerPixel: bpp, vsFloat32: (4 * C) / bpp,
            kl: fid.mean.kl, jml1: fid.mean.jml1, pseudoAgreement: fid.mean.pseudoAgreement, meanTop: meanTop(exact, C),
          });
        }
      } finally {
        await teacher.dispose();
      }
    }

    // 1b. synthetic teacher-like distributions, written and read through the store
    progress('cache: synthetic distributions …');
    const synthKinds: [SynthKind, number, string][] = [['teacher', 8, 'synth teacher σ8'], ['teacher', 4, 'synth teacher σ4'], ['smooth', 8, 'synth smooth σ8'], ['peaked', 8, 'synth peaked'], ['dirichlet', 8, 'synth dirichlet(1) (worst case)']];
    const synthCache = openCache(join(work.dir, 'synth-cache'));
    const fp = 'b'.repeat(64);
    for (const [kind, sharp, label] of synthKinds) {
      for (const size of [64, 128]) {
        let bytes = 0, pixels = 0, top = 0;
        const kl: Record<string, number> = {}, jml1: Record<string, number> = {};
        let agree = 0;
        for (let s = 0; s < o.synthSeeds; s++) {
          const probs = synthProbs(kind, size, size, C, 100 + s, sharp);
          const hash = (s * 1000 + size).toString(16).padStart(64, '0');
          bytes += await synthCache.put(fp, hash, probs, { width: size, height: size, numClasses: C, mode: 'soft', k: DEFAULT_K, imageName: `${kind}-${s}` });
          const entry = await synthCache.read(fp, hash);
          const f = entryFidelity(probs, entry!, TEMPERATURES);
          for (const T of TEMPERATURES) {
            kl[T] = (kl[T] ?? 0) + f.kl[T]! / o.synthSeeds;
            jml1[T] = (jml1[T] ?? 0) + f.jml1[T]! / o.synthSeeds;
          }
          agree += f.pseudoAgreement / o.synthSeeds;
          top += meanTop([probs], C) / o.synthSeeds;
          pixels += size * size;
        }
        sizeRows.push({ source: label, size, entries: o.synthSeeds, bytesPerPixel: bytes / pixels, vsFloat32: (4 * C) / (bytes / pixels), kl, jml1, pseudoAgreement: agree, meanTop: top });
      }
    }

    // 2. read throughput (trained teacher's entries)
    const teacherFp = (await openTeacher(trained.modelDir, { numClasses: C }).then(async (t) => {
      const f = t.fingerprint;
      await t.dispose();
      return f;
    }));
    const readRows: ReadRow[] = [];
    for (const size of [64, 128]) {
      const hashes = (await hashImagesIn([join(sets[size]!, 'images')])).map((im) => im.hash);
      const out = new Float32Array(size * size * C);
      for (const temperature of [1, 2]) {
        for (const h of hashes.slice(0, 4)) await cache.get(teacherFp, h, { temperature, out }); // warm-up
        let reads = 0;
        const t0 = performance.now();
        for (let r = 0; r < o.readRounds; r++) {
          for (const h of hashes) {
            const rec = await cache.get(teacherFp, h, { temperature, out });
            if (!rec) throw new Error(`cache miss on ${h}`);
            reads++;
          }
        }
        const ms = performance.now() - t0;
        readRows.push({ size, temperature, entries: hashes.length, reads, entriesPerSec: (reads * 1000) / ms, msPerEntry: ms / reads });
      }
    }

    // 3. distillation step: bare, then the pipeline with cache reads in the loader
    progress('cache: bare KD step (mobile-unet 64² b8) …');
    const distillConfig: DistillConfig = {
      ...DISTILL_DEFAULTS, data: sets[64]!, out: join(work.dir, 'distill-run'), teacher: trained.modelDir, cache: cacheDir, model: 'mobile-unet',
      crop: 64, batchSize: o.batch, steps: o.distillSteps, numClasses: C, temperature: 2, seed: 1, checkpointEvery: o.distillSteps, noTeacher: true,
    };
    const seg = createModel('mobile-unet', { numClasses: C, aux: false, seed: 1 });
    const step = new TrainStep(seg, distillObjective(distillConfig, 255), new SegOptimizer({ kind: 'adamw', lr: 1e-3 }));
    const b = o.batch;
    const batch = {
      images: tf.randomNormal([b, 64, 64, 3], 0, 1, 'float32', 7) as tf.Tensor4D,
      labels: tf.randomUniform([b, 64, 64], 0, C, 'int32', 8) as tf.Tensor3D,
      teacherProb: tf.tidy(() => tf.softmax(tf.randomNormal([b, 64, 64, C], 0, 3, 'float32', 9))) as tf.Tensor4D,
      keep: tf.ones([b, 64, 64]) as tf.Tensor3D,
    };
    for (let i = 0; i < 2; i++) await step.run(batch);
    const bareStepRuns: number[] = [];
    for (let i = 0; i < o.bareSteps; i++) {
      const s = performance.now();
      await step.run(batch);
      bareStepRuns.push(performance.now() - s);
    }
    tf.dispose(Object.values(batch));
    step.optimizer.dispose();
    seg.dispose();
    const bareStepMs = median(bareStepRuns);

    progress(`cache: trainDistill mobile-unet 64² b${b}, ${o.distillSteps} steps, T = 2, cache hits only …`);
    const run = await trainDistill(distillConfig, { backend, version: BENCH_VERSION });
    const steady = steadyFigures(await readTrainWindows(distillConfig.out), b);
    const read64 = readRows.find((r) => r.size === 64 && r.temperature === 2)!;
    const readMsPerStep = read64.msPerEntry * b;
    return {
      backend: backend.name, reason: backend.reason, threads: backend.threads, options: o,
      k: DEFAULT_K, scheme: DEFAULT_SCHEME, compression: DEFAULT_COMPRESSION,
      teacherTrainSeconds: trained.seconds, teacherLastLoss: trained.lastLoss,
      sizeRows, readRows,
      distill: {
        model: 'mobile-unet', size: 64, batch: b, bareStepMs, bareStepRuns, readMsPerStep, readShareOfBareStep: readMsPerStep / bareStepMs,
        pipelineImgS: steady.imagesPerSec, pipelineStepMs: (b * 1000) / steady.imagesPerSec,
        loaderWaitShare: steady.loaderWaitShare, firstWindowWaitShare: steady.firstWindowWaitShare, misses: run.misses, steps: o.distillSteps,
      },
      load: loadFigure(), wallSeconds: (performance.now() - start) / 1000,
    };
  } finally {
    await work.cleanup();
  }
}

const sci = (x: number | undefined): string => (x === undefined || !Number.isFinite(x) ? '–' : x === 0 ? '0' : x.toExponential(2));

export function cacheTable(r: CacheBenchResult): string {
  const o = r.options;
  const C = o.classes;
  const head = `softseg cache — C = ${C}, k = ${r.k}, ${r.scheme}, ${r.compression}; backend ${r.backend} (${r.threads} thread(s)); ${r.wallSeconds.toFixed(0)} s${o.quick ? ' (--quick)' : ''}`;
  const size = table(
    ['outputs', 'size', 'entries', 'B/px', `× smaller than f32 (${4 * C} B/px)`, 'goal ≥20×', 'KL T=1', 'goal ≤1e-3', 'KL T=2', 'KL T=4', 'JML1 T=1', 'argmax agree', 'mean top p'],
    r.sizeRows.map((s) => [
      s.source, `${s.size}²`, String(s.entries), fmt(s.bytesPerPixel), fmt(s.vsFloat32), verdict(s.vsFloat32 >= 20),
      sci(s.kl['1']), verdict((s.kl['1'] ?? Infinity) <= 1e-3), sci(s.kl['2']), sci(s.kl['4']), sci(s.jml1['1']), fmt(s.pseudoAgreement, 4), fmt(s.meanTop),
    ]),
  );
  const reads = table(
    ['cache.get', 'entries', 'reads', 'entries/s', 'ms/entry', `ms per batch of ${o.batch}`],
    r.readRows.map((x) => [`${x.size}² T=${x.temperature}`, String(x.entries), String(x.reads), fmt(x.entriesPerSec), fmt(x.msPerEntry), fmt(x.msPerEntry * o.batch)]),
  );
  const d = r.distill;
  const distill = table(
    ['distill step (mobile-unet 64² b8)', 'ms', 'ratio / note'],
    [
      ['bare KD TrainStep (random tensors)', fmt(d.bareStepMs, 4), `median of ${d.bareStepRuns.length}`],
      [`cache reads per step (${d.batch} × get, T=2)`, fmt(d.readMsPerStep), `${(100 * d.readShareOfBareStep).toFixed(1)}% of the bare step (run on the loader's sample workers)`],
      [`trainDistill step (${d.steps} steps, steady windows)`, fmt(d.pipelineStepMs, 4), `${fmt(d.pipelineImgS)} img/s; pipeline ÷ bare ${(d.bareStepMs / d.pipelineStepMs).toFixed(2)}; misses ${d.misses}`],
      ['trainDistill loaderWaitShare', `${(100 * d.loaderWaitShare).toFixed(1)}%`, `goal < 5%: ${verdict(d.loaderWaitShare < 0.05)} (first window ${(100 * d.firstWindowWaitShare).toFixed(1)}%)`],
    ],
  );
  const note = [
    `Real outputs: unet-lite with ${C} outputs, trained ${o.teacherSteps} steps on a 5-class shapes set (${r.teacherTrainSeconds.toFixed(0)} s, last loss ${fmt(r.teacherLastLoss)}) or random init; entries written by labelFolders,`,
    `compared with fresh teacher outputs (teacherFidelity: KL(exact_T ‖ cached_T) nats/pixel, pixel-weighted). Synthetic: test/cache/synth.ts, ${o.synthSeeds} seed(s) per row.`,
    `Reads: page-cached files, one at a time (decode + CRC + reconstruction at T into a reused buffer).`,
    `${loadText(r.load)} at the end — the timings are only as good as the machine was idle.`,
  ].join('\n');
  return `${head}\n${size}\n\n${reads}\n\n${distill}\n${note}`;
}

runIfMain(import.meta.url, cacheOptionsFromArgs, runCacheBench, cacheTable);
