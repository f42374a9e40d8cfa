// TensorFlow.js teachers: a softseg run/model directory (a zoo model with softseg.json), any LayersModel
// model.json, or a GraphModel model.json, read from disk without tfjs-node (the files are read here and handed
// to TF.js through an in-memory IO handler, hashing the bytes on the way for the fingerprint).
import { createHash } from 'node:crypto';
import { readFile, stat } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import '../models/layers.js'; // registers the custom layers a saved zoo model may name
import type { SegModel } from '../models/base.js';
import { SoftsegError } from '../errors.js';
import { modelDirectory, openTrainedModel } from '../inference/model-dir.js';
import { readSoftsegJson, SOFTSEG_JSON } from '../inference/softseg-json.js';
import { metadataFromJson, resolveLayout } from './metadata.js';
import type { RawOutput, TeacherBackend, TeacherMetadata, TeacherOptions, TensorLayout } from './teacher.js';

function reason(err: unknown): string {
  return (err instanceof Error ? err.message : String(err)).split('\n')[0]!.slice(0, 200);
}

interface ModelFiles {
  jsonPath: string;
  json: tf.io.ModelJSON;
  weightSpecs: tf.io.WeightsManifestEntry[];
  weightData: ArrayBuffer;
  weightsHash: string;
}

/** Reads model.json and its weight files, hashing all the bytes (model.json first, then the weights in manifest order). */
async function readModelFiles(jsonPath: string): Promise<ModelFiles> {
  let text: Buffer;
  try {
    text = await readFile(jsonPath);
  } catch (err) {
    throw new SoftsegError(`cannot read the teacher's model.json (${reason(err)})`, { file: jsonPath, cause: err });
  }
  let json: tf.io.ModelJSON;
  try {
    json = JSON.parse(text.toString('utf8')) as tf.io.ModelJSON;
  } catch (err) {
    throw new SoftsegError(`not a TensorFlow.js model (the file is not JSON: ${reason(err)})`, { file: jsonPath, cause: err });
  }
  if (typeof json !== 'object' || json === null || typeof json.modelTopology !== 'object' || json.modelTopology === null) {
    throw new SoftsegError('not a TensorFlow.js model.json (no modelTopology)', { file: jsonPath, hint: 'pass the model.json written by tf.LayersModel.save or tensorflowjs_converter' });
  }
  const hash = createHash('sha256');
  const addBytes = (b: Uint8Array) => hash.update(`${b.byteLength}:`).update(b);
  addBytes(text);
  const manifest = json.weightsManifest ?? [];
  const weightSpecs = manifest.flatMap((group) => group.weights);
  const buffers: Uint8Array[] = [];
  for (const p of manifest.flatMap((group) => group.paths)) {
    const file = join(dirname(jsonPath), p);
    let bytes: Buffer;
    try {
      bytes = await readFile(file);
    } catch (err) {
      throw new SoftsegError(`missing weights file of the teacher (${reason(err)})`, { file, cause: err });
    }
    addBytes(bytes);
    buffers.push(bytes);
  }
  const total = buffers.reduce((s, b) => s + b.byteLength, 0);
  const weightData = new Uint8Array(total);
  let off = 0;
  for (const b of buffers) {
    weightData.set(b, off);
    off += b.byteLength;
  }
  return { jsonPath, json, weightSpecs, weightData: weightData.buffer, weightsHash: hash.digest('hex') };
}

function handlerFor(files: ModelFiles): tf.io.IOHandler {
  const artifacts = tf.io.getModelArtifactsForJSONSync(files.json, files.weightSpecs, files.weightData);
  return { load: async () => artifacts };
}

/** What softseg.json beside model.json says about the teacher (normalisation, classes), when there is one. */
async function teacherMetadata(dir: string): Promise<TeacherMetadata> {
  const meta = await readSoftsegJson(dir);
  return meta ? metadataFromJson(meta, join(dir, SOFTSEG_JSON)) : {};
}

function dims(shape: readonly (number | string | null)[] | undefined): (number | null)[] {
  return (shape ?? []).map((d) => (typeof d === 'number' && d > 0 ? d : null));
}

/** Spatial size, batch and classes read off input/output shapes in the given layout. */
function signature(inShape: (number | null)[], outShape: (number | null)[] | null, layout: TensorLayout) {
  const [h, w] = layout === 'nchw' ? [inShape[2], inShape[3]] : [inShape[1], inShape[2]];
  const inputSize: [number, number] | null = h && w ? [h, w] : null;
  const classes = outShape && outShape.length === 4 ? (layout === 'nchw' ? outShape[1] : outShape[3]) ?? null : null;
  return { inputSize, fixedBatch: inShape[0] ?? null, numClasses: classes };
}

/** Runs a tensor function on an NHWC batch in the model's layout and returns NHWC host data. */
async function runLayout(layout: TensorLayout, x: Float32Array, n: number, h: number, w: number, call: (t: tf.Tensor4D) => Promise<tf.Tensor>): Promise<RawOutput> {
  const input = tf.tidy(() => {
    const t = tf.tensor4d(x, [n, h, w, 3]);
    return layout === 'nchw' ? tf.transpose(t, [0, 3, 1, 2]) : t;
  });
  let y: tf.Tensor | undefined;
  let nhwc: tf.Tensor | undefined;
  try {
    y = await call(input);
    if (y.rank !== 4) throw new SoftsegError(`the teacher's output has shape [${y.shape.join(', ')}], expected 4-D class scores`);
    nhwc = layout === 'nchw' ? tf.transpose(y, [0, 2, 3, 1]) : y;
    const [, oh, ow, c] = nhwc.shape as [number, number, number, number];
    return { data: (await nhwc.data()) as Float32Array, height: oh, width: ow, channels: c };
  } finally {
    input.dispose();
    if (nhwc && nhwc !== y) nhwc.dispose();
    y?.dispose();
  }
}

