/**
 * The one training loop of softseg: `train`, `distill` and `ssl` differ only in the objective and the
 * batch source they plug in. It owns the schedule, checkpoints and resume, the NaN guard, evaluation and
 * best-model tracking, metrics.jsonl, and progress events (commands turn them into bars or log lines).
 */
import { appendFile, mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { saveModel } from '../models/io.js';
import type { SegModel } from '../models/base.js';
import { writeFileAtomic } from '../data/fs-util.js';
import { writeSoftsegJson, type SoftsegJson } from '../inference/softseg-json.js';
import { SoftsegError } from '../errors.js';
import { latestCheckpoint, restoreCheckpoint, saveCheckpoint, type LoopState } from './checkpoint.js';
import { SegOptimizer, type OptimizerConfig } from './optimizer.js';
import { learningRateAt } from './schedule.js';
import { NonFiniteLossError, TrainStep, checkStepFits, disposeBatch, type Objective, type TensorBatch } from './step.js';

/** A batch on the host, as the data loaders produce it (typed arrays, NHWC). */
export interface HostBatch {
  /** [n, h, w, 3] normalised images. */
  images: Float32Array;
  /** [n, h, w] class ids (ignore index for unlabeled pixels). */
  masks?: Int32Array;
  /** [n, h, w, C] teacher probabilities. */
  teacherProb?: Float32Array;
  /** [n, h, w] 1 = pixel counts for the teacher terms. */
  keep?: Uint8Array | Float32Array;
  /** Batch size (images). */
  n: number;
  /** [h, w] of every image in the batch. */
  size: [number, number];
  /** Number of channels of teacherProb. */
  classes?: number;
}

/** Where batches come from. Sources are deterministic in the step, so a resumed run sees the same data. */
export interface BatchSource {
  next(): Promise<HostBatch>;
  close(): Promise<void> | void;
  /** Milliseconds the consumer has waited in next() so far (to report loader stalls). */
  waitedMs?(): number;
}

export type TrainingEvent =
  | { type: 'start'; step: number; steps: number; resumedFrom: string | null }
  | { type: 'step'; step: number; steps: number; loss: number; parts: Record<string, number>; lr: number; imagesPerSec: number; loaderWaitShare: number }
  | { type: 'eval'; step: number; metrics: Record<string, number>; best: boolean }
  | { type: 'checkpoint'; step: number; path: string }
  | { type: 'done'; step: number; interrupted: boolean };

/**
 * A recipe's plug-in on the loop (a mean teacher, a collapse guard): it follows the run through these calls,
 * never through a batch source's next()/close(). Every method is optional.
 */
export interface TrainingHook {
  /** After each optimizer step; `step` is the loop's step count after it (before that step's checkpoint). */
  afterStep?(step: number): void | Promise<void>;
  /** With each logged window of steps: the loss terms averaged over it (as the `step` event carries them). */
  onLog?(step: number, parts: Record<string, number>): void;
  /** With each evaluation. */
  onEval?(step: number, metrics: Record<string, number>): void;
  /** Writes what the run needs to continue identically into a checkpoint's folder, before it is published. */
  save?(dir: string, step: number): Promise<void>;
  /** Reads it back on resume. */
  restore?(dir: string, step: number): Promise<void>;
  /** A reason to stop the run (checked after each step): the loop writes a checkpoint and ends as when interrupted. */
  stopReason?(): string | null;
  /** When the loop ends, however it ends (after the batch source is closed). */
  end?(step: number): Promise<void>;
}

export interface TrainingOptions {
  runDir: string;
  model: SegModel;
  objective: Objective;
  /** Builds the batch source starting at a step (0 for a new run, the checkpoint's step on resume). */
  makeSource: (startStep: number) => BatchSource;
  optimizer?: OptimizerConfig;
  steps: number;
  warmupSteps?: number;
  accumulate?: number;
  /** Checkpoint every N steps (default: a tenth of the run, at least 10). */
  checkpointEvery?: number;
  /** Evaluate every N steps (and at the end) when `evaluate` is given. */
  evalEvery?: number;
  /** Validation metrics of the current model; `metric` (default mIoUD) picks the best model. */
  evaluate?: (model: SegModel) => Promise<Record<string, number>>;
  metric?: string;
  /** Log a metrics line every N steps (default 10). */
  logEvery?: number;
  /** Continue from the latest checkpoint of runDir when there is one. */
  resume?: boolean;
  /** Written into softseg.json beside every saved model (architecture, classes, normalisation, config, …). */
  metadata: SoftsegJson;
  onEvent?: (event: TrainingEvent) => void;
  /** Abort (e.g. on SIGINT) → checkpoint at the end of the current step, then return. */
  signal?: AbortSignal;
  /** The recipe's plug-ins, called in order. */
  hooks?: TrainingHook[];
  /**
   * Called when a checkpoint is complete, before it is published as the latest (e.g. to record the configuration
   * that produced it: a run killed right after its first checkpoint still resumes with --resume alone).
   */
  beforePublish?: (step: number, path: string) => Promise<void>;
}

export interface TrainingResult {
  steps: number;
  interrupted: boolean;
  bestMetric: number | null;
  bestStep: number | null;
  lastLoss: number | null;
  finalMetrics: Record<string, number> | null;
}

/**
 * A resumed run repeats the steps after its checkpoint: the records the stopped run logged for them go, so
 * metrics.jsonl holds each step once (written atomically; a missing log is fine).
 */
async function dropRecordsAfter(metricsFile: string, step: number): Promise<void> {
  let text: string;
  try {
    text = await readFile(metricsFile, 'utf8');
  } catch {
    return;
  }
  const lines = text.split('\n').filter((l) => l.trim() !== '');
  const kept = lines.filter((l) => {
    try {
      const r = JSON.parse(l) as { step?: unknown };
      return !(typeof r.step === 'number' && r.step > step);
    } catch {
      return false; // a line cut short by a kill
    }
  });
  if (kept.length !== lines.length) await writeFileAtomic(metricsFile, kept.map((l) => `${l}\n`).join(''));
}

/** The step a checkpoint was written at, from its state.json (null when unreadable). */
async function readLoopStep(dir: string): Promise<number | null> {
  try {
    return (JSON.parse(await readFile(join(dir, 'state.json'), 'utf8')) as LoopState).step;
  } catch {
    return null;
  }
}

function toTensors(b: HostBatch): TensorBatch {
  const [h, w] = b.size;
  const out: TensorBatch = { images: tf.tensor4d(b.images, [b.n, h, w, 3]) };
  if (b.masks) out.labels = tf.tensor3d(b.masks, [b.n, h, w], 'int32');
  if (b.teacherProb) out.teacherProb = tf.tensor4d(b.teacherProb, [b.n, h, w, b.classes ?? b.teacherProb.length / (b.n * h * w)]);
  if (b.keep) out.keep = tf.tensor3d(Float32Array.from(b.keep), [b.n, h, w]);
  return out;
}

/** Saves a model with its softseg.json metadata into `dir` (model.json + weights.bin + softseg.json). */
export async function saveRunModel(model: SegModel, dir: string, metadata: SoftsegJson): Promise<void> {
  await saveModel(model, dir);
  await writeSoftsegJson(dir, metadata);
}

export async function train(o: TrainingOptions): Promise<TrainingResult> {
  if (!Number.isInteger(o.steps) || o.steps < 1) throw new SoftsegError(`steps must be a positive integer, got ${o.steps}`);
  await mkdir(o.runDir, { recursive: true });
  const optimizer = new SegOptimizer(o.optimizer);
  const step = new TrainStep(o.model, o.objective, optimizer, { accumulate: o.accumulate });
  const metric = o.metric ?? 'mIoUD';
  const checkpointEvery = o.checkpointEvery ?? Math.max(10, Math.floor(o.steps / 10));
  const logEvery = o.logEvery ?? 10;
  const metricsFile = join(o.runDir, 'metrics.jsonl');
  const hooks = o.hooks ?? [];

  let state: LoopState = { step: 0, bestMetric: null, bestStep: null };
  let resumedFrom: string | null = null;
  if (o.resume) {
    resumedFrom = await latestCheckpoint(o.runDir);
    if (resumedFrom) {
      state = await restoreCheckpoint(resumedFrom, o.model, optimizer);
      for (const h of hooks) await h.restore?.(resumedFrom, state.step);
      await dropRecordsAfter(metricsFile, state.step);
    }
  }
  const log = (record: Record<string, unknown>) => appendFile(metricsFile, JSON.stringify({ time: new Date().toISOString(), ...record }) + '\n');
  o.onEvent?.({ type: 'start', step: state.step, steps: o.steps, resumedFrom });

  const source = o.makeSource(state.step);
  let lastLoss: number | null = null;
  let finalMetrics: Record<string, number> | null = null;
  let interrupted = false;
  let windowStart = performance.now(), windowImages = 0, windowWait = source.waitedMs?.() ?? 0;
  const partSums: Record<string, number> = {};
  let lossSum = 0, lossCount = 0;

  const evaluateNow = async () => {
    if (!o.evaluate) return;
    const metrics = await o.evaluate(o.model);
    const value = metrics[metric];
    const best = value !== undefined && Number.isFinite(value) && (state.bestMetric === null || value > state.bestMetric);
    if (best) {
      state.bestMetric = value!;
      state.bestStep = state.step;
      await saveRunModel(o.model, join(o.runDir, 'best'), { ...o.metadata, step: state.step, metrics });
    }
    finalMetrics = metrics;
    await log({ type: 'eval', step: state.step, ...metrics });
    o.onEvent?.({ type: 'eval', step: state.step, metrics, best });
    for (const h of hooks) h.onEval?.(state.step, metrics);
  };

  try {
    let checked = false;
    while (state.step < o.steps) {
      const host = await source.next();
      if (!checked) {
        checkStepFits(o.model, host.n, host.size[0], host.size[1], o.accumulate);
        checked = true;
      }
      const lr = learningRateAt(state.step, { lr: optimizer.config.lr, totalSteps: o.steps, warmupSteps: o.warmupSteps });
      optimizer.setLearningRate(lr);
      const batch = { ...toTensors(host), step: state.step };
      let result;
      try {
        result = await step.run(batch);
      } finally {
        disposeBatch(batch);
      }
      state.step++;
      for (const h of hooks) await h.afterStep?.(state.step);
      lastLoss = result.loss;
      lossSum += result.loss;
      lossCount++;
      for (const [k, v] of Object.entries(result.parts)) partSums[k] = (partSums[k] ?? 0) + v;
      windowImages += host.n;

      if (state.step % logEvery === 0 || state.step === o.steps) {
        const now = performance.now();
        const waited = source.waitedMs?.() ?? 0;
        const seconds = (now - windowStart) / 1000;
        const parts = Object.fromEntries(Object.entries(partSums).map(([k, v]) => [k, v / lossCount]));
        const event = {
          type: 'step' as const, step: state.step, steps: o.steps, loss: lossSum / lossCount, parts, lr,
          imagesPerSec: windowImages / seconds, loaderWaitShare: (waited - windowWait) / (now - windowStart),
        };
        await log({ type: 'train', step: state.step, loss: event.loss, ...parts, lr, imagesPerSec: event.imagesPerSec, loaderWaitShare: event.loaderWaitShare });
        o.onEvent?.(event);
        for (const h of hooks) h.onLog?.(state.step, parts);
        windowStart = now;
        windowImages = 0;
        windowWait = waited;
        lossSum = 0;
        lossCount = 0;
        for (const k of Object.keys(partSums)) delete partSums[k];
      }
      if (o.evalEvery && state.step % o.evalEvery === 0 && state.step < o.steps) await evaluateNow();
      const stop = (o.signal?.aborted ?? false) || hooks.some((h) => (h.stopReason?.() ?? null) !== null);
      if (state.step % checkpointEvery === 0 || stop || state.step === o.steps) {
        const saveHooks = hooks.some((h) => h.save) ? async (dir: string) => { for (const h of hooks) await h.save?.(dir, state.step); } : undefined;
        const beforePublish = o.beforePublish ? (dir: string) => o.beforePublish!(state.step, dir) : undefined;
        const path = await saveCheckpoint(o.runDir, o.model, optimizer, state, saveHooks, beforePublish);
        o.onEvent?.({ type: 'checkpoint', step: state.step, path });
      }
      if (stop && state.step < o.steps) {
        interrupted = true;
        break;
      }
    }
    if (!interrupted) {
      await evaluateNow();
      await saveRunModel(o.model, join(o.runDir, 'model'), { ...o.metadata, step: state.step, metrics: finalMetrics });
    }
  } catch (e) {
    if (e instanceof NonFiniteLossError) {
      await log({ type: 'error', step: state.step, message: e.message, parts: e.parts });
      const kept = await latestCheckpoint(o.runDir);
      const where = kept ? `the last good checkpoint (step ${(await readLoopStep(kept)) ?? '?'}) is kept` : 'no checkpoint was written before it';
      throw new SoftsegError(`training stopped at step ${state.step + 1}: ${e.message}; ${where}`, { hint: e.hint });
    }
    throw e;
  } finally {
    await source.close();
    for (const h of hooks) await h.end?.(state.step);
    optimizer.dispose();
  }
  o.onEvent?.({ type: 'done', step: state.step, interrupted });
  return { steps: state.step, interrupted, bestMetric: state.bestMetric, bestStep: state.bestStep, lastLoss, finalMetrics };
}
