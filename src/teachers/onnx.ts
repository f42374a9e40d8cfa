// ONNX teachers run with onnxruntime-node (CPU execution provider, intra-op threads = logical cores).
// onnxruntime-node is an optional dependency: it is imported only when an ONNX teacher is opened, and its
// absence is a SoftsegError that says how to install it. Only the few members used here are typed (locally),
// so softseg type-checks and runs without the package.
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import { SoftsegError } from '../errors.js';
import { nchwToNhwc, nhwcToNchw } from './ops.js';
import type { TeacherBackend, TeacherMetadata, TeacherOptions } from './teacher.js';
import { metadataFromJson, resolveLayout } from './metadata.js';

/** The parts of onnxruntime-node's API softseg uses (1.x). */
interface OrtTensor {
  readonly dims: readonly number[];
  readonly type: string;
  readonly data: unknown;
}
interface OrtValueMetadata {
  readonly name: string;
  readonly isTensor: boolean;
  readonly type?: string;
  readonly shape?: readonly (number | string)[];
}
interface OrtSession {
  readonly inputNames: readonly string[];
  readonly outputNames: readonly string[];
  readonly inputMetadata?: readonly OrtValueMetadata[];
  readonly outputMetadata?: readonly OrtValueMetadata[];
  run(feeds: Record<string, OrtTensor>): Promise<Record<string, OrtTensor>>;
  release(): Promise<void>;
}
export interface OrtModule {
  InferenceSession: {
    create(
      model: Uint8Array,
      options?: { executionProviders?: string[]; intraOpNumThreads?: number; interOpNumThreads?: number; graphOptimizationLevel?: string; extra?: Record<string, unknown> },
    ): Promise<OrtSession>;
  };
  Tensor: new (type: 'float32', data: Float32Array, dims: readonly number[]) => OrtTensor;
}

const ONNXRUNTIME_PACKAGE = 'onnxruntime-node';
export const ONNXRUNTIME_INSTALL_HINT =
  'npm install onnxruntime-node (its install script downloads CUDA files; set ONNXRUNTIME_NODE_INSTALL=skip to skip that download ' +
  'and use the CPU build it ships, e.g. ONNXRUNTIME_NODE_INSTALL=skip npm install onnxruntime-node)';

type OrtLoader = () => Promise<unknown>;
const defaultLoader: OrtLoader = () => import(ONNXRUNTIME_PACKAGE);
let loader: OrtLoader = defaultLoader;
let cached: Promise<OrtModule> | undefined;

/** Test hook: replaces how onnxruntime-node is imported (e.g. to simulate its absence). Pass nothing to restore. */
export function setOnnxRuntimeLoaderForTesting(hook?: OrtLoader): void {
  loader = hook ?? defaultLoader;
  cached = undefined;
}

/** Imports onnxruntime-node, or throws a SoftsegError saying how to install it. */
export function loadOnnxRuntime(file?: string): Promise<OrtModule> {
  cached ??= (async () => {
    let mod: unknown;
    try {
      mod = await loader();
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      const missing = code === 'ERR_MODULE_NOT_FOUND' || code === 'MODULE_NOT_FOUND';
      const why = missing ? 'onnxruntime-node is not installed' : `onnxruntime-node is installed but failed to load (${(err as Error).message?.split('\n')[0]})`;
      throw new SoftsegError(`${why}; it is needed to run ONNX teachers`, { file, hint: ONNXRUNTIME_INSTALL_HINT, cause: err });
    }
    const m = ((mod as { default?: unknown }).default ?? mod) as Partial<OrtModule>;
    const ort = (m.InferenceSession ? m : mod) as OrtModule;
    if (!ort.InferenceSession || !ort.Tensor) throw new SoftsegError('onnxruntime-node loaded but has no InferenceSession', { file, hint: ONNXRUNTIME_INSTALL_HINT });
    return ort;
  })();
  cached.catch(() => (cached = undefined));
  return cached;
}

/**
 * The ModelProto `metadata_props` (field 14: key/value strings) of an ONNX file, read straight off the
 * protobuf wire format (only the top-level fields are walked; the graph is skipped).
 */
export function onnxMetadataProps(bytes: Uint8Array): Record<string, string> {
  const out: Record<string, string> = {};
  const decoder = new TextDecoder();
  const varint = (buf: Uint8Array, pos: number): [number, number] => {
    let v = 0, mul = 1;
    for (;;) {
      if (pos >= buf.length) throw new RangeError('truncated varint');
      const b = buf[pos++]!;
      v += (b & 0x7f) * mul;
      if (b < 0x80) return [v, pos];
      mul *= 128;
      if (mul > 2 ** 63) throw new RangeError('varint too long');
    }
  };
  const fields = (buf: Uint8Array, each: (field: number, value: Uint8Array) => void) => {
    let pos = 0;
    while (pos < buf.length) {
      const [tag, p1] = varint(buf, pos);
      const field = Math.floor(tag / 8), wire = tag % 8;
      pos = p1;
      if (wire === 0) pos = varint(buf, pos)[1];
      else if (wire === 1) pos += 8;
      else if (wire === 5) pos += 4;
      else if (wire === 2) {
        const [len, p2] = varint(buf, pos);
        if (p2 + len > buf.length) throw new RangeError('truncated field');
        each(field, buf.subarray(p2, p2 + len));
        pos = p2 + len;
      } else throw new RangeError(`unsupported wire type ${wire}`);
    }
  };
  fields(bytes, (field, value) => {
    if (field !== 14) return;
    let key = '', val = '';
    fields(value, (f, v) => {
      if (f === 1) key = decoder.decode(v);
      else if (f === 2) val = decoder.decode(v);
    });
    out[key] = val;
  });
  return out;
}

