// Saving and loading zoo models in the TensorFlow.js layers format from Node without tfjs-node:
// `dir/model.json` (topology + weights manifest, loadable in a browser with tf.loadLayersModel) and
// `dir/weights.bin`. Each file is written to a temporary name and renamed into place, weights first,
// so a reader never sees a model.json whose weights are missing or stale.
import { mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { SoftsegError } from '../src/errors.js';
import { writeFileAtomic } from '../src/data/fs-util.js';
import { wrapLayersModel, type ResolvedOptions, type SegModel } from './base.js';
import './layers.js'; // registers the custom layers a saved model may name
import { getArchitecture } from './registry.js';

export const MODEL_JSON = 'model.json';
export const WEIGHTS_BIN = 'weights.bin';

function toBytes(data: tf.io.WeightData | undefined): Uint8Array {
  if (data === undefined) return new Uint8Array(0);
  const buffer = Array.isArray(data) ? tf.io.CompositeArrayBuffer.join(data) : data;
  return new Uint8Array(buffer);
}

/** Saves a tf.LayersModel (or a SegModel's model) to `dir` as model.json + weights.bin. */
export async function saveModel(model: tf.LayersModel | SegModel, dir: string): Promise<tf.io.SaveResult> {
  const layersModel = 'apply' in model && 'model' in model ? model.model : model;
  await mkdir(dir, { recursive: true });
  return layersModel.save(
    tf.io.withSaveHandler(async (artifacts) => {
      const weights = toBytes(artifacts.weightData);
      const modelJson: tf.io.ModelJSON = {
        modelTopology: artifacts.modelTopology as object,
        format: artifacts.format ?? 'layers-model',
        generatedBy: artifacts.generatedBy ?? `TensorFlow.js tfjs-layers v${tf.version_layers}`,
        convertedBy: artifacts.convertedBy ?? null,
        weightsManifest: [{ paths: [WEIGHTS_BIN], weights: artifacts.weightSpecs ?? [] }],
      };
      if (artifacts.trainingConfig) modelJson.trainingConfig = artifacts.trainingConfig;
      if (artifacts.userDefinedMetadata) modelJson.userDefinedMetadata = artifacts.userDefinedMetadata;
      await writeFileAtomic(join(dir, WEIGHTS_BIN), weights);
      await writeFileAtomic(join(dir, MODEL_JSON), JSON.stringify(modelJson));
      return {
        modelArtifactsInfo: {
          dateSaved: new Date(),
          modelTopologyType: 'JSON',
          modelTopologyBytes: JSON.stringify(artifacts.modelTopology).length,
          weightSpecsBytes: JSON.stringify(artifacts.weightSpecs ?? []).length,
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
  return tf.loadLayersModel(
    tf.io.fromMemory({
      modelTopology: json.modelTopology,
      weightSpecs,
      weightData,
      format: json.format,
      generatedBy: json.generatedBy,
      convertedBy: json.convertedBy,
      trainingConfig: json.trainingConfig,
      userDefinedMetadata: json.userDefinedMetadata,
    }),
  );
}

/** Loads a zoo model saved by {@link saveModel}, restoring its registry name and options from model.json's metadata. */
export async function loadSegModel(dir: string): Promise<SegModel> {
  const model = await loadModel(dir);
  const meta = model.getUserDefinedMetadata() as { softseg?: { name: string; options: ResolvedOptions } } | undefined;
  if (!meta?.softseg) {
    model.dispose();
    throw new SoftsegError('not a softseg zoo model (model.json has no softseg metadata)', { file: join(dir, MODEL_JSON) });
  }
  const { name, options } = meta.softseg;
  const arch = getArchitecture(name);
  return wrapLayersModel(name, options, arch.sizeMultiple(options), model);
}
