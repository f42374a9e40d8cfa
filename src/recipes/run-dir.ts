/**
 * The run folder (`--out`) of `train`, `distill` and `ssl`: nothing a user made is replaced or mixed with a new
 * run. A new run needs an empty or missing folder; `--resume` continues the run whose checkpoint is there;
 * `--overwrite` clears a previous run first — and only a run: a folder with anything else in it is never
 * cleared.
 */
import { createHash } from 'node:crypto';
import { lstat, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join, relative } from 'node:path';
import { isDeepStrictEqual } from 'node:util';
import { SoftsegError } from '../errors.js';
import { CHECKPOINTS_DIR, latestCheckpoint } from '../engine/checkpoint.js';
import type { Dataset } from '../data/dataset.js';
import { deprecatedKeys, flagName, type OptionSchema } from './options.js';

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
  const held = await liveHolder(out);
  if (held) throw inUse(out, held);
  let all: string[] = [];
  try {
    const stat = await lstat(out);
    if (!stat.isDirectory()) throw usage(`--out ${out} is not a folder`, 'the run folder holds the model, checkpoints and metrics; choose a folder path');
    all = (await readdir(out)).sort();
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
  }
  // The lock is the live process's mark, not part of a run: lockRunDir decides about it.
  const entries = all.filter((e) => !isTemporary(e) && e !== LOCK);
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
  return { mode: 'new', clear: all.filter((e) => e !== LOCK).map((e) => join(out, e)), warnings: [] };
}

/** Carries out a plan's --overwrite: removes the previous run's entries (the folder stays). */
export async function clearRunDir(plan: RunDirPlan): Promise<void> {
  for (const path of plan.clear) await rm(path, { recursive: true, force: true });
}

/**
 * Options a resumed run may change: where its inputs are and how the work is done, not what is trained.
 * Every other option is part of the run: `--resume` takes it from the run's config.json, and a value given
 * that differs from the recorded one is refused (a resumed run continues identically or not at all).
 */
export const FREE_ON_RESUME: ReadonlySet<string> = new Set([
  'data', 'val', 'unlabeled', 'teacher', 'cache', 'init', 'out', 'resume', 'overwrite',
  'skipBad', 'cacheImages', 'evalEvery', 'checkpointEvery', 'noTeacher',
]);

/**
 * Options added after runs were recorded, with the value those runs trained with (the behaviour before the option):
 * a resumed run that lacks the key continues with it, not with a default that has changed since (distill and ssl
 * default to half-pixel upsampling, decay on every parameter and floor mask sampling).
 */
const BEFORE_THE_OPTION: Readonly<Record<string, unknown>> = { upsampling: 'aligned', weightDecayAll: false, maskSampling: 'centre' };

/** What config.json holds beside the schema's keys: resolved from the options and the data when the run started. */
const RESOLVED_KEYS: readonly string[] = ['steps', 'augmentation'];

/**
 * The options a run recorded in `out/config.json`: the schema's keys (deprecated names renamed) and the resolved
 * steps and augmentation, without --resume / --overwrite. Null when the folder has no config.json.
 */
export async function recordedRunOptions(out: string, schema: OptionSchema<object>): Promise<Record<string, unknown> | null> {
  const path = join(out, 'config.json');
  let raw: unknown;
  try {
    raw = JSON.parse(await readFile(path, 'utf8'));
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw new SoftsegError(`cannot read the run's options: ${(e as Error).message.split('\n')[0]}`, { file: path, hint: 'restore it, or start a new run (--overwrite or another --out)' });
  }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw new SoftsegError('the run\'s options are not a JSON object', { file: path });
  const renamed = deprecatedKeys(schema);
  const named = Object.entries(raw).map(([name, v]) => [name in schema ? name : renamed.get(name) ?? name, v] as const);
  // A run recorded before an option existed trained as the option's first value says, whatever today's default.
  const before = Object.entries(BEFORE_THE_OPTION).filter(([key]) => key in schema && !(key in raw));
  return runOptions(Object.fromEntries([...before, ...named].filter(([key]) => key !== 'resume' && key !== 'overwrite')), schema);
}

/** A run's options as config.json records them: the schema's keys and the resolved ones, without unset ones. */
export function runOptions(values: object, schema: OptionSchema<object>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(values).filter(([key, v]) => v !== undefined && v !== null && (key in schema || RESOLVED_KEYS.includes(key))));
}

/**
 * A value as compared: text options may be a string, a number or a list (`0.75, 1.25` = [0.75, 1.25]); an object
 * (the resolved augmentation) as config.json holds it (unset fields left out).
 */
const comparable = (v: unknown): unknown => {
  const scalar = (x: unknown) => String(x).replace(/\s+/g, '');
  if (Array.isArray(v) && v.every((x) => typeof x !== 'object')) return v.map(scalar).join(',');
  if (typeof v === 'object' && v !== null) return JSON.parse(JSON.stringify(v));
  return v === undefined ? v : scalar(v);
};
const shown = (v: unknown): string => (v === undefined ? 'unset' : typeof v === 'string' ? v : JSON.stringify(v));