/** Teacher metadata an ONNX file may carry: metadata_props key `softseg` holding softseg.json-like JSON. */
function onnxTeacherMetadata(bytes: Uint8Array, file: string): TeacherMetadata {
  let props: Record<string, string>;
  try {
    props = onnxMetadataProps(bytes);
  } catch {
    return {}; // not parseable here: onnxruntime will say what is wrong with the file
  }
  const text = props.softseg;
  if (text === undefined) return {};
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    throw new SoftsegError(`the ONNX metadata "softseg" is not JSON (${(err as Error).message})`, { file });
  }
  if (typeof raw !== 'object' || raw === null) throw new SoftsegError('the ONNX metadata "softseg" is not a JSON object', { file });
  return metadataFromJson(raw as Record<string, unknown>, file);
}

function shapeText(shape: readonly (number | string)[]): string {
  return `[${shape.map(String).join(', ')}]`;
}

/** Opens an ONNX teacher (see {@link openTeacher}). */
export async function openOnnxBackend(path: string, o: TeacherOptions): Promise<TeacherBackend> {
  const ort = await loadOnnxRuntime(path);
  let bytes: Uint8Array;
  try {
    bytes = new Uint8Array(await readFile(path));
  } catch (err) {
    throw new SoftsegError(`cannot read the ONNX teacher (${(err as Error).message})`, { file: path, cause: err });
  }
  const weightsHash = createHash('sha256').update(bytes).digest('hex');
  const metadata = onnxTeacherMetadata(bytes, path);
  const threads = o.threads ?? availableParallelism();
  if (!(Number.isInteger(threads) && threads >= 1)) throw new SoftsegError(`threads must be a positive integer, got ${threads}`);
  let session: OrtSession;
  try {
    // Spinning intra-op threads are off: labelling decodes and writes on the same cores while the teacher runs,
    // and with spinning on, 2 threads ran slower than 1 on a loaded 2-vCPU machine (69 vs 108 img/s; 136 without spinning).
    session = await ort.InferenceSession.create(bytes, {
      executionProviders: ['cpu'],
      intraOpNumThreads: threads,
      interOpNumThreads: 1,
      graphOptimizationLevel: 'all',
      extra: { session: { intra_op: { allow_spinning: '0' } } },
    });
  } catch (err) {
    throw new SoftsegError(`not a usable ONNX model (onnxruntime: ${(err as Error).message?.split('\n')[0]})`, { file: path, hint: 'pass a .onnx file exported with torch.onnx.export or similar', cause: err });
  }
  try {
    if (session.inputNames.length !== 1) {
      throw new SoftsegError(`the ONNX teacher has ${session.inputNames.length} inputs (${session.inputNames.join(', ')}), expected one image input`, { file: path });
    }
    const inputName = session.inputNames[0]!;
    const outputName = session.outputNames[0]!;
    const inMeta = session.inputMetadata?.[0];
    const outMeta = session.outputMetadata?.[0];
    const inShape = inMeta?.isTensor && inMeta.shape && inMeta.shape.length > 0 ? inMeta.shape : ['N', 'C', 'H', 'W'];
    if (inMeta?.isTensor && inMeta.type && inMeta.type !== 'float32') {
      throw new SoftsegError(`the ONNX teacher's input "${inputName}" is ${inMeta.type}, expected float32 images`, { file: path, hint: 'export the model with a float32 input (normalisation is applied by softseg)' });
    }
    const layout = resolveLayout(inShape, o.layout ?? metadata.layout, 'nchw', path);
    const num = (d: number | string | undefined) => (typeof d === 'number' && d > 0 ? d : null);
    const [ih, iw] = layout === 'nchw' ? [num(inShape[2]), num(inShape[3])] : [num(inShape[1]), num(inShape[2])];
    const outShape = outMeta?.isTensor && outMeta.shape && outMeta.shape.length > 0 ? outMeta.shape : null;
    if (outShape && outShape.length !== 4) {
      throw new SoftsegError(`the ONNX teacher's output "${outputName}" has shape ${shapeText(outShape)}, expected 4-D class scores (${layout === 'nchw' ? 'N, C, H, W' : 'N, H, W, C'})`, {
        file: path,
        hint: 'export the logits (or probabilities), not the argmax',
      });
    }
    const numClasses = outShape ? num(layout === 'nchw' ? outShape[1] : outShape[3]) : null;
    const Tensor = ort.Tensor;
    return {
      kind: 'onnx',
      format: 'onnx',
      file: path,
      weightsHash,
      layout,
      inputSize: ih && iw ? [ih, iw] : null,
      fixedBatch: num(inShape[0]),
      numClasses,
      multiple: null,
      metadata,
      async run(x, n, h, w) {
        const feed = layout === 'nchw' ? new Tensor('float32', nhwcToNchw(x, n, h, w, 3), [n, 3, h, w]) : new Tensor('float32', x, [n, h, w, 3]);
        const result = await session.run({ [inputName]: feed });
        const y = result[outputName]!;
        if (y.type !== 'float32' || y.dims.length !== 4) {
          throw new SoftsegError(`the ONNX teacher's output is ${y.type} ${shapeText(y.dims)}, expected float32 4-D class scores`, { file: path });
        }
        const data = y.data as Float32Array;
        if (layout === 'nchw') {
          const [, c, oh, ow] = y.dims as [number, number, number, number];
          return { data: nchwToNhwc(data, n, c, oh, ow), height: oh, width: ow, channels: c };
        }
        const [, oh, ow, c] = y.dims as [number, number, number, number];
        return { data, height: oh, width: ow, channels: c };
      },
      dispose: () => session.release(),
    };
  } catch (err) {
    await session.release();
    throw err;
  }
}
