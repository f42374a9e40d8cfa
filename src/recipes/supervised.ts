/**
 * Supervised training (`softseg train`): a labeled folder, a zoo model, cross-entropy + JML (optionally with
 * uniform or boundary label smoothing), validation with the fine-grained metrics, all through the engine.
 */
import { mkdir } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { createModel, sizeMultiple } from '../../models/registry.js';
import { defaultCrop, resolveAugmentation, type Augmentation, type AugmentationConfig } from './augmentation.js';
import type { SegModel } from '../../models/base.js';
import { IMAGENET_NORMALIZATION } from '../augment/normalize.js';
import type { AugmentPreset } from '../augment/augment.js';
import { openDataset, openUnlabeled, type Dataset } from '../data/dataset.js';
import { createLoader, type Loader, type LoaderOptions } from '../data/loader.js';
import { checkedDataset, problemLines, type SkippedFiles } from '../data/validate.js';
import { SoftsegError, usageError } from '../errors.js';
import { hardLabelObjective, smoothedLabelObjective, type LossWeights } from '../losses/objectives.js';
import type { ActiveClassesMode } from '../losses/jdt.js';
import { evaluateDataset, scalarMetrics } from '../inference/evaluate.js';
import { train, type BatchSource, type TrainingEvent, type TrainingOptions, type TrainingResult } from '../engine/trainer.js';
import type { Objective } from '../engine/step.js';
import type { BackendInfo } from '../backends/select.js';
import { defaultWorkerThreads } from '../worker-pool.js';
import { writeFileAtomic } from '../data/fs-util.js';
import { clearRunDir, planRunDir } from './run-dir.js';
import { checkOptions, defaultsOf } from './options.js';
import { MAX_CROP, TRAIN_OPTIONS } from './recipe-options.js';

/** A run's configuration; the augmentation keys (preset and overrides) are {@link AugmentationConfig}'s. */
export interface TrainConfig extends AugmentationConfig {
  data: string;
  val?: string;
  model: string;
  out: string;
  epochs?: number;
  steps?: number;
  batchSize: number;
  crop: number;
  lr: number;
  optimizer: 'adamw' | 'sgd';
  weightDecay: number;
  loss: 'ce' | 'jml' | 'ce+jml';
  ceWeight: number;
  jmlWeight: number;
  /** Uniform label smoothing ε (0 = off). */
  labelSmoothing: number;
  bls: boolean;
  blsKernel: number;
  blsEpsilon: number;
  /** Which JML reduction: per batch (mIoU^D), per image + per class (mIoU^I/mIoU^C), or all three. */
  jmlReduction: 'batch' | 'image-class';
  activeClasses: 'present' | 'all';
  seed: number;
  width: number;
  aux: boolean;
  numClasses?: number;
  ignoreIndex?: number;
  accumulate: number;
  warmupSteps?: number;
  evalEvery?: number;
  checkpointEvery?: number;
  augment: AugmentPreset | 'none';
  skipBad: boolean;
  cacheImages: boolean;
  resume: boolean;
  /** Replace the previous run in `out` (cleared first); without it a non-empty `out` is refused unless `resume`. */
  overwrite: boolean;
}

/** The defaults of a run, from the option schema (recipe-options.ts). */
export const TRAIN_DEFAULTS: TrainConfig = defaultsOf(TRAIN_OPTIONS);

/** Loss weights and JML options for a config; a model without an aux head puts the aux weight on its main head. */
export function lossWeights(c: Pick<TrainConfig, 'loss' | 'ceWeight' | 'jmlWeight' | 'jmlReduction' | 'activeClasses' | 'aux'>, ignoreIndex: number): LossWeights {
  const [ceWeight, jmlWeight] = c.loss === 'ce' ? [1, 0] : c.loss === 'jml' ? [0, 1] : [c.ceWeight, c.jmlWeight];
  const mode: ActiveClassesMode = c.activeClasses === 'all' ? 'ALL' : 'PRESENT';
  const reduction = c.jmlReduction === 'image-class' ? { weightPerBatch: 0, weightPerImage: 0.5, weightPerClass: 0.5 } : { weightPerBatch: 1, weightPerImage: 0, weightPerClass: 0 };
  return {
    ceWeight, jmlWeight,
    mainWeight: c.aux ? 0.5 : 1, auxWeight: c.aux ? 0.5 : 0,
    jdt: { smooth: 1, ignoreIndex, activeClassesHard: mode, activeClassesSoft: mode === 'PRESENT' ? 'PRESENT' : 'ALL', ...reduction },
  };
}

