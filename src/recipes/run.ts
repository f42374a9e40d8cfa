/**
 * What the training recipes share once their options are checked: the run environment, opening and validating
 * the data (labeled sets and the unlabeled pool), loader-backed batch sources, a cached teacher with its soft
 * labels (distill and ssl), joining labeled and unlabeled batches, and launching the engine's loop with the
 * model, the run folder's config.json and metadata, and periodic validation.
 */
import { mkdir } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { createModel, sizeMultiple } from '../models/registry.js';
import type { ResolvedOptions, SegModel } from '../models/base.js';
import { IMAGENET_NORMALIZATION } from '../augment/normalize.js';
import { openCache, type TeacherCache } from '../cache/store.js';
import { checkDeclaredClasses, givenClassNames, openDataset, openUnlabeled, type Dataset } from '../data/dataset.js';
import { createLoader, type Loader, type LoaderOptions } from '../data/loader.js';
import { checkedDataset, problemLines, type SkippedFiles } from '../data/validate.js';
import { checkOutputFolder, writeFileAtomic } from '../data/fs-util.js';
import { SoftsegError, usageError } from '../errors.js';
import { evaluateDataset, scalarMetrics } from '../inference/evaluate.js';
import { readSoftsegJson, type SoftsegJson } from '../inference/softseg-json.js';
import { modelDirectory, openTrainedModel } from '../inference/model-dir.js';
import { train, type BatchSource, type HostBatch, type TrainingEvent, type TrainingOptions, type TrainingResult } from '../engine/trainer.js';
import type { Objective } from '../engine/step.js';
import type { BackendInfo } from '../backends/select.js';
import { openTeacherForCache } from '../labels/cached-teacher.js';
import { TeacherLabels } from '../labels/teacher-labels.js';
import type { Teacher } from '../teachers/index.js';
import { teacherOptionsFromFlags } from '../teachers/preprocessing.js';
import { defaultWorkerThreads } from '../worker-pool.js';
import { defaultCrop, resolveAugmentation, type Augmentation, type AugmentationConfig } from './augmentation.js';
import { clearRunDir, dataChanges, dataRecord, lockRunDir, planRunDir, recordedRunOptions, resumeDifferences, resumeMismatch, runOptions } from './run-dir.js';
import type { OptionSchema } from './options.js';
import { TEACHER_PREPROCESSING_OPTIONS } from './recipe-options.js';
import type { TrainConfig } from './supervised.js';
import type { TeacherPreprocessingConfig } from './distill.js';

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

