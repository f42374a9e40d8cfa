// Saving and loading zoo models in the TensorFlow.js layers format from Node without tfjs-node:
// `dir/model.json` (topology + weights manifest, loadable in a browser with tf.loadLayersModel) and
// `dir/weights.bin`. Each file is written to a temporary name and renamed into place, weights first,
// so a reader never sees a model.json whose weights are missing or stale.
//
// The saved files name only stock TensorFlow.js layer classes, so a trained model loads in plain TensorFlow.js
// (a web page, Node without softseg). The one training layer without a stock twin, AtrousConv2D (TF.js has no
// gradient for dilated convolutions), is written as its stock equivalent and mapped back here on load:
// - a full atrous conv → `Conv2D` with `dilation_rate` [r, r] (stock Conv2D computes dilated convolutions);
// - a depthwise atrous conv → `DepthwiseConv2D` whose k×k kernel is spread onto a (r·(k−1)+1)² grid with zeros
//   between the taps (stock DepthwiseConv2D ignores `dilation_rate` in TF.js 4.22 — it would compute an
//   undilated convolution — while the zero-spread kernel computes exactly the dilated one).
// model.json's `userDefinedMetadata.softseg.dilated` ({ layer name: rate }) lists these layers; on load they
// become AtrousConv2D again (kernel taps gathered back), so a loaded model trains like a freshly built one.
// Files written before this (class names SoftsegAtrousConv2D / SoftsegBroadcastLike: softseg up to 9487cec)
// still load with their own topology (models/layers.ts keeps both classes registered); saving such a model again
// writes the stock-only form: the broadcast becomes pool + 0 × (the first other input of the Concatenate that
// takes it), as deeplabv3.ts builds it today.
import { mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { SoftsegError } from '../errors.js';
import { writeFileAtomic } from '../data/fs-util.js';
import { wrapLayersModel, type ResolvedOptions, type SegModel } from './base.js';
import { convInitializer, depthwiseInitializer } from './init.js';
import './layers.js'; // registers the custom layers a saved model may name
import { getArchitecture } from './registry.js';

export const MODEL_JSON = 'model.json';
export const WEIGHTS_BIN = 'weights.bin';

function toBytes(data: tf.io.WeightData | undefined): Uint8Array {
  if (data === undefined) return new Uint8Array(0);
  const buffer = Array.isArray(data) ? tf.io.CompositeArrayBuffer.join(data) : data;
  return new Uint8Array(buffer);
}

/** A layer entry of a Keras-JSON topology (the `modelTopology` of model.json). */
interface LayerJson {
  class_name: string;
  name?: string;
  config: Record<string, unknown>;
  inbound_nodes?: unknown;
}

/** What softseg keeps in model.json's userDefinedMetadata. */
interface SoftsegMetadata {
  name: string;
  options: ResolvedOptions;
  /** Layers saved as stock layers that train as AtrousConv2D: name → dilation rate. */
  dilated?: Record<string, number>;
}

type Metadata = tf.io.ModelArtifacts['userDefinedMetadata'];

const ATROUS = 'SoftsegAtrousConv2D';
/** softseg's own broadcast layer, which only model.json files written before the stock-only form hold. */
const LEGACY_BROADCAST = 'SoftsegBroadcastLike';

function topologyLayers(topology: unknown): LayerJson[] {
  const layers = (topology as { config?: { layers?: unknown } } | null)?.config?.layers;
  return Array.isArray(layers) ? (layers as LayerJson[]) : [];
}

function layerName(layer: LayerJson): string {
  return String(layer.config['name'] ?? layer.name);
}

/** One weight of a weights manifest with its bytes. */
interface Weight {
  spec: tf.io.WeightsManifestEntry;
  bytes: Uint8Array;
}

const BYTES_PER_ELEMENT: Record<string, number> = { float32: 4, int32: 4, bool: 1, uint8: 1, uint16: 2, float16: 2 };

function splitWeights(specs: tf.io.WeightsManifestEntry[], data: ArrayBuffer, file: string): Weight[] {
  let offset = 0;
  return specs.map((spec) => {
    const per = BYTES_PER_ELEMENT[spec.quantization?.dtype ?? spec.dtype];
    if (per === undefined) throw new SoftsegError(`weight ${spec.name} has dtype ${spec.dtype}, which a zoo model never holds`, { file });
    const size = per * spec.shape.reduce((a, b) => a * b, 1);
    if (offset + size > data.byteLength) throw new SoftsegError(`the weights manifest needs more than the ${data.byteLength} bytes of weights there are (at ${spec.name})`, { file });
    const bytes = new Uint8Array(data, offset, size);
    offset += size;
    return { spec, bytes };
  });
}

function joinWeights(weights: Weight[]): { specs: tf.io.WeightsManifestEntry[]; data: ArrayBuffer } {
  const data = new Uint8Array(weights.reduce((s, w) => s + w.bytes.byteLength, 0));
  let offset = 0;
  for (const w of weights) {
    data.set(w.bytes, offset);
    offset += w.bytes.byteLength;
  }
  return { specs: weights.map((w) => w.spec), data: data.buffer };
}

function float32Of(w: Weight): Float32Array {
  return new Float32Array(w.bytes.slice().buffer);
}

/** A depthwise kernel [k, k, c, 1] spread onto [K, K, c, 1], K = r·(k−1)+1, taps r apart, zeros between. */
function spreadKernel(kernel: Float32Array, k: number, c: number, r: number): Float32Array {
  const K = r * (k - 1) + 1;
  const out = new Float32Array(K * K * c);
  for (let i = 0; i < k; i++) for (let j = 0; j < k; j++) out.set(kernel.subarray((i * k + j) * c, (i * k + j + 1) * c), (i * r * K + j * r) * c);
  return out;
}

/** The inverse of {@link spreadKernel}; null when a weight between the taps is not zero. */
function gatherKernel(spread: Float32Array, K: number, c: number, r: number): Float32Array | null {
  const k = (K - 1) / r + 1;
  const out = new Float32Array(k * k * c);
  for (let y = 0; y < K; y++)
    for (let x = 0; x < K; x++) {
      const src = spread.subarray((y * K + x) * c, (y * K + x + 1) * c);
      if (y % r === 0 && x % r === 0) out.set(src, ((y / r) * k + x / r) * c);
      else if (src.some((v) => v !== 0)) return null;
    }
  return out;
}

const snake = (s: string) => s.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);

