/**
 * The content-addressed teacher-output store. Layout:
 *   CACHE/<teacher key>/teacher.json              the teacher's fingerprint and description
 *   CACHE/<teacher key>/<hash[0:2]>/<hash>.sse    one entry per image (format.ts)
 * The teacher key is the fingerprint's first 16 characters when it is hex, else the first 16 hex digits of its
 * sha256. The image hash is the sha256 of the image file's bytes, so renaming or moving an image keeps its entries.
 * Every write is temp file + rename in the same folder: concurrent writers never leave a partial entry (the last
 * rename wins, and both candidates are valid). Every read verifies length and CRC.
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { open, readdir, readFile, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { SoftsegError } from '../errors.js';
import { writeFileAtomic } from '../data/fs-util.js';
import { inlineEntryEncoder, type EntryEncoder } from './encoder.js';
import {
  CorruptEntryError, activeClassesOf, decodeEntry, parseHeader, reconstructPseudo, reconstructSoft, verifyEntryBytes,
  type CacheMode, type Compression, type DecodedEntry, type EntryHeader, type QuantScheme, type TailOptions,
} from './format.js';

export const ENTRY_EXTENSION = '.sse';
const HASH_RE = /^[0-9a-f]{64}$/;
/** Temp files older than this are leftovers of killed writers (prune removes them). */
const STALE_TMP_MS = 60 * 60 * 1000;

/** sha256 of a file's bytes, lowercase hex: the cache key of an image. */
export async function hashImageFile(path: string): Promise<string> {
  const h = createHash('sha256');
  try {
    // one read for an image of usual size (half the time of a stream's turns on small files), a stream beyond
    if ((await stat(path)).size <= WHOLE_READ_BYTES) h.update(await readFile(path));
    else for await (const chunk of createReadStream(path)) h.update(chunk as Buffer);
  } catch (err) {
    throw new SoftsegError(`cannot read image: ${(err as Error).message}`, { file: path, cause: err });
  }
  return h.digest('hex');
}
const WHOLE_READ_BYTES = 64 << 20;

/** The folder name of a teacher inside a cache. */
export function teacherKey(fingerprint: string): string {
  if (!fingerprint) throw new SoftsegError('teacher fingerprint is empty');
  return /^[0-9a-f]{16,}$/i.test(fingerprint) ? fingerprint.slice(0, 16).toLowerCase() : createHash('sha256').update(fingerprint).digest('hex').slice(0, 16);
}

function checkHash(imageHash: string): void {
  if (!HASH_RE.test(imageHash)) {
    throw new SoftsegError(`not an image hash: ${JSON.stringify(imageHash)}`, { hint: 'cache keys are the lowercase hex sha256 of the image file (hashImageFile)' });
  }
}

export interface GetOptions {
  /** What to reconstruct: soft labels, pseudo-labels or both (default soft). */
  mode?: CacheMode;
  /** Soft-label temperature (softmax(z/T) ∝ p^{1/T}); default 1. */
  temperature?: number;
  /** Pseudo-labels: pixels with confidence < threshold become `ignoreIndex` (default 0: none). */
  threshold?: number;
  ignoreIndex?: number;
  /** Write soft labels into this buffer ([H, W, C]) instead of a new one. */
  out?: Float32Array;
}

export interface CacheRecord {
  width: number;
  height: number;
  numClasses: number;
  /** [H, W, C] HWC soft labels at the requested temperature (mode soft or both). */
  soft?: Float32Array;
  /** Hard labels (argmax, ignore below the threshold) and the confidence map (mode pseudo or both). */
  pseudo?: { labels: Uint8Array; confidence: Float32Array };
  /** Per-class maximum probability over the image (exact). */
  classMax: Float32Array;
  /** Classes whose maximum probability over the image exceeds `threshold` (default 0.01). */
  activeClasses(threshold?: number): number[];
  header: EntryHeader;
}

export interface PutOptions {
  width: number;
  height: number;
  numClasses: number;
  mode: CacheMode;
  k?: number;
  imageName?: string;
  scheme?: QuantScheme;
  range?: number;
  compression?: Compression;
  tail?: TailOptions;
}

export interface EntryInfo {
  path: string;
  /** The file's size in bytes. */
  bytes: number;
  fingerprint: string;
  imageHash: string;
  imageName: string;
  width: number;
  height: number;
  numClasses: number;
  k: number;
  modes: { soft: boolean; pseudo: boolean };
  scheme: QuantScheme;
  compression: Compression;
}

export interface EntryProblem {
  path: string;
  imageName?: string;
  fingerprint?: string;
  reason: string;
}