export interface RecipeEnv {
  backend: BackendInfo;
  version: string;
  onEvent?: (e: TrainingEvent) => void;
  onWarning?: (w: string) => void;
  signal?: AbortSignal;
  /** Wraps every batch source the run builds (to observe or record what it trains on, e.g. bench/parity/replay.ts). */
  tapSource?: (source: BatchSource) => BatchSource;
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
  /** The unlabeled pool trained on beside `ds` (distill/ssl), recorded with it so a resume sees a changed folder. */
  pool?: Dataset | null;
  objective: Objective;
  /** The recipe's option schema: which keys of config.json bind a resumed run. */
  schema: OptionSchema<object>;
  makeSource: (startStep: number) => BatchSource;
  extraMetadata?: Record<string, unknown>;
  /**
   * Called with the model before training, after --init loaded its weights (`init`: the model folder they came
   * from; undefined without --init and on a resumed run, which restores its checkpoint instead).
   */
  prepareModel?: (model: SegModel, init: string | undefined) => Promise<void> | void;
  /** The recipe's plug-ins on the loop (see the engine's TrainingHook). */
  hooks?: TrainingOptions['hooks'];
  env: RecipeEnv;
}): Promise<{ config: TrainConfig; result: TrainingResult }> {
  const { config, ds, val, env } = args;
  const model: SegModel = createModel(config.model, { numClasses: ds.numClasses, width: config.width, aux: config.aux, seed: config.seed, upsampling: config.upsampling });
  let release: (() => Promise<void>) | undefined;
  try {
    if (config.crop % model.sizeMultiple !== 0) throw usageError(`--crop ${config.crop} is not a multiple of ${model.sizeMultiple}, which ${config.model} needs`);
    const stepsPerEpoch = Math.floor(args.epochItems / config.batchSize);
    if (stepsPerEpoch < 1) throw new SoftsegError(`batch size ${config.batchSize} is larger than the data set (${args.epochItems} images)`, { file: ds.root });
    const steps = config.steps ?? (config.epochs ?? 10) * stepsPerEpoch;
    const effective: TrainConfig & { augmentation: Augmentation | 'none' } = { ...config, steps, numClasses: ds.numClasses, ignoreIndex: ds.ignoreIndex, augmentation: resolveAugmentation(config) || 'none' };
    // Checked again now that the work is about to start (the folder may have changed meanwhile); --overwrite clears it here.
    const plan = await planRunDir(config.out, config);
    if (plan.mode === 'resume') {
      // A resumed run continues with the options it started with (the CLI takes them from config.json; a library
      // caller passes them): any that differ, resolved ones included, would make it another run.
      const recorded = await recordedRunOptions(config.out, args.schema);
      const differences = recorded ? resumeDifferences(runOptions(effective, args.schema), recorded, Object.keys(recorded)) : [];
      if (differences.length > 0) throw resumeMismatch(config.out, differences);
    }
    // The files trained on, recorded with config.json: a resume on changed data continues (a fixed file, an added
    // image), but it cannot equal the uninterrupted run, and says so.
    const data = await dataRecord(args.pool ? [ds, args.pool] : [ds]);
    if (plan.mode === 'resume') {
      const changes = await dataChanges(config.out, data);
      if (changes.length > 0) {
        env.onWarning?.(`the data changed since the run started or was last resumed (${changes.join('; ')}): the resumed run trains on them as they are now, so it will not equal an uninterrupted run`);
      }
    }
    // --init before the folder is cleared (an init that fails to load leaves an --overwrite'd run as it was); a
    // resumed run restores its checkpoint instead, so its init folder need not exist any more.
    const init = config.init && plan.mode !== 'resume' ? await loadInit(config.init, model, env) : undefined;
    await args.prepareModel?.(model, init);
    await mkdir(config.out, { recursive: true });
    // Marked as this process's before anything is cleared or written: a second process on the folder stops here.
    release = await lockRunDir(config.out);
    await clearRunDir(plan);
    // config.json describes the checkpoints beside it: written with this run's first checkpoint, before that is
    // published (a run killed between the two would have a checkpoint --resume cannot read the options of), so a
    // run that fails before one (bad options on --resume, a NaN at step 1) leaves the previous config.json as it was.
    let configWritten = false;
    const beforePublish = async () => {
      if (configWritten) return;
      await writeFileAtomic(join(config.out, 'config.json'), JSON.stringify({ ...effective, dataRecord: data }, null, 2));
      configWritten = true;
    };
    const metadata: SoftsegJson = {
      format: 'softseg-model',
      formatVersion: 1,
      architecture: config.model,
      modelOptions: { numClasses: ds.numClasses, width: config.width, aux: config.aux, upsampling: config.upsampling },
      classes: ds.classNames,
      numClasses: ds.numClasses,
      ignoreIndex: ds.ignoreIndex,
      palette: ds.palette ?? null,
      inputSize: [config.crop, config.crop] as [number, number],
      sizeMultiple: model.sizeMultiple,
      normalization: IMAGENET_NORMALIZATION,
      training: effective,
      backend: { name: env.backend.name, reason: env.backend.reason, threads: env.backend.threads },
      versions: { softseg: env.version, tfjs: tf.version.tfjs, node: process.version },
      ...args.extraMetadata,
    };
    const result = await train({
      runDir: config.out, model, objective: args.objective,
      makeSource: env.tapSource ? (startStep) => env.tapSource!(args.makeSource(startStep)) : args.makeSource,
      optimizer: { kind: config.optimizer, lr: config.lr, weightDecay: config.weightDecay, decayAll: config.weightDecayAll },
      steps, warmupSteps: config.warmupSteps, accumulate: config.accumulate,
      checkpointEvery: config.checkpointEvery, evalEvery: val ? config.evalEvery ?? Math.max(1, Math.floor(steps / 5)) : undefined,
      evaluate: val ? async (m) => scalarMetrics(await evaluateDataset(m, val, { normalize: IMAGENET_NORMALIZATION })) : undefined,
      resume: config.resume, metadata, onEvent: env.onEvent, signal: env.signal,
      hooks: args.hooks, beforePublish,
    });
    return { config: effective, result };
  } finally {
    model.dispose();
    await release?.();
  }
}

