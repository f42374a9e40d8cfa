/**
 * softseg.json: what a saved model says about itself, beside its model.json — typed once, written by one
 * function (the engine, for model/ and best/) and read by one validating reader (eval/predict, a TF.js
 * teacher, the report). A field of the wrong type is an error naming the file and the field.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Normalization } from '../augment/normalize.js';
import { writeFileAtomic } from '../data/fs-util.js';
import { SoftsegError } from '../errors.js';

export const SOFTSEG_JSON = 'softseg.json';

/** The fields softseg writes (every one optional when read: a bare zoo model or an older file may lack them). */
export interface SoftsegJson {
  format?: string;
  formatVersion?: number;
  /** Zoo architecture name (`softseg models`). */
  architecture?: string;
  /** The constructor options the model was built with. */
  modelOptions?: { numClasses?: number; width?: number; aux?: boolean; upsampling?: string };
  classes?: string[];
  numClasses?: number;
  ignoreIndex?: number;
  palette?: [number, number, number][] | null;
  /** The training crop, [H, W]. */
  inputSize?: [number, number];
  sizeMultiple?: number;
  normalization?: Normalization;
  /** The effective run configuration (config.json's content). */
  training?: object;
  backend?: Record<string, unknown>;
  versions?: Record<string, unknown>;
  /** `distill` or `ssl` (absent for `train`). */
  recipe?: string;
  /** The teacher of a distilled or semi-supervised student: a path, or its description (fingerprint, source, …). */
  teacher?: string | Record<string, unknown>;
  ssl?: Record<string, unknown>;
  /** The step the model was saved at, and its validation metrics then (null without validation). */
  step?: number;
  metrics?: Record<string, number> | null;
  [key: string]: unknown;
}

/** Writes softseg.json into a model folder (temp + rename). */
export async function writeSoftsegJson(dir: string, meta: SoftsegJson): Promise<void> {
  await writeFileAtomic(join(dir, SOFTSEG_JSON), JSON.stringify(meta, null, 2));
}

const isInt = (v: unknown) => Number.isInteger(v);
const isNumbers = (v: unknown, n?: number) => Array.isArray(v) && (n === undefined || v.length === n) && v.every((x) => typeof x === 'number' && Number.isFinite(x));
const isObject = (v: unknown) => typeof v === 'object' && v !== null && !Array.isArray(v);

const CHECKS: Record<string, (v: unknown) => boolean> = {
  format: (v) => typeof v === 'string',
  formatVersion: isInt,
  architecture: (v) => typeof v === 'string',
  modelOptions: isObject,
  classes: (v) => Array.isArray(v) && v.every((c) => typeof c === 'string'),
  numClasses: (v) => isInt(v) && (v as number) >= 1,
  ignoreIndex: isInt,
  palette: (v) => v === null || (Array.isArray(v) && v.every((c) => isNumbers(c, 3))),
  inputSize: (v) => isNumbers(v, 2),
  sizeMultiple: isInt,
  normalization: (v) => isObject(v) && isNumbers((v as Normalization).mean, 3) && isNumbers((v as Normalization).std, 3),
  training: isObject,
  recipe: (v) => typeof v === 'string',
  teacher: (v) => typeof v === 'string' || isObject(v),
  ssl: isObject,
  step: isInt,
  metrics: (v) => v === null || isObject(v),
};

/** Reads a model folder's softseg.json (null when there is none), checking the type of every field softseg writes. */
export async function readSoftsegJson(dir: string): Promise<SoftsegJson | null> {
  const file = join(dir, SOFTSEG_JSON);
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw new SoftsegError(`cannot read ${SOFTSEG_JSON} (${(err as Error).message})`, { file, cause: err });
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    throw new SoftsegError(`${SOFTSEG_JSON} is not valid JSON (${(err as Error).message})`, { file, cause: err });
  }
  if (!isObject(raw)) throw new SoftsegError(`${SOFTSEG_JSON} must hold a JSON object`, { file });
  for (const [key, ok] of Object.entries(CHECKS)) {
    const v = (raw as Record<string, unknown>)[key];
    if (v !== undefined && !ok(v)) throw new SoftsegError(`bad "${key}" in ${SOFTSEG_JSON}: ${JSON.stringify(v)?.slice(0, 80)}`, { file });
  }
  return raw as SoftsegJson;
}