export interface TeacherSummary {
  /** The folder name inside the cache. */
  key: string;
  fingerprint: string | null;
  description: Record<string, unknown> | null;
  entries: number;
  bytes: number;
  pixels: number;
  bytesPerPixel: number;
  /** bytes per pixel of the same outputs as float32 [H, W, C], divided by bytesPerPixel. */
  compressionVsFloat32: number;
  numClasses: number[];
  k: number[];
  modes: { soft: number; pseudo: number; both: number };
  /** Entries whose header does not parse (run `cache verify`). */
  unreadable: number;
}

export interface CacheInfo {
  dir: string;
  teachers: TeacherSummary[];
  entries: number;
  bytes: number;
  /** Temp files of writers that were killed (older than an hour); prune removes them. */
  staleTempFiles: number;
}

export interface PruneOptions {
  /** Keep only these teachers (full fingerprints, teacher keys, or prefixes of at least 8 characters). */
  keepFingerprints?: Iterable<string>;
  /** Keep only entries of these image hashes. */
  keepImageHashes?: Iterable<string>;
  dryRun?: boolean;
}

export interface PruneResult {
  removed: { path: string; fingerprint?: string; imageName?: string; reason: string }[];
  bytesFreed: number;
  dryRun: boolean;
}

export interface VerifyResult {
  checked: number;
  problems: EntryProblem[];
}

export interface TeacherCache {
  readonly dir: string;
  entryPath(fingerprint: string, imageHash: string): string;
  /** Records the teacher's fingerprint and description (teacher.json; rewritten when it changes). */
  registerTeacher(fingerprint: string, description: Record<string, unknown>): Promise<void>;
  teacherDescription(fingerprint: string): Promise<Record<string, unknown> | null>;
  /** Every teacher registered in the cache (its teacher.json), without reading entries. */
  registeredTeachers(): Promise<{ fingerprint: string; description: Record<string, unknown> }[]>;
  /** The entry as soft labels / pseudo-labels, or null when there is none. Throws CorruptEntryError. */
  get(fingerprint: string, imageHash: string, options?: GetOptions): Promise<CacheRecord | null>;
  /** The decoded entry (quantised planes), for custom reconstruction. Throws CorruptEntryError. */
  read(fingerprint: string, imageHash: string): Promise<DecodedEntry | null>;
  /** True when a valid entry (header and checksum) exists for this teacher and image. */
  has(fingerprint: string, imageHash: string): Promise<boolean>;
  /** Encodes [H, W, C] probabilities and writes the entry atomically. Returns the entry's size in bytes. */
  put(fingerprint: string, imageHash: string, probs: Float32Array, options: PutOptions, encoder?: EntryEncoder): Promise<number>;
  delete(fingerprint: string, imageHash: string): Promise<boolean>;
  /** Every entry's header (not checksum-verified; see verify). Unparseable files are skipped. */
  entries(options?: { fingerprint?: string; onProblem?: (p: EntryProblem) => void }): AsyncGenerator<EntryInfo>;
  info(): Promise<CacheInfo>;
  /** Checks every entry's length and checksum. */
  verify(options?: { onProgress?: (done: number, total: number) => void }): Promise<VerifyResult>;
  prune(options: PruneOptions): Promise<PruneResult>;
}

/** Opens (or starts) a cache directory. Nothing is created until the first write. */
export function openCache(dir: string): TeacherCache {
  return new Store(dir);
}

async function listEntryFiles(dir: string, key?: string): Promise<{ entries: string[]; temps: string[] }> {
  const entries: string[] = [];
  const temps: string[] = [];
  let keys: string[];
  try {
    keys = key ? [key] : (await readdir(dir, { withFileTypes: true })).filter((d) => d.isDirectory() && !d.name.startsWith('.')).map((d) => d.name);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { entries, temps };
    throw err;
  }
  for (const k of keys.sort()) {
    let shards: string[];
    try {
      shards = (await readdir(join(dir, k), { withFileTypes: true })).filter((d) => d.isDirectory()).map((d) => d.name).sort();
    } catch {
      continue;
    }
    for (const s of shards) {
      for (const f of (await readdir(join(dir, k, s))).sort()) {
        if (f.endsWith(ENTRY_EXTENSION)) entries.push(join(dir, k, s, f));
        else if (f.endsWith('.tmp')) temps.push(join(dir, k, s, f));
      }
    }
  }
  return { entries, temps };
}

