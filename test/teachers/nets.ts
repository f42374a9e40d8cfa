// Test networks built by the tests themselves: a tiny segmentation net (Conv3×3 → ReLU → Conv1×1) written as
// an ONNX graph with onnx-proto and the same network as a TF.js LayersModel, plus a writer of arbitrary ONNX
// graphs (used by the zoo exporter in export-onnx.ts).
import { mkdir, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import onnxProto from 'onnx-proto';
import { saveModel } from '../../src/models/io.js';

const { onnx } = onnxProto;
type Dim = number | string;

/** Weights of the tiny net, PyTorch layout: w1 [F, 3, 3, 3] (OIHW), b1 [F], w2 [C, F, 1, 1], b2 [C]. */
export interface TinyNetWeights {
  features: number;
  classes: number;
  w1: Float32Array;
  b1: Float32Array;
  w2: Float32Array;
  b2: Float32Array;
}

/** Deterministic pseudo-random weights (a small LCG, values in [-scale, scale]). */
export function tinyNetWeights(features: number, classes: number, seed = 1, scale = 0.5): TinyNetWeights {
  let s = seed >>> 0;
  const rnd = () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return (s / 2 ** 32) * 2 - 1;
  };
  const fill = (n: number, k: number) => Float32Array.from({ length: n }, () => rnd() * k);
  return { features, classes, w1: fill(features * 27, scale), b1: fill(features, 0.1), w2: fill(classes * features, scale * 2), b2: fill(classes, 0.2) };
}

export interface OnnxNode {
  op: string;
  inputs: string[];
  outputs: string[];
  attrs?: Record<string, number | number[] | string>;
}

export interface OnnxGraphSpec {
  input: { name: string; dims: Dim[] };
  output: { name: string; dims: Dim[] };
  initializers: { name: string; dims: number[]; data: Float32Array | BigInt64Array }[];
  nodes: OnnxNode[];
  metadata?: Record<string, string>;
  opset?: number;
}

function valueInfo(name: string, dims: Dim[]) {
  return onnx.ValueInfoProto.create({
    name,
    type: onnx.TypeProto.create({
      tensorType: onnx.TypeProto.Tensor.create({
        elemType: onnx.TensorProto.DataType.FLOAT,
        shape: onnx.TensorShapeProto.create({
          dim: dims.map((d) => (typeof d === 'number' ? onnx.TensorShapeProto.Dimension.create({ dimValue: d }) : onnx.TensorShapeProto.Dimension.create({ dimParam: d }))),
        }),
      }),
    }),
  });
}

function attribute(name: string, v: number | number[] | string) {
  const T = onnx.AttributeProto.AttributeType;
  if (typeof v === 'string') return onnx.AttributeProto.create({ name, type: T.STRING, s: new TextEncoder().encode(v) });
  if (Array.isArray(v)) return onnx.AttributeProto.create({ name, type: T.INTS, ints: v });
  return Number.isInteger(v) ? onnx.AttributeProto.create({ name, type: T.INT, i: v }) : onnx.AttributeProto.create({ name, type: T.FLOAT, f: v });
}

/** Encodes an ONNX model (IR 8, default opset 13). */
export function encodeOnnx(spec: OnnxGraphSpec): Uint8Array {
  const graph = onnx.GraphProto.create({
    name: 'test',
    input: [valueInfo(spec.input.name, spec.input.dims)],
    output: [valueInfo(spec.output.name, spec.output.dims)],
    initializer: spec.initializers.map((t) =>
      t.data instanceof BigInt64Array
        ? onnx.TensorProto.create({ name: t.name, dims: t.dims, dataType: onnx.TensorProto.DataType.INT64, rawData: new Uint8Array(t.data.buffer.slice(0)) })
        : onnx.TensorProto.create({ name: t.name, dims: t.dims, dataType: onnx.TensorProto.DataType.FLOAT, rawData: new Uint8Array(t.data.buffer.slice(t.data.byteOffset, t.data.byteOffset + t.data.byteLength)) }),
    ),
    node: spec.nodes.map((n, i) =>
      onnx.NodeProto.create({
        name: `${n.op}_${i}`,
        opType: n.op,
        input: n.inputs,
        output: n.outputs,
        attribute: Object.entries(n.attrs ?? {}).map(([k, v]) => attribute(k, v)),
      }),
    ),
  });
  const model = onnx.ModelProto.create({
    irVersion: 8,
    producerName: 'softseg-tests',
    opsetImport: [onnx.OperatorSetIdProto.create({ domain: '', version: spec.opset ?? 13 })],
    graph,
    metadataProps: Object.entries(spec.metadata ?? {}).map(([key, value]) => onnx.StringStringEntryProto.create({ key, value })),
  });
  return onnx.ModelProto.encode(model).finish();
}