/** An initializer as model.json writes it (Keras JSON: snake_case keys and enum values). */
function initializerJson(init: tf.serialization.Serializable): { class_name: string; config: Record<string, unknown> } {
  const entries = Object.entries(init.getConfig()).map(([k, v]) => [snake(k), typeof v === 'string' ? snake(v) : (v ?? null)]);
  return { class_name: init.getClassName(), config: Object.fromEntries(entries) as Record<string, unknown> };
}

/** The stock Conv2D / DepthwiseConv2D entry (Keras JSON) an AtrousConv2D entry is saved as. */
function stockAtrousLayer(layer: LayerJson): LayerJson {
  const c = layer.config;
  const name = layerName(layer);
  const k = Number(c['kernel_size']);
  const r = Number(c['rate']);
  const depthwise = c['depthwise'] === true;
  const seed = (c['seed'] as number | null | undefined) ?? null;
  const common = {
    strides: [1, 1],
    padding: 'same',
    data_format: 'channels_last',
    activation: 'linear',
    use_bias: c['use_bias'] === true,
    bias_initializer: initializerJson(tf.initializers.zeros()),
    bias_regularizer: null,
    activity_regularizer: null,
    bias_constraint: null,
    name,
    trainable: c['trainable'] ?? true,
  };
  if (!depthwise) {
    const config = {
      filters: c['filters'],
      kernel_initializer: initializerJson(convInitializer(seed ?? undefined)),
      kernel_regularizer: null,
      kernel_constraint: null,
      kernel_size: [k, k],
      dilation_rate: [r, r],
      ...common,
    };
    return { ...layer, class_name: 'Conv2D', config };
  }
  const K = r * (k - 1) + 1;
  const config = {
    kernel_size: [K, K],
    dilation_rate: [1, 1],
    depth_multiplier: 1,
    depthwise_initializer: initializerJson(depthwiseInitializer(seed ?? undefined)),
    depthwise_regularizer: null,
    depthwise_constraint: null,
    ...common,
  };
  return { ...layer, class_name: 'DepthwiseConv2D', config };
}

