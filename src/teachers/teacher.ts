/**
 * Teachers: a model that maps an RGB image to per-pixel class probabilities, run once per image to label data
 * sets. A teacher is a softseg run or model directory, any TensorFlow.js LayersModel or GraphModel
 * (model.json), or an ONNX file run with onnxruntime-node. Preprocessing (normalisation, input size, padding,
 * layout) and postprocessing (softmax, resizing back, TTA) are the same host code for every kind, so the same
 * network gives the same probabilities whichever format it comes in.
 *
 * ```ts
 * const teacher = await openTeacher('teacher.onnx', { tta: parseTta('flip,scales=0.75,1,1.25') });
 * const probs = await teacher.predict(await decodeImage('a.jpg'));   // Float32Array [h, w, C]
 * await teacher.dispose();
 * ```
 */
import { createHash } from 'node:crypto';
import { existsSync, statSync } from 'node:fs';
import { IMAGENET_NORMALIZATION, normalizeImage, type Normalization } from '../augment/normalize.js';
import { SoftsegError } from '../errors.js';
import { crop, padInto, resizeBilinear, softmaxInPlace, softmaxInto } from './ops.js';
import { applyTta, formatTta, isIdentityTta, resolveTta, type ResolvedTta, type TtaOptions } from './tta.js';

export type TeacherKind = 'tfjs' | 'onnx';
type TeacherFormat = 'softseg' | 'layers-model' | 'graph-model' | 'onnx';
export type TensorLayout = 'nchw' | 'nhwc';
export type TeacherOutputs = 'logits' | 'probabilities';

/** An 8-bit RGB image, HWC (what `decodeImage` returns). */
export interface TeacherImage {
  data: Uint8Array;
  width: number;
  height: number;
}

export interface Teacher {
  readonly kind: TeacherKind;
  /** The path the teacher was opened from, as given. */
  readonly source: string;
  /**
   * Hex sha256 over the weight bytes (model.json + weights files, or the .onnx bytes) and the preprocessing
   * configuration (normalisation, run size, padding multiple, layout, outputs, class count, TTA): a changed
   * teacher or preprocessing gives a different fingerprint; moving or renaming the files does not.
   */
  readonly fingerprint: string;
  readonly numClasses: number;
  /** Class names (from metadata; `class i` when the model has none). */
  readonly classes: readonly string[];
  readonly normalization: Normalization;
  readonly tta: ResolvedTta;
  /** JSON-ready description for run metadata and cache info: kind, format, source, size, layout, tta, classes… */
  readonly describe: Record<string, unknown>;
  /** Class probabilities [height, width, C] (float32, HWC) at the image's own resolution, TTA averaged in probability space. */
  predict(image: TeacherImage): Promise<Float32Array>;
  /** Probabilities of several images; images of the same size go through the model as one batch per TTA view. */
  predictBatch(images: readonly TeacherImage[]): Promise<Float32Array[]>;
  /** Releases the model (and the onnxruntime session). The teacher cannot be used afterwards. */
  dispose(): Promise<void>;
}

export interface TeacherOptions {
  /** Per-channel mean, RGB, 0..1 scale (values > 1 are read as 0..255 and divided by 255). Default: metadata, else ImageNet. */
  mean?: readonly number[];
  /** Per-channel std, RGB, same scale rules as `mean`. */
  std?: readonly number[];
  /**
   * Run every image at this fixed size ([h, w] or a square side): the image is resized to it and the
   * probabilities resized back. Required to match a model with a fixed input size; omitted for dynamic models
   * = the image's own size padded to `multiple`.
   */
  size?: readonly [number, number] | number;
  /** Tensor layout of the model's input and output. Default: from the input signature, else NCHW for ONNX, NHWC for TF.js. */
  layout?: TensorLayout;
  /** Multi-scale / flip test-time augmentation (see {@link parseTta}). */
  tta?: TtaOptions;
  /** Expected number of classes: checked against the model. */
  numClasses?: number;
  /** What the model outputs: `logits` (default; softmax is applied) or `probabilities`. */
  outputs?: TeacherOutputs;
  /** Dynamic-size models: H and W are zero-padded (in normalised space) up to a multiple of this. Default: the zoo model's, else 32. */
  multiple?: number;
  /** onnxruntime intra-op threads (default: all logical cores). */
  threads?: number;
}

/** What a model file says about itself (softseg.json, or the ONNX metadata_props key `softseg`). */
export interface TeacherMetadata {
  numClasses?: number;
  classes?: string[];
  normalization?: Normalization;
  layout?: TensorLayout;
  outputs?: TeacherOutputs;
}

