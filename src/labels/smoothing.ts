/** Label transforms that turn hard labels into soft ones (method.md §4). Output layout NHWC. */
import * as tf from '@tensorflow/tfjs';
import { SoftsegError } from '../errors.js';
import { oneHotLabels } from '../losses/jdt.js';

export interface BlsOptions {
  numClasses: number;
  /** Odd window size (reference default 3). */
  kernelSize?: number;
  /** Smoothing on boundary pixels (reference default 0.5). */
  epsilon?: number;
  /** Label value of ignored pixels (default 255). */
  ignoreIndex?: number;
}

function checkEpsilon(epsilon: number): void {
  if (!(epsilon >= 0 && epsilon <= 1)) throw new SoftsegError(`label smoothing epsilon must be in [0, 1], got ${epsilon}`);
}

/**
 * Uniform label smoothing: (1 − ε)·onehot(y) + ε/C on non-ignored pixels; ignored pixels are all zeros.
 * label [N,H,W] int → [N,H,W,C].
 */
export function uniformLabelSmoothing(label: tf.Tensor, numClasses: number, epsilon: number, ignoreIndex = 255): tf.Tensor4D {
  checkEpsilon(epsilon);
  return tf.tidy(() => {
    const keep = tf.expandDims(tf.cast(tf.notEqual(tf.cast(label, 'int32'), ignoreIndex), 'float32'), -1);
    const soft = tf.add(tf.mul(oneHotLabels(label, numClasses), 1 - epsilon), epsilon / numClasses);
    return tf.mul(soft, keep) as tf.Tensor4D;
  });
}

/**
 * Boundary label smoothing (method.md §4.2). A non-ignored pixel is a boundary pixel when its k×k window
 * (positions inside the image only) holds another class and no ignore pixel; boundary pixels get
 * (1 − ε)·onehot + ε/C, other kept pixels stay one-hot, ignored pixels are all zeros.
 * Returns the soft label [N,H,W,C] and the boundary mask [N,H,W] (bool).
 */
export function boundaryLabelSmoothing(label: tf.Tensor, options: BlsOptions): { softLabel: tf.Tensor4D; boundary: tf.Tensor3D } {
  const { numClasses } = options;
  const k = options.kernelSize ?? 3;
  const epsilon = options.epsilon ?? 0.5;
  const ignoreIndex = options.ignoreIndex ?? 255;
  if (!Number.isInteger(k) || k < 1 || k % 2 === 0) {
    throw new SoftsegError(`boundary label smoothing needs an odd kernel size ≥ 1, got ${k}`, { hint: 'use 3, 5 or 7' });
  }
  if (!Number.isInteger(numClasses) || numClasses < 1) throw new SoftsegError(`numClasses must be a positive integer, got ${numClasses}`);
  checkEpsilon(epsilon);
  if (label.rank !== 3) throw new SoftsegError(`boundary label smoothing needs a hard label [N,H,W], got shape [${label.shape}]`);
  return tf.tidy(() => {
    const y = tf.cast(label, 'int32');
    const ignore = tf.cast(tf.equal(y, ignoreIndex), 'float32');
    const keep = tf.sub(1, ignore);
    // One-hot with ignore pixels all zero; then a max filter ('same' padding never counts outside pixels).
    const onehot = tf.mul(oneHotLabels(y, numClasses), tf.expandDims(keep, -1));
    const present = tf.maxPool(onehot as tf.Tensor4D, k, 1, 'same');
    const classesInWindow = tf.sum(present, -1);
    const ignoreInWindow = tf.squeeze(tf.maxPool(tf.expandDims(ignore, -1) as tf.Tensor4D, k, 1, 'same'), [3]);
    const boundary = tf.logicalAnd(tf.logicalAnd(tf.greater(keep, 0), tf.greater(classesInWindow, 1.5)), tf.equal(ignoreInWindow, 0));
    const smoothed = tf.add(tf.mul(onehot, 1 - epsilon), tf.mul(tf.expandDims(keep, -1), epsilon / numClasses));
    const softLabel = tf.where(tf.expandDims(boundary, -1), smoothed, onehot) as tf.Tensor4D;
    return { softLabel, boundary: boundary as tf.Tensor3D };
  });
}