export interface TinyOnnxOptions {
  /** 'nchw' (default) or 'nhwc' (Transposes around the convolutions). */
  layout?: 'nchw' | 'nhwc';
  /** Fixed [h, w] instead of dynamic H/W. */
  size?: [number, number];
  /** Fixed batch size instead of a dynamic N. */
  batch?: number;
  /** Append a Softmax: the model outputs probabilities. */
  probabilities?: boolean;
  metadata?: Record<string, string>;
}

/** The tiny net as ONNX bytes. */
export function tinyNetOnnx(w: TinyNetWeights, o: TinyOnnxOptions = {}): Uint8Array {
  const layout = o.layout ?? 'nchw';
  const n: Dim = o.batch ?? 'N';
  const [h, ww]: Dim[] = o.size ?? ['H', 'W'];
  const nodes: OnnxNode[] = [];
  let x = 'image';
  if (layout === 'nhwc') {
    nodes.push({ op: 'Transpose', inputs: ['image'], outputs: ['x_nchw'], attrs: { perm: [0, 3, 1, 2] } });
    x = 'x_nchw';
  }
  nodes.push({ op: 'Conv', inputs: [x, 'w1', 'b1'], outputs: ['h1'], attrs: { kernel_shape: [3, 3], pads: [1, 1, 1, 1] } });
  nodes.push({ op: 'Relu', inputs: ['h1'], outputs: ['h2'] });
  let last = 'logits_nchw';
  nodes.push({ op: 'Conv', inputs: ['h2', 'w2', 'b2'], outputs: [last], attrs: { kernel_shape: [1, 1] } });
  if (o.probabilities) {
    nodes.push({ op: 'Softmax', inputs: [last], outputs: ['probs_nchw'], attrs: { axis: 1 } });
    last = 'probs_nchw';
  }
  if (layout === 'nhwc') {
    nodes.push({ op: 'Transpose', inputs: [last], outputs: ['out'], attrs: { perm: [0, 2, 3, 1] } });
  } else {
    nodes.push({ op: 'Identity', inputs: [last], outputs: ['out'] });
  }
  return encodeOnnx({
    input: { name: 'image', dims: layout === 'nchw' ? [n, 3, h, ww] : [n, h, ww, 3] },
    output: { name: 'out', dims: layout === 'nchw' ? [n, w.classes, h, ww] : [n, h, ww, w.classes] },
    initializers: [
      { name: 'w1', dims: [w.features, 3, 3, 3], data: w.w1 },
      { name: 'b1', dims: [w.features], data: w.b1 },
      { name: 'w2', dims: [w.classes, w.features, 1, 1], data: w.w2 },
      { name: 'b2', dims: [w.classes], data: w.b2 },
    ],
    nodes,
    metadata: o.metadata,
  });
}

export async function writeBytes(path: string, bytes: Uint8Array): Promise<void> {
  await mkdir(dirname(path), { recursive: true });
  await writeFile(path, bytes);
}

/** OIHW → HWIO. */
export function oihwToHwio(w: Float32Array, o: number, i: number, kh: number, kw: number): Float32Array {
  const out = new Float32Array(w.length);
  for (let a = 0; a < o; a++) for (let b = 0; b < i; b++) for (let y = 0; y < kh; y++) for (let x = 0; x < kw; x++) {
    out[((y * kw + x) * i + b) * o + a] = w[((a * i + b) * kh + y) * kw + x]!;
  }
  return out;
}

/** The tiny net as a TF.js LayersModel (NHWC, dynamic H/W). */
export function tinyNetLayers(w: TinyNetWeights): tf.LayersModel {
  const input = tf.input({ shape: [null, null, 3], name: 'image' });
  const c1 = tf.layers.conv2d({ filters: w.features, kernelSize: 3, padding: 'same', activation: 'relu', name: 'c1' });
  const c2 = tf.layers.conv2d({ filters: w.classes, kernelSize: 1, padding: 'same', name: 'c2' });
  const out = c2.apply(c1.apply(input)) as tf.SymbolicTensor;
  const model = tf.model({ inputs: input, outputs: out, name: 'tiny' });
  c1.setWeights([tf.tensor4d(oihwToHwio(w.w1, w.features, 3, 3, 3), [3, 3, 3, w.features]), tf.tensor1d(w.b1)]);
  c2.setWeights([tf.tensor4d(oihwToHwio(w.w2, w.classes, w.features, 1, 1), [1, 1, w.features, w.classes]), tf.tensor1d(w.b2)]);
  return model;
}

