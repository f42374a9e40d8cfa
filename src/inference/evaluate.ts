/**
 * Scores a model on a labeled data set with the streaming metrics: each image at its own resolution (whole
 * or sliding window), the next image decoding while the current one runs.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { SegModel } from '../../models/base.js';
import { normalizeImage, IMAGENET_NORMALIZATION, type Normalization } from '../augment/normalize.js';
import type { Dataset } from '../data/dataset.js';
import { decodeImage, decodeMask, type DecodedImage, type DecodedMask } from '../data/decode.js';
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
}

type Loaded = { id: string; image: DecodedImage; mask: DecodedMask };

export async function evaluateDataset(model: SegModel, ds: Dataset, options: EvaluateOptions = {}): Promise<MetricsResult> {
  if (!ds.labeled) throw new SoftsegError('evaluation needs a labeled data set (images/ and masks/)', { file: ds.root });
  const items = ds.items.slice(0, options.limit ?? ds.items.length);
  const metrics = new SegmentationMetrics({ numClasses: ds.numClasses, ignoreIndex: ds.ignoreIndex, q: options.q ?? 5 });
  const norm = options.normalize ?? IMAGENET_NORMALIZATION;
  const load = async (i: number): Promise<Loaded> => {
    const item = items[i]!;
    const [image, mask] = await Promise.all([decodeImage(item.image), decodeMask(item.mask!, { palette: ds.palette })]);
    if (image.width !== mask.width || image.height !== mask.height) {
      throw new SoftsegError(`mask is ${mask.width}×${mask.height} but the image is ${image.width}×${image.height}`, { file: item.mask });
    }
    return { id: item.id, image, mask };
  };
  let pending: Promise<Loaded> | null = items.length > 0 ? load(0) : null;
  for (let i = 0; i < items.length; i++) {
    const current = await pending!;
    pending = i + 1 < items.length ? load(i + 1) : null;
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
  for (const [k, v] of Object.entries(result)) if (typeof v === 'number') out[k] = v;
  return out;
}


/**
 * Scores a folder of predicted class-id masks against a labeled data set, without a model (`eval --pred`):
 * predictions pair with ground truth by relative path stem. Calibration metrics need probabilities and are
 * absent here.
 */
export async function scorePredictions(ds: Dataset, predDir: string, options: Pick<EvaluateOptions, 'q' | 'onProgress'> = {}): Promise<MetricsResult> {
  if (!ds.labeled) throw new SoftsegError('scoring predictions needs a labeled data set (images/ and masks/)', { file: ds.root });
  const metrics = new SegmentationMetrics({ numClasses: ds.numClasses, ignoreIndex: ds.ignoreIndex, q: options.q ?? 5 });
  for (let i = 0; i < ds.items.length; i++) {
    const item = ds.items[i]!;
    const predPath = join(predDir, `${item.id}.png`);
    if (!existsSync(predPath)) throw new SoftsegError(`no prediction for ${item.id} (expected ${item.id}.png)`, { file: predPath });
    const [gt, pred] = await Promise.all([decodeMask(item.mask!, { palette: ds.palette }), decodeMask(predPath)]);
    if (gt.width !== pred.width || gt.height !== pred.height) {
      throw new SoftsegError(`prediction is ${pred.width}×${pred.height} but the ground truth is ${gt.width}×${gt.height}`, { file: predPath });
    }
    metrics.updateFromPrediction(pred.data, gt.data, { n: 1, h: gt.height, w: gt.width });
    options.onProgress?.(i + 1, ds.items.length);
  }
  return metrics.compute();
}
