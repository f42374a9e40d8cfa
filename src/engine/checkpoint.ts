/**
 * Checkpoints of a training run: model weights (incl. batch-norm statistics), optimizer state and loop
 * state, written into a temporary folder and renamed into place, then published through `latest.json`
 * (itself written atomically) — a killed process never leaves a half-written checkpoint behind.
 */
import { mkdir, readFile, readdir, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { SoftsegError } from '../errors.js';
import { writeFileAtomic } from '../data/fs-util.js';
import { loadModel, saveModel } from '../models/io.js';
import type { SegModel } from '../models/base.js';
import type { OptimizerState, SegOptimizer } from './optimizer.js';

export const CHECKPOINTS_DIR = 'checkpoints';
const LATEST = 'latest.json';
const KEEP = 2;

/** The training loop's own state, enough to continue exactly where it stopped. */
export interface LoopState {
  step: number;
  bestMetric: number | null;
  bestStep: number | null;
  /** Free-form state of plug-ins (e.g. an EMA teacher's step) — JSON only. */
  extra?: Record<string, unknown>;
}

/** Optimizer state names embed variable names, which differ between processes; store them by weight index. */
function portableNames(state: OptimizerState, variableNames: string[], toPortable: boolean): OptimizerState {
  const byName = new Map(variableNames.map((n, i) => [n, `#${i}`]));
  const byIndex = new Map(variableNames.map((n, i) => [`#${i}`, n]));
  return state.map(({ name, tensor }) => {
    const slash = name.lastIndexOf('/');
    const head = slash < 0 ? name : name.slice(0, slash);
    const tail = slash < 0 ? '' : name.slice(slash);
    const mapped = (toPortable ? byName : byIndex).get(head);
    return { name: mapped ? mapped + tail : name, tensor };
  });
}

function variableNames(model: SegModel): string[] {
  return model.model.trainableWeights.map((w) => (w.read() as tf.Variable).name);
}

/**
 * Writes a checkpoint and publishes it. `extra` writes a plug-in's own state (e.g. a mean teacher) into the
 * checkpoint's folder before it is published, so it is complete or absent with the rest. `beforePublish` runs
 * once the checkpoint is complete and before latest.json names it (e.g. to write the run's config.json), so a
 * run killed at any moment never has a published checkpoint without what it needs to resume.
 */
export async function saveCheckpoint(runDir: string, model: SegModel, optimizer: SegOptimizer, state: LoopState,
  extra?: (dir: string) => Promise<void>, beforePublish?: (dir: string) => Promise<void>): Promise<string> {
  const root = join(runDir, CHECKPOINTS_DIR);
  const name = `step-${String(state.step).padStart(7, '0')}`;
  const tmp = join(root, `.tmp-${name}-${process.pid}`);
  await rm(tmp, { recursive: true, force: true });
  await mkdir(tmp, { recursive: true });
  await saveModel(model, tmp);
  const opt = portableNames(await optimizer.getState(), variableNames(model), true);
  const specs = opt.map(({ name, tensor }) => ({ name, shape: tensor.shape, dtype: tensor.dtype }));
  const datas = await Promise.all(opt.map(({ tensor }) => tensor.data()));
  const bytes = new Uint8Array(datas.reduce((s, d) => s + d.byteLength, 0));
  let offset = 0;
  for (const d of datas) {
    bytes.set(new Uint8Array(d.buffer, d.byteOffset, d.byteLength), offset);
    offset += d.byteLength;
  }
  await writeFile(join(tmp, 'optimizer.bin'), bytes);
  await writeFile(join(tmp, 'optimizer.json'), JSON.stringify({ kind: optimizer.config.kind, specs }));
  await writeFile(join(tmp, 'state.json'), JSON.stringify(state, null, 2));
  await extra?.(tmp);
  const final = join(root, name);
  await rm(final, { recursive: true, force: true });
  await rename(tmp, final);
  await beforePublish?.(final);
  await writeFileAtomic(join(root, LATEST), JSON.stringify({ checkpoint: name, step: state.step }));
  // Older checkpoints beyond the last KEEP go.
  const all = (await readdir(root)).filter((d) => /^step-\d+$/.test(d)).sort();
  for (const old of all.slice(0, Math.max(0, all.length - KEEP))) await rm(join(root, old), { recursive: true, force: true });
  return final;
}

/** The latest complete checkpoint of a run, or null when there is none. */
export async function latestCheckpoint(runDir: string): Promise<string | null> {
  try {
    const { checkpoint } = JSON.parse(await readFile(join(runDir, CHECKPOINTS_DIR, LATEST), 'utf8')) as { checkpoint: string };
    return join(runDir, CHECKPOINTS_DIR, checkpoint);
  } catch {
    return null;
  }
}

/** Restores model weights and optimizer state in place; returns the loop state. */
export async function restoreCheckpoint(dir: string, model: SegModel, optimizer: SegOptimizer): Promise<LoopState> {
  let loaded: tf.LayersModel;
  try {
    loaded = await loadModel(dir);
  } catch (e) {
    throw new SoftsegError(`cannot read checkpoint model: ${(e as Error).message}`, { file: dir, hint: 'delete the checkpoint folder to fall back to the previous one' });
  }
  const weights = loaded.getWeights();
  if (weights.length !== model.model.getWeights().length) {
    loaded.dispose();
    throw new SoftsegError('checkpoint does not match the model (different architecture or options)', { file: dir, hint: 'resume with the same --model, --width and --aux as the run that wrote it' });
  }
  model.model.setWeights(weights);
  loaded.dispose();
  const meta = JSON.parse(await readFile(join(dir, 'optimizer.json'), 'utf8')) as { specs: { name: string; shape: number[]; dtype: tf.DataType }[] };
  const buf = await readFile(join(dir, 'optimizer.bin'));
  let offset = 0;
  const state: OptimizerState = meta.specs.map((s) => {
    const size = s.shape.reduce((a, b) => a * b, 1);
    const ArrayType = s.dtype === 'int32' ? Int32Array : Float32Array;
    const data = new ArrayType(buf.buffer.slice(buf.byteOffset + offset, buf.byteOffset + offset + size * 4));
    offset += size * 4;
    return { name: s.name, tensor: tf.tensor(data, s.shape, s.dtype) };
  });
  await optimizer.setState(portableNames(state, variableNames(model), false));
  tf.dispose(state.map((s) => s.tensor));
  return JSON.parse(await readFile(join(dir, 'state.json'), 'utf8')) as LoopState;
}
