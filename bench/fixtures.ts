// Shared set-up of the pipeline, label and cache benchmarks: generated data sets, a saved unet-lite teacher
// (random init or briefly trained, and its ONNX export when onnxruntime-node is installed), metrics.jsonl
// windows, load figures, temp folders.
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { availableParallelism, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from './common.js';
import { createModel } from '../src/models/registry.js';
import { loadModel } from '../src/models/io.js';
import { IMAGENET_NORMALIZATION } from '../src/augment/normalize.js';
import type { BackendInfo } from '../src/backends/select.js';
import { generateShapesDataset } from '../src/data/synthetic.js';
import { saveRunModel } from '../src/engine/trainer.js';
import { TRAIN_DEFAULTS, trainSupervised, type TrainConfig } from '../src/recipes/supervised.js';
import { loadOnnxRuntime } from '../src/teachers/onnx.js';
import { layersModelToOnnx } from '../test/teachers/export-onnx.js';

export const BENCH_VERSION = 'bench';

/** A fresh folder under the OS temp dir, and a function that removes it. */
export async function tempWorkDir(prefix: string): Promise<{ dir: string; cleanup: () => Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), `softseg-bench-${prefix}-`));
  return { dir, cleanup: () => rm(dir, { recursive: true, force: true }) };
}

/** A labeled shapes set (PNG images + grayscale masks + dataset.json) in `dir`. */
export async function makeShapes(dir: string, o: { count: number; size: number; numClasses?: number; seed?: number }): Promise<string> {
  await generateShapesDataset(dir, { count: o.count, size: o.size, numClasses: o.numClasses ?? 5, seed: o.seed ?? 1 });
  return dir;
}

/** One `type: "train"` line of metrics.jsonl. */
export interface TrainWindow {
  step: number;
  imagesPerSec: number;
  loaderWaitShare: number;
  loss: number;
}

export async function readTrainWindows(runDir: string): Promise<TrainWindow[]> {
  const text = await readFile(join(runDir, 'metrics.jsonl'), 'utf8');
  return text
    .split('\n')
    .filter((l) => l.trim())
    .map((l) => JSON.parse(l) as Record<string, unknown>)
    .filter((r) => r.type === 'train')
    .map((r) => ({ step: r.step as number, imagesPerSec: r.imagesPerSec as number, loaderWaitShare: r.loaderWaitShare as number, loss: r.loss as number }));
}

/**
 * Steady-state figures of a run from its metrics.jsonl windows: the first window (first step's one-time work,
 * the loader's first fill) is left out when there are later ones. Windows are weighted by their wall time.
 */
export function steadyFigures(windows: TrainWindow[], batch: number): { imagesPerSec: number; loaderWaitShare: number; firstWindowWaitShare: number; windows: number } {
  const steady = windows.length > 1 ? windows.slice(1) : windows;
  let images = 0, seconds = 0, waited = 0, prev = windows.length > 1 ? windows[0]!.step : 0;
  for (const w of steady) {
    const img = (w.step - prev) * batch;
    const s = img / w.imagesPerSec;
    images += img;
    seconds += s;
    waited += w.loaderWaitShare * s;
    prev = w.step;
  }
  return { imagesPerSec: images / seconds, loaderWaitShare: waited / seconds, firstWindowWaitShare: windows[0]?.loaderWaitShare ?? NaN, windows: steady.length };
}

/** The 1-minute load average and the cores, for the tables' footers. */
export function loadFigure(): { load1: number; load5: number; cores: number } {
  const [l1, l5] = loadavg();
  return { load1: l1!, load5: l5!, cores: availableParallelism() };
}

export const loadText = (l: { load1: number; load5: number; cores: number }): string => `load average ${l.load1.toFixed(1)} (1 min) / ${l.load5.toFixed(1)} (5 min) on ${l.cores} cores`;

export async function onnxRuntimeAvailable(): Promise<boolean> {
  try {
    await loadOnnxRuntime();
    return true;
  } catch {
    return false;
  }
}

export interface BenchTeacher {
  /** A softseg model directory (model.json + weights.bin + softseg.json): the TF.js teacher. */
  modelDir: string;
  /** The same network as ONNX (NCHW), or null when onnxruntime-node is not installed. */
  onnxPath: string | null;
  numClasses: number;
  /** Training steps it had (0 = random init). */
  trainedSteps: number;
  /** Seconds spent making it (training included). */
  seconds: number;
  /** Final training loss (trained teachers). */
  lastLoss: number | null;
}