type Inbound = [string, number, number, Record<string, unknown>];

/**
 * Rewrites (in place) each SoftsegBroadcastLike entry of a model.json written before the stock-only form as stock
 * layers: `<name>_zeros` (Rescaling by 0 of the first other input of the Concatenate that takes the broadcast, a
 * tensor of the reference's size with the pooled tensor's channels) and `<name>` (Add, which broadcasts the
 * [N, 1, 1, C] input over it). Exact: adding zeros changes nothing.
 */
function stockBroadcasts(layers: LayerJson[]): void {
  for (let i = 0; i < layers.length; i++) {
    const layer = layers[i]!;
    if (layer.class_name !== LEGACY_BROADCAST) continue;
    const name = layerName(layer);
    const [pool] = (layer.inbound_nodes as Inbound[][])[0]!;
    const concat = layers.find((l) => l.class_name === 'Concatenate' && (l.inbound_nodes as Inbound[][])[0]?.some((n) => n[0] === name));
    const sibling = concat && (concat.inbound_nodes as Inbound[][])[0]!.find((n) => n[0] !== name);
    if (!pool || !sibling) throw new Error(`saveModel: cannot write layer ${name} (${LEGACY_BROADCAST}) as stock layers`);
    const zeros = `${name}_zeros`;
    const trainable = layer.config['trainable'] ?? true;
    layers.splice(
      i,
      1,
      { name: zeros, class_name: 'Rescaling', config: { scale: 0, offset: 0, name: zeros, trainable }, inbound_nodes: [[[sibling[0], sibling[1], sibling[2], {}]]] },
      { name, class_name: 'Add', config: { name, trainable }, inbound_nodes: [[pool, [zeros, 0, 0, {}]]] },
    );
  }
}

/**
 * model.json's parts with every AtrousConv2D written as its stock equivalent (see the top of this file) and the
 * `dilated` list in the softseg metadata. Other layers and weights pass through unchanged.
 */
function toStockForm(topology: unknown, specs: tf.io.WeightsManifestEntry[], data: ArrayBuffer, metadata: Metadata) {
  const layers = topologyLayers(topology);
  if (!layers.some((l) => l.class_name === ATROUS || l.class_name === LEGACY_BROADCAST)) return { topology, specs, data, metadata };
  const copy = JSON.parse(JSON.stringify(topology)) as unknown;
  stockBroadcasts(topologyLayers(copy));
  const weights = splitWeights(specs, data, MODEL_JSON);
  const dilated: Record<string, number> = {};
  for (const layer of topologyLayers(copy)) {
    if (layer.class_name !== ATROUS) continue;
    const name = layerName(layer);
    const rate = Number(layer.config['rate']);
    const stock = stockAtrousLayer(layer);
    Object.assign(layer, stock);
    dilated[name] = rate;
    if (stock.class_name !== 'DepthwiseConv2D') continue;
    const w = weights.find((x) => x.spec.name === `${name}/kernel`);
    if (!w) throw new Error(`saveModel: no kernel weight for layer ${name}`);
    const [k, , c] = w.spec.shape as [number, number, number, number];
    const K = rate * (k - 1) + 1;
    w.spec = { ...w.spec, name: `${name}/depthwise_kernel`, shape: [K, K, c, 1] };
    w.bytes = new Uint8Array(spreadKernel(float32Of(w), k, c, rate).buffer);
  }
  const joined = joinWeights(weights);
  const meta = JSON.parse(JSON.stringify(metadata ?? {})) as { softseg?: SoftsegMetadata };
  if (meta.softseg) meta.softseg.dilated = dilated;
  return { topology: copy, specs: joined.specs, data: joined.data, metadata: meta as Metadata };
}

