/**
 * Opening a teacher against a cache it was (or will be) labelled into. A teacher's fingerprint covers its weights
 * and its preprocessing (normalisation, run size, layout, outputs, TTA), so the same model opened with other
 * preprocessing is another teacher: its outputs are not in the cache, and training would silently run it again
 * on every image. The cache records each teacher's preprocessing (teacher.json), so a teacher labelled once is
 * found again without repeating the flags; preprocessing given explicitly that differs from what the cache holds
 * for the same model is an error that names the difference.
 */
import { resolve } from 'node:path';
import type { TeacherCache } from '../cache/store.js';
import { SoftsegError } from '../errors.js';
import { openTeacher, parseTta, type Teacher, type TeacherOptions } from '../teachers/index.js';

type Description = Record<string, unknown>;

/** The preprocessing fields of a teacher description, in the words a user knows (flag names). */
function preprocessing(d: Description): Record<string, string> {
  const norm = d.normalization as { mean?: number[]; std?: number[] } | undefined;
  const list = (v: number[] | undefined) => (v ? v.map((x) => Number(x.toPrecision(6))).join(',') : '?');
  return {
    mean: list(norm?.mean),
    std: list(norm?.std),
    size: Array.isArray(d.size) ? (d.size as number[]).join('x') : String(d.size ?? 'dynamic'),
    multiple: d.multiple == null ? '-' : String(d.multiple),
    layout: String(d.layout ?? '?'),
    outputs: String(d.outputs ?? '?'),
    tta: String(d.tta ?? 'none'),
  };
}

/** "mean 0.5,0.5,0.5 here vs 0.485,0.456,0.406 in the cache; size …" for the fields that differ. */
export function describePreprocessingDifference(now: Description, cached: Description): string {
  const a = preprocessing(now), b = preprocessing(cached);
  const diffs = Object.keys(a).filter((k) => a[k] !== b[k]).map((k) => `--${k} ${a[k]} here vs ${b[k]} in the cache`);
  return diffs.length ? diffs.join('; ') : 'the same preprocessing but another fingerprint (a different softseg version or class count?)';
}

/** The TeacherOptions that reproduce a recorded teacher description. */
export function teacherOptionsFromDescription(d: Description): TeacherOptions {
  const norm = d.normalization as { mean?: number[]; std?: number[] } | undefined;
  const size = Array.isArray(d.size) && d.size.length === 2 ? ([Number(d.size[0]), Number(d.size[1])] as [number, number]) : undefined;
  return {
    mean: norm?.mean,
    std: norm?.std,
    size,
    multiple: typeof d.multiple === 'number' ? d.multiple : undefined,
    layout: d.layout === 'nchw' || d.layout === 'nhwc' ? d.layout : undefined,
    outputs: d.outputs === 'logits' || d.outputs === 'probabilities' ? d.outputs : undefined,
    tta: typeof d.tta === 'string' ? parseTta(d.tta) : undefined,
    numClasses: typeof d.numClasses === 'number' ? d.numClasses : undefined,
  };
}

/** Whether two descriptions are of the same model weights (older caches recorded no weights hash: same file). */
function sameModel(a: Description, b: Description): boolean {
  if (typeof a.weights === 'string' && typeof b.weights === 'string') return a.weights === b.weights;
  return typeof a.file === 'string' && typeof b.file === 'string' && resolve(a.file) === resolve(b.file);
}

export interface CachedTeacher {
  teacher: Teacher;
  /** Set when the recorded preprocessing of an earlier `label` run was taken (a line for the user). */
  note?: string;
}

/**
 * Opens the teacher at `path` for `cache`. `explicit` says whether the user gave preprocessing options (flags or a
 * config file): without them, a cache that holds exactly one preprocessing of this model reuses it; with them, or
 * when the cache holds several, a fingerprint the cache does not know is an error naming what differs.
 */
export async function openTeacherForCache(path: string, cache: TeacherCache, options: TeacherOptions, explicit: boolean): Promise<CachedTeacher> {
  const teacher = await openTeacher(path, options);
  const registered = await cache.registeredTeachers();
  if (registered.some((r) => r.fingerprint === teacher.fingerprint)) return { teacher };
  const same = registered.filter((r) => sameModel(r.description, teacher.describe));
  if (same.length === 0) return { teacher }; // a teacher new to this cache: its outputs are computed as needed
  if (!explicit && same.length === 1) {
    const recorded = same[0]!;
    await teacher.dispose();
    const reopened = await openTeacher(path, { ...options, ...teacherOptionsFromDescription(recorded.description) });
    if (reopened.fingerprint !== recorded.fingerprint) {
      await reopened.dispose();
      throw new SoftsegError(`the cache holds outputs of this teacher, but its recorded preprocessing does not reproduce them (fingerprint ${recorded.fingerprint.slice(0, 12)})`, {
        file: path,
        hint: `pass the preprocessing flags of the \`softseg label\` run, or label again into a new cache`,
      });
    }
    const p = preprocessing(recorded.description);
    return { teacher: reopened, note: `teacher preprocessing from the cache (as labelled): mean ${p.mean}, std ${p.std}, size ${p.size}, tta ${p.tta}` };
  }
  await teacher.dispose();
  const diffs = same.map((r) => `[${r.fingerprint.slice(0, 12)}] ${describePreprocessingDifference(teacher.describe, r.description)}`).join(' | ');
  throw new SoftsegError(`the cache holds this teacher's outputs with other preprocessing, so every image would be labelled again: ${diffs}`, {
    file: cache.dir,
    hint: explicit
      ? 'pass the same --size/--mean/--std/--layout/--outputs/--tta as `softseg label`, or omit them to use the cached preprocessing'
      : 'the cache holds several preprocessings of this teacher: pass the flags of the one to use',
  });
}