/**
 * A unet-lite (or `model`) teacher with `numClasses` outputs saved like a softseg run's model. With `steps` > 0 it is
 * trained that many steps with `trainSupervised` on `data` (crop `crop`, batch 8, class count overridden, so a
 * 5-class shapes set trains a 21-output teacher whose unused classes get little mass, as a real teacher's
 * absent classes do); else random init.
 */
export async function makeTeacher(
  dir: string,
  o: { numClasses: number; steps: number; data?: string; crop?: number; backend: BackendInfo; onnx: boolean; seed?: number; model?: 'unet-lite' | 'unet' },
): Promise<BenchTeacher> {
  const t0 = performance.now();
  let modelDir: string;
  let lastLoss: number | null = null;
  const classes = Array.from({ length: o.numClasses }, (_, i) => `class ${i}`);
  if (o.steps > 0) {
    if (!o.data) throw new Error('makeTeacher: a trained teacher needs data');
    const out = join(dir, 'teacher-run');
    const config: TrainConfig = {
      ...TRAIN_DEFAULTS, data: o.data, model: o.model ?? 'unet-lite', out, steps: o.steps, batchSize: 8, crop: o.crop ?? 64,
      seed: o.seed ?? 1, numClasses: o.numClasses, checkpointEvery: o.steps, lr: 3e-3,
    };
    const run = await trainSupervised(config, { backend: o.backend, version: BENCH_VERSION });
    lastLoss = run.result.lastLoss;
    modelDir = join(out, 'model');
  } else {
    modelDir = join(dir, `teacher-${o.model ?? 'unet-lite'}`, 'model');
    const seg = createModel(o.model ?? 'unet-lite', { numClasses: o.numClasses, aux: false, seed: o.seed ?? 1 });
    try {
      await saveRunModel(seg, modelDir, {
        format: 'softseg-model', formatVersion: 1, architecture: o.model ?? 'unet-lite', modelOptions: { numClasses: o.numClasses, width: 1, aux: false },
        classes, numClasses: o.numClasses, ignoreIndex: 255, inputSize: [64, 64], sizeMultiple: seg.sizeMultiple, normalization: IMAGENET_NORMALIZATION,
      });
    } finally {
      seg.dispose();
    }
  }
  let onnxPath: string | null = null;
  if (o.onnx) {
    const model = await loadModel(modelDir);
    try {
      onnxPath = join(dir, `teacher-${o.model ?? 'unet-lite'}-${o.steps}.onnx`);
      await writeFile(onnxPath, layersModelToOnnx(model, { softseg: JSON.stringify({ classes, normalization: IMAGENET_NORMALIZATION }) }));
    } finally {
      model.dispose();
    }
  }
  return { modelDir, onnxPath, numClasses: o.numClasses, trainedSteps: o.steps, seconds: (performance.now() - t0) / 1000, lastLoss };
}

/** `--quick`-aware number option. */
export function numOpt(a: Record<string, string>, key: string, full: number, quick: number): number {
  if (a[key] !== undefined) return Number(a[key]);
  return a.quick === 'true' ? quick : full;
}

/** PASS/MISS of a goal. */
export const verdict = (ok: boolean): string => (ok ? 'PASS' : 'MISS');

export const progress = (line: string): void => {
  process.stderr.write(`${line}\n`);
};

/**
 * When `moduleUrl` is the script node was started with: parse the arguments, run the bench, print its table
 * (or JSON with --json) and exit — the shared `main` of bench/cache.ts, label.ts and pipeline.ts.
 */
export function runIfMain<O, R>(moduleUrl: string, fromArgs: (a: Record<string, string>) => O, runBench: (o: O) => Promise<R>, render: (r: R) => string): void {
  if (!process.argv[1] || moduleUrl !== pathToFileURL(process.argv[1]).href) return;
  const a = parseArgs(process.argv.slice(2));
  runBench(fromArgs(a)).then(
    (result) => {
      process.stdout.write(a.json === 'true' ? `${JSON.stringify(result, null, 2)}\n` : `${render(result)}\n`);
      process.exit(0);
    },
    (err: unknown) => {
      console.error(err);
      process.exit(1);
    },
  );
}
