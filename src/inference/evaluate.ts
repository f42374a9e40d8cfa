/**
 * Scores a model on a labeled data set with the streaming metrics: each image at its own resolution (whole
 * or sliding window), the next image decoding while the current one runs. `openEvalSet` checks the set first
 * as training does: every problem named before any work, or with skipBad left out and listed.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { SegModel } from '../models/base.js';
import { normalizeImage, IMAGENET_NORMALIZATION, type Normalization } from '../augment/normalize.js';
import { checkDeclaredClasses, givenClassNames, openDataset, type DataProblem, type Dataset } from '../data/dataset.js';
import { decodeMask, type DecodedImage, type DecodedMask } from '../data/decode.js';
import { loadSampleFiles } from '../data/sample.js';
import { checkedDataset, dataProblemsError, type SkippedFiles } from '../data/validate.js';
import { SoftsegError } from '../errors.js';
import { SegmentationMetrics, type MetricsResult } from '../metrics/index.js';
import { predictProbabilities, type PredictOptions } from './predict.js';

export interface EvaluateOptions extends PredictOptions {
  normalize?: Normalization;
  /** Worst-case percentage for the q-worst metrics (default 5, as the reference test configs). */
  q?: number;
  /** Evaluate only the first N images (e.g. quick validation during training). */
  limit?: number;
  onProgress?: (done: number, total: number) => void;
  /** An image or mask that fails to read now (it changed since the check) is left out and passed here instead of stopping. */
  onSkip?: (problem: DataProblem) => void;
}

type Loaded = { id: string; image: DecodedImage; mask: DecodedMask } | { problem: DataProblem };

/**
 * Opens a labeled set for evaluation and checks every file (as training does): without skipBad each problem
 * — an image without a mask, a mask value out of range, an unreadable file — is a line of the error thrown
 * before any work; with skipBad those items are left out and returned in `skipped`.
 */
export async function openEvalSet(dir: string, o: {
  numClasses?: number; ignoreIndex?: number; skipBad?: boolean;
  /** The model it scores: its classes are the set's unless `numClasses` overrides them, and the set's dataset.json must not declare others. */
  model?: { numClasses: number; classes?: readonly string[] | null; name: string };
}): Promise<{ ds: Dataset; skipped: SkippedFiles }> {
  if (o.model && o.numClasses === undefined) {
    await checkDeclaredClasses(dir, { numClasses: o.model.numClasses, names: givenClassNames(o.model.classes) }, `the model ${o.model.name}`);
  }
  const ds = await openDataset(dir, { numClasses: o.numClasses ?? o.model?.numClasses, ignoreIndex: o.ignoreIndex });
  return checkedDataset(ds, { skipBad: o.skipBad === true, where: dir, hint: 'fix them, or pass --skip-bad to evaluate the other images' });
}

export async function evaluateDataset(model: SegModel, ds: Dataset, options: EvaluateOptions = {}): Promise<MetricsResult> {
  if (!ds.labeled) throw new SoftsegError('evaluation needs a labeled data set (images/ and masks/)', { file: ds.root });
  const items = ds.items.slice(0, options.limit ?? ds.items.length);
  const metrics = new SegmentationMetrics({ numClasses: ds.numClasses, ignoreIndex: ds.ignoreIndex, q: options.q ?? 5 });
  const norm = options.normalize ?? IMAGENET_NORMALIZATION;
  // Decoded with the mask's size and class ids checked, failures naming the file (as the training loader).
  const load = async (i: number): Promise<Loaded> => {
    const item = items[i]!;
    try {
      const { image, mask } = await loadSampleFiles({ image: item.image, mask: item.mask!, palette: ds.palette, numClasses: ds.numClasses, ignoreIndex: ds.ignoreIndex });
      return { id: item.id, image, mask: mask! };
    } catch (e) {
      if (!options.onSkip || !(e instanceof SoftsegError)) throw e;
      return { problem: { file: e.file ?? item.image, kind: 'corrupt-image', reason: e.message } };
    }
  };
  let pending: Promise<Loaded> | null = items.length > 0 ? load(0) : null;
  for (let i = 0; i < items.length; i++) {
    const current = await pending!;
    pending = i + 1 < items.length ? load(i + 1) : null;
    pending?.catch(() => undefined); // surfaced when awaited
    if ('problem' in current) {
      options.onSkip!(current.problem);
      continue;
    }
    const { width: w, height: h } = current.image;
    const prob = predictProbabilities(model, normalizeImage(current.image.data, norm), h, w, options);
    const data = (await prob.data()) as Float32Array;
    prob.dispose();
    if (prob.shape[2] !== ds.numClasses) {
      throw new SoftsegError(`the model predicts ${prob.shape[2]} classes but the data set has ${ds.numClasses}`, { file: ds.root, hint: 'evaluate with a model trained on these classes' });
    }
    metrics.update(data, current.mask.data, { n: 1, c: ds.numClasses, h, w }, 'NHWC');
    options.onProgress?.(i + 1, items.length);
  }
  return metrics.compute();
}