export function supervisedObjective(c: TrainConfig, ignoreIndex: number): Objective {
  const weights = lossWeights(c, ignoreIndex);
  if (c.bls || c.labelSmoothing > 0) {
    const opts = c.bls ? { ...weights, kind: 'bls' as const, kernelSize: c.blsKernel, epsilon: c.blsEpsilon } : { ...weights, kind: 'uniform' as const, epsilon: c.labelSmoothing };
    return (out, batch) => smoothedLabelObjective(out, batch.labels!, opts);
  }
  return (out, batch) => hardLabelObjective(out, batch.labels!, weights);
}

export { MAX_CROP };

/** Checks a training configuration before any work: every problem is a usage error naming the flag. */
export function checkConfig(c: TrainConfig): void {
  checkOptions(TRAIN_OPTIONS, c);
  checkTrainCombinations(c);
}

/** What the schema cannot say about one value alone: required keys and options that go (or not) together. */
export function checkTrainCombinations(c: TrainConfig): void {
  if (!c.data) throw usageError('--data is required (a folder with images/ and masks/)');
  if (!c.out) throw usageError('--out is required (the run directory)');
  if (c.steps !== undefined && c.epochs !== undefined) throw usageError('give --steps or --epochs, not both');
  if (c.loss === 'ce+jml' && c.ceWeight + c.jmlWeight === 0) throw usageError('--ce-weight and --jml-weight are both 0: the loss would be 0');
  if (c.blsKernel % 2 !== 1) throw usageError(`--bls-kernel must be odd, got ${c.blsKernel}`);
  if (c.bls && c.labelSmoothing > 0) throw usageError('--bls and --label-smoothing are alternatives; choose one');
  resolveAugmentation(c); // the scale range, and the preset with its overrides
}

/** The warnings of a --skip-bad run: the count, then each skipped file and why. */
export function skippedWarnings(where: string, skipped: SkippedFiles): string[] {
  if (skipped.count === 0 && skipped.problems.length === 0) return [];
  return [`${where}: skipped ${skipped.count} bad item(s) (--skip-bad)`, ...problemLines(skipped.problems).map((l) => `skipped ${l}`)];
}

const TRAIN_SKIP_HINT = 'fix them, or pass --skip-bad to train without those items';

/** Opens and validates a data set (every file decoded), failing with one line per problem unless skipBad. */
export async function openValidated(dir: string, c: Pick<TrainConfig, 'numClasses' | 'ignoreIndex' | 'skipBad'>, labeled = true): Promise<{ ds: Dataset; warnings: string[]; smallest: [number, number] | null }> {
  const opened = await openDataset(resolve(dir), { labeled, numClasses: c.numClasses, ignoreIndex: c.ignoreIndex });
  const { ds, skipped, smallest } = await checkedDataset(opened, { skipBad: c.skipBad, where: dir, hint: TRAIN_SKIP_HINT });
  return { ds, warnings: skippedWarnings(dir, skipped), smallest };
}

/**
 * Opens and validates the unlabeled folders of distill/ssl as one pool (ids prefixed by the folder's position
 * so they stay unique), failing with one line per problem unless skipBad; null without folders.
 */
