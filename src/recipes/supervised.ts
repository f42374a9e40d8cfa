/**
 * Supervised training (`softseg train`): a labeled folder, a zoo model, cross-entropy + JML (optionally with
 * uniform or boundary label smoothing), validation with the fine-grained metrics, all through the engine.
 */
import { resolveAugmentation, type AugmentationConfig } from './augmentation.js';
import type { AugmentPreset } from '../augment/augment.js';
import { usageError } from '../errors.js';
import { hardLabelObjective, smoothedLabelObjective, type LossWeights } from '../losses/objectives.js';
import type { ActiveClassesMode } from '../losses/jdt.js';
import type { BatchSource, TrainingResult } from '../engine/trainer.js';
import type { Objective } from '../engine/step.js';
import { checkOptions, defaultsOf } from './options.js';
import { MAX_CROP, TRAIN_OPTIONS } from './recipe-options.js';
import { launchTraining, loaderSource, openRecipeData, skipDuringRun, type RecipeEnv } from './run.js';

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
  /** Weight decay on every parameter (biases, batch-norm γ/β), not only on kernels. */
  weightDecayAll: boolean;
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
  /** How the model's bilinear upsampling samples (see ModelOptions.upsampling). */
  upsampling: 'aligned' | 'half-pixel';
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
  /** A trained run (or model folder) whose weights start this run instead of random ones (fine-tuning); see {@link loadInit}. */
  init?: string;
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

export interface SupervisedRun {
  config: TrainConfig;
  result: TrainingResult;
  warnings: string[];
}

/** Everything `softseg train` does, as a library call. */
export async function trainSupervised(config: TrainConfig, env: RecipeEnv): Promise<SupervisedRun> {
  checkConfig(config);
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
    config, ds, val, epochItems: ds.items.length, objective: supervisedObjective(effective, ds.ignoreIndex), makeSource, env, schema: TRAIN_OPTIONS,
  });
  return { config: saved, result, warnings };
}