/** Metric values as a flat record of numbers (for metrics.jsonl and the best-model choice). */
export function scalarMetrics(result: MetricsResult): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [k, v] of Object.entries(publicMetrics(result))) if (typeof v === 'number') out[k] = v;
  return out;
}

/**
 * A result as users read it (`eval --json`, metrics.jsonl): the one worst-q% key is `mIoUI{q}` (`mIoUI5`), so the
 * reference's averages over the worst-q sweep q = 10, 20, …, 100 (`mIoUIQ`, `mAccCQ`, …) are renamed
 * `mIoUIWorstAvg`, `mAccCWorstAvg`, ….
 */
export function publicMetrics(result: MetricsResult): Record<string, unknown> {
  return Object.fromEntries(Object.entries(result).map(([k, v]) => [/^m(Acc|IoU|Dice)[IC]Q$/.test(k) ? `${k.slice(0, -1)}WorstAvg` : k, v]));
}


/**
 * Scores a folder of predicted class-id masks against a labeled data set, without a model (`eval --pred`):
 * predictions pair with ground truth by relative path stem. Calibration metrics need probabilities and are
 * absent here.
 */
export async function scorePredictions(ds: Dataset, predDir: string, options: Pick<EvaluateOptions, 'q' | 'onProgress'> = {}): Promise<MetricsResult> {
  if (!ds.labeled) throw new SoftsegError('scoring predictions needs a labeled data set (images/ and masks/)', { file: ds.root });
  const metrics = new SegmentationMetrics({ numClasses: ds.numClasses, ignoreIndex: ds.ignoreIndex, q: options.q ?? 5 });
  const hint = 'write them with `softseg predict` (same names as the images, class-id PNGs at the images\' size)';
  // Every missing prediction first, one line each, before any decoding; then every size mismatch, after the pass.
  const missing: DataProblem[] = ds.items.filter((it) => !existsSync(join(predDir, `${it.id}.png`)))
    .map((it) => ({ file: join(predDir, `${it.id}.png`), kind: 'missing-image', reason: `no prediction for ${it.id}` }));
  if (missing.length > 0) throw dataProblemsError(missing, predDir, hint);
  const wrongSize: DataProblem[] = [];
  for (let i = 0; i < ds.items.length; i++) {
    const item = ds.items[i]!;
    const predPath = join(predDir, `${item.id}.png`);
    const [gt, pred] = await Promise.all([decodeMask(item.mask!, { palette: ds.palette }), decodeMask(predPath)]);
    if (gt.width !== pred.width || gt.height !== pred.height) {
      wrongSize.push({ file: predPath, kind: 'size-mismatch', reason: `prediction is ${pred.width}×${pred.height} but the ground truth is ${gt.width}×${gt.height}` });
    } else {
      metrics.updateFromPrediction(pred.data, gt.data, { n: 1, h: gt.height, w: gt.width });
    }
    options.onProgress?.(i + 1, ds.items.length);
  }
  if (wrongSize.length > 0) throw dataProblemsError(wrongSize, predDir, hint);
  return metrics.compute();
}