export async function openUnlabeledPool(dirs: readonly string[], c: Pick<TrainConfig, 'skipBad'>, classes: { numClasses: number; ignoreIndex: number }, env: RecipeEnv): Promise<Dataset | null> {
  const sets: Dataset[] = [];
  for (const dir of dirs) {
    const { ds, skipped } = await checkedDataset(await openUnlabeled(dir, classes), { skipBad: c.skipBad, where: dir, hint: TRAIN_SKIP_HINT });
    for (const w of skippedWarnings(dir, skipped)) env.onWarning?.(w);
    sets.push(ds);
  }
  if (sets.length === 0) return null;
  return { ...sets[0]!, items: sets.flatMap((u, i) => u.items.map((it) => ({ ...it, id: `${i}/${it.id}` }))) };
}

export interface SupervisedRun {
  config: TrainConfig;
  result: TrainingResult;
  warnings: string[];
}

export interface RecipeEnv {
  backend: BackendInfo;
  version: string;
  onEvent?: (e: TrainingEvent) => void;
  onWarning?: (w: string) => void;
  signal?: AbortSignal;
}

/** With --skip-bad, what the loader reports for a file that fails to read during the run (after validation passed it). */
export function skipDuringRun(env: Pick<RecipeEnv, 'onWarning'>): (p: { file: string; reason: string }) => void {
  return (p) => env.onWarning?.(`skipped ${p.file}: ${p.reason} (--skip-bad; it failed to read during the run)`);
}

/** Builds a loader-backed batch source starting at a step; with skipBad, files that fail to read are skipped and reported through `extra.onSkip`. */
export function loaderSource(ds: Dataset, c: Pick<TrainConfig, 'batchSize' | 'crop' | 'seed' | 'cacheImages' | 'skipBad'> & AugmentationConfig, startStep: number, extra: Partial<LoaderOptions> = {}): Loader {
  return createLoader(ds, {
    batchSize: c.batchSize, crop: c.crop, seed: c.seed, startStep,
    augment: resolveAugmentation(c), cacheImages: c.cacheImages, workers: defaultWorkerThreads(), skipBad: c.skipBad, ...extra,
  });
}

/**
 * What every recipe shares once its data and objective are known: the model, the run's config.json and
 * metadata, periodic validation, and the engine's loop. `makeSource` gets the model's size multiple checked.
 */
