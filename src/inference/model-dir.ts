/**
 * Opening a trained model for eval/predict/label: a run directory (its model/, or best/ with `best`) or a
 * model directory holding model.json + softseg.json.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { foldBatchNorm } from '../models/fold.js';
import { loadSegModel } from '../models/io.js';
import type { SegModel } from '../models/base.js';
import { IMAGENET_NORMALIZATION, type Normalization } from '../augment/normalize.js';
import { SoftsegError } from '../errors.js';
import { readSoftsegJson, type SoftsegJson } from './softseg-json.js';

/** What softseg.json records about a trained model, with the fields inference needs filled in (more are kept). */
export interface ModelMetadata extends SoftsegJson {
  architecture: string;
  numClasses: number;
  classes: string[];
  ignoreIndex: number;
  palette: [number, number, number][] | null;
  inputSize: [number, number];
  normalization: Normalization;
}

export interface TrainedModel {
  model: SegModel;
  meta: ModelMetadata;
  dir: string;
}

/** Resolves a run directory or model directory to the folder holding model.json. */
export function modelDirectory(path: string, which: 'model' | 'best' = 'model'): string {
  if (existsSync(join(path, 'model.json'))) return path;
  for (const candidate of [which, which === 'model' ? 'best' : 'model']) {
    if (existsSync(join(path, candidate, 'model.json'))) return join(path, candidate);
  }
  const latest = latestCheckpoint(path);
  if (latest) {
    // A run stopped before it wrote model/ (and before a validation wrote best/): say how to get a model from it.
    throw new SoftsegError(`no model yet: the run stopped at step ${latest.step} before writing model/`, {
      file: path, hint: `continue it with \`softseg train --out ${path} --resume\` (or distill/ssl), or pass its last checkpoint, ${join(path, 'checkpoints', latest.checkpoint)}`,
    });
  }
  throw new SoftsegError('no model found (expected model.json, or a run directory with model/ or best/)', { file: path, hint: 'pass the --out folder of `softseg train`, or its model/ folder' });
}

/** A run folder's latest checkpoint as checkpoints/latest.json names it (null when there is none, or it is unreadable). */
function latestCheckpoint(run: string): { checkpoint: string; step: number } | null {
  try {
    const l = JSON.parse(readFileSync(join(run, 'checkpoints', 'latest.json'), 'utf8')) as { checkpoint?: unknown; step?: unknown };
    return typeof l.checkpoint === 'string' && typeof l.step === 'number' && existsSync(join(run, 'checkpoints', l.checkpoint, 'model.json')) ? { checkpoint: l.checkpoint, step: l.step } : null;
  } catch {
    return null;
  }
}

/**
 * Opens a trained model with its metadata. `inference`: the model's inference form, batch norm folded into the
 * convolutions before it (faster, same outputs up to float rounding; see {@link foldBatchNorm}) — for eval,
 * predict and teachers, not for a model to train on (--init).
 */
export async function openTrainedModel(path: string, which: 'model' | 'best' = 'model', o: { inference?: boolean } = {}): Promise<TrainedModel> {
  const dir = modelDirectory(path, which);
  let model = await loadSegModel(dir);
  let meta: SoftsegJson;
  try {
    // A bare zoo model without softseg.json: what the model itself says.
    meta = (await readSoftsegJson(dir)) ?? {};
  } catch (e) {
    model.dispose();
    throw e;
  }
  const numClasses = meta.numClasses ?? model.options.numClasses;
  if (numClasses !== model.options.numClasses) {
    model.dispose();
    throw new SoftsegError(`softseg.json says ${numClasses} classes but the model has ${model.options.numClasses}`, { file: join(dir, 'softseg.json') });
  }
  if (o.inference) {
    const loaded = model;
    try {
      model = await foldBatchNorm(loaded);
    } catch (e) {
      loaded.dispose();
      throw e;
    }
    if (model !== loaded) loaded.dispose();
  }
  return {
    dir,
    model,
    meta: {
      ...meta,
      architecture: meta.architecture ?? model.name,
      numClasses,
      classes: meta.classes ?? Array.from({ length: numClasses }, (_, i) => `class ${i}`),
      ignoreIndex: meta.ignoreIndex ?? 255,
      palette: meta.palette ?? null,
      inputSize: meta.inputSize ?? [model.sizeMultiple * 8, model.sizeMultiple * 8],
      normalization: meta.normalization ?? IMAGENET_NORMALIZATION,
    },
  };
}