async function readHeaderOnly(path: string): Promise<{ header: EntryHeader; size: number }> {
  const fh = await open(path, 'r');
  try {
    const { size } = await fh.stat();
    const buf = new Uint8Array(Math.min(size, 8192));
    await fh.read(buf, 0, buf.length, 0);
    try {
      return { header: parseHeader(buf, path, size), size };
    } catch (err) {
      // a header longer than 8 KiB (long names, many classes): read it whole
      if (size > buf.length && err instanceof CorruptEntryError && /header truncated/.test(err.reason)) {
        const all = new Uint8Array(await readFile(path));
        return { header: parseHeader(all, path, size), size };
      }
      throw err;
    }
  } finally {
    await fh.close();
  }
}

class Store implements TeacherCache {
  constructor(readonly dir: string) {}

  entryPath(fingerprint: string, imageHash: string): string {
    checkHash(imageHash);
    return join(this.dir, teacherKey(fingerprint), imageHash.slice(0, 2), `${imageHash}${ENTRY_EXTENSION}`);
  }

  async registerTeacher(fingerprint: string, description: Record<string, unknown>): Promise<void> {
    const path = join(this.dir, teacherKey(fingerprint), 'teacher.json');
    const text = `${JSON.stringify({ fingerprint, description }, null, 2)}\n`;
    const old = await readFile(path, 'utf8').catch(() => null);
    if (old !== text) await writeFileAtomic(path, text);
  }

  async teacherDescription(fingerprint: string): Promise<Record<string, unknown> | null> {
    const meta = await readTeacherJson(join(this.dir, teacherKey(fingerprint)));
    return meta && meta.fingerprint === fingerprint ? meta.description : null;
  }

  async registeredTeachers(): Promise<{ fingerprint: string; description: Record<string, unknown> }[]> {
    let dirs: string[];
    try {
      dirs = (await readdir(this.dir, { withFileTypes: true })).filter((d) => d.isDirectory() && !d.name.startsWith('.')).map((d) => d.name).sort();
    } catch {
      return [];
    }
    const found = await Promise.all(dirs.map((d) => readTeacherJson(join(this.dir, d))));
    return found.filter((m): m is NonNullable<typeof m> => m !== null);
  }

  private async readBytes(fingerprint: string, imageHash: string): Promise<{ path: string; bytes: Uint8Array } | null> {
    const path = this.entryPath(fingerprint, imageHash);
    try {
      return { path, bytes: new Uint8Array(await readFile(path)) };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
      throw new SoftsegError(`cannot read cache entry: ${(err as Error).message}`, { file: path, cause: err });
    }
  }

  async read(fingerprint: string, imageHash: string): Promise<DecodedEntry | null> {
    const found = await this.readBytes(fingerprint, imageHash);
    if (!found) return null;
    const entry = await decodeEntry(found.bytes, found.path);
    // a 64-bit teacher-key collision or a misplaced file: not this teacher's / image's entry
    if (entry.header.fingerprint !== fingerprint || entry.header.imageHash !== imageHash) return null;
    return entry;
  }

  async get(fingerprint: string, imageHash: string, options: GetOptions = {}): Promise<CacheRecord | null> {
    const entry = await this.read(fingerprint, imageHash);
    if (!entry) return null;
    const { header } = entry;
    const mode = options.mode ?? 'soft';
    const wantSoft = mode === 'soft' || mode === 'both';
    const wantPseudo = mode === 'pseudo' || mode === 'both';
    if (wantSoft && !header.modes.soft) {
      throw new SoftsegError(`the cache entry for ${header.imageName || imageHash} holds pseudo-labels only, not soft labels`, {
        file: this.entryPath(fingerprint, imageHash), hint: 'relabel with --mode soft or both',
      });
    }
    const record: CacheRecord = {
      width: header.width, height: header.height, numClasses: header.numClasses, classMax: header.classMax, header,
      activeClasses: (threshold = 0.01) => activeClassesOf(header.classMax, threshold),
    };
    if (wantSoft) record.soft = reconstructSoft(entry, options.temperature ?? 1, options.out);
    if (wantPseudo) record.pseudo = reconstructPseudo(entry, options.threshold ?? 0, options.ignoreIndex ?? 255);
    return record;
  }

  async has(fingerprint: string, imageHash: string): Promise<boolean> {
    const found = await this.readBytes(fingerprint, imageHash);
    if (!found) return false;
    try {
      const h = verifyEntryBytes(found.bytes, found.path);
      return h.fingerprint === fingerprint && h.imageHash === imageHash;
    } catch (err) {
      if (err instanceof CorruptEntryError) return false;
      throw err;
    }
  }