export async function launchTraining(args: {
  config: TrainConfig;
  ds: Dataset;
  val: Dataset | null;
  /** Items per epoch that define --epochs (the labeled set for train/distill). */
  epochItems: number;
  objective: Objective;
  makeSource: (startStep: number) => BatchSource;
  extraMetadata?: Record<string, unknown>;
  /** Called with the freshly built model before training (e.g. to load initial weights); a resumed run then restores its checkpoint over them. */
  prepareModel?: (model: SegModel) => Promise<void> | void;
  /** The recipe's plug-ins on the loop (see the engine's TrainingHook). */
  hooks?: TrainingOptions['hooks'];
  env: RecipeEnv;
}): Promise<{ config: TrainConfig; result: TrainingResult }> {
  const { config, ds, val, env } = args;
  const model: SegModel = createModel(config.model, { numClasses: ds.numClasses, width: config.width, aux: config.aux, seed: config.seed });
  try {
    if (config.crop % model.sizeMultiple !== 0) throw usageError(`--crop ${config.crop} is not a multiple of ${model.sizeMultiple}, which ${config.model} needs`);
    await args.prepareModel?.(model);
    const stepsPerEpoch = Math.floor(args.epochItems / config.batchSize);
    if (stepsPerEpoch < 1) throw new SoftsegError(`batch size ${config.batchSize} is larger than the data set (${args.epochItems} images)`, { file: ds.root });
    const steps = config.steps ?? (config.epochs ?? 10) * stepsPerEpoch;
    const effective: TrainConfig & { augmentation: Augmentation | 'none' } = { ...config, steps, numClasses: ds.numClasses, ignoreIndex: ds.ignoreIndex, augmentation: resolveAugmentation(config) || 'none' };
    // Checked again now that the work is about to start (the folder may have changed meanwhile); --overwrite clears it here.
    await clearRunDir(await planRunDir(config.out, config));
    await mkdir(config.out, { recursive: true });
    // config.json describes the checkpoints beside it: written with this run's first checkpoint, so a run that
    // fails before one (bad options on --resume, a NaN at step 1) leaves the previous config.json as it was.
    let configWritten = false;
    const afterCheckpoint = async () => {
      if (configWritten) return;
      await writeFileAtomic(join(config.out, 'config.json'), JSON.stringify(effective, null, 2));
      configWritten = true;
    };
    const metadata = {
      format: 'softseg-model',
      formatVersion: 1,
      architecture: config.model,
      modelOptions: { numClasses: ds.numClasses, width: config.width, aux: config.aux },
      classes: ds.classNames,
      numClasses: ds.numClasses,
      ignoreIndex: ds.ignoreIndex,
      palette: ds.palette ?? null,
      inputSize: [config.crop, config.crop],
      sizeMultiple: model.sizeMultiple,
      normalization: IMAGENET_NORMALIZATION,
      training: effective,
      backend: { name: env.backend.name, reason: env.backend.reason, threads: env.backend.threads },
      versions: { softseg: env.version, tfjs: tf.version.tfjs, node: process.version },
      ...args.extraMetadata,
    };
    const result = await train({
      runDir: config.out, model, objective: args.objective, makeSource: args.makeSource,
      optimizer: { kind: config.optimizer, lr: config.lr, weightDecay: config.weightDecay },
      steps, warmupSteps: config.warmupSteps, accumulate: config.accumulate,
      checkpointEvery: config.checkpointEvery, evalEvery: val ? config.evalEvery ?? Math.max(1, Math.floor(steps / 5)) : undefined,
      evaluate: val ? async (m) => scalarMetrics(await evaluateDataset(m, val, { normalize: IMAGENET_NORMALIZATION })) : undefined,
      resume: config.resume, metadata, onEvent: env.onEvent, signal: env.signal,
      hooks: args.hooks, afterCheckpoint,
    });
    return { config: effective, result };
  } finally {
    model.dispose();
  }
}

/** Validates the common options and opens the training and validation sets. */
export async function openRecipeData(config: TrainConfig, env: RecipeEnv): Promise<{ ds: Dataset; val: Dataset | null; warnings: string[] }> {
  checkConfig(config);
  // The run folder before any work: a non-empty one needs --resume or --overwrite.
  for (const w of (await planRunDir(config.out, config)).warnings) env.onWarning?.(w);
  const { ds, warnings, smallest } = await openValidated(config.data, config);
  const { crop, note } = defaultCrop(config.crop, smallest, sizeMultiple(config.model, { numClasses: ds.numClasses }));
  config.crop = crop;
  if (note) env.onWarning?.(note);
  const val = config.val ? await openValidated(config.val, { ...config, numClasses: config.numClasses ?? ds.numClasses }) : null;
  if (val) warnings.push(...val.warnings);
  for (const w of warnings) env.onWarning?.(w);
  return { ds, val: val?.ds ?? null, warnings };
}

/** Everything `softseg train` does, as a library call. */
export async function trainSupervised(config: TrainConfig, env: RecipeEnv): Promise<SupervisedRun> {
  const { ds, val, warnings } = await openRecipeData(config, env);
  const makeSource = (startStep: number): BatchSource => {
    const loader = loaderSource(ds, config, startStep, { onSkip: skipDuringRun(env) });
    return {
      next: async () => {
        const b = await loader.next();
        return { images: b.images, masks: b.masks, n: b.n, size: b.size };
      },
      close: () => loader.close(),
      waitedMs: () => loader.stats().waitMs,
    };
  };
  const effective = { ...config, numClasses: ds.numClasses, ignoreIndex: ds.ignoreIndex };
  const { config: saved, result } = await launchTraining({
    config, ds, val, epochItems: ds.items.length, objective: supervisedObjective(effective, ds.ignoreIndex), makeSource, env,
  });
  return { config: saved, result, warnings };
}
