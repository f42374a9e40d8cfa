// Small file-system helpers shared by the data modules: atomic writes (temp + rename) and recursive listing.
import { randomBytes } from 'node:crypto';
import { mkdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { mkdir, readdir, rename, rm, stat, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { SoftsegError } from '../errors.js';

/** A temporary name beside `path`, unique across processes and calls (the cache's stale-temp sweep knows the form). */
const tempPathFor = (path: string): string => `${path}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;

/** Writes `data` to `path` through a temporary file in the same folder and a rename, creating folders. */
export async function writeFileAtomic(path: string, data: Uint8Array | string): Promise<void> {
  await mkdir(dirname(path), { recursive: true });
  const tmp = tempPathFor(path);
  try {
    await writeFile(tmp, data);
    await rename(tmp, path);
  } catch (err) {
    await rm(tmp, { force: true }).catch(() => undefined);
    throw err;
  }
}

/** writeFileAtomic, blocking this thread (for worker threads that have nothing else to do meanwhile). */
export function writeFileAtomicSync(path: string, data: Uint8Array | string): void {
  mkdirSync(dirname(path), { recursive: true });
  const tmp = tempPathFor(path);
  try {
    writeFileSync(tmp, data);
    renameSync(tmp, path);
  } catch (err) {
    rmSync(tmp, { force: true });
    throw err;
  }
}

/**
 * Every file under `dir`, as paths relative to `dir` with `/` separators, sorted by code point.
 * Hidden entries (a name starting with `.`) are skipped, so `.softseg/` and editor droppings stay out.
 */
export async function listFilesRecursive(dir: string): Promise<string[]> {
  const out: string[] = [];
  async function walk(rel: string): Promise<void> {
    const entries = await readdir(rel ? join(dir, rel) : dir, { withFileTypes: true });
    for (const e of entries) {
      if (e.name.startsWith('.')) continue;
      const r = rel ? `${rel}/${e.name}` : e.name;
      if (e.isDirectory()) await walk(r);
      else if (e.isFile() || e.isSymbolicLink()) out.push(r);
    }
  }
  await walk('');
  return out.sort(compareCodePoints);
}

/** Locale-independent string order (so ids sort the same everywhere). */
export function compareCodePoints(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/**
 * A folder a command writes into (`--out`, `--cache`): a usage error (exit 2) naming it when something other than a
 * folder is at that path; a missing path is fine (it is created).
 */
export async function checkOutputFolder(path: string, flag: string, holds: string): Promise<void> {
  let isDir: boolean;
  try {
    isDir = (await stat(path)).isDirectory();
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw e;
  }
  if (!isDir) throw new SoftsegError(`${flag} ${path} is not a folder`, { hint: `it holds ${holds}; choose a folder path`, exitCode: 2 });
}