/** The inverse of {@link toStockForm}: the layers `softseg.dilated` lists become AtrousConv2D again. */
function toTrainingForm(json: tf.io.ModelJSON, specs: tf.io.WeightsManifestEntry[], data: ArrayBuffer, file: string) {
  const meta = json.userDefinedMetadata as { softseg?: SoftsegMetadata } | undefined;
  const dilated = meta?.softseg?.dilated;
  if (!dilated || Object.keys(dilated).length === 0) return { topology: json.modelTopology, specs, data, metadata: json.userDefinedMetadata };
  const topology = JSON.parse(JSON.stringify(json.modelTopology)) as unknown;
  const layers = topologyLayers(topology);
  const weights = splitWeights(specs, data, file);
  for (const [name, rate] of Object.entries(dilated)) {
    const layer = layers.find((l) => layerName(l) === name);
    const bad = (problem: string) => new SoftsegError(`layer ${name} (listed in softseg.dilated with rate ${rate}) ${problem}`, { file });
    if (!layer) throw bad('is not in the model');
    if (!(Number.isInteger(rate) && rate >= 1)) throw bad('has a rate that is not an integer ≥ 1');
    const c = layer.config;
    const size = c['kernel_size'] as number[] | undefined;
    if (!Array.isArray(size) || size.length !== 2 || size[0] !== size[1]) throw bad('has no square kernel_size');
    if (JSON.stringify(c['strides'] ?? [1, 1]) !== '[1,1]' || c['padding'] !== 'same' || (c['activation'] ?? 'linear') !== 'linear') {
      throw bad("is not a stride-1, 'same'-padded convolution without activation");
    }
    const common = { name, trainable: c['trainable'] ?? true, use_bias: c['use_bias'] === true };
    if (layer.class_name === 'Conv2D') {
      if (JSON.stringify(c['dilation_rate']) !== JSON.stringify([rate, rate])) throw bad(`has dilation_rate ${JSON.stringify(c['dilation_rate'])}`);
      const seed = (c['kernel_initializer'] as { config?: { seed?: number | null } } | undefined)?.config?.seed ?? null;
      Object.assign(layer, { class_name: ATROUS, config: { ...common, filters: c['filters'], kernel_size: size[0], rate, depthwise: false, seed } });
    } else if (layer.class_name === 'DepthwiseConv2D') {
      const K = size[0]!;
      const k = (K - 1) / rate + 1;
      if (!Number.isInteger(k) || k % 2 !== 1) throw bad(`has a ${K}×${K} kernel, which is no odd kernel spread by ${rate}`);
      if ((c['depth_multiplier'] ?? 1) !== 1) throw bad('has a depth multiplier other than 1');
      const w = weights.find((x) => x.spec.name === `${name}/depthwise_kernel`);
      if (!w || w.spec.dtype !== 'float32' || w.spec.quantization) throw bad('has no float32 depthwise_kernel weight');
      const cin = w.spec.shape[2]!;
      const kernel = gatherKernel(float32Of(w), K, cin, rate);
      if (!kernel) throw bad(`has non-zero kernel weights between the taps of a rate-${rate} kernel`);
      w.spec = { ...w.spec, name: `${name}/kernel`, shape: [k, k, cin, 1] };
      w.bytes = new Uint8Array(kernel.buffer);
      const seed = (c['depthwise_initializer'] as { config?: { seed?: number | null } } | undefined)?.config?.seed ?? null;
      Object.assign(layer, { class_name: ATROUS, config: { ...common, filters: 0, kernel_size: k, rate, depthwise: true, seed } });
    } else {
      throw bad(`is a ${layer.class_name}, not a Conv2D or DepthwiseConv2D`);
    }
  }
  const joined = joinWeights(weights);
  const metadata = JSON.parse(JSON.stringify(json.userDefinedMetadata)) as { softseg: SoftsegMetadata };
  delete metadata.softseg.dilated;
  return { topology, specs: joined.specs, data: joined.data, metadata: metadata as Metadata };
}

/**
 * Saves a tf.LayersModel (or a SegModel's model) to `dir` as model.json + weights.bin, in the stock-only form
 * plain TensorFlow.js loads (see the top of this file).
 */
