/**
 * Knowledge distillation (`softseg distill`): the student learns from ground truth (CE + JML)
 * and from the teacher's soft labels (temperature KL + JML on the teacher's active classes), read from the
 * cache with the same augmentation as the image. Unlabeled folders add images that get only the teacher terms.
 */
import type { Loader } from '../data/loader.js';
import { usageError } from '../errors.js';
import { kdObjective, type KdObjectiveOptions } from '../losses/objectives.js';
import type { BatchSource, HostBatch } from '../engine/trainer.js';
import type { Objective } from '../engine/step.js';
import { checkTrainCombinations, lossWeights, type TrainConfig } from './supervised.js';
import { concatBatches, launchTraining, loaderSource, openCachedTeacher, openRecipeData, openUnlabeledPool, resolveStudentUpsampling, skipDuringRun, type RecipeEnv } from './run.js';
import { checkOptions, defaultsOf } from './options.js';
import { DISTILL_OPTIONS } from './recipe-options.js';

export interface DistillConfig extends TrainConfig, TeacherPreprocessingConfig {
  teacher: string;
  cache: string;
  unlabeled: string[];
  temperature: number;
  kdLoss: 'kl+jml' | 'kl' | 'jml';
  labelWeight: number;
  teacherWeight: number;
  /** Active classes of the JML teacher term: all, or those whose teacher probability exceeds `classThreshold`. */
  teacherClasses: 'all' | 'present';
  classThreshold: number;
  /** Share of each batch drawn from the unlabeled folders (when given). */
  unlabeledRatio: number;
  /** A cache miss is an error instead of running the teacher on the fly. */
  noTeacher: boolean;
  /** Top-k classes kept per pixel when a miss is labelled on the fly. */
  k?: number;
}

/** A teacher's preprocessing as `softseg label` takes it (strings as the flags; omitted: the cache's record, else the model's metadata). */
export interface TeacherPreprocessingConfig {
  size?: string;
  layout?: string;
  mean?: string;
  std?: string;
  tta?: string;
  outputs?: string;
}

export const DISTILL_DEFAULTS: DistillConfig = defaultsOf(DISTILL_OPTIONS);

/** The KD objective for a config; labeled and unlabeled images share one batch. */
export function distillObjective(c: DistillConfig, ignoreIndex: number): Objective {
  const w = lossWeights(c, ignoreIndex);
  const options: KdObjectiveOptions = {
    ...w,
    jdt: { ...w.jdt, threshold: c.classThreshold },
    temperature: c.temperature,
    labelWeight: c.labelWeight,
    teacherWeight: c.teacherWeight,
    teacherClasses: c.teacherClasses === 'all' ? 'ALL' : 'PRESENT',
    teacherTerms: c.kdLoss,
  };
  return (out, batch) => kdObjective(out, { label: batch.labels, teacherProb: batch.teacherProb!, teacherKeep: batch.keep }, options);
}

/**
 * Teacher keep mask: pixels inside the crop, and on labeled images not ignored by the ground truth (the
 * teacher terms are restricted to non-ignored GT pixels, method.md §5.1).
 */
function teacherKeep(b: { keep?: Uint8Array; masks?: Int32Array; n: number; size: [number, number] }, ignoreIndex: number): Float32Array {
  const out = new Float32Array(b.n * b.size[0] * b.size[1]);
  for (let i = 0; i < out.length; i++) out[i] = b.keep![i]! && (!b.masks || b.masks[i] !== ignoreIndex) ? 1 : 0;
  return out;
}

/** The distillation options and the training options they build on, before any work: usage errors naming the flag. */
export function checkDistillConfig(config: DistillConfig): void {
  if (!config.teacher) throw usageError('--teacher is required (a softseg run, a TF.js model.json or an .onnx file)');
  if (!config.cache) throw usageError('--cache is required (the folder of cached teacher outputs, shared with `softseg label`)');
  checkOptions(DISTILL_OPTIONS, config);
  if (config.labelWeight + config.teacherWeight === 0) throw usageError('--label-weight and --teacher-weight are both 0: the loss would be 0');
  checkTrainCombinations(config);
}

export async function trainDistill(config: DistillConfig, env: RecipeEnv & { onMiss?: (path: string) => void }): Promise<{ config: DistillConfig; result: Awaited<ReturnType<typeof launchTraining>>['result']; teacher: Record<string, unknown>; misses: number }> {
  checkDistillConfig(config);
  await resolveStudentUpsampling(config);
  const { ds, val } = await openRecipeData(config, env);
  // Unlabeled folders merged into one item list, validated like the labeled set.
  const pool = await openUnlabeledPool(config.unlabeled, config, ds, env);
  const { teacher, labels, describe } = await openCachedTeacher(config, ds.numClasses, env);
  try {
    const softCache = labels.loaderSource();
    const nUnlabeled = pool ? Math.round(config.batchSize * config.unlabeledRatio) : 0;
    const nLabeled = config.batchSize - nUnlabeled;
    if (nLabeled < 1) throw usageError(`--unlabeled-ratio ${config.unlabeledRatio} leaves no labeled image in a batch of ${config.batchSize}`);
    const makeSource = (startStep: number): BatchSource => {
      const loaders: Loader[] = [loaderSource(ds, { ...config, batchSize: nLabeled }, startStep, { softCache, onSkip: skipDuringRun(env) })];
      if (pool && nUnlabeled > 0) loaders.push(loaderSource(pool, { ...config, batchSize: nUnlabeled, seed: config.seed + 1 }, startStep, { softCache, onSkip: skipDuringRun(env) }));
      return {
        next: async () => {
          const batches = await Promise.all(loaders.map((l) => l.next()));
          const parts = batches.map((b): HostBatch => ({
            images: b.images, masks: b.masks, teacherProb: b.teacherProb, classes: b.classes,
            keep: teacherKeep(b, ds.ignoreIndex), n: b.n, size: b.size,
          }));
          return parts.length === 1 ? parts[0]! : concatBatches(parts[0]!, parts[1]!, ds.ignoreIndex);
        },
        close: async () => {
          await Promise.all(loaders.map((l) => l.close()));
        },
        waitedMs: () => Math.max(...loaders.map((l) => l.stats().waitMs)),
      };
    };
    const teacherMeta = { ...describe, kdLoss: config.kdLoss };
    const { config: saved, result } = await launchTraining({
      config, ds, val, pool, epochItems: ds.items.length * (config.batchSize / nLabeled),
      objective: distillObjective(config, ds.ignoreIndex), makeSource, env, schema: DISTILL_OPTIONS,
      extraMetadata: { recipe: 'distill', teacher: teacherMeta },
    });
    return { config: { ...config, ...saved }, result, teacher: teacherMeta, misses: labels.misses };
  } finally {
    await teacher.dispose();
  }
}

