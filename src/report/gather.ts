/**
 * Data gathering for the run report: reads each run directory (metrics.jsonl, config.json, the model and its
 * softseg.json), scores every run's model on one validation set, and renders the sample grid's images
 * (input, ground truth, teacher and student predictions) as small PNG/JPEG data URIs. Produces a plain
 * {@link ReportData} that render.ts turns into HTML without touching the file system or TensorFlow.js.
 */
import { existsSync, statSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { basename, dirname, join, resolve, sep } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import sharp from 'sharp';
import { normalizeImage } from '../augment/normalize.js';
import { openDataset, type Dataset } from '../data/dataset.js';
import { colorizeMask, decodeImage, decodeMask, fullPalette, type DecodedImage, type DecodedMask, type Rgb } from '../data/decode.js';
import { SoftsegError } from '../errors.js';
import { evaluateDataset } from '../inference/evaluate.js';
import { modelDirectory, openTrainedModel, type TrainedModel } from '../inference/model-dir.js';
import { predictProbabilities } from '../inference/predict.js';
import { readSoftsegJson, type SoftsegJson } from '../inference/softseg-json.js';
import type { Point } from './svg.js';

export interface GatherOptions {
  /** Validation set for scores and samples (default: the first run's config.json `val`). */
  data?: string;
  /** Number of validation images in the sample grid (default 6; 0 = no grid). */
  samples?: number;
  /** Which model of each run: its final `model/` (default) or `best/`. */
  which?: 'model' | 'best';
  /** Score at most this many validation images (default: all). */
  limit?: number;
  /** Longest side of the images in the sample grid, in pixels (default 256). */
  thumbnail?: number;
  /** Progress messages (one line each). */
  onProgress?: (message: string) => void;
}

/** Scores of one run's model on the report's validation set. */
interface RunEvaluation {
  mIoUD: number;
  mIoUI: number;
  ECED: number | null;
  numImages: number;
  perClassIoU: (number | null)[];
  /** Pixel counts, rows = ground truth, columns = prediction. */
  confusion: number[][];
}

export interface RunData {
  /** Short unique name (the folder name, with parents where names clash). */
  name: string;
  /** Absolute run directory. */
  dir: string;
  /** The model folder used (model/ or best/), null when the run has none. */
  modelDir: string | null;
  architecture: string | null;
  width: number | null;
  params: number | null;
  /** Last training step (metrics.jsonl, else softseg.json). */
  steps: number | null;
  /** Train series by key: `loss` and its components (ce_main, jml_main, …). */
  train: Record<string, Point[]>;
  lr: Point[];
  imagesPerSec: Point[];
  /** Eval series by metric key (mIoUD, mIoUI, ECED, …) from metrics.jsonl. */
  eval: Record<string, Point[]>;
  summary: {
    finalMIoU: number | null;
    bestMIoU: number | null;
    bestStep: number | null;
    finalMIoUI: number | null;
    finalECE: number | null;
    /** Median training throughput. */
    imagesPerSec: number | null;
  };
  /** Scores on the report's validation set (null without a model or a validation set). */
  evaluation: RunEvaluation | null;
  /** Predicted masks of the sample images, as data URIs (aligned with ReportData.samples). */
  predictions: string[];
  /** The teacher its softseg.json names, as written there (null when none). */
  teacher: string | null;
  notes: string[];
}

interface SampleData {
  id: string;
  width: number;
  height: number;
  image: string;
  groundTruth: string;
}

interface TeacherColumn {
  label: string;
  dir: string;
  /** The runs whose softseg.json name this teacher. */
  runs: string[];
  predictions: string[];
}

export interface ReportData {
  generated: string;
  classes: string[];
  palette: Rgb[];
  ignoreIndex: number;
  /** Whether sampled ground truth contains ignored pixels (the legend then shows the ignore colour). */
  showsIgnore: boolean;
  valDir: string | null;
  which: 'model' | 'best';
  runs: RunData[];
  samples: SampleData[];
  teachers: TeacherColumn[];
  /** Report-wide notes (val set choice, omitted teacher column, …). */
  notes: string[];
}

const NOT_SERIES = new Set(['time', 'type', 'step', 'lr', 'imagesPerSec', 'loaderWaitShare']);

function push(series: Record<string, Point[]>, key: string, step: number, value: number): void {
  (series[key] ??= []).push({ step, value });
}

/** Reads metrics.jsonl: train and eval series by key (a step logged twice, e.g. after a resume, keeps its last record). */
export async function readMetricsLog(file: string): Promise<{ train: Record<string, Point[]>; lr: Point[]; imagesPerSec: Point[]; eval: Record<string, Point[]>; skipped: number } | null> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw new SoftsegError(`cannot read metrics log (${(err as Error).message})`, { file, cause: err });
  }
  const byStep = { train: new Map<number, Record<string, unknown>>(), eval: new Map<number, Record<string, unknown>>() };
  let skipped = 0;
  for (const line of text.split('\n')) {
    if (!line.trim()) continue;
    let rec: Record<string, unknown>;
    try {
      rec = JSON.parse(line) as Record<string, unknown>;
    } catch {
      skipped++;
      continue;
    }
    if (rec === null || typeof rec !== 'object' || typeof rec.step !== 'number' || (rec.type !== 'train' && rec.type !== 'eval')) {
      skipped++;
      continue;
    }
    byStep[rec.type].set(rec.step, rec);
  }
  const out = { train: {} as Record<string, Point[]>, lr: [] as Point[], imagesPerSec: [] as Point[], eval: {} as Record<string, Point[]>, skipped };
  for (const [kind, map] of [['train', byStep.train], ['eval', byStep.eval]] as const) {
    for (const step of [...map.keys()].sort((a, b) => a - b)) {
      const rec = map.get(step)!;
      for (const [key, value] of Object.entries(rec)) {
        if (typeof value !== 'number' || !Number.isFinite(value)) continue;
        if (kind === 'train') {
          if (key === 'lr') out.lr.push({ step, value });
          else if (key === 'imagesPerSec') out.imagesPerSec.push({ step, value });
          else if (!NOT_SERIES.has(key)) push(out.train, key, step, value);
        } else if (!NOT_SERIES.has(key)) {
          push(out.eval, key, step, value);
        }
      }
    }
  }
  return out;
}