export async function saveModel(model: tf.LayersModel | SegModel, dir: string): Promise<tf.io.SaveResult> {
  const layersModel = 'apply' in model && 'model' in model ? model.model : model;
  await mkdir(dir, { recursive: true });
  return layersModel.save(
    tf.io.withSaveHandler(async (artifacts) => {
      const stock = toStockForm(artifacts.modelTopology, artifacts.weightSpecs ?? [], toBytes(artifacts.weightData).slice().buffer, artifacts.userDefinedMetadata);
      const weights = new Uint8Array(stock.data);
      const modelJson: tf.io.ModelJSON = {
        modelTopology: stock.topology as object,
        format: artifacts.format ?? 'layers-model',
        generatedBy: artifacts.generatedBy ?? `TensorFlow.js tfjs-layers v${tf.version_layers}`,
        convertedBy: artifacts.convertedBy ?? null,
        weightsManifest: [{ paths: [WEIGHTS_BIN], weights: stock.specs }],
      };
      if (artifacts.trainingConfig) modelJson.trainingConfig = artifacts.trainingConfig;
      if (stock.metadata) modelJson.userDefinedMetadata = stock.metadata;
      await writeFileAtomic(join(dir, WEIGHTS_BIN), weights);
      await writeFileAtomic(join(dir, MODEL_JSON), JSON.stringify(modelJson));
      return {
        modelArtifactsInfo: {
          dateSaved: new Date(),
          modelTopologyType: 'JSON',
          modelTopologyBytes: JSON.stringify(stock.topology).length,
          weightSpecsBytes: JSON.stringify(stock.specs).length,
          weightDataBytes: weights.byteLength,
        },
      };
    }),
  );
}

/** Loads a tf.LayersModel saved by {@link saveModel} (or any single-shard layers model.json). */
export async function loadModel(dir: string): Promise<tf.LayersModel> {
  const jsonPath = join(dir, MODEL_JSON);
  let json: tf.io.ModelJSON;
  try {
    json = JSON.parse(await readFile(jsonPath, 'utf8')) as tf.io.ModelJSON;
  } catch (err) {
    throw new SoftsegError(`cannot read a TensorFlow.js model: ${(err as Error).message}`, { file: jsonPath, cause: err });
  }
  const manifest = json.weightsManifest ?? [];
  const weightSpecs = manifest.flatMap((group) => group.weights);
  const buffers: ArrayBuffer[] = [];
  for (const path of manifest.flatMap((group) => group.paths)) {
    const file = join(dir, path);
    let bytes: Buffer;
    try {
      bytes = await readFile(file);
    } catch (err) {
      throw new SoftsegError(`missing weights file of a TensorFlow.js model`, { file, cause: err });
    }
    buffers.push(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer);
  }
  const weightData = buffers.length === 1 ? buffers[0]! : tf.io.CompositeArrayBuffer.join(buffers);
  const training = toTrainingForm(json, weightSpecs, weightData, jsonPath);
  return tf.loadLayersModel(
    tf.io.fromMemory({
      modelTopology: training.topology as object,
      weightSpecs: training.specs,
      weightData: training.data,
      format: json.format,
      generatedBy: json.generatedBy,
      convertedBy: json.convertedBy,
      trainingConfig: json.trainingConfig,
      userDefinedMetadata: training.metadata,
    }),
  );
}

/** Loads a zoo model saved by {@link saveModel}, restoring its registry name and options from model.json's metadata. */
export async function loadSegModel(dir: string): Promise<SegModel> {
  const model = await loadModel(dir);
  const meta = model.getUserDefinedMetadata() as { softseg?: SoftsegMetadata } | undefined;
  if (!meta?.softseg) {
    model.dispose();
    throw new SoftsegError('not a softseg zoo model (model.json has no softseg metadata)', { file: join(dir, MODEL_JSON) });
  }
  const { name } = meta.softseg;
  // Models saved before the upsampling option used the aligned UpSampling2D.
  const options: ResolvedOptions = { ...meta.softseg.options, upsampling: meta.softseg.options.upsampling ?? 'aligned' };
  const arch = getArchitecture(name);
  return wrapLayersModel(name, options, arch.sizeMultiple(options), model);
}