/** Layers that map features to classes: with another class count they start fresh on --init. */
const CLASSIFIERS = new Set(['logits', 'aux_logits']);

/**
 * distill and ssl leave the student's upsampling to the run when it is not given: --init's model's (its weights
 * were trained with it, and loadInit refuses another), else half-pixel, plain PyTorch's (see DISTILL_OPTIONS).
 */
export async function resolveStudentUpsampling(config: TrainConfig): Promise<void> {
  if (config.upsampling !== undefined) return;
  let fromInit: string | undefined;
  try {
    // a model saved before the option is aligned
    if (config.init) fromInit = (await readSoftsegJson(modelDirectory(resolve(config.init))))?.modelOptions?.upsampling ?? 'aligned';
  } catch {
    // an unreadable --init is named by loadInit, before any work
  }
  config.upsampling = fromInit === 'aligned' || fromInit === 'half-pixel' ? fromInit : 'half-pixel';
}

/**
 * Starts `student` from a trained model (--init: a run folder, its model/ or best/, or a model folder): every layer
 * is copied from the layer of the same name. Fine-tuning to another class set is allowed: the classifiers then
 * start fresh, as does an aux head the trained model lacks (each said through `env.onWarning`). Another
 * architecture or width is an error naming both models. Returns the model folder the weights came from.
 */
export async function loadInit(path: string, student: SegModel, env: Pick<RecipeEnv, 'onWarning'> = {}): Promise<string> {
  const init = await openTrainedModel(resolve(path));
  try {
    const a = init.model, o = student.options;
    const describe = (name: string, x: ResolvedOptions) => `${name} (width ${x.width}, ${x.upsampling === 'half-pixel' ? 'half-pixel upsampling, ' : ''}${x.aux ? 'with' : 'no'} aux head, ${x.numClasses} classes)`;
    const mismatch = (what: string) => new SoftsegError(`--init ${path}: its model is ${describe(a.name, a.options)}, this run trains ${describe(student.name, o)}${what}`, {
      file: init.dir, hint: 'pass the same --model, --width and --upsampling as the run you start from',
    });
    if (a.name !== student.name || a.options.width !== o.width || a.options.upsampling !== o.upsampling) throw mismatch('');
    const fresh: string[] = [];
    const copies: [tf.layers.Layer, tf.Tensor[]][] = [];
    for (const layer of student.model.layers) {
      if (layer.weights.length === 0) continue;
      const from = a.model.layers.find((l) => l.name === layer.name);
      const weights = from?.getWeights() ?? [];
      const same = weights.length === layer.weights.length && weights.every((w, i) => w.shape.join() === layer.weights[i]!.shape.join());
      if (same) copies.push([layer, weights]);
      else if (!from || CLASSIFIERS.has(layer.name)) fresh.push(layer.name);
      else throw mismatch(` (layer ${layer.name} differs)`);
    }
    for (const [layer, weights] of copies) layer.setWeights(weights);
    if (fresh.length > 0) {
      const why = [a.options.numClasses !== o.numClasses ? `its model has ${a.options.numClasses} classes, this run ${o.numClasses}` : '', o.aux && !a.options.aux ? 'its model has no aux head' : ''];
      env.onWarning?.(`--init ${path}: ${fresh.join(', ')} ${fresh.length === 1 ? 'starts' : 'start'} from random weights (${why.filter(Boolean).join('; ')}); every other layer starts from ${init.dir}`);
    }
    return init.dir;
  } finally {
    init.model.dispose();
  }
}

/** Opens the training and validation sets of a checked configuration (and the run folder's plan). */
export async function openRecipeData(config: TrainConfig, env: RecipeEnv): Promise<{ ds: Dataset; val: Dataset | null; warnings: string[] }> {
  // The run folder before any work: a non-empty one needs --resume or --overwrite.
  for (const w of (await planRunDir(config.out, config)).warnings) env.onWarning?.(w);
  const { ds, warnings, smallest } = await openValidated(config.data, config);
  const { crop, note } = defaultCrop(config.crop, smallest, sizeMultiple(config.model, { numClasses: ds.numClasses }));
  config.crop = crop;
  if (note) env.onWarning?.(note);
  // The validation set is scored with the training set's classes: its own dataset.json must not declare others.
  if (config.val && config.numClasses === undefined) {
    await checkDeclaredClasses(config.val, { numClasses: ds.numClasses, names: givenClassNames(ds.classNames) }, `the training set ${config.data}`);
  }
  const val = config.val ? await openValidated(config.val, { ...config, numClasses: config.numClasses ?? ds.numClasses }) : null;
  if (val) warnings.push(...val.warnings);
  for (const w of warnings) env.onWarning?.(w);
  return { ds, val: val?.ds ?? null, warnings };
}