  /**
   * Encodes and writes an entry (atomically). With `encoder` (createEntryEncoder), the encoding runs there —
   * on a worker thread — and `probs` may be transferred to it.
   */
  async put(fingerprint: string, imageHash: string, probs: Float32Array, options: PutOptions, encoder?: EntryEncoder): Promise<number> {
    const path = this.entryPath(fingerprint, imageHash);
    return (encoder ?? inlineEntryEncoder).write(path, probs, { ...options, fingerprint, imageHash });
  }

  async delete(fingerprint: string, imageHash: string): Promise<boolean> {
    const path = this.entryPath(fingerprint, imageHash);
    try {
      await rm(path);
      return true;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
      throw err;
    }
  }

  async *entries(options: { fingerprint?: string; onProblem?: (p: EntryProblem) => void } = {}): AsyncGenerator<EntryInfo> {
    const { entries } = await listEntryFiles(this.dir, options.fingerprint ? teacherKey(options.fingerprint) : undefined);
    for (const path of entries) {
      let h: EntryHeader, size: number;
      try {
        ({ header: h, size } = await readHeaderOnly(path));
      } catch (err) {
        if (!(err instanceof SoftsegError) && (err as NodeJS.ErrnoException).code === 'ENOENT') continue; // removed meanwhile
        options.onProblem?.({ path, reason: err instanceof CorruptEntryError ? err.reason : (err as Error).message, imageName: (err as CorruptEntryError).imageName });
        continue;
      }
      if (options.fingerprint && h.fingerprint !== options.fingerprint) continue;
      yield {
        path, bytes: size, fingerprint: h.fingerprint, imageHash: h.imageHash, imageName: h.imageName, width: h.width, height: h.height,
        numClasses: h.numClasses, k: h.k, modes: h.modes, scheme: h.scheme, compression: h.compression,
      };
    }
  }

  /** For the commands that inspect a cache: a cache that was never written has no folder, so asking about one that is not there is a mistyped path. */
  private async requireFolder(): Promise<void> {
    const st = await stat(this.dir).catch(() => null);
    if (!st) throw new SoftsegError('cache folder not found', { file: this.dir, hint: 'pass the folder given to `softseg label --cache`' });
    if (!st.isDirectory()) throw new SoftsegError('not a folder (a cache is a folder)', { file: this.dir });
  }

  async info(): Promise<CacheInfo> {
    await this.requireFolder();
    const byKey = new Map<string, TeacherSummary>();
    const summary = (key: string): TeacherSummary => {
      let s = byKey.get(key);
      if (!s) {
        s = { key, fingerprint: null, description: null, entries: 0, bytes: 0, pixels: 0, bytesPerPixel: 0, compressionVsFloat32: 0, numClasses: [], k: [], modes: { soft: 0, pseudo: 0, both: 0 }, unreadable: 0 };
        byKey.set(key, s);
      }
      return s;
    };
    const float32Bytes = new Map<string, number>();
    const keyOf = (path: string) => path.slice(this.dir.length + 1).split(/[\\/]/)[0]!;
    for await (const e of this.entries({ onProblem: (p) => summary(keyOf(p.path)).unreadable++ })) {
      const s = summary(keyOf(e.path));
      s.fingerprint ??= e.fingerprint;
      s.entries++;
      s.bytes += e.bytes;
      s.pixels += e.width * e.height;
      float32Bytes.set(s.key, (float32Bytes.get(s.key) ?? 0) + 4 * e.width * e.height * e.numClasses);
      if (!s.numClasses.includes(e.numClasses)) s.numClasses.push(e.numClasses);
      if (!s.k.includes(e.k)) s.k.push(e.k);
      if (e.modes.soft && e.modes.pseudo) s.modes.both++;
      else if (e.modes.soft) s.modes.soft++;
      else s.modes.pseudo++;
    }
    // teachers registered without entries yet
    try {
      for (const d of await readdir(this.dir, { withFileTypes: true })) if (d.isDirectory() && !d.name.startsWith('.')) summary(d.name);
    } catch { /* no cache yet */ }
    for (const s of byKey.values()) {
      const meta = await readTeacherJson(join(this.dir, s.key));
      if (meta) {
        s.fingerprint ??= meta.fingerprint;
        s.description = meta.description;
      }
      s.bytesPerPixel = s.pixels ? s.bytes / s.pixels : 0;
      s.compressionVsFloat32 = s.bytes ? (float32Bytes.get(s.key) ?? 0) / s.bytes : 0;
      s.numClasses.sort((a, b) => a - b);
      s.k.sort((a, b) => a - b);
    }
    const { temps } = await listEntryFiles(this.dir);
    const now = Date.now();
    let staleTempFiles = 0;
    for (const t of temps) if (now - (await stat(t).catch(() => ({ mtimeMs: now }))).mtimeMs > STALE_TMP_MS) staleTempFiles++;
    const teachers = [...byKey.values()].sort((a, b) => (a.key < b.key ? -1 : 1));
    return { dir: this.dir, teachers, entries: teachers.reduce((a, t) => a + t.entries, 0), bytes: teachers.reduce((a, t) => a + t.bytes, 0), staleTempFiles };
  }

