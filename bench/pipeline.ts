// The full `softseg train` loop (data loading included) next to the bare engine step (issue 4):
//   node --import tsx bench/pipeline.ts [--json --quick --backend auto|wasm|cpu|tensorflow --threads N
//                                        --models unet-lite,mobile-unet --images 64 --size 64 --classes 5
//                                        --steps 40 --bare-steps N --memory-steps 300 --unlabeled 256]
// Per model: a generated shapes set (PNG images + masks, 5 classes) in a temp folder, `trainSupervised`
// (crop 64, batch 8, default augmentation, no val, one checkpoint at the end) → images/s and loaderWaitShare
// from metrics.jsonl (first 10-step window left out), next to the bare TrainStep on random tensors of the same
// model, size, batch and classes (bench/engine-row.ts, its own process): ratio pipeline ÷ bare.
// Then memory (issue 13): train, distill with unlabeled images and ssl (mobile-unet, teacher outputs all
// cached) for --memory-steps each → peak RSS and RSS growth after warm-up per 100 steps (flat = ~0).
import { join } from 'node:path';
import { initBackend, type BackendInfo, type BackendRequest } from '../src/backends/select.js';
import { openCache } from '../src/cache/store.js';
import { generateShapesDataset } from '../src/data/synthetic.js';
import type { TrainingEvent } from '../src/engine/trainer.js';
import { labelFolders } from '../src/labels/label-folder.js';
import { DISTILL_DEFAULTS, trainDistill } from '../src/recipes/distill.js';
import { SSL_DEFAULTS, trainSsl } from '../src/recipes/ssl.js';
import { TRAIN_DEFAULTS, trainSupervised, type TrainConfig } from '../src/recipes/supervised.js';
import type { RecipeEnv } from '../src/recipes/run.js';
import { openTeacher } from '../src/teachers/index.js';
import { fmt, isError, list, median, table, type RowOutcome } from './common.js';
import { runEngineRow } from './engine.js';
import { runIfMain, BENCH_VERSION, loadFigure, loadText, makeShapes, makeTeacher, numOpt, progress, readTrainWindows, steadyFigures, tempWorkDir, verdict, type TrainWindow } from './fixtures.js';

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
  /** Steps of each memory run (train, distill, ssl), and the unlabeled images of distill and ssl. */
  memorySteps: number;
  unlabeled: number;
  quick: boolean;
}

/** Memory of one recipe's run (MB): RSS sampled at every step event and every 50 ms. */
export interface MemoryRow {
  recipe: 'train' | 'distill' | 'ssl';
  steps: number;
  /** RSS at the first logged step, at a quarter of the run (after warm-up) and at the end. */
  rssFirst: number;
  rssQuarter: number;
  rssEnd: number;
  peakRss: number;
  /** (end − quarter) per 100 steps: ~0 when memory is flat in the steps; null over fewer than 100 steps (GC noise). */
  growthPer100: number | null;
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
  memory: MemoryRow[];
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
    memorySteps: numOpt(a, 'memory-steps', 300, 60),
    unlabeled: numOpt(a, 'unlabeled', 256, 64),
    quick,
  };
}

export async function runPipelineBench(o: PipelineOptions): Promise<PipelineResult> {
  const start = performance.now();
  const backend = await initBackend({ backend: o.backend as BackendRequest, threads: o.threads });
  const work = await tempWorkDir('pipeline');
  const rows: PipelineRow[] = [];
  let memory: MemoryRow[] = [];
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
    memory = await memoryRuns(o, backend, work.dir, data);
  } finally {
    await work.cleanup();
  }
  return { backend: backend.name, reason: backend.reason, threads: backend.threads, options: o, rows, memory, load: loadFigure(), wallSeconds: (performance.now() - start) / 1000 };
}

const MB = 2 ** 20;
const growthText = (m: MemoryRow): string => (m.growthPer100 === null ? '–' : `${m.growthPer100 >= 0 ? '+' : ''}${m.growthPer100.toFixed(1)}`);

