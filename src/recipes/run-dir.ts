/**
 * The run folder (`--out`) of `train`, `distill` and `ssl`: nothing a user made is replaced or mixed with a new
 * run. A new run needs an empty or missing folder; `--resume` continues the run whose checkpoint is there;
 * `--overwrite` clears a previous run first — and only a run: a folder with anything else in it is never
 * cleared.
 */
import { lstat, readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { SoftsegError } from '../errors.js';
import { CHECKPOINTS_DIR, latestCheckpoint } from '../engine/checkpoint.js';

/** What a softseg run writes into its folder (and nothing else may be cleared by --overwrite). */
const RUN_ENTRIES = ['model', 'best', CHECKPOINTS_DIR, 'metrics.jsonl', 'config.json', 'ema-teacher'] as const;

export interface RunDirOptions {
  resume: boolean;
  overwrite: boolean;
}

export interface RunDirPlan {
  /** A new run (the folder is missing or empty, or will be cleared), or the continuation of a checkpoint. */
  mode: 'new' | 'resume';
  /** Entries --overwrite removes before the run starts (paths inside the folder). */
  clear: string[];
  /** Said to the user (e.g. --resume with nothing to resume). */
  warnings: string[];
}

/** A file the run writes beside its own (atomic-write temporaries, a checkpoint being written, editor droppings). */
const isTemporary = (name: string): boolean => name.endsWith('.tmp') || name.startsWith('.tmp-');

const usage = (message: string, hint?: string) => new SoftsegError(message, { hint, exitCode: 2 });

/**
 * Decides what a training command may do with its run folder, before any work: refuses a non-empty folder
 * without --resume or --overwrite, and a folder with foreign files even with --overwrite. Changes nothing.
 */
export async function planRunDir(out: string, o: RunDirOptions): Promise<RunDirPlan> {
  if (o.resume && o.overwrite) throw usage('--resume and --overwrite are alternatives: --resume continues the run in --out, --overwrite replaces it');
  let all: string[] = [];
  try {
    const stat = await lstat(out);
    if (!stat.isDirectory()) throw usage(`--out ${out} is not a folder`, 'the run folder holds the model, checkpoints and metrics; choose a folder path');
    all = (await readdir(out)).sort();
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
  }
  const entries = all.filter((e) => !isTemporary(e));
  if (entries.length === 0) {
    return { mode: 'new', clear: [], warnings: o.resume ? [`--resume: ${out} holds no run yet; starting a new run`] : [] };
  }
  const listed = entries.slice(0, 6).join(', ') + (entries.length > 6 ? `, … (${entries.length} entries)` : '');
  const foreign = entries.filter((e) => !(RUN_ENTRIES as readonly string[]).includes(e));
  if (o.resume) {
    if (await latestCheckpoint(out)) return { mode: 'resume', clear: [], warnings: [] };
    throw usage(`--resume: ${out} has no checkpoint to resume from (it holds ${listed})`,
      foreign.length === 0 ? 'pass --overwrite instead to start a new run in it, or choose another --out' : 'choose another --out');
  }
  if (!o.overwrite) {
    throw usage(`--out ${out} is not empty (it holds ${listed})`,
      foreign.length === 0 ? 'pass --resume to continue that run, --overwrite to replace it, or choose another --out' : 'choose another --out');
  }
  if (foreign.length > 0) {
    throw usage(`--overwrite: ${out} holds files that are not a softseg run's (${foreign.slice(0, 6).join(', ')}${foreign.length > 6 ? ', …' : ''}); it is not cleared`,
      'choose another --out, or move those files away yourself');
  }
  return { mode: 'new', clear: all.map((e) => join(out, e)), warnings: [] };
}

/** Carries out a plan's --overwrite: removes the previous run's entries (the folder stays). */
export async function clearRunDir(plan: RunDirPlan): Promise<void> {
  for (const path of plan.clear) await rm(path, { recursive: true, force: true });
}