  async verify(options: { onProgress?: (done: number, total: number) => void } = {}): Promise<VerifyResult> {
    await this.requireFolder();
    const { entries } = await listEntryFiles(this.dir);
    const problems: EntryProblem[] = [];
    let done = 0;
    for (const path of entries) {
      try {
        const bytes = new Uint8Array(await readFile(path));
        const h = verifyEntryBytes(bytes, path);
        const expect = this.entryPath(h.fingerprint, h.imageHash);
        if (expect !== path) problems.push({ path, imageName: h.imageName, fingerprint: h.fingerprint, reason: `misplaced: its header belongs at ${expect}` });
        else await decodeEntry(bytes, path); // the payload decompresses to the declared size
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') continue;
        problems.push({ path, imageName: (err as CorruptEntryError).imageName, reason: err instanceof CorruptEntryError ? err.reason : (err as Error).message });
      }
      options.onProgress?.(++done, entries.length);
    }
    return { checked: entries.length, problems };
  }

  async prune(options: PruneOptions): Promise<PruneResult> {
    const keepFp = options.keepFingerprints ? [...options.keepFingerprints] : null;
    const keepHashes = options.keepImageHashes ? new Set(options.keepImageHashes) : null;
    if (keepFp) for (const k of keepFp) if (k.length < 8) throw new SoftsegError(`teacher fingerprint prefix too short: ${k}`, { hint: 'give at least 8 characters (softseg cache info lists them)' });
    const teacherKept = (fp: string | null, key: string) =>
      !keepFp || keepFp.some((k) => k === key || (fp !== null && (fp === k || fp.startsWith(k))) || key.startsWith(k.toLowerCase()));
    const removed: PruneResult['removed'] = [];
    let bytesFreed = 0;
    const dryRun = options.dryRun ?? false;
    let keys: string[] = [];
    try {
      keys = (await readdir(this.dir, { withFileTypes: true })).filter((d) => d.isDirectory() && !d.name.startsWith('.')).map((d) => d.name).sort();
    } catch { /* empty */ }
    for (const key of keys) {
      const meta = await readTeacherJson(join(this.dir, key));
      const { entries, temps } = await listEntryFiles(this.dir, key);
      const keepTeacher = teacherKept(meta?.fingerprint ?? null, key);
      for (const path of entries) {
        let header: EntryHeader | null = null;
        try {
          header = (await readHeaderOnly(path)).header;
        } catch { /* unreadable: judged by its teacher folder only */ }
        const fp = header?.fingerprint ?? meta?.fingerprint ?? null;
        let reason: string | null = null;
        if (!keepTeacher || (header && !teacherKept(header.fingerprint, key))) reason = `teacher ${fp ?? key} not kept`;
        else if (keepHashes && header && !keepHashes.has(header.imageHash)) reason = 'image no longer present';
        if (!reason) continue;
        const size = (await stat(path).catch(() => ({ size: 0 }))).size;
        removed.push({ path, fingerprint: fp ?? undefined, imageName: header?.imageName, reason });
        bytesFreed += size;
        if (!dryRun) await rm(path, { force: true });
      }
      const now = Date.now();
      for (const t of temps) {
        const st = await stat(t).catch(() => null);
        if (!st || now - st.mtimeMs <= STALE_TMP_MS) continue;
        removed.push({ path: t, reason: 'temp file of a killed writer' });
        bytesFreed += st.size;
        if (!dryRun) await rm(t, { force: true });
      }
      if (!keepTeacher && !dryRun) await rm(join(this.dir, key), { recursive: true, force: true });
    }
    return { removed, bytesFreed, dryRun };
  }
}

async function readTeacherJson(dir: string): Promise<{ fingerprint: string; description: Record<string, unknown> } | null> {
  try {
    const meta = JSON.parse(await readFile(join(dir, 'teacher.json'), 'utf8')) as { fingerprint?: unknown; description?: unknown };
    if (typeof meta.fingerprint !== 'string') return null;
    return { fingerprint: meta.fingerprint, description: (meta.description ?? {}) as Record<string, unknown> };
  } catch {
    return null;
  }
}
