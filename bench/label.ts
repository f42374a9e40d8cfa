// Labelling throughput vs bare teacher inference on the same images (issue 5):
//   node --import tsx bench/label.ts [--json --quick --backend auto|wasm|cpu|tensorflow --threads N
//                                     --images 160 --images-large 48 --sizes 64,128 --classes 21 --batch 8
//                                     --teacher-steps 0 --reps 2 --no-onnx | --onnx-only --models unet-lite,unet]
// A unet-lite and a unet teacher (--models; --quick: unet-lite only; 21 classes, saved like a softseg run's
// model; random init unless --teacher-steps) and, when onnxruntime-node is installed, the same networks
// exported to ONNX. Per teacher kind, architecture and image size:
//   (a) bare: `teacher.predictBatch` in batches of 8 over the images decoded beforehand;
//   (b) `labelFolders` into a fresh cache (hashing, decode ‖ inference ‖ encode + write, soft mode, k = default);
// images/s of each (best of --reps, alternating a/b) and the ratio (b)/(a) (goal ≥ 0.9).
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { initBackend, type BackendRequest } from '../src/backends/select.js';
import { sharedEntryEncoder } from '../src/cache/encoder.js';
import { DEFAULT_K } from '../src/cache/format.js';
import { hashImageFile, openCache } from '../src/cache/store.js';
import { decodeImage, type DecodedImage } from '../src/data/decode.js';
import { defaultEncodeThreads, labelFolders } from '../src/labels/label-folder.js';
import { openTeacher, type Teacher } from '../src/teachers/teacher.js';
import { fmt, list, table } from './common.js';
import { runIfMain, loadFigure, loadText, makeShapes, makeTeacher, numOpt, onnxRuntimeAvailable, progress, tempWorkDir, verdict } from './fixtures.js';

export interface LabelBenchOptions {
  backend: string;
  threads?: number;
  /** Images per size: 64² uses `images`, larger sizes `imagesLarge`. */
  images: number;
  imagesLarge: number;
  sizes: number[];
  classes: number;
  batch: number;
  teacherSteps: number;
  reps: number;
  onnx: boolean;
  /** Encoder worker threads of the label runs (default: labelFolders' default). */
  encodeThreads?: number;
  /** onnxruntime intra-op threads of the teacher in the label runs (default: the bare runs' teacher, all cores). */
  labelTeacherThreads?: number;
  /** Only the ONNX rows (where a TF.js teacher on wasm is not the question). */
  onnxOnly: boolean;
  /** Teacher architectures: the tiny unet-lite (encoding is most exposed) and unet (a teacher's usual cost). */
  models: ('unet-lite' | 'unet')[];
  quick: boolean;
}

export interface LabelRow {
  teacher: 'tfjs' | 'onnx';
  model: string;
  size: number;
  images: number;
  /** Best-of-reps images/s of bare predictBatch over pre-decoded images. */
  bareImgS: number;
  bareRuns: number[];
  /** Best-of-reps images/s of labelFolders into a fresh cache (hashing included). */
  labelImgS: number;
  labelRuns: number[];
  /** (b) ÷ (a). */
  ratio: number;
  /** Cache bytes per pixel of the entries written. */
  bytesPerPixel: number;
  /** Per image, each stage alone and serially: sha256 of the file, decode, encode + atomic write of the entry. */
  hashMs: number;
  decodeMs: number;
  putMs: number;
  load: number;
}

export interface LabelBenchResult {
  backend: string;
  reason: string;
  threads: number;
  options: LabelBenchOptions;
  onnxAvailable: boolean;
  onnxSkipped?: string;
  teacherSeconds: number;
  rows: LabelRow[];
  load: { load1: number; load5: number; cores: number };
  wallSeconds: number;
}

export function labelOptionsFromArgs(a: Record<string, string>): LabelBenchOptions {
  return {
    backend: a.backend ?? 'auto',
    threads: a.threads === undefined ? undefined : Number(a.threads),
    images: numOpt(a, 'images', 160, 64),
    imagesLarge: numOpt(a, 'images-large', 48, 16),
    sizes: list(a.sizes, ['64', '128']).map(Number),
    classes: numOpt(a, 'classes', 21, 21),
    batch: numOpt(a, 'batch', 8, 8),
    teacherSteps: numOpt(a, 'teacher-steps', 0, 0),
    reps: numOpt(a, 'reps', 2, 1),
    onnx: a['no-onnx'] !== 'true',
    onnxOnly: a['onnx-only'] === 'true',
    encodeThreads: a['encode-threads'] === undefined ? undefined : Number(a['encode-threads']),
    labelTeacherThreads: a['label-teacher-threads'] === undefined ? undefined : Number(a['label-teacher-threads']),
    models: list(a.models, a.quick === 'true' ? ['unet-lite'] : ['unet-lite', 'unet']) as LabelBenchOptions['models'],
    quick: a.quick === 'true',
  };
}