/** Raw model output of one batch: NHWC [n, height, width, channels] logits or probabilities. */
export interface RawOutput {
  data: Float32Array;
  height: number;
  width: number;
  channels: number;
}

/** What a format-specific loader (tfjs.ts, onnx.ts) hands to the generic teacher. */
export interface TeacherBackend {
  kind: TeacherKind;
  format: TeacherFormat;
  /** The model file errors should name. */
  file: string;
  /** Hex sha256 over the weight bytes. */
  weightsHash: string;
  /** The layout the backend runs in (resolved against the signature). */
  layout: TensorLayout;
  /** Fixed spatial input size from the signature, or null when dynamic. */
  inputSize: [number, number] | null;
  /** Fixed batch size from the signature, or null when dynamic. */
  fixedBatch: number | null;
  /** Classes from the output signature, or null when it does not say. */
  numClasses: number | null;
  /** Known size multiple (zoo models), or null. */
  multiple: number | null;
  metadata: TeacherMetadata;
  /** Runs n normalised images (NHWC, float32) of size h×w. */
  run(x: Float32Array, n: number, h: number, w: number): Promise<RawOutput>;
  dispose(): Promise<void>;
}

const DEFAULT_MULTIPLE = 32;

function roundUp(v: number, m: number): number {
  return Math.ceil(v / m) * m;
}

function resolveNormalization(o: TeacherOptions, meta: TeacherMetadata): Normalization {
  const base = meta.normalization ?? IMAGENET_NORMALIZATION;
  const read = (v: readonly number[] | undefined, fallback: readonly number[], name: string): [number, number, number] => {
    if (v === undefined) return [fallback[0]!, fallback[1]!, fallback[2]!];
    if (v.length === 1) v = [v[0]!, v[0]!, v[0]!];
    if (v.length !== 3 || !v.every((x) => Number.isFinite(x))) throw new SoftsegError(`--${name} needs 3 numbers (R,G,B), got ${v.join(',')}`);
    return [v[0]!, v[1]!, v[2]!];
  };
  const mean = read(o.mean, base.mean, 'mean');
  const std = read(o.std, base.std, 'std');
  // PyTorch recipes often write 0..255 statistics (123.675, …); softseg works on the 0..1 scale.
  const scale255 = (o.mean !== undefined && mean.some((x) => x > 1)) || (o.std !== undefined && std.some((x) => x > 1));
  const norm: Normalization = {
    mean: (o.mean !== undefined && scale255 ? mean.map((x) => x / 255) : mean) as [number, number, number],
    std: (o.std !== undefined && scale255 ? std.map((x) => x / 255) : std) as [number, number, number],
  };
  if (!norm.std.every((x) => x > 0)) throw new SoftsegError(`--std must be positive, got ${norm.std.join(',')}`);
  return norm;
}

function resolveSize(size: TeacherOptions['size']): [number, number] | null {
  if (size === undefined) return null;
  const hw: [number, number] = typeof size === 'number' ? [size, size] : [size[0], size[1]];
  if (!hw.every((v) => Number.isInteger(v) && v > 0)) throw new SoftsegError(`--size must be positive integers, got ${hw.join('x')}`);
  return hw;
}

/** The fingerprint of weights + preprocessing (see {@link Teacher.fingerprint}). */
export function teacherFingerprint(weightsHash: string, config: Record<string, unknown>): string {
  return createHash('sha256').update(JSON.stringify({ fingerprintVersion: 1, weights: weightsHash, ...config })).digest('hex');
}

class HostTeacher implements Teacher {
  readonly kind: TeacherKind;
  readonly fingerprint: string;
  readonly describe: Record<string, unknown>;
  private disposed = false;

  constructor(
    readonly source: string,
    private readonly backend: TeacherBackend,
    readonly numClasses: number,
    readonly classes: readonly string[],
    readonly normalization: Normalization,
    readonly tta: ResolvedTta,
    private readonly runSize: [number, number] | null,
    private readonly multiple: number,
    private readonly outputs: TeacherOutputs,
  ) {
    this.kind = backend.kind;
    const config = {
      kind: backend.kind,
      format: backend.format,
      numClasses,
      normalization: { mean: [...normalization.mean], std: [...normalization.std] },
      size: runSize,
      multiple: runSize ? null : multiple,
      layout: backend.layout,
      outputs,
      tta: formatTta(tta),
    };
    this.fingerprint = teacherFingerprint(backend.weightsHash, config);
    this.describe = {
      ...config,
      source,
      file: backend.file,
      size: runSize ?? 'dynamic',
      batch: backend.fixedBatch ?? 'dynamic',
      classes: [...classes],
      weights: backend.weightsHash,
      fingerprint: this.fingerprint,
    };
  }

