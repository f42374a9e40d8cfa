/**
 * The flags `train`, `distill` and `ssl` share (one definition, so the three commands teach the same
 * vocabulary), and turning flags + an optional --config file into a run configuration.
 */
import { Flags, type Command } from '@oclif/core';
import { SoftsegError, usageError } from '../errors.js';
import { failOneLine } from './base.js';

export const trainingFlags = {
  config: Flags.string({ description: 'JSON or YAML file with the same keys as these flags (flags win).' }),
  data: Flags.string({ description: 'Training data set folder (images/ + masks/).' }),
  val: Flags.string({ description: 'Validation data set folder, evaluated periodically; picks best/.' }),
  model: Flags.string({ description: 'Architecture (see `softseg models`).', default: 'unet-lite' }),
  out: Flags.string({ description: 'Run directory.' }),
  epochs: Flags.integer({ description: 'Passes over the data (default 10 when --steps is not given).', min: 1 }),
  steps: Flags.integer({ description: 'Optimizer steps (instead of --epochs).', min: 1 }),
  'batch-size': Flags.integer({ description: 'Images per step.', default: 8, min: 1 }),
  crop: Flags.integer({ description: 'Training crop size (square; a multiple of the model\'s size multiple). Default 128, or the images\' size when they are smaller.', min: 8, helpGroup: 'AUGMENTATION' }),
  lr: Flags.string({ description: 'Peak learning rate.', default: '1e-3' }),
  optimizer: Flags.string({ description: 'Optimizer.', options: ['adamw', 'sgd'], default: 'adamw' }),
  'weight-decay': Flags.string({ description: 'Weight decay (decoupled for AdamW).', default: '1e-4' }),
  loss: Flags.string({ description: 'Loss: cross-entropy, Jaccard Metric Loss, or both.', options: ['ce', 'jml', 'ce+jml'], default: 'ce+jml' }),
  'ce-weight': Flags.string({ description: 'Weight of the CE term with --loss ce+jml.', default: '0.25' }),
  'jml-weight': Flags.string({ description: 'Weight of the JML term with --loss ce+jml.', default: '0.75' }),
  'jml-reduction': Flags.string({ description: 'JML averaged per batch (aligns with dataset mIoU) or per image and class (mIoU^I/mIoU^C).', options: ['batch', 'image-class'], default: 'batch' }),
  'active-classes': Flags.string({ description: 'Classes the JML term averages over.', options: ['present', 'all'], default: 'present' }),
  'label-smoothing': Flags.string({ description: 'Uniform label smoothing ε (0 = off).', default: '0' }),
  bls: Flags.boolean({ description: 'Boundary label smoothing: smooth labels only near class boundaries.', default: false }),
  'bls-kernel': Flags.integer({ description: 'BLS window (odd).', default: 3 }),
  'bls-epsilon': Flags.string({ description: 'BLS ε on boundary pixels.', default: '0.5' }),
  width: Flags.string({ description: 'Width multiplier of the model.', default: '1' }),
  aux: Flags.boolean({ description: 'Add an auxiliary head (main + aux heads, as the method trains); predictions use the main head.', default: false }),
  'num-classes': Flags.integer({ description: 'Number of classes (overrides dataset.json).', min: 1 }),
  'ignore-index': Flags.integer({ description: 'Mask value to ignore (default 255 or dataset.json).' }),
  accumulate: Flags.integer({ description: 'Gradient accumulation: split each batch into K micro-batches (saves memory).', default: 1, min: 1 }),
  'warmup-steps': Flags.integer({ description: 'Linear warm-up steps (default 5% of the run).', min: 0 }),
  'eval-every': Flags.integer({ description: 'Validate every N steps (default: 5 times per run).', min: 1 }),
  'checkpoint-every': Flags.integer({ description: 'Checkpoint every N steps (default: 10 times per run).', min: 1 }),
  augment: Flags.string({ description: 'Augmentation preset, a shorthand the flags below override: default = scale 0.75,1.25, flip 0.5; strong = scale 0.5,2, flip 0.5, jitter 0.5, grayscale 0.2, blur 0.5; none = no augmentation.', options: ['default', 'strong', 'none'], default: 'default', helpGroup: 'AUGMENTATION' }),
  scale: Flags.string({ description: 'Random scale range before the crop, LO,HI (e.g. 0.75,1.25), or none.', helpGroup: 'AUGMENTATION' }),
  flip: Flags.string({ description: 'Probability of a horizontal flip.', helpGroup: 'AUGMENTATION' }),
  brightness: Flags.string({ description: 'Brightness jitter: factor in [1 − b, 1 + b].', helpGroup: 'AUGMENTATION' }),
  contrast: Flags.string({ description: 'Contrast jitter: factor in [1 − c, 1 + c].', helpGroup: 'AUGMENTATION' }),
  saturation: Flags.string({ description: 'Saturation jitter: factor in [1 − s, 1 + s].', helpGroup: 'AUGMENTATION' }),
  grayscale: Flags.string({ description: 'Probability of turning the image gray.', helpGroup: 'AUGMENTATION' }),
  blur: Flags.string({ description: 'Probability of a Gaussian blur (σ 0.1–2 px).', helpGroup: 'AUGMENTATION' }),
  seed: Flags.integer({ description: 'Seed for initialisation, shuffling and augmentation.', default: 0 }),
  'skip-bad': Flags.boolean({ description: 'Skip unreadable or inconsistent items (with a count and a list), before and during the run, instead of stopping.', default: false }),
  'cache-images': Flags.boolean({ description: 'Keep decoded images in memory (small data sets).', default: false }),
  resume: Flags.boolean({ description: 'Continue the run in --out from its last checkpoint (an empty or missing --out starts a new run).', default: false, exclusive: ['overwrite'] }),
  overwrite: Flags.boolean({ description: 'Replace the previous run in --out (its model, checkpoints and metrics are deleted first). Without --resume or --overwrite a non-empty --out is refused.', default: false, exclusive: ['resume'] }),
};

