/**
 * Inference on whole images of any size: the image is padded to the model's size multiple and run in one
 * pass when it fits, else in overlapping tiles whose logits are averaged (sliding window); the result is
 * cut back to the original resolution.
 */
import * as tf from '@tensorflow/tfjs';
import type { SegModel } from '../models/base.js';

export interface PredictOptions {
  /** Largest H×W run in one pass (default 1024²); larger images go through tiles of `tileSize`. */
  maxPixels?: number;
  /** Tile size of the sliding window (default 512, rounded up to the model's size multiple). */
  tileSize?: number;
  /** Tile overlap as a fraction of the tile (default 1/3). */
  overlap?: number;
}

function roundUp(v: number, m: number): number {
  return Math.ceil(v / m) * m;
}

/** Logits [h, w, C] of one normalised image [h, w, 3] from a forward pass padded to the size multiple. */
function forward(model: SegModel, image: tf.Tensor3D): tf.Tensor3D {
  return tf.tidy(() => {
    const [h, w] = image.shape;
    const m = model.sizeMultiple;
    const ph = roundUp(h, m), pw = roundUp(w, m);
    let x = tf.expandDims(image, 0) as tf.Tensor4D;
    if (ph !== h || pw !== w) x = tf.pad(x, [[0, 0], [0, ph - h], [0, pw - w], [0, 0]]);
    const logits = model.apply(x, false).main;
    return tf.slice(tf.squeeze(logits, [0]), [0, 0, 0], [h, w, -1]) as tf.Tensor3D;
  });
}

function tileStarts(size: number, tile: number, stride: number): number[] {
  if (size <= tile) return [0];
  const starts: number[] = [];
  for (let s = 0; s + tile < size; s += stride) starts.push(s);
  starts.push(size - tile);
  return starts;
}

/** Class logits [h, w, C] of a normalised RGB image (HWC float32), whole or by sliding window. */
export function predictLogits(model: SegModel, image: Float32Array, height: number, width: number, options: PredictOptions = {}): tf.Tensor3D {
  const maxPixels = options.maxPixels ?? 1024 * 1024;
  if (height * width <= maxPixels) return tf.tidy(() => forward(model, tf.tensor3d(image, [height, width, 3])));
  const tile = roundUp(options.tileSize ?? 512, model.sizeMultiple);
  const stride = Math.max(1, Math.round(tile * (1 - (options.overlap ?? 1 / 3))));
  // Tiles are summed into a band per tile row, bands into the image, each sum replacing the last: at most a few
  // image-sized tensors live at once (one tidy over every tile kept two per tile, 9.6 GB for a 3000×2000 photo).
  const full = tf.tensor3d(image, [height, width, 3]);
  let sum: tf.Tensor3D | null = null;
  const count = new Float32Array(height * width);
  const accumulate = (acc: tf.Tensor3D | null, make: () => tf.Tensor3D): tf.Tensor3D => {
    const next = tf.tidy(() => (acc ? tf.add(acc, make()) : make()) as tf.Tensor3D);
    acc?.dispose();
    return next;
  };
  try {
    for (const y of tileStarts(height, tile, stride)) {
      const th = Math.min(tile, height - y);
      let band: tf.Tensor3D | null = null;
      try {
        for (const x of tileStarts(width, tile, stride)) {
          const tw = Math.min(tile, width - x);
          band = accumulate(band, () => tf.pad(forward(model, tf.slice(full, [y, x, 0], [th, tw, 3])), [[0, 0], [x, width - x - tw], [0, 0]]));
          for (let r = y; r < y + th; r++) for (let c = x; c < x + tw; c++) count[r * width + c]! += 1;
        }
        const rows = band!;
        sum = accumulate(sum, () => tf.pad(rows, [[y, height - y - th], [0, 0], [0, 0]]));
      } finally {
        band?.dispose();
      }
    }
    return tf.tidy(() => tf.div(sum!, tf.tensor3d(count, [height, width, 1])) as tf.Tensor3D);
  } finally {
    full.dispose();
    sum?.dispose();
  }
}

/** Class probabilities [h, w, C] (softmax of the averaged logits). */
export function predictProbabilities(model: SegModel, image: Float32Array, height: number, width: number, options: PredictOptions = {}): tf.Tensor3D {
  return tf.tidy(() => tf.softmax(predictLogits(model, image, height, width, options)) as tf.Tensor3D);
}
