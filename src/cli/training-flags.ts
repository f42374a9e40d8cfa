/**
 * The flags `train`, `distill` and `ssl` share (one definition, so the three commands teach the same
 * vocabulary), and turning flags + an optional --config file into a run configuration.
 */
import { Flags, type Command } from '@oclif/core';
import { SoftsegError, usageError } from '../errors.js';
import { checkConfigFile, flagName, mergeOptions, type OptionSchema } from '../recipes/options.js';
import { TRAIN_OPTIONS } from '../recipes/recipe-options.js';
import { flagsFromSchema } from './option-flags.js';

/** --config: a file with the schema's keys; flags typed on the command line win over it. */
export const configFlag = {
  config: Flags.string({ description: 'JSON or YAML file with the same keys as these flags (kebab-case or camelCase; flags win).' }),
};

/** The flags of `train` (distill and ssl build theirs from their own schemas the same way). */
export const trainingFlags = { ...configFlag, ...flagsFromSchema(TRAIN_OPTIONS) };

/**
 * Defaults < --config file < flags typed on the command line. The flags were checked as they were parsed and
 * the file's values are checked here against the same schema (an unknown key or a bad value names the file
 * and the key); `check` (the recipe's checks of options together) runs on the result, and a problem with a
 * value that came from the file is named with the file and key.
 */
export async function resolveRunConfig<T extends object>(flags: Record<string, unknown>, schema: OptionSchema<T>, check?: (config: T) => void): Promise<T> {
  const { readConfigFile } = await import('../recipes/config.js');
  const configPath = flags.config as string | undefined;
  const file = configPath ? checkConfigFile(schema, await readConfigFile(configPath), configPath) : { values: {}, warnings: [] };
  for (const w of file.warnings) process.stderr.write(`Warning: ${w}\n`);
  let config = mergeOptions(schema, file.values, flags);
  try {
    const { resume, out } = config as { resume?: boolean; out?: string };
    if (resume && out) {
      // --resume: the run's own options (its config.json) fill in what is not given; what is given must agree with
      // them. Checked here, before the data are opened; launchTraining checks the resolved options again.
      const { recordedRunOptions, resumeDifferences, resumeMismatch } = await import('../recipes/run-dir.js'); // loads TensorFlow.js: not for --help
      const recorded = await recordedRunOptions(out, schema as OptionSchema<object>);
      if (recorded) {
        if (recorded.epochs !== undefined) delete recorded.steps; // derived from --epochs again
        const given: Record<string, unknown> = { ...file.values };
        for (const key of Object.keys(schema)) if (flags[flagName(key)] !== undefined) given[key] = flags[flagName(key)];
        const differences = resumeDifferences(given, recorded);
        if (differences.length > 0) throw resumeMismatch(out, differences);
        const fromRun = Object.fromEntries(Object.entries(recorded).filter(([k]) => k in schema)) as Partial<T>;
        config = mergeOptions(schema, { ...fromRun, ...file.values }, flags);
      }
    }
    check?.(config);
  } catch (e) {
    throw configFileError(e, file.values, flags, configPath);
  }
  return config;
}

/**
 * A usage error about options whose values came from the config file: the same message with each such
 * `--flag` named by its key, and the file named (`train.yaml: bls and labelSmoothing are alternatives`).
 */
function configFileError(e: unknown, file: Record<string, unknown>, flags: Record<string, unknown>, configPath: string | undefined): unknown {
  if (!(e instanceof SoftsegError) || e.exitCode !== 2 || !configPath) return e;
  let fromFile = false;
  const message = e.message.replace(/--([a-z][a-z-]*)\b/g, (whole, flag: string) => {
    const key = Object.keys(file).find((k) => flagName(k) === flag);
    if (!key || flags[flag] !== undefined) return whole;
    fromFile = true;
    return key;
  });
  return fromFile ? usageError(message, { file: configPath, hint: e.hint }) : e;
}

/**
 * Runs a recipe with what every training command needs: the backend line, a progress bar or log lines,
 * Ctrl-C / SIGTERM turned into "checkpoint and stop" (then exit code 130 / 143), warnings on stderr.
 */
export async function runTrainingCommand<R>(
  command: Command & { startBackend(flags: { backend?: string; threads?: number }): Promise<import('../backends/select.js').BackendInfo> },
  flags: { backend?: string; threads?: number },
  recipe: (env: import('../recipes/run.js').RecipeEnv) => Promise<R>,
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
  command.log(r.interrupted ? `stopped at step ${r.steps}; continue with: ${command.config.bin} ${command.id} --out ${out} --resume` : `done: ${r.steps} steps; model in ${out}/model`);
  if (r.bestMetric !== null) command.log(`best val mIoU ${r.bestMetric.toFixed(2)} at step ${r.bestStep} (${out}/best)`);
}