type PreprocessingConfig = Partial<Record<keyof TeacherPreprocessingConfig, unknown>>;
const TEACHER_PREPROCESSING_KEYS = Object.keys(TEACHER_PREPROCESSING_OPTIONS) as (keyof TeacherPreprocessingConfig)[];

/**
 * Opens a recipe's teacher against its cache with the preprocessing the config gives (config files may hold
 * lists: mean: [0.5, 0.5, 0.5]); without any, the preprocessing recorded in the cache for this model is reused.
 */
export async function openRecipeTeacher(path: string, cache: TeacherCache, c: PreprocessingConfig, numClasses: number, onNote?: (line: string) => void): Promise<Teacher> {
  const given = Object.fromEntries(TEACHER_PREPROCESSING_KEYS.filter((k) => c[k] !== undefined && c[k] !== null).map((k) => [k, Array.isArray(c[k]) ? (c[k] as unknown[]).join(',') : String(c[k])]));
  const options = await teacherOptionsFromFlags(given, numClasses);
  const { teacher, note } = await openTeacherForCache(path, cache, options, Object.keys(given).length > 0);
  if (note) onNote?.(note);
  return teacher;
}


/** A fixed teacher over its cache, with the soft labels the loaders read (cache hits) or the teacher makes (misses). */
export interface TeacherWithLabels {
  teacher: Teacher;
  labels: TeacherLabels;
  /** What softseg.json records about it. */
  describe: Record<string, unknown>;
}

/**
 * Opens distill's or ssl's fixed teacher against its cache (registering it there) with its soft labels at the
 * config's temperature and top-k; with `noTeacher` a cache miss is an error instead of a teacher run.
 */
export async function openCachedTeacher(
  c: PreprocessingConfig & { teacher: string; cache: string; temperature: number; k?: number; noTeacher: boolean },
  numClasses: number,
  env: Pick<RecipeEnv, 'onWarning'> & { onMiss?: (path: string) => void },
): Promise<TeacherWithLabels> {
  await checkOutputFolder(c.cache, '--cache', 'the teacher outputs');
  const cache = openCache(c.cache);
  const teacher = await openRecipeTeacher(c.teacher, cache, c, numClasses, env.onWarning);
  try {
    await cache.registerTeacher(teacher.fingerprint, teacher.describe);
  } catch (e) {
    await teacher.dispose();
    throw e;
  }
  const labels = new TeacherLabels(cache, teacher.fingerprint, c.noTeacher ? null : teacher, numClasses, {
    temperature: c.temperature, k: c.k, noTeacher: c.noTeacher, onMiss: env.onMiss,
    onCorrupt: (e) => env.onWarning?.(`${e.message}; relabelling`),
  });
  return { teacher, labels, describe: { fingerprint: teacher.fingerprint, ...teacher.describe, cache: resolve(c.cache), temperature: c.temperature } };
}

/**
 * Joins a labeled and an unlabeled batch into one, as distill and ssl train on them: rows without masks carry
 * the ignore label, rows without teacher targets carry zero probabilities and a zero keep mask.
 */
export function concatBatches(a: HostBatch, b: HostBatch, ignoreIndex: number): HostBatch {
  const [h, w] = a.size;
  const plane = h * w;
  const C = (a.classes ?? b.classes)!;
  const images = new Float32Array((a.n + b.n) * plane * 3);
  images.set(a.images);
  images.set(b.images, a.images.length);
  const masks = new Int32Array((a.n + b.n) * plane).fill(ignoreIndex);
  if (a.masks) masks.set(a.masks);
  if (b.masks) masks.set(b.masks, a.n * plane);
  const teacherProb = new Float32Array((a.n + b.n) * plane * C);
  if (a.teacherProb) teacherProb.set(a.teacherProb);
  if (b.teacherProb) teacherProb.set(b.teacherProb, a.n * plane * C);
  const keep = new Float32Array((a.n + b.n) * plane);
  if (a.keep) keep.set(a.keep);
  if (b.keep) keep.set(b.keep, a.n * plane);
  return { images, masks, teacherProb, keep, classes: C, n: a.n + b.n, size: a.size };
}