function firstTensor(y: tf.Tensor | tf.Tensor[] | tf.NamedTensorMap): tf.Tensor {
  if (y instanceof tf.Tensor) return y;
  const list = Array.isArray(y) ? y : Object.values(y);
  list.slice(1).forEach((t) => t.dispose());
  return list[0]!;
}

function zooBackend(seg: SegModel, files: ModelFiles, meta: TeacherMetadata, o: TeacherOptions): TeacherBackend {
  if (o.layout === 'nchw') throw new SoftsegError('--layout nchw, but softseg models are NHWC', { file: files.jsonPath, hint: 'omit --layout' });
  return {
    kind: 'tfjs',
    format: 'softseg',
    file: files.jsonPath,
    weightsHash: files.weightsHash,
    layout: 'nhwc',
    inputSize: seg.options.inputSize,
    fixedBatch: null,
    numClasses: seg.options.numClasses,
    multiple: seg.sizeMultiple,
    metadata: meta,
    run: (x, n, h, w) => runLayout('nhwc', x, n, h, w, async (t) => tf.tidy(() => seg.apply(t, false).main)),
    dispose: async () => seg.dispose(),
  };
}

/** Opens a TF.js teacher (see {@link openTeacher}). */
export async function openTfjsBackend(path: string, o: TeacherOptions): Promise<TeacherBackend> {
  const jsonPath = (await stat(path)).isFile() ? path : join(modelDirectory(path), 'model.json');
  const dir = dirname(jsonPath);
  const files = await readModelFiles(jsonPath);
  const topology = files.json.modelTopology as Record<string, unknown>;
  const isGraph = files.json.format === 'graph-model' || Array.isArray(topology.node);
  const sidecar = basename(jsonPath) === 'model.json' ? await teacherMetadata(dir) : {};

  if (!isGraph && (files.json.userDefinedMetadata as { softseg?: unknown } | undefined)?.softseg) {
    // A softseg zoo model: the same loader eval/predict use, so metadata handling is identical.
    const trained = await openTrainedModel(dir, 'model', { inference: true });
    const meta: TeacherMetadata = { ...sidecar, numClasses: trained.meta.numClasses, classes: trained.meta.classes, normalization: trained.meta.normalization };
    return zooBackend(trained.model, files, meta, o);
  }

  if (!isGraph) {
    let model: tf.LayersModel;
    try {
      model = await tf.loadLayersModel(handlerFor(files));
    } catch (err) {
      throw new SoftsegError(`cannot load the TensorFlow.js LayersModel (${reason(err)})`, { file: jsonPath, cause: err });
    }
    try {
      if (model.inputs.length !== 1) throw new SoftsegError(`the teacher has ${model.inputs.length} inputs, expected one image input`, { file: jsonPath });
      const inShape = model.inputs[0]!.shape;
      const layout = resolveLayout(inShape, o.layout ?? sidecar.layout, 'nhwc', jsonPath);
      const sig = signature(dims(inShape), dims(model.outputs[0]!.shape), layout);
      return {
        kind: 'tfjs',
        format: 'layers-model',
        file: jsonPath,
        weightsHash: files.weightsHash,
        layout,
        ...sig,
        multiple: null,
        metadata: sidecar,
        run: (x, n, h, w) => runLayout(layout, x, n, h, w, async (t) => tf.tidy(() => firstTensor(model.predict(t) as tf.Tensor | tf.Tensor[]))),
        dispose: async () => {
          model.dispose();
        },
      };
    } catch (err) {
      model.dispose();
      throw err;
    }
  }

  let model: tf.GraphModel;
  try {
    model = await tf.loadGraphModel(handlerFor(files));
  } catch (err) {
    throw new SoftsegError(`cannot load the TensorFlow.js GraphModel (${reason(err)})`, { file: jsonPath, cause: err });
  }
  try {
    if (model.inputs.length !== 1) throw new SoftsegError(`the teacher has ${model.inputs.length} inputs (${model.inputs.map((i) => i.name).join(', ')}), expected one image input`, { file: jsonPath });
    const inShape = model.inputs[0]!.shape ?? [null, null, null, null];
    const layout = resolveLayout(inShape, o.layout ?? sidecar.layout, 'nhwc', jsonPath);
    const outShape = model.outputs[0]?.shape;
    const sig = signature(dims(inShape), outShape ? dims(outShape) : null, layout);
    const outputName = model.outputs[0]?.name;
    return {
      kind: 'tfjs',
      format: 'graph-model',
      file: jsonPath,
      weightsHash: files.weightsHash,
      layout,
      ...sig,
      multiple: null,
      metadata: sidecar,
      run: (x, n, h, w) => runLayout(layout, x, n, h, w, async (t) => firstTensor(await model.executeAsync(t, outputName))),
      dispose: async () => {
        model.dispose();
      },
    };
  } catch (err) {
    model.dispose();
    throw err;
  }
}