  /** Probabilities [h, w, C] of normalised images of one size (no TTA): pad or resize, run, crop or resize back. */
  readonly forward = async (images: Float32Array[], h: number, w: number): Promise<Float32Array[]> => {
    if (this.disposed) throw new SoftsegError('teacher used after dispose()', { file: this.backend.file });
    const C = this.numClasses;
    const [rh, rw] = this.runSize ?? [roundUp(h, this.multiple), roundUp(w, this.multiple)];
    const chunk = this.backend.fixedBatch ?? images.length;
    const results: Float32Array[] = [];
    for (let start = 0; start < images.length; start += chunk) {
      const part = images.slice(start, start + chunk);
      const n = this.backend.fixedBatch ?? part.length; // a fixed batch is filled up with zero images
      const x = new Float32Array(n * rh * rw * 3);
      part.forEach((img, i) => {
        if (this.runSize) x.set(resizeBilinear(img, h, w, 3, rh, rw), i * rh * rw * 3);
        else padInto(img, h, w, 3, x, i * rh * rw * 3, rw);
      });
      let out: RawOutput;
      try {
        out = await this.backend.run(x, n, rh, rw);
      } catch (err) {
        if (err instanceof SoftsegError) throw err;
        throw new SoftsegError(`the teacher failed on a ${n}×${rh}×${rw} input (${(err as Error).message?.split('\n')[0]})`, {
          file: this.backend.file,
          hint: 'check --size, --layout and --multiple against what the model expects',
          cause: err,
        });
      }
      if (out.channels !== C) {
        throw new SoftsegError(`the teacher output has ${out.channels} channels, expected ${C} classes`, { file: this.backend.file, hint: 'check --num-classes and --layout' });
      }
      const per = out.height * out.width * C;
      for (let i = 0; i < part.length; i++) {
        let p: Float32Array;
        if (out.height === rh && out.width === rw) {
          p = this.outputs === 'logits' ? softmaxInto(out.data, i * per, new Float32Array(per), rh * rw, C) : out.data.slice(i * per, (i + 1) * per);
        } else {
          // A model whose output is smaller than its input (e.g. stride-8 logits): upsample its raw output.
          p = resizeBilinear(out.data.subarray(i * per, (i + 1) * per), out.height, out.width, C, rh, rw);
          if (p.buffer === out.data.buffer) p = p.slice();
          if (this.outputs === 'logits') softmaxInPlace(p, C);
        }
        results.push(this.runSize ? resizeBilinear(p, rh, rw, C, h, w) : rh === h && rw === w ? p : crop(p, 0, rw, C, h, w));
      }
    }
    return results;
  };

  async predict(image: TeacherImage): Promise<Float32Array> {
    return (await this.predictBatch([image]))[0]!;
  }

  async predictBatch(images: readonly TeacherImage[]): Promise<Float32Array[]> {
    const out = new Array<Float32Array>(images.length);
    const groups = new Map<string, number[]>();
    images.forEach((img, i) => {
      checkImage(img, i);
      const key = `${img.height}x${img.width}`;
      const g = groups.get(key);
      if (g) g.push(i);
      else groups.set(key, [i]);
    });
    for (const idx of groups.values()) {
      const { height, width } = images[idx[0]!]!;
      const normalised = idx.map((i) => normalizeImage(images[i]!.data, this.normalization));
      const probs = await applyTta(normalised, height, width, this.numClasses, this.tta, this.forward);
      idx.forEach((i, j) => (out[i] = probs[j]!));
    }
    return out;
  }

  async dispose(): Promise<void> {
    if (this.disposed) return;
    this.disposed = true;
    await this.backend.dispose();
  }
}

function checkImage(img: TeacherImage, i: number): void {
  if (!(Number.isInteger(img.width) && Number.isInteger(img.height) && img.width > 0 && img.height > 0) || img.data.length !== img.width * img.height * 3) {
    throw new SoftsegError(`image ${i}: expected ${img.width}×${img.height}×3 RGB bytes, got ${img.data.length}`);
  }
}