async function readJsonFile(file: string): Promise<Record<string, unknown> | null> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw new SoftsegError(`cannot read ${basename(file)} (${(err as Error).message})`, { file, cause: err });
  }
  try {
    const v = JSON.parse(text) as unknown;
    if (v === null || typeof v !== 'object' || Array.isArray(v)) throw new Error('not a JSON object');
    return v as Record<string, unknown>;
  } catch (err) {
    throw new SoftsegError(`${basename(file)} is not valid JSON (${(err as Error).message})`, { file, cause: err });
  }
}

function median(values: number[]): number | null {
  if (values.length === 0) return null;
  const s = [...values].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

function last(points: Point[] | undefined): number | null {
  return points && points.length ? points[points.length - 1]!.value : null;
}

/** Names runs by their folder; where two share a name, parents are added until they differ. */
export function uniqueRunNames(dirs: string[]): string[] {
  const parts = dirs.map((d) => resolve(d).split(sep).filter(Boolean));
  const depth = dirs.map(() => 1);
  const name = (i: number) => parts[i]!.slice(-depth[i]!).join('/') || resolve(dirs[i]!);
  for (let round = 0; round < 64; round++) {
    const names = dirs.map((_, i) => name(i));
    let changed = false;
    names.forEach((n, i) => {
      if (names.indexOf(n) !== names.lastIndexOf(n) && depth[i]! < parts[i]!.length) {
        depth[i]!++;
        changed = true;
      }
    });
    if (!changed) break;
  }
  const names = dirs.map((_, i) => name(i));
  return names.map((n, i) => (names.indexOf(n) === i ? n : `${n} (${i + 1})`));
}

/** The teacher a student's softseg.json names: a path string, or an object with a path-like field. */
function teacherReference(meta: Record<string, unknown> | null): string | null {
  const t = meta?.teacher;
  if (typeof t === 'string' && t) return t;
  if (t && typeof t === 'object') {
    for (const key of ['dir', 'path', 'model', 'source', 'file']) {
      const v = (t as Record<string, unknown>)[key];
      if (typeof v === 'string' && v) return v;
    }
  }
  return null;
}

/** Resolves a path recorded in a run's files: as given (absolute or from the working directory), else from `base`. */
function resolveRecorded(path: string, bases: string[]): string | null {
  for (const candidate of [resolve(path), ...bases.map((b) => resolve(b, path))]) if (existsSync(candidate)) return candidate;
  return null;
}

/** A model folder's name for a column header: its run's folder name when it is a run's model/ or best/. */
function shortModelName(dir: string): string {
  const base = basename(dir);
  return base === 'model' || base === 'best' ? `${basename(dirname(dir))}/${base}` : base;
}

function isDirectory(path: string): boolean {
  try {
    return statSync(path).isDirectory();
  } catch {
    return false;
  }
}

function dataUri(mime: string, buf: Buffer): string {
  return `data:${mime};base64,${buf.toString('base64')}`;
}

function thumbSize(width: number, height: number, max: number): { w: number; h: number } {
  const scale = Math.min(1, max / Math.max(width, height));
  return { w: Math.max(1, Math.round(width * scale)), h: Math.max(1, Math.round(height * scale)) };
}

async function rgbThumb(rgb: Uint8Array, width: number, height: number, max: number, mask: boolean): Promise<string> {
  const { w, h } = thumbSize(width, height, max);
  let img = sharp(Buffer.from(rgb.buffer, rgb.byteOffset, rgb.byteLength), { raw: { width, height, channels: 3 } });
  if (w !== width || h !== height) img = img.resize(w, h, { kernel: mask ? 'nearest' : 'lanczos3', fit: 'fill' });
  // Masks are flat colours: PNG keeps them exact and small. Photos: JPEG unless tiny.
  if (mask || w * h <= 96 * 96) return dataUri('image/png', await img.png({ compressionLevel: 9 }).toBuffer());
  return dataUri('image/jpeg', await img.jpeg({ quality: 85 }).toBuffer());
}

interface LoadedSample {
  id: string;
  image: DecodedImage;
  mask: DecodedMask;
}

/** Argmax class ids of a model's prediction on one image. */
async function predictIds(trained: TrainedModel, image: DecodedImage): Promise<Uint8Array> {
  const ids = tf.tidy(() => tf.argMax(predictProbabilities(trained.model, normalizeImage(image.data, trained.meta.normalization), image.height, image.width), -1));
  const data = (await ids.data()) as Int32Array;
  ids.dispose();
  return Uint8Array.from(data);
}

async function predictionThumbs(trained: TrainedModel, samples: LoadedSample[], palette: Rgb[], max: number): Promise<string[]> {
  const out: string[] = [];
  for (const s of samples) {
    const ids = await predictIds(trained, s.image);
    out.push(await rgbThumb(colorizeMask(ids, palette), s.image.width, s.image.height, max, true));
  }
  return out;
}

interface RunFiles {
  dir: string;
  log: Awaited<ReturnType<typeof readMetricsLog>>;
  config: Record<string, unknown> | null;
  modelDir: string | null;
  meta: SoftsegJson | null;
}

async function readRun(dir: string, which: 'model' | 'best'): Promise<RunFiles> {
  const abs = resolve(dir);
  if (!isDirectory(abs)) throw new SoftsegError('run directory not found', { file: abs, hint: 'pass the --out folder of `softseg train` (or distill/ssl)' });
  const log = await readMetricsLog(join(abs, 'metrics.jsonl'));
  const config = await readJsonFile(join(abs, 'config.json'));
  let modelDir: string | null = null;
  try {
    modelDir = modelDirectory(abs, which);
  } catch {
    modelDir = null;
  }
  if (!log && !modelDir) {
    throw new SoftsegError('not a softseg run directory (no metrics.jsonl and no model/ or best/)', { file: abs, hint: 'pass the --out folder of `softseg train`' });
  }
  const meta = modelDir ? await readSoftsegJson(modelDir) : null;
  return { dir: abs, log, config, modelDir, meta };
}

function evaluationOf(r: Awaited<ReturnType<typeof evaluateDataset>>): RunEvaluation {
  return { mIoUD: r.mIoUD, mIoUI: r.mIoUI, ECED: r.ECED ?? null, numImages: r.numImages, perClassIoU: r.perClassIoU, confusion: r.confusion };
}

/** Evenly spread indices: `count` of `total`, always starting at 0. */
export function spreadIndices(total: number, count: number): number[] {
  const n = Math.max(0, Math.min(total, count));
  return Array.from({ length: n }, (_, i) => Math.floor((i * total) / n));
}

/** Everything the report shows, gathered from the run directories (models run on the current backend). */
export async function gatherReport(runDirs: string[], options: GatherOptions = {}): Promise<ReportData> {
  if (runDirs.length === 0) throw new SoftsegError('no run directories given', { hint: 'pass one or more --out folders of `softseg train`' });
  const which = options.which ?? 'model';
  const sampleCount = options.samples ?? 6;
  if (!Number.isInteger(sampleCount) || sampleCount < 0) throw new SoftsegError(`samples must be a whole number ≥ 0, got ${sampleCount}`);
  const thumb = options.thumbnail ?? 256;
  const progress = options.onProgress ?? (() => {});
  const notes: string[] = [];

  const files = await Promise.all(runDirs.map((d) => readRun(d, which)));
  const names = uniqueRunNames(files.map((f) => f.dir));

  // Classes and palette: from the first run with a model (softseg.json); all runs must agree on the count.
  const withMeta = files.filter((f) => f.meta);
  const counts = new Set(withMeta.map((f) => f.meta!.numClasses).filter((n): n is number => typeof n === 'number'));
  if (counts.size > 1) {
    throw new SoftsegError(`the runs predict different numbers of classes (${files.map((f, i) => `${names[i]}: ${f.meta?.numClasses ?? '?'}`).join(', ')})`, {
      hint: 'report runs trained on the same classes together',
    });
  }
  const firstMeta = withMeta[0]?.meta ?? null;

  // The validation set: --data, else the first run's config.json `val` (found as given or relative to the run).
  let valDir: string | null = null;
  if (options.data) {
    valDir = resolve(options.data);
  } else {
    for (const f of files) {
      const v = f.config?.val;
      if (typeof v !== 'string' || !v) continue;
      valDir = resolveRecorded(v, [f.dir, dirname(f.dir)]);
      if (valDir) break;
      notes.push(`The validation set ${v} named in ${join(f.dir, 'config.json')} was not found; pass --data to choose one.`);
    }
    if (!valDir && !notes.length) notes.push('No run names a validation set (config.json "val") and --data was not given: scores, confusion matrices and samples are left out.');
    const differing = files.filter((f) => typeof f.config?.val === 'string' && f.config.val !== '' && resolveRecorded(f.config.val, [f.dir, dirname(f.dir)]) !== valDir);
    if (valDir && differing.length) notes.push(`Runs were validated on different sets during training; this report scores all of them on ${valDir}.`);
  }
  let ds: Dataset | null = null;
  if (valDir) {
    const numClasses = typeof firstMeta?.numClasses === 'number' ? firstMeta.numClasses : undefined;
    const ignoreIndex = typeof firstMeta?.ignoreIndex === 'number' ? firstMeta.ignoreIndex : undefined;
    ds = await openDataset(valDir, { numClasses, ignoreIndex });
    if (!ds.labeled || ds.items.length === 0) throw new SoftsegError('the validation set has no labeled images', { file: valDir, hint: 'pass --data with a folder of images/ and masks/' });
  }

  const numClasses = (typeof firstMeta?.numClasses === 'number' ? firstMeta.numClasses : undefined) ?? ds?.numClasses ?? 0;
  const metaClasses = Array.isArray(firstMeta?.classes) ? (firstMeta.classes as unknown[]).map(String) : null;
  const classes = Array.from({ length: numClasses }, (_, i) => metaClasses?.[i] ?? ds?.classNames[i] ?? `class ${i}`);
  const metaPalette = Array.isArray(firstMeta?.palette) ? (firstMeta.palette as number[][]) : undefined;
  const palette = fullPalette(metaPalette ?? ds?.palette);
  const ignoreIndex = ds?.ignoreIndex ?? (typeof firstMeta?.ignoreIndex === 'number' ? firstMeta.ignoreIndex : 255);

  // Sample images: spread over the validation set; decoded once, predicted by every model.
  const loaded: LoadedSample[] = [];
  const samples: SampleData[] = [];
  let showsIgnore = false;
  if (ds && sampleCount > 0) {
    progress(`rendering ${Math.min(sampleCount, ds.items.length)} validation samples`);
    for (const idx of spreadIndices(ds.items.length, sampleCount)) {
      const item = ds.items[idx]!;
      const [image, mask] = await Promise.all([decodeImage(item.image), decodeMask(item.mask!, { palette: ds.palette })]);
      if (image.width !== mask.width || image.height !== mask.height) {
        throw new SoftsegError(`mask is ${mask.width}×${mask.height} but the image is ${image.width}×${image.height}`, { file: item.mask });
      }
      if (mask.data.includes(ignoreIndex)) showsIgnore = true;
      loaded.push({ id: item.id, image, mask });
      samples.push({
        id: item.id,
        width: image.width,
        height: image.height,
        image: await rgbThumb(image.data, image.width, image.height, thumb, false),
        groundTruth: await rgbThumb(colorizeMask(mask.data, palette), mask.width, mask.height, thumb, true),
      });
    }
  }

  // Teachers named by the runs' softseg.json: one column per distinct teacher that opens.
  const teachers: TeacherColumn[] = [];
  const teacherRefs = files.map((f) => teacherReference(f.meta));
  if (loaded.length) {
    const seen = new Map<string, TeacherColumn | null>();
    for (let i = 0; i < files.length; i++) {
      const ref = teacherRefs[i];
      if (!ref) continue;
      const found = resolveRecorded(ref, [files[i]!.modelDir ?? files[i]!.dir, files[i]!.dir, dirname(files[i]!.dir)]);
      const key = found ?? ref;
      if (seen.has(key)) {
        seen.get(key)?.runs.push(names[i]!);
        continue;
      }
      if (!found) {
        notes.push(`The teacher ${ref} named by ${names[i]} was not found; its column is left out.`);
        seen.set(key, null);
        continue;
      }
      let trained: TrainedModel | null = null;
      try {
        trained = await openTrainedModel(found);
      } catch (err) {
        const why = err instanceof SoftsegError ? err.message : String((err as Error).message ?? err);
        notes.push(`The teacher ${ref} named by ${names[i]} could not be opened as a TensorFlow.js model (${why}); its column is left out.`);
        seen.set(key, null);
        continue;
      }
      try {
        if (trained.meta.numClasses !== numClasses) {
          notes.push(`The teacher ${ref} predicts ${trained.meta.numClasses} classes, not ${numClasses}; its column is left out.`);
          seen.set(key, null);
          continue;
        }
        progress(`teacher ${ref}: predicting ${loaded.length} samples`);
        const column: TeacherColumn = { label: `teacher: ${shortModelName(found)}`, dir: found, runs: [names[i]!], predictions: await predictionThumbs(trained, loaded, palette, thumb) };
        teachers.push(column);
        seen.set(key, column);
      } finally {
        trained.model.dispose();
      }
    }
    if (teacherRefs.every((r) => !r)) notes.push('No run names a teacher model in its softseg.json, so the sample grid has no teacher column.');
  }

  // Each run: its logged curves, then its model on the validation set and the samples (one model loaded at a time).
  const runs: RunData[] = [];
  for (let i = 0; i < files.length; i++) {
    const f = files[i]!;
    const run: RunData = {
      name: names[i]!,
      dir: f.dir,
      modelDir: f.modelDir,
      architecture: typeof f.meta?.architecture === 'string' ? f.meta.architecture : typeof f.config?.model === 'string' ? f.config.model : null,
      width: typeof (f.meta?.modelOptions as Record<string, unknown> | undefined)?.width === 'number' ? ((f.meta!.modelOptions as Record<string, unknown>).width as number) : null,
      params: null,
      steps: null,
      train: f.log?.train ?? {},
      lr: f.log?.lr ?? [],
      imagesPerSec: f.log?.imagesPerSec ?? [],
      eval: f.log?.eval ?? {},
      summary: { finalMIoU: null, bestMIoU: null, bestStep: null, finalMIoUI: null, finalECE: null, imagesPerSec: null },
      evaluation: null,
      predictions: [],
      teacher: teacherRefs[i] ?? null,
      notes: [],
    };
    if (!f.log) run.notes.push('no metrics.jsonl: no curves');
    else if (f.log.skipped) run.notes.push(`${f.log.skipped} unreadable line(s) of metrics.jsonl skipped`);
    if (!f.modelDir) run.notes.push('no model/ or best/: no scores or predictions');
    const trainSteps = Object.values(run.train).flatMap((p) => p.map((x) => x.step));
    run.steps = trainSteps.length ? Math.max(...trainSteps) : typeof f.meta?.step === 'number' ? f.meta.step : null;
    const miou = run.eval.mIoUD;
    const metaMetrics = (f.meta?.metrics ?? null) as Record<string, unknown> | null;
    run.summary.finalMIoU = last(miou) ?? (typeof metaMetrics?.mIoUD === 'number' ? metaMetrics.mIoUD : null);
    run.summary.finalMIoUI = last(run.eval.mIoUI) ?? (typeof metaMetrics?.mIoUI === 'number' ? metaMetrics.mIoUI : null);
    run.summary.finalECE = last(run.eval.ECED) ?? (typeof metaMetrics?.ECED === 'number' ? metaMetrics.ECED : null);
    if (miou?.length) {
      const best = miou.reduce((a, b) => (b.value > a.value ? b : a));
      run.summary.bestMIoU = best.value;
      run.summary.bestStep = best.step;
    }
    run.summary.imagesPerSec = median(run.imagesPerSec.map((p) => p.value));

    if (f.modelDir) {
      progress(`${run.name}: loading ${f.modelDir}`);
      const trained = await openTrainedModel(f.modelDir);
      try {
        run.params = trained.model.model.countParams();
        run.architecture ??= trained.meta.architecture;
        if (ds) {
          progress(`${run.name}: scoring ${Math.min(ds.items.length, options.limit ?? Infinity)} validation images`);
          run.evaluation = evaluationOf(await evaluateDataset(trained.model, ds, { normalize: trained.meta.normalization, limit: options.limit }));
        }
        if (loaded.length) run.predictions = await predictionThumbs(trained, loaded, palette, thumb);
      } finally {
        trained.model.dispose();
      }
    }
    runs.push(run);
  }

  return { generated: new Date().toISOString(), classes, palette, ignoreIndex, showsIgnore, valDir, which, runs, samples, teachers, notes };
}

