/**
 * Semi-supervised learning (`softseg ssl`, method.md §6): the training engine with one more batch source and
 * objective. Each batch holds labeled images (the hard-label objective of `train`) and unlabeled images whose
 * targets are a teacher's pseudo-labels: soft p_t = softmax(t/T) with 0.25·KL_T + 0.75·JML on the teacher's
 * active classes (the default), or argmax labels where the teacher is confident (the classic baseline).
 *
 * The teacher is either fixed (a trained model through the cache: the cached probabilities are of the
 * un-augmented image, i.e. the weak view) or a mean teacher (EMA of the student's weights, predicting on the
 * weak view of the same crop at step time). The student sees a strong view: strong photometric jitter with the
 * same geometry, and CutMix between unlabeled images with the pseudo-labels mixed the same way. A collapse
 * guard stops runs whose student falls into predicting one class, or whose val mIoU falls far below its best.
 */
import { existsSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import type { SegOutputs } from '../models/base.js';
import { AUGMENT_PRESETS } from '../augment/augment.js';
import type { PhotometricOptions } from '../augment/photometric.js';
import { defaultWorkerThreads } from '../worker-pool.js';
import { createLoader, type Loader, type LoaderOptions } from '../data/loader.js';
import { randomFor } from '../data/seed.js';
import { SoftsegError, usageError } from '../errors.js';
import { unlabeledLoss, type UnlabeledLossOptions } from '../losses/objectives.js';
import { cutmix } from '../augment/cutmix.js';
import type { BatchSource, HostBatch, TrainingHook } from '../engine/trainer.js';
import { MeanTeacher } from '../engine/ema.js';
import type { Objective, TensorBatch } from '../engine/step.js';
import type { TeacherPreprocessingConfig } from './distill.js';
import { checkOptions, defaultsOf } from './options.js';
import { SSL_OPTIONS } from './recipe-options.js';
import { resolveAugmentation, resolveBlur, type AugmentationConfig } from './augmentation.js';
import { checkTrainCombinations, lossWeights, supervisedObjective, type TrainConfig } from './supervised.js';
import { concatBatches, launchTraining, loaderSource, openCachedTeacher, openRecipeData, openUnlabeledPool, resolveStudentUpsampling, skipDuringRun, type TeacherWithLabels, type RecipeEnv } from './run.js';

/** The fixed teacher's preprocessing keys are {@link TeacherPreprocessingConfig}'s. */
export interface SslConfig extends TrainConfig, TeacherPreprocessingConfig {
  /** Unlabeled folders (at least one). */
  unlabeled: string[];
  /** Fixed teacher: a softseg run, a TF.js model.json folder or an .onnx file (with `cache`). */
  teacher?: string;
  cache?: string;
  /** Mean teacher: EMA momentum m (θ_t ← m·θ_t + (1 − m)·θ_s after every step); instead of teacher + cache. */
  ema?: number;
  /** Soft pseudo-labels (KL_T + JML) or hard argmax ones where confidence ≥ confidenceThreshold. */
  pseudo: 'soft' | 'hard';
  /** Confidence threshold τ: hard pseudo-labels default 0.95; with soft ones an optional mask (off unless given). */
  confidenceThreshold?: number;
  /** Active classes of the soft JML term: those the teacher gives > classThreshold somewhere in the batch, or all. */
  teacherClasses: 'present' | 'all';
  classThreshold: number;
  /** Pseudo-label temperature T: p_t = softmax(t/T), KL scaled by T². */
  temperature: number;
  /** λ_u at full strength. */
  unlabeledWeight: number;
  /** Steps of supervised-only training before λ_u ramps in linearly over as many steps (0: full weight at once). */
  unlabeledWarmup: number;
  /** Share of each batch drawn from the unlabeled folders. */
  unlabeledRatio: number;
  /** Photometric preset of the student's view of unlabeled images (geometry is shared with the teacher's view). */
  strongAug: 'strong' | 'default';
  /** Strong-view values that override the `strongAug` preset (undefined: the preset's value). */
  strongBrightness?: number;
  strongContrast?: number;
  strongSaturation?: number;
  strongGrayscale?: number;
  /** Probability of a Gaussian blur (σ 0.1–2 px) in the strong view. */
  strongBlur?: number;
  /** Probability of CutMix per unlabeled image (a box from another unlabeled image of the batch). */
  cutmix: number;
  /** Collapse guard (mean teacher): the dominant class's share of the student's predicted unlabeled pixels that counts as collapse. */
  collapseShare: number;
  /** Consecutive collapsed checks (log windows or evaluations) before the run stops. */
  collapsePatience: number;
  /** A cache miss is an error instead of running the teacher. */
  noTeacher: boolean;
  /** Top-k classes kept per pixel when a miss is labelled on the fly. */
  k?: number;
}

export const SSL_DEFAULTS: SslConfig = defaultsOf(SSL_OPTIONS);

/** Val mIoU (points) below its best that counts as a collapse check. */
export const COLLAPSE_MIOU_DROP = 15;

/** λ_u at a step: 0 during the warm-up, then a linear ramp over as many steps, then `weight`. */
export function unlabeledWeightAt(step: number, weight: number, warmup: number): number {
  if (warmup <= 0) return weight;
  if (step < warmup) return 0;
  return weight * Math.min(1, (step - warmup) / warmup);
}

/** The confidence threshold in effect: hard pseudo-labels default to 0.95; soft ones use none unless given. */
export function effectiveThreshold(c: Pick<SslConfig, 'pseudo' | 'confidenceThreshold'>): number | null {
  return c.confidenceThreshold ?? (c.pseudo === 'hard' ? 0.95 : null);
}

/**
 * The ssl objective: L = L_labeled + λ_u(step)·L_u on one batch. Labeled rows carry ground truth (unlabeled
 * rows the ignore label) for `train`'s objective; unlabeled rows carry the pseudo-labels in `teacherProb` and a
 * `keep` mask (labeled rows 0). Every term is in `parts` (the labeled ones under train's names, then u_*).
 */
export function sslObjective(c: SslConfig, ignoreIndex: number): Objective {
  const labeled = supervisedObjective(c, ignoreIndex);
  const weights = lossWeights(c, ignoreIndex);
  const o: UnlabeledLossOptions = {
    pseudo: c.pseudo, threshold: effectiveThreshold(c), temperature: c.temperature, teacherClasses: c.teacherClasses,
    classThreshold: c.classThreshold, ignoreIndex,
  };
  return (out: SegOutputs, batch: TensorBatch) => {
    if (!batch.teacherProb || !batch.keep) throw new SoftsegError('ssl batches need teacherProb and keep (pseudo-labels of the unlabeled images)');
    const lambda = unlabeledWeightAt(batch.step ?? 0, c.unlabeledWeight, c.unlabeledWarmup);
    return tf.tidy(() => {
      const l = labeled(out, batch);
      const u = unlabeledLoss(out, batch.teacherProb!, batch.keep!, weights, o, lambda > 0);
      const parts: Record<string, tf.Scalar> = { ...l.parts, ...u.parts, u_weight: tf.scalar(lambda) };
      return { total: tf.add(l.total, tf.mul(lambda, u.total)) as tf.Scalar, parts };
    });
  };
}

/**
 * Watches a run for collapse: (a) one class taking more than `share` of the student's predicted unlabeled
 * pixels (the step events' `u_dominant_share`, once λ_u > 0), or (b) val mIoU more than 15 points below its
 * best. The first bad check warns; `patience` consecutive bad checks of one kind stop the run.
 */
export interface CollapseGuardState {
  shareBad: number;
  evalBad: number;
  best: number | null;
  warned: boolean;
}

export class CollapseGuard implements TrainingHook {
  reason: string | null = null;
  private shareBad = 0;
  private evalBad = 0;
  private best: number | null = null;
  private warned = false;

  /**
   * `shareCheck` (default true) enables the one-class check. It suits a mean teacher, which collapses together
   * with the student; a student trained from scratch against a fixed teacher passes through an "all
   * background" phase on background-heavy data, so with a fixed teacher only the val mIoU check applies.
   */
  constructor(private readonly o: { share: number; patience: number; onWarning?: (w: string) => void; onStop?: (reason: string) => void; drop?: number; shareCheck?: boolean }) {}

  private bad(kind: 'share' | 'eval', message: string): void {
    const count = kind === 'share' ? ++this.shareBad : ++this.evalBad;
    if (count >= this.o.patience) {
      if (this.reason === null) {
        this.reason = `${message} for ${count} consecutive check(s)`;
        this.o.onStop?.(this.reason);
      }
    } else if (!this.warned) {
      this.warned = true;
      this.o.onWarning?.(`possible collapse: ${message}; the run stops if this persists for ${this.o.patience} checks`);
    }
  }

  onStep(step: number, parts: Record<string, number>): void {
    const share = parts.u_dominant_share, weight = parts.u_weight ?? 0;
    if (share === undefined || !(weight > 0) || this.o.shareCheck === false) return;
    if (share > this.o.share) this.bad('share', `one class takes ${(100 * share).toFixed(1)}% of the student's predicted unlabeled pixels (> ${(100 * this.o.share).toFixed(0)}%, step ${step})`);
    else this.shareBad = 0;
  }

  /** As an engine hook: each logged window of steps is a check, each evaluation too, and a collapse stops the run. */
  onLog(step: number, parts: Record<string, number>): void {
    this.onStep(step, parts);
  }

  stopReason(): string | null {
    return this.reason;
  }

  async save(dir: string): Promise<void> {
    await writeFile(join(dir, 'collapse-guard.json'), JSON.stringify(this.state()));
  }

  async restore(dir: string): Promise<void> {
    const file = join(dir, 'collapse-guard.json');
    if (existsSync(file)) this.restoreState(JSON.parse(await readFile(file, 'utf8')) as CollapseGuardState);
  }

  /** What a resumed run needs to continue the checks where they were (saved with each checkpoint). */
  state(): CollapseGuardState {
    return { shareBad: this.shareBad, evalBad: this.evalBad, best: this.best, warned: this.warned };
  }

  restoreState(s: CollapseGuardState): void {
    this.shareBad = s.shareBad;
    this.evalBad = s.evalBad;
    this.best = s.best;
    this.warned = s.warned;
  }

  onEval(step: number, metrics: Record<string, number>): void {
    const v = metrics.mIoUD;
    if (v === undefined || !Number.isFinite(v)) return;
    const drop = this.o.drop ?? COLLAPSE_MIOU_DROP;
    if (this.best !== null && v < this.best - drop) {
      this.bad('eval', `val mIoU ${v.toFixed(2)} at step ${step} is more than ${drop} points below its best ${this.best.toFixed(2)}`);
    } else this.evalBad = 0;
    if (this.best === null || v > this.best) this.best = v;
  }
}

/**
 * Options of the unlabeled loader: the run's geometry without photometric jitter (the weak view) + the strong
 * view: the `strongAug` preset's photometric values, each overridden by its `strong*` option when given.
 */
export function unlabeledViews(c: Pick<SslConfig, 'strongAug' | 'strongBrightness' | 'strongContrast' | 'strongSaturation' | 'strongGrayscale' | 'strongBlur'> & AugmentationConfig): { augment: { scale: [number, number] | false; flip: number } | false; strongView: PhotometricOptions } {
  const geometry = resolveAugmentation(c) || { scale: false as const, flip: 0 };
  const scale: [number, number] | false = geometry.scale ? [geometry.scale[0], geometry.scale[1]] : false;
  const p = AUGMENT_PRESETS[c.strongAug] as PhotometricOptions;
  const strongView: PhotometricOptions = {
    brightness: c.strongBrightness ?? p.brightness ?? 0,
    contrast: c.strongContrast ?? p.contrast ?? 0,
    saturation: c.strongSaturation ?? p.saturation ?? 0,
    grayscale: c.strongGrayscale ?? p.grayscale ?? 0,
    blur: resolveBlur(p.blur, c.strongBlur),
  };
  return { augment: { scale, flip: geometry.flip ?? 0 }, strongView };
}

/** The ssl options and the training options they build on, before any work: usage errors naming the flag. */
export function checkSslConfig(c: SslConfig): void {
  checkOptions(SSL_OPTIONS, c);
  if (c.unlabeled.length === 0) throw usageError('ssl needs at least one --unlabeled folder of images');
  if (c.teacher && c.ema !== undefined) throw usageError('--teacher (a fixed teacher) and --ema (a mean teacher) are alternatives; choose one');
  if (!c.teacher && c.ema === undefined) {
    throw usageError('ssl needs a teacher: --teacher T --cache CACHE (a fixed trained teacher; recommended) or --ema M --init RUN_DIR (a mean teacher)');
  }
  if (c.teacher && !c.cache) throw usageError('--teacher needs --cache (the folder of cached teacher outputs, shared with `softseg label`)');
  if (c.ema !== undefined) {
    if (c.cache) throw usageError('--cache is for a fixed --teacher; a mean teacher (--ema) predicts at step time and caches nothing');
    if (!c.init && !(c.unlabeledWarmup > 0)) {
      throw usageError('--ema needs a supervised start: --init RUN_DIR (a `softseg train` run of the same model) or --unlabeled-warmup STEPS', {
        hint: 'a mean teacher that starts from random weights gives pseudo-labels that the student copies and reinforces until it predicts one class everywhere',
      });
    }
  }
  checkTrainCombinations(c);
}

export interface SslRun {
  config: SslConfig;
  result: Awaited<ReturnType<typeof launchTraining>>['result'];
  teacher: Record<string, unknown>;
  misses: number;
}

/** Everything `softseg ssl` does, as a library call. */
export async function trainSsl(config: SslConfig, env: RecipeEnv & { onMiss?: (path: string) => void }): Promise<SslRun> {
  checkSslConfig(config);
  await resolveStudentUpsampling(config);
  const { ds, val } = await openRecipeData(config, env);
  const ignoreIndex = ds.ignoreIndex;
  const C = ds.numClasses;
  const pool = (await openUnlabeledPool(config.unlabeled, config, { numClasses: C, ignoreIndex }, env))!;
  const nU = Math.round(config.batchSize * config.unlabeledRatio);
  const nL = config.batchSize - nU;
  if (nU < 1 || nL < 1) throw usageError(`--unlabeled-ratio ${config.unlabeledRatio} with --batch-size ${config.batchSize} leaves ${nL} labeled and ${nU} unlabeled image(s) per batch; each needs at least one`);
  if (nU > pool.items.length) throw usageError(`${nU} unlabeled images per batch, but the unlabeled folders hold ${pool.items.length}`, { hint: 'lower --unlabeled-ratio or --batch-size' });

  let fixed: TeacherWithLabels | null = null;
  /** The mean teacher (--ema) is an engine hook: updated after each step, saved with each checkpoint (engine/ema.ts). */
  let mean: MeanTeacher | null = null;
  const threshold = effectiveThreshold(config);
  try {
    let teacherMeta: Record<string, unknown>;
    if (config.teacher) {
      fixed = await openCachedTeacher({ ...config, teacher: config.teacher, cache: config.cache! }, C, env);
      const teacher = fixed.teacher;
      teacherMeta = { ...teacher.describe, format: teacher.describe.kind, kind: 'fixed', fingerprint: teacher.fingerprint, cache: resolve(config.cache!), temperature: config.temperature };
    } else {
      teacherMeta = { kind: 'ema', momentum: config.ema, init: config.init ? resolve(config.init) : null, warmup: config.unlabeledWarmup, temperature: config.temperature };
    }
    const views = unlabeledViews(config);
    const [h, w] = [config.crop, config.crop];
    const plane = h * w;

    const makeSource = (startStep: number): BatchSource => {
      const lab = loaderSource(ds, { ...config, batchSize: nL }, startStep, { onSkip: skipDuringRun(env) });
      const options: LoaderOptions = {
        batchSize: nU, crop: config.crop, seed: config.seed + 1, startStep, augment: views.augment, strongView: views.strongView, cacheImages: config.cacheImages,
        workers: defaultWorkerThreads(), skipBad: config.skipBad, onSkip: skipDuringRun(env),
      };
      if (fixed) options.softCache = fixed.labels.loaderSource();
      else options.keepMask = true;
      const unl: Loader = createLoader(pool, options);
      let step = startStep;
      let waited = 0;
      return {
        next: async () => {
          const t0 = performance.now();
          const s = step++;
          const [l, u] = await Promise.all([lab.next(), unl.next()]);
          waited += performance.now() - t0;
          const uImages = u.strongImages!;
          const uKeep = u.keep!;
          let uProb: Float32Array;
          if (mean) {
            const predicted = await mean.predict(s, u.images, nU, [h, w], config.temperature);
            if (predicted) for (let p = 0; p < uKeep.length; p++) if (!uKeep[p]) predicted.fill(0, p * C, (p + 1) * C);
            uProb = predicted ?? new Float32Array(nU * plane * C);
          } else uProb = u.teacherProb!;
          if (config.cutmix > 0) {
            cutmix([{ data: uImages, channels: 3 }, { data: uProb, channels: C }, { data: uKeep, channels: 1 }], nU, [h, w], config.cutmix, randomFor(config.seed, 0xc075, s));
          }
          // Labeled rows: ground truth, no pseudo-labels; unlabeled rows: the student's strong view and the teacher's targets.
          const labeled: HostBatch = { images: l.images, masks: l.masks, n: nL, size: [h, w] };
          const unlabeled: HostBatch = { images: uImages, teacherProb: uProb, keep: uKeep, classes: C, n: nU, size: [h, w] };
          return concatBatches(labeled, unlabeled, ignoreIndex);
        },
        close: async () => {
          await Promise.all([lab.close(), unl.close()]);
        },
        waitedMs: () => waited,
      };
    };

    // The collapse guard watches the step windows and evaluations, and stops the run through the engine.
    const guard = new CollapseGuard({ share: config.collapseShare, patience: config.collapsePatience, onWarning: env.onWarning, shareCheck: config.ema !== undefined });
    const sslMeta = {
      pseudo: config.pseudo, confidenceThreshold: threshold, teacherClasses: config.teacherClasses, classThreshold: config.classThreshold,
      unlabeledWeight: config.unlabeledWeight, unlabeledWarmup: config.unlabeledWarmup, unlabeledRatio: config.unlabeledRatio,
      strongAug: config.strongAug, strongView: views.strongView, cutmix: config.cutmix, unlabeled: config.unlabeled.map((d) => resolve(d)),
    };
    const hooks: TrainingHook[] = [guard];
    const launched = await launchTraining({
      config, ds, val, pool, epochItems: ds.items.length * (config.batchSize / nL),
      objective: sslObjective(config, ignoreIndex), makeSource, env, schema: SSL_OPTIONS, hooks,
      extraMetadata: { recipe: 'ssl', teacher: teacherMeta, ssl: sslMeta },
      prepareModel: async (model, init) => {
        if (init) teacherMeta.init = init;
        if (config.ema !== undefined) {
          mean = new MeanTeacher(model, config.ema, { warmup: config.unlabeledWarmup, finalDir: join(config.out, 'ema-teacher'), onWarning: env.onWarning });
          hooks.push(mean);
        }
      },
    });
    if (guard.reason !== null) {
      throw new SoftsegError(`ssl stopped at step ${launched.result.steps}: the student collapsed — ${guard.reason}; the last checkpoint is in ${join(config.out, 'checkpoints')}`, {
        hint: config.ema !== undefined
          ? 'start the mean teacher from a better supervised run (--init), lengthen --unlabeled-warmup, lower --unlabeled-weight, or use a fixed teacher (--teacher + --cache)'
          : 'check the teacher (does it predict one class everywhere?), lower --unlabeled-weight, or raise --collapse-share if one class really covers almost every pixel',
      });
    }
    return { config: { ...config, ...launched.config }, result: launched.result, teacher: teacherMeta, misses: fixed?.labels.misses ?? 0 };
  } finally {
    (mean as MeanTeacher | null)?.dispose();
    await (fixed as TeacherWithLabels | null)?.teacher.dispose();
  }
}