/**
 * The options in `given` (those a user typed, or a resumed run's effective options) that differ from the run's
 * recorded ones, as `--lr 0.01 (the run has 0.001)`. Only the keys of `given` that bind a resumed run are
 * compared; `also` adds keys compared even when `given` lacks them (unset there).
 */
export function resumeDifferences(given: Record<string, unknown>, recorded: Record<string, unknown>, also: Iterable<string> = []): string[] {
  const keys = new Set([...Object.keys(given).filter((k) => given[k] !== undefined), ...also]);
  const out: string[] = [];
  for (const key of keys) {
    if (FREE_ON_RESUME.has(key)) continue;
    const a = given[key] ?? undefined, b = recorded[key] ?? undefined;
    if (isDeepStrictEqual(comparable(a), comparable(b))) continue;
    const name = key === 'augmentation' ? key : `--${flagName(key)}`;
    out.push(`${name} ${shown(a)} (the run has ${shown(b)})`);
  }
  return out;
}

/** The error for a resumed run whose options differ from the run's (exit code 2). */
export function resumeMismatch(out: string, differences: string[]): SoftsegError {
  return usage(`--resume: ${differences.join(', ')}`,
    `a resumed run continues with the options it started with (${join(out, 'config.json')}); leave these out, or start a new run (--overwrite or another --out)`);
}

/** What config.json records of the data a run trains on: per set, its folder, item count and a digest of its files. */
export interface DataRecord {
  root: string;
  items: number;
  /** sha256 over each item's files, as paths relative to the set's folder with their sizes. */
  digest: string;
}

/** The record of the data sets a run trains on (the labeled set, then an unlabeled pool): a stat per file, no reads. */
export async function dataRecord(sets: readonly Dataset[]): Promise<DataRecord[]> {
  return Promise.all(sets.map(async (ds) => {
    const hash = createHash('sha256');
    const files = ds.items.flatMap((it) => (it.mask === undefined ? [it.image] : [it.image, it.mask]));
    const sizes: number[] = new Array(files.length);
    for (let i = 0; i < files.length; i += 64) {
      await Promise.all(files.slice(i, i + 64).map(async (f, j) => { sizes[i + j] = (await stat(f)).size; }));
    }
    files.forEach((f, i) => hash.update(`${relative(ds.root, f)}\0${sizes[i]}\n`));
    return { root: ds.root, items: ds.items.length, digest: hash.digest('hex') };
  }));
}

/**
 * How the data of a resumed run differ from what its config.json recorded when it last wrote it, one phrase per
 * set ("data: 8 → 9 items"); empty when they agree or the run recorded nothing (runs before the record).
 */
export async function dataChanges(out: string, now: readonly DataRecord[]): Promise<string[]> {
  let recorded: unknown;
  try {
    recorded = (JSON.parse(await readFile(join(out, 'config.json'), 'utf8')) as { dataRecord?: unknown }).dataRecord;
  } catch {
    return [];
  }
  if (!Array.isArray(recorded)) return [];
  const before = recorded as DataRecord[];
  return now.flatMap((set, i) => {
    const then = before[i];
    if (!then || then.digest === set.digest) return [];
    return [then.items === set.items ? `${set.root}: files changed (${set.items} items)` : `${set.root}: ${then.items} → ${set.items} items`];
  });
}

/** The file that marks a run folder as in use by a training process (pid, host, start time). */
export const LOCK = '.softseg-lock';

interface LockMark {
  pid: number;
  host: string;
  started: string;
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** The mark of the process training in `out`, or null when there is none or its process is gone (killed). */
async function liveHolder(out: string): Promise<LockMark | null> {
  const held = await readFile(join(out, LOCK), 'utf8').then((t) => JSON.parse(t) as LockMark, () => null);
  // Another host's process cannot be checked: its mark is honoured.
  return held !== null && (held.host !== hostname() || processAlive(held.pid)) ? held : null;
}

function inUse(out: string, held: LockMark): SoftsegError {
  return usage(`--out ${out} is in use by another softseg process (pid ${held.pid}${held.host !== hostname() ? ` on ${held.host}` : ''}, since ${held.started})`,
    `wait for it to end, or stop it (Ctrl-C writes a checkpoint) and continue with --resume; if it is gone, delete ${join(out, LOCK)}`);
}

/**
 * Marks `out` as in use by this process until the returned release is called, so that a second `--resume` or an
 * `--overwrite` cannot train into (or clear) a run that is still going: another live process's mark is a usage
 * error naming it (planRunDir says so first); the mark of a process that is gone is taken over.
 */
export async function lockRunDir(out: string): Promise<() => Promise<void>> {
  const path = join(out, LOCK);
  const mine: LockMark = { pid: process.pid, host: hostname(), started: new Date().toISOString() };
  for (;;) {
    try {
      await writeFile(path, JSON.stringify(mine), { flag: 'wx' });
      return async () => {
        await rm(path, { force: true });
      };
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    }
    const held = await liveHolder(out);
    if (held) throw inUse(out, held);
    await rm(path, { force: true }); // a killed process's mark (or an unreadable one): take it over
  }
}