/** Flags given as strings because they are real numbers (oclif has integer flags only). */
export const NUMERIC_FLAGS = ['flip', 'brightness', 'contrast', 'saturation', 'grayscale', 'blur', 'lr', 'weight-decay', 'ce-weight', 'jml-weight', 'label-smoothing', 'bls-epsilon', 'width', 'temperature', 'label-weight', 'teacher-weight', 'threshold', 'unlabeled-ratio', 'ema', 'unlabeled-weight', 'collapse-share', 'cutmix', 'class-threshold'];

/**
 * Defaults < --config file < flags typed on the command line; numbers parsed, unknown config keys refused.
 * `argv` tells which flags the user typed (oclif fills in defaults, so presence is what counts). `check`
 * (the recipe's option checks) runs on the result, so a bad value from the file is named with the file and key.
 */
export async function resolveRunConfig<T extends object>(command: Command, argv: string[], flags: Record<string, unknown>, defaults: T, keys: readonly string[], check?: (config: T) => void): Promise<T> {
  const { readConfigFile, mergeConfig } = await import('../recipes/config.js');
  const given = new Set(argv.filter((a) => a.startsWith('--')).map((a) => a.slice(2).split('=')[0]!));
  const values: Record<string, unknown> = { ...flags };
  for (const k of NUMERIC_FLAGS) {
  if (values[k] === undefined) continue;
  const v = Number(values[k]);
  if (!Number.isFinite(v)) failOneLine(command, `--${k} must be a number, got ${String(values[k])}`, 2);
  values[k] = v;
  }
  const configPath = flags.config as string | undefined;
  for (const k of ['config', 'backend', 'threads', 'json']) delete values[k];
  const file = configPath ? await readConfigFile(configPath) : {};
  const config = mergeConfig(defaults, file, values, given, keys, configPath);
  try {
    check?.(config);
  } catch (e) {
    throw configFileError(e, file, given, configPath);
  }
  return config;
}

/** A usage error about `--flag` whose value came from the config file: the same message, naming the file and key. */
function configFileError(e: unknown, file: Record<string, unknown>, given: Set<string>, configPath: string | undefined): unknown {
  const flag = e instanceof SoftsegError && e.exitCode === 2 ? /^--([a-z][a-z-]*)\b/.exec(e.message)?.[1] : undefined;
  if (!flag || !configPath || given.has(flag)) return e;
  const key = flag.replace(/-([a-z])/g, (_, c: string) => c.toUpperCase());
  if (!(key in file)) return e;
  return usageError(`${key}${(e as SoftsegError).message.slice(flag.length + 2)}`, { file: configPath, hint: (e as SoftsegError).hint });
}

/**
 * Runs a recipe with what every training command needs: the backend line, a progress bar or log lines,
 * Ctrl-C / SIGTERM turned into "checkpoint and stop" (then exit code 130 / 143), warnings on stderr.
 */
export async function runTrainingCommand<R>(
  command: Command & { startBackend(flags: { backend?: string; threads?: number }): Promise<import('../backends/select.js').BackendInfo> },
  flags: { backend?: string; threads?: number },
  recipe: (env: import('../recipes/supervised.js').RecipeEnv) => Promise<R>,
): Promise<R> {
  const { TrainingProgress } = await import('./progress.js');
  const backend = await command.startBackend(flags);
  const progress = new TrainingProgress((line) => process.stderr.write(`${line}\n`));
  const ctrl = new AbortController();
  let signal: 'SIGINT' | 'SIGTERM' | null = null;
  const stop = (s: 'SIGINT' | 'SIGTERM') => {
    signal ??= s;
    ctrl.abort();
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  try {
    const result = await recipe({
      backend, version: command.config.version, signal: ctrl.signal,
      onEvent: (e) => progress.handle(e), onWarning: (w) => process.stderr.write(`Warning: ${w.replace(/\s*\n\s*/g, ' ')}\n`),
    });
    // Stopped by a signal (a checkpoint was written): exit as a shell reports it, 128 + the signal's number,
    // so scripts see the interruption. The command still prints its result.
    if (signal) process.exitCode = signal === 'SIGINT' ? 130 : 143;
    return result;
  } finally {
    progress.stop();
    process.off('SIGINT', stop);
    process.off('SIGTERM', stop);
  }
}

/** A line on stderr for the first teacher run on a cache miss and every 100th after it, so misses show while training. */
export function reportMiss(misses: number): void {
  if (misses === 1 || misses % 100 === 0) process.stderr.write(`teacher ran on ${misses} image(s) missing from the cache so far\n`);
}

/** The lines a training command ends with (nothing with --json: the returned object says it all). */
export function logRunSummary(command: Command & { jsonEnabled(): boolean }, r: { interrupted: boolean; steps: number; bestMetric: number | null; bestStep: number | null }, out: string, cacheMisses = 0): void {
  if (command.jsonEnabled()) return;
  if (cacheMisses > 0) process.stderr.write(`teacher ran on ${cacheMisses} image(s) missing from the cache (now cached)\n`);
  command.log(r.interrupted ? `stopped at step ${r.steps}; resume with --resume` : `done: ${r.steps} steps; model in ${out}/model`);
  if (r.bestMetric !== null) command.log(`best val mIoU ${r.bestMetric.toFixed(2)} at step ${r.bestStep} (${out}/best)`);
}