/** Runs `run` with RSS sampled at each step event and every 50 ms (the loop yields between steps). */
async function measureMemory(recipe: MemoryRow['recipe'], steps: number, run: (env: RecipeEnv) => Promise<unknown>, backend: BackendInfo): Promise<MemoryRow> {
  const atStep = new Map<number, number>();
  let peak = 0;
  const sample = () => {
    const rss = process.memoryUsage().rss;
    peak = Math.max(peak, rss);
    return rss;
  };
  const timer = setInterval(sample, 50);
  const onEvent = (e: TrainingEvent) => {
    if (e.type === 'step') atStep.set(e.step, sample());
  };
  try {
    await run({ backend, version: BENCH_VERSION, onEvent });
  } finally {
    clearInterval(timer);
  }
  sample();
  const logged = [...atStep.keys()].sort((a, b) => a - b);
  const quarter = logged.find((s) => s >= steps / 4) ?? logged[0]!;
  const last = logged.at(-1)!;
  const rssQuarter = atStep.get(quarter)!, rssEnd = atStep.get(last)!;
  return {
    recipe, steps, rssFirst: atStep.get(logged[0]!)! / MB, rssQuarter: rssQuarter / MB, rssEnd: rssEnd / MB, peakRss: peak / MB,
    growthPer100: last - quarter >= 100 ? ((rssEnd - rssQuarter) / MB) * (100 / (last - quarter)) : null,
  };
}

/** train, distill --unlabeled and ssl (mobile-unet, teacher outputs all cached, as in issue 13's report), one after another. */
async function memoryRuns(o: PipelineOptions, backend: BackendInfo, dir: string, data: string): Promise<MemoryRow[]> {
  const unlabeled = join(dir, 'unlabeled');
  await generateShapesDataset(unlabeled, { count: o.unlabeled, size: o.size, numClasses: o.classes, seed: 9, unlabeled: true });
  progress(`memory: a teacher labels ${o.images} + ${o.unlabeled} images into a cache …`);
  const made = await makeTeacher(dir, { numClasses: o.classes, steps: 0, backend, onnx: false });
  const cache = join(dir, 'cache');
  const teacher = await openTeacher(made.modelDir, { numClasses: o.classes });
  try {
    await labelFolders(teacher, openCache(cache), [join(data, 'images'), join(unlabeled, 'images')]);
  } finally {
    await teacher.dispose();
  }
  const common = { data, model: 'mobile-unet', crop: o.size, batchSize: o.batch, steps: o.memorySteps, seed: 1, checkpointEvery: o.memorySteps };
  const kd = { teacher: made.modelDir, cache, unlabeled: [unlabeled], noTeacher: true };
  const rows: MemoryRow[] = [];
  for (const recipe of ['train', 'distill', 'ssl'] as const) {
    progress(`memory: ${recipe}, ${o.memorySteps} steps …`);
    const out = join(dir, `memory-${recipe}`);
    const row = await measureMemory(recipe, o.memorySteps, (env) =>
      recipe === 'train' ? trainSupervised({ ...TRAIN_DEFAULTS, ...common, out }, env)
        : recipe === 'distill' ? trainDistill({ ...DISTILL_DEFAULTS, ...common, ...kd, out }, env)
          : trainSsl({ ...SSL_DEFAULTS, ...common, ...kd, out }, env), backend);
    progress(`memory: ${recipe}: peak RSS ${row.peakRss.toFixed(0)} MB, ${growthText(row)} MB per 100 steps after warm-up`);
    rows.push(row);
  }
  return rows;
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
  const memHead = `memory (issue 13) — mobile-unet ${o.size}² b${o.batch}, ${o.classes} classes, ${o.memorySteps} steps each, in this order in one process; distill and ssl with ${o.unlabeled} unlabeled images, teacher outputs all cached`;
  const memRows = r.memory.map((m) => [
    m.recipe, m.rssFirst.toFixed(0), m.rssQuarter.toFixed(0), m.rssEnd.toFixed(0), m.peakRss.toFixed(0), growthText(m),
  ]);
  const memNote = 'RSS in MB at the first logged step (10), at a quarter of the run and at the end; peak: the highest sample (every step event and every 50 ms); growth: (end − quarter) per 100 steps — flat memory is ~0 (garbage-collection noise ± ~10 MB; – under 100 steps).';
  return `${head}\n${table(['row', 'pipeline img/s', 'bare img/s', 'ratio', 'loader wait', 'goal <5%', 'first window wait', 'bare step ms', 'run s', 'load'], rows)}\n${note}\n\n${memHead}\n${table(['recipe', 'RSS first', 'RSS 25%', 'RSS end', 'peak RSS', 'MB / 100 steps'], memRows)}\n${memNote}`;
}

runIfMain(import.meta.url, pipelineOptionsFromArgs, runPipelineBench, pipelineTable);
