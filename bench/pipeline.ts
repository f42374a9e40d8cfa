// The full `softseg train` loop (data loading included) next to the bare engine step (issue 4):
//   node --import tsx bench/pipeline.ts [--json --quick --backend auto|wasm|cpu|tensorflow --threads N
//                                        --models unet-lite,mobile-unet --images 64 --size 64 --classes 5
//                                        --steps 40 --bare-steps N]
// Per model: a generated shapes set (PNG images + masks, 5 classes) in a temp folder, `trainSupervised`
// (crop 64, batch 8, default augmentation, no val, one checkpoint at the end) → images/s and loaderWaitShare
// from metrics.jsonl (first 10-step window left out), next to the bare TrainStep on random tensors of the same
// model, size, batch and classes (bench/engine-row.ts, its own process): ratio pipeline ÷ bare.
import { join } from 'node:path';
import { initBackend, type BackendRequest } from '../src/backends/select.js';
import { TRAIN_DEFAULTS, trainSupervised, type TrainConfig } from '../src/recipes/supervised.js';
import { fmt, isError, list, median, table, type RowOutcome } from './common.js';
import { runEngineRow } from './engine.js';
import { runIfMain, BENCH_VERSION, loadFigure, loadText, makeShapes, numOpt, progress, readTrainWindows, steadyFigures, tempWorkDir, verdict, type TrainWindow } from './fixtures.js';

export interface PipelineOptions {
  backend: string;
  threads?: number;
  models: string[];
  images: number;
  size: number;
  classes: number;
  batch: number;
  steps: number;
  /** Timed bare steps (undefined = engine-row's adaptive default). */
  bareSteps?: number;
  quick: boolean;
}

export interface PipelineRow {
  model: string;
  size: number;
  batch: number;
  steps: number;
  pipelineImgS: number;
  /** Whole run: wall seconds of trainSupervised (validation of the set, model build, loop, final save). */
  runSeconds: number;
  loaderWaitShare: number;
  firstWindowWaitShare: number;
  windows: TrainWindow[];
  bareImgS: number | null;
  bareStepMs: number | null;
  bareError?: string;
  /** pipeline ÷ bare images/s. */
  ratio: number | null;
  loadBefore: number;
  loadAfter: number;
}

export interface PipelineResult {
  backend: string;
  reason: string;
  threads: number;
  options: PipelineOptions;
  rows: PipelineRow[];
  load: { load1: number; load5: number; cores: number };
  wallSeconds: number;
}

export function pipelineOptionsFromArgs(a: Record<string, string>): PipelineOptions {
  const quick = a.quick === 'true';
  return {
    backend: a.backend ?? 'auto',
    threads: a.threads === undefined ? undefined : Number(a.threads),
    models: list(a.models, ['unet-lite', 'mobile-unet']),
    images: numOpt(a, 'images', 64, 64),
    size: numOpt(a, 'size', 64, 64),
    classes: numOpt(a, 'classes', 5, 5),
    batch: numOpt(a, 'batch', 8, 8),
    steps: numOpt(a, 'steps', 40, 20),
    bareSteps: a['bare-steps'] !== undefined ? Number(a['bare-steps']) : quick ? 5 : undefined,
    quick,
  };
}

export async function runPipelineBench(o: PipelineOptions): Promise<PipelineResult> {
  const start = performance.now();
  const backend = await initBackend({ backend: o.backend as BackendRequest, threads: o.threads });
  const work = await tempWorkDir('pipeline');
  const rows: PipelineRow[] = [];
  try {
    const data = await makeShapes(join(work.dir, 'data'), { count: o.images, size: o.size, numClasses: o.classes });
    for (const model of o.models) {
      const loadBefore = loadFigure().load1;
      progress(`pipeline: ${model} ${o.size}² b${o.batch}: softseg train loop, ${o.steps} steps …`);
      const out = join(work.dir, `run-${model}`);
      const config: TrainConfig = {
        ...TRAIN_DEFAULTS, data, model, out, steps: o.steps, batchSize: o.batch, crop: o.size, seed: 1, checkpointEvery: o.steps,
      };
      const t0 = performance.now();
      await trainSupervised(config, { backend, version: BENCH_VERSION });
      const runSeconds = (performance.now() - t0) / 1000;
      const windows = await readTrainWindows(out);
      const steady = steadyFigures(windows, o.batch);
      progress(`pipeline: ${model}: ${fmt(steady.imagesPerSec)} img/s, loader wait ${(100 * steady.loaderWaitShare).toFixed(1)}%; bare step (own process) …`);
      const bare: RowOutcome = await runEngineRow(
        { backend: o.backend, models: [model], sizes: [o.size], batch: o.batch, classes: o.classes, steps: o.bareSteps, threads: o.threads },
        model, o.size,
      );
      const bareImgS = isError(bare) ? null : bare.trainImgS;
      rows.push({
        model, size: o.size, batch: o.batch, steps: o.steps,
        pipelineImgS: steady.imagesPerSec, runSeconds, loaderWaitShare: steady.loaderWaitShare, firstWindowWaitShare: steady.firstWindowWaitShare, windows,
        bareImgS, bareStepMs: isError(bare) ? null : median(bare.trainStepMs), bareError: isError(bare) ? bare.error : undefined,
        ratio: bareImgS ? steady.imagesPerSec / bareImgS : null,
        loadBefore, loadAfter: loadFigure().load1,
      });
      progress(`pipeline: ${model}: bare ${fmt(bareImgS)} img/s`);
    }
  } finally {
    await work.cleanup();
  }
  return { backend: backend.name, reason: backend.reason, threads: backend.threads, options: o, rows, load: loadFigure(), wallSeconds: (performance.now() - start) / 1000 };
}

export function pipelineTable(r: PipelineResult): string {
  const o = r.options;
  const head = `softseg train loop vs bare engine step — backend ${r.backend}, ${r.threads} thread(s); ${o.images} shapes images ${o.size}², ${o.classes} classes, crop ${o.size}, batch ${o.batch}, ${o.steps} steps, no val; ${r.wallSeconds.toFixed(0)} s${o.quick ? ' (--quick)' : ''}`;
  const rows = r.rows.map((row) => [
    `${row.model} ${row.size}² b${row.batch}`,
    fmt(row.pipelineImgS),
    fmt(row.bareImgS),
    row.ratio === null ? (row.bareError ?? '–') : row.ratio.toFixed(2),
    `${(100 * row.loaderWaitShare).toFixed(1)}%`,
    verdict(row.loaderWaitShare < 0.05),
    `${(100 * row.firstWindowWaitShare).toFixed(1)}%`,
    fmt(row.bareStepMs, 4),
    row.runSeconds.toFixed(1),
    `${row.loadBefore.toFixed(1)}→${row.loadAfter.toFixed(1)}`,
  ]);
  const note = [
    'pipeline img/s: steady state from metrics.jsonl (10-step windows after the first); bare: median TrainStep.run on random tensors (bench/engine-row.ts, own process);',
    'ratio = pipeline ÷ bare; loader wait = loaderWaitShare of the same windows (goal < 5%); first window = the loader\'s cold start, for reference.',
    `${loadText(r.load)} at the end — the timings are only as good as the machine was idle.`,
  ].join('\n');
  return `${head}\n${table(['row', 'pipeline img/s', 'bare img/s', 'ratio', 'loader wait', 'goal <5%', 'first window wait', 'bare step ms', 'run s', 'load'], rows)}\n${note}`;
}

runIfMain(import.meta.url, pipelineOptionsFromArgs, runPipelineBench, pipelineTable);