async function bareRate(teacher: Teacher, images: DecodedImage[], batch: number): Promise<{ rate: number; probs: Float32Array[] }> {
  const probs: Float32Array[] = [];
  const t0 = performance.now();
  for (let i = 0; i < images.length; i += batch) probs.push(...(await teacher.predictBatch(images.slice(i, i + batch))));
  return { rate: (images.length * 1000) / (performance.now() - t0), probs };
}

/** Milliseconds per image of the stages labelFolders overlaps, each run alone and one image at a time. */
async function stageCosts(teacher: Teacher, dir: string, names: string[], probs: Float32Array[], cacheDir: string, classes: number): Promise<{ hashMs: number; decodeMs: number; putMs: number }> {
  const paths = names.map((n) => join(dir, n));
  let t0 = performance.now();
  const hashes: string[] = [];
  for (const p of paths) hashes.push(await hashImageFile(p));
  const hashMs = (performance.now() - t0) / paths.length;
  t0 = performance.now();
  const sizes: { width: number; height: number }[] = [];
  for (const p of paths) sizes.push(await decodeImage(p));
  const decodeMs = (performance.now() - t0) / paths.length;
  const cache = openCache(cacheDir);
  t0 = performance.now();
  for (let i = 0; i < paths.length; i++) {
    await cache.put(teacher.fingerprint, hashes[i]!, probs[i]!, { width: sizes[i]!.width, height: sizes[i]!.height, numClasses: classes, mode: 'soft', k: Math.min(DEFAULT_K, classes), imageName: names[i] });
  }
  const putMs = (performance.now() - t0) / paths.length;
  return { hashMs, decodeMs, putMs };
}

export async function runLabelBench(o: LabelBenchOptions): Promise<LabelBenchResult> {
  const start = performance.now();
  const backend = await initBackend({ backend: o.backend as BackendRequest, threads: o.threads });
  const onnxAvailable = await onnxRuntimeAvailable();
  const work = await tempWorkDir('label');
  const rows: LabelRow[] = [];
  try {
    const sets = new Map<number, string>();
    for (const size of o.sizes) {
      sets.set(size, await makeShapes(join(work.dir, `data-${size}`), { count: size <= 64 ? o.images : o.imagesLarge, size, seed: 2 }));
    }
    const kinds: { kind: 'tfjs' | 'onnx'; model: string; path: string }[] = [];
    let teacherSeconds = 0;
    for (const model of o.models) {
      progress(`label: teacher ${model}, ${o.classes} classes, ${o.teacherSteps ? `${o.teacherSteps} training steps` : 'random init'} …`);
      const made = await makeTeacher(work.dir, {
        numClasses: o.classes, steps: o.teacherSteps, data: sets.get(o.sizes[0]!), backend, onnx: o.onnx && onnxAvailable, model,
      });
      teacherSeconds += made.seconds;
      if (!o.onnxOnly) kinds.push({ kind: 'tfjs', model, path: made.modelDir });
      if (made.onnxPath) kinds.push({ kind: 'onnx', model, path: made.onnxPath });
    }
    let cacheNo = 0;
    for (const { kind, model, path } of kinds) {
      const teacher = await openTeacher(path, { numClasses: o.classes });
      const labelTeacher = kind === 'onnx' && o.labelTeacherThreads ? await openTeacher(path, { numClasses: o.classes, threads: o.labelTeacherThreads }) : teacher;
      // the encoder's workers start once per process (as in `softseg label`): here, not inside the first timing
      await sharedEntryEncoder(o.encodeThreads ?? defaultEncodeThreads(kind));
      try {
        for (const size of o.sizes) {
          const dir = sets.get(size)!;
          const names = (await readdir(join(dir, 'images'))).sort();
          const decoded = await Promise.all(names.map((n) => decodeImage(join(dir, 'images', n))));
          await teacher.predictBatch(decoded.slice(0, o.batch)); // warm-up (kernels, session, this size)
          if (labelTeacher !== teacher) await labelTeacher.predictBatch(decoded.slice(0, o.batch));
          const bareRuns: number[] = [];
          const labelRuns: number[] = [];
          let bytesPerPixel = NaN;
          let probs: Float32Array[] = [];
          for (let r = 0; r < o.reps; r++) {
            progress(`label: ${kind} ${model} ${size}² × ${decoded.length}: bare predictBatch (rep ${r + 1}) …`);
            const bare = await bareRate(teacher, decoded, o.batch);
            bareRuns.push(bare.rate);
            probs = bare.probs;
            progress(`label: ${kind} ${model} ${size}²: labelFolders into a fresh cache (rep ${r + 1}) …`);
            const cache = openCache(join(work.dir, `cache-${cacheNo++}`));
            const res = await labelFolders(labelTeacher, cache, [join(dir, 'images')], { batchSize: o.batch, encodeThreads: o.encodeThreads });
            if (res.labelled !== decoded.length) throw new Error(`labelFolders labelled ${res.labelled} of ${decoded.length} images`);
            labelRuns.push(res.imagesPerSec);
            bytesPerPixel = res.bytes / (decoded.length * size * size);
          }
          const bareImgS = Math.max(...bareRuns), labelImgS = Math.max(...labelRuns);
          const stages = await stageCosts(teacher, join(dir, 'images'), names, probs, join(work.dir, `cache-${cacheNo++}`), o.classes);
          rows.push({ teacher: kind, model, size, images: decoded.length, bareImgS, bareRuns, labelImgS, labelRuns, ratio: labelImgS / bareImgS, bytesPerPixel, ...stages, load: loadFigure().load1 });
          progress(`label: ${kind} ${model} ${size}²: bare ${fmt(bareImgS)} img/s, label ${fmt(labelImgS)} img/s, ratio ${(labelImgS / bareImgS).toFixed(2)}`);
        }
      } finally {
        await teacher.dispose();
        if (labelTeacher !== teacher) await labelTeacher.dispose();
      }
    }
    return {
      backend: backend.name, reason: backend.reason, threads: backend.threads, options: o, onnxAvailable,
      onnxSkipped: !o.onnx ? '--no-onnx' : !onnxAvailable ? 'onnxruntime-node is not installed' : undefined,
      teacherSeconds, rows, load: loadFigure(), wallSeconds: (performance.now() - start) / 1000,
    };
  } finally {
    await work.cleanup();
  }
}