/** Builds the generic teacher over a format-specific backend: resolves and checks the configuration. */
async function teacherFromBackend(source: string, backend: TeacherBackend, o: TeacherOptions): Promise<Teacher> {
  try {
    const meta = backend.metadata;
    const file = backend.file;
    const normalization = resolveNormalization(o, meta);
    const tta = resolveTta(o.tta);
    const size = resolveSize(o.size);
    if (size && backend.inputSize && (size[0] !== backend.inputSize[0] || size[1] !== backend.inputSize[1])) {
      throw new SoftsegError(`--size ${size.join('x')} does not match the model's fixed input size ${backend.inputSize.join('x')}`, { file, hint: `omit --size or pass --size ${backend.inputSize.join('x')}` });
    }
    const runSize = size ?? backend.inputSize;
    if (runSize && tta.scales.some((s) => s !== 1)) {
      throw new SoftsegError(`multi-scale TTA needs a model that takes any input size, but this teacher runs at a fixed ${runSize.join('x')}`, { file, hint: 'use --tta flip only, or drop --size' });
    }
    const multiple = o.multiple ?? backend.multiple ?? DEFAULT_MULTIPLE;
    if (!(Number.isInteger(multiple) && multiple >= 1)) throw new SoftsegError(`--multiple must be a positive integer, got ${multiple}`);
    const outputs = o.outputs ?? meta.outputs ?? 'logits';
    if (outputs !== 'logits' && outputs !== 'probabilities') throw new SoftsegError(`outputs must be "logits" or "probabilities", got ${String(outputs)}`);

    // Classes: the output signature, the metadata and --num-classes must agree.
    const claims: [string, number][] = [];
    if (backend.numClasses !== null) claims.push(['the model output', backend.numClasses]);
    if (meta.numClasses !== undefined) claims.push(['the metadata', meta.numClasses]);
    if (o.numClasses !== undefined) claims.push(['--num-classes', o.numClasses]);
    if (meta.classes && meta.numClasses === undefined) claims.push(['the metadata class list', meta.classes.length]);
    let numClasses = claims[0]?.[1];
    for (const [, n] of claims) {
      if (n !== numClasses) {
        throw new SoftsegError(`class count mismatch: ${claims.map(([w, c]) => `${w} says ${c}`).join(', ')}`, { file, hint: 'pass the --num-classes the teacher was trained with (or fix its metadata)' });
      }
    }
    if (numClasses === undefined) numClasses = await probeClasses(backend, runSize, multiple);
    if (!(Number.isInteger(numClasses) && numClasses >= 1)) throw new SoftsegError(`bad class count ${numClasses}`, { file });
    const classes = meta.classes && meta.classes.length === numClasses ? meta.classes : Array.from({ length: numClasses }, (_, i) => `class ${i}`);
    return new HostTeacher(source, backend, numClasses, classes, normalization, isIdentityTta(tta) ? { flip: false, scales: [1] } : tta, runSize, multiple, outputs);
  } catch (err) {
    await backend.dispose();
    throw err;
  }
}

/** Runs zeros through a model whose output signature does not name the class count. */
async function probeClasses(backend: TeacherBackend, runSize: [number, number] | null, multiple: number): Promise<number> {
  const [h, w] = runSize ?? [Math.max(32, multiple), Math.max(32, multiple)];
  const n = backend.fixedBatch ?? 1;
  try {
    return (await backend.run(new Float32Array(n * h * w * 3), n, h, w)).channels;
  } catch (err) {
    if (err instanceof SoftsegError) throw err;
    throw new SoftsegError(`cannot run the teacher on a ${h}×${w} test input (${(err as Error).message?.split('\n')[0]})`, { file: backend.file, hint: 'pass --size, --layout or --num-classes', cause: err });
  }
}

/**
 * Opens a teacher: a `.onnx` file (onnxruntime-node), a TensorFlow.js model.json (LayersModel or GraphModel),
 * a folder holding model.json, or a softseg run directory (its model/ or best/). Input size, normalisation,
 * class count and layout come from the model's metadata or `options`, and are checked against its signature.
 */
export async function openTeacher(path: string, options: TeacherOptions = {}): Promise<Teacher> {
  if (!existsSync(path)) throw new SoftsegError('teacher not found', { file: path, hint: 'pass a .onnx file, a TensorFlow.js model.json or a softseg run directory' });
  const isFile = statSync(path).isFile();
  const lower = path.toLowerCase();
  if (isFile && !lower.endsWith('.onnx') && !lower.endsWith('.json')) {
    throw new SoftsegError('not a teacher model (expected a .onnx file, a TensorFlow.js model.json or a folder holding one)', { file: path });
  }
  if (isFile && lower.endsWith('.onnx')) {
    const { openOnnxBackend } = await import('./onnx.js');
    return teacherFromBackend(path, await openOnnxBackend(path, options), options);
  }
  const { openTfjsBackend } = await import('./tfjs.js');
  return teacherFromBackend(path, await openTfjsBackend(path, options), options);
}