/** Saves the tiny net as a TF.js layers model.json + weights.bin in `dir`. */
export async function saveTinyNetLayers(w: TinyNetWeights, dir: string): Promise<void> {
  const model = tinyNetLayers(w);
  await saveModel(model, dir);
  model.dispose();
}

/** A deterministic RGB test image with some structure (gradients + a square). */
export function testImage(width: number, height: number, seed = 0): { data: Uint8Array; width: number; height: number } {
  const data = new Uint8Array(width * height * 3);
  for (let y = 0; y < height; y++) for (let x = 0; x < width; x++) {
    const i = (y * width + x) * 3;
    const inside = x > width / 4 && x < (3 * width) / 4 && y > height / 3 && y < (2 * height) / 3;
    data[i] = (x * 255) / Math.max(1, width - 1);
    data[i + 1] = (y * 255) / Math.max(1, height - 1);
    data[i + 2] = inside ? 230 : ((x * 7 + y * 13 + seed * 31) % 97) * 2;
  }
  return { data, width, height };
}

/**
 * The tiny net as a TF.js GraphModel (format "graph-model": a GraphDef in JSON, as tensorflowjs_converter
 * writes it) in `dir`: Placeholder → Conv2D → BiasAdd → Relu → Conv2D → BiasAdd, NHWC, dynamic N/H/W.
 */
export async function saveTinyNetGraph(w: TinyNetWeights, dir: string): Promise<void> {
  const b64 = (s: string) => Buffer.from(s).toString('base64');
  const f32 = { type: 'DT_FLOAT' };
  const shape = (dims: number[]) => ({ dim: dims.map((d) => ({ size: String(d) })) });
  const constNode = (name: string, dims: number[]) => ({ name, op: 'Const', attr: { value: { tensor: { dtype: 'DT_FLOAT', tensorShape: shape(dims) } }, dtype: f32 } });
  const conv = (name: string, x: string, k: string) => ({
    name,
    op: 'Conv2D',
    input: [x, k],
    attr: { T: f32, strides: { list: { i: ['1', '1', '1', '1'] } }, padding: { s: b64('SAME') }, data_format: { s: b64('NHWC') }, dilations: { list: { i: ['1', '1', '1', '1'] } } },
  });
  const k1 = oihwToHwio(w.w1, w.features, 3, 3, 3), k2 = oihwToHwio(w.w2, w.classes, w.features, 1, 1);
  const nodes = [
    { name: 'image', op: 'Placeholder', attr: { dtype: f32, shape: { shape: shape([-1, -1, -1, 3]) } } },
    constNode('k1', [3, 3, 3, w.features]),
    constNode('b1', [w.features]),
    constNode('k2', [1, 1, w.features, w.classes]),
    constNode('b2', [w.classes]),
    conv('conv1', 'image', 'k1'),
    { name: 'bias1', op: 'BiasAdd', input: ['conv1', 'b1'], attr: { T: f32, data_format: { s: b64('NHWC') } } },
    { name: 'relu1', op: 'Relu', input: ['bias1'], attr: { T: f32 } },
    conv('conv2', 'relu1', 'k2'),
    { name: 'logits', op: 'BiasAdd', input: ['conv2', 'b2'], attr: { T: f32, data_format: { s: b64('NHWC') } } },
  ];
  const parts = [k1, w.b1, k2, w.b2];
  const bytes = new Uint8Array(parts.reduce((s, p) => s + p.byteLength, 0));
  let off = 0;
  for (const p of parts) {
    bytes.set(new Uint8Array(p.buffer, p.byteOffset, p.byteLength), off);
    off += p.byteLength;
  }
  const json = {
    format: 'graph-model',
    generatedBy: 'softseg-tests',
    convertedBy: null,
    modelTopology: { node: nodes, library: {}, versions: { producer: 1 } },
    weightsManifest: [
      {
        paths: ['group1-shard1of1.bin'],
        weights: [
          { name: 'k1', shape: [3, 3, 3, w.features], dtype: 'float32' },
          { name: 'b1', shape: [w.features], dtype: 'float32' },
          { name: 'k2', shape: [1, 1, w.features, w.classes], dtype: 'float32' },
          { name: 'b2', shape: [w.classes], dtype: 'float32' },
        ],
      },
    ],
  };
  await writeBytes(`${dir}/group1-shard1of1.bin`, bytes);
  await writeBytes(`${dir}/model.json`, new TextEncoder().encode(JSON.stringify(json)));
}