export function labelTable(r: LabelBenchResult): string {
  const o = r.options;
  const head = `softseg label vs bare teacher inference — teacher${o.models.length > 1 ? 's' : ''} ${o.models.join(' and ')}, ${o.classes} classes (${o.teacherSteps ? `trained ${o.teacherSteps} steps` : 'random init'}), batch ${o.batch}, TF.js on ${r.backend} (${r.threads} thread(s))${r.onnxSkipped ? `; ONNX skipped: ${r.onnxSkipped}` : ', ONNX on onnxruntime-node (CPU)'}; ${r.wallSeconds.toFixed(0)} s${o.quick ? ' (--quick)' : ''}`;
  const rows = r.rows.map((row) => [
    `${row.teacher} ${row.model} ${row.size}² × ${row.images}`,
    fmt(row.bareImgS),
    fmt(row.labelImgS),
    row.ratio.toFixed(2),
    verdict(row.ratio >= 0.9),
    fmt(1000 / row.bareImgS),
    fmt(row.hashMs),
    fmt(row.decodeMs),
    fmt(row.putMs),
    fmt(row.bytesPerPixel),
    row.load.toFixed(1),
  ]);
  const note = [
    `(a) bare = teacher.predictBatch on images decoded beforehand (normalise, pad, forward, softmax); (b) label = labelFolders into a fresh cache`,
    `(hash every file, decode ‖ inference ‖ encode + atomic write); best of ${o.reps} alternating run(s); ratio = (b) ÷ (a), goal ≥ 0.9.`,
    `ms/img: each stage alone, one image at a time (infer = 1000 ÷ (a); put = cache.put on this thread: top-k, tail model, compression, temp + rename) — what the overlap has to hide.`,
    `${loadText(r.load)} at the end — the timings are only as good as the machine was idle.`,
  ].join('\n');
  return `${head}\n${table(['teacher, images', '(a) bare img/s', '(b) label img/s', 'ratio', 'goal ≥0.9', 'infer ms/img', 'hash ms/img', 'decode ms/img', 'put ms/img', 'cache B/px', 'load'], rows)}\n${note}`;
}

runIfMain(import.meta.url, labelOptionsFromArgs, runLabelBench, labelTable);
