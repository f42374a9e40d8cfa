// Half-pixel bilinear upsampling (PyTorch's F.interpolate(mode='bilinear', align_corners=False), TF's
// resizeBilinear with halfPixelCenters) from stock TensorFlow.js layers only, so a model that uses it still loads
// in plain TensorFlow.js. TF.js's UpSampling2D samples output i at input i/f (no half-pixel offset), and its
// Resizing layer has fixed output sizes and aligned corners; neither is this.
//
// For an even factor f, half-pixel bilinear ×f equals nearest ×f followed by a separable filter h of f + 1 taps,
// [1, 2, …, 2, 1] / (2f), 'same'-padded: the box of the nearest upsampling convolved with h is the tent that
// bilinear interpolation weighs the two nearest inputs with, at offsets (i + ½)/f − ½. At the edges bilinear
// sampling clamps to the first and last input, while 'same' zero padding drops the taps that fall outside: the
// result there is the clamped value times the share N(i) of h that stayed inside. Multiplying by 1/N(i) restores
// it exactly; 1/N is itself a filter of a map of ones with the same zero padding (taps h′ chosen so that its partial
// sums are 1/N at the edge phases and its full sum is 1 inside), so it is stock layers too:
//   y = w_h(nearest_w(h_h(nearest_h(x)))) × w_h′(nearest_w(h_h′(nearest_h(ones))))
// one axis at a time (nearest ×f along it, then the filter along it), the normaliser on one channel, broadcast over
// the channels by Multiply. Exact to float rounding
// (test/models/upsample.test.ts); every filter is fixed (trainable: false) and saved with the model.
import * as tf from '@tensorflow/tfjs';

/** The interpolation filter h and the edge normaliser h′ of half-pixel ×f (f even), each f + 1 taps. */
export function halfPixelTaps(factor: number): { h: number[]; norm: number[] } {
  if (!(Number.isInteger(factor) && factor >= 2 && factor % 2 === 0)) throw new Error(`half-pixel upsampling needs an even factor ≥ 2, got ${factor}`);
  const f = factor, half = f / 2;
  const h = Array.from({ length: f + 1 }, (_, t) => (t === 0 || t === f ? 1 : 2) / (2 * f));
  // N(i): the share of h inside the image for the i-th output from the edge (i < f/2); 1 from f/2 on.
  const inside = (i: number) => (i >= half ? 1 : h.slice(half - i).reduce((a, b) => a + b, 0));
  const norm = new Array<number>(f + 1).fill(0);
  // Output i (< f/2) from the top edge sees taps t ≥ f/2 − i of h′: those partial sums must be 1/N(i).
  for (let t = 0; t < half; t++) norm[t] = norm[f - t] = 1 / inside(half - t) - 1 / inside(half - t - 1);
  norm[half] = 1 - 2 * norm.slice(0, half).reduce((a, b) => a + b, 0);
  return { h, norm };
}

const apply1 = (layer: tf.layers.Layer, x: tf.SymbolicTensor | tf.SymbolicTensor[]): tf.SymbolicTensor => layer.apply(x) as tf.SymbolicTensor;

/** A fixed depthwise filter along one axis ('same' padding, zero outside), built with its weights set. */
function fixedFilter(x: tf.SymbolicTensor, taps: number[], vertical: boolean, name: string): tf.SymbolicTensor {
  const channels = x.shape[3]!;
  const n = taps.length;
  const kernel = tf.tensor4d(taps.flatMap((v) => new Array<number>(channels).fill(v)), vertical ? [n, 1, channels, 1] : [1, n, channels, 1]);
  try {
    const layer = tf.layers.depthwiseConv2d({ kernelSize: vertical ? [n, 1] : [1, n], padding: 'same', useBias: false, trainable: false, weights: [kernel], name });
    return apply1(layer, x);
  } finally {
    kernel.dispose();
  }
}

/** Half-pixel bilinear upsampling of `x` by the even integer `factor`, from stock layers; the output layer is `name`. */
export function halfPixelUpsample(x: tf.SymbolicTensor, factor: number, name: string): tf.SymbolicTensor {
  const { h, norm } = halfPixelTaps(factor);
  const channels = x.shape[3];
  if (!channels) throw new Error(`half-pixel upsampling (${name}) needs a known channel count`);
  // One axis at a time (the two commute): the vertical pass runs before the width grows f-fold.
  const nearest = (t: tf.SymbolicTensor, size: [number, number], suffix: string) =>
    apply1(tf.layers.upSampling2d({ size, interpolation: 'nearest', name: `${name}_${suffix}` }), t);
  const separable = (t: tf.SymbolicTensor, taps: number[], suffix: string) =>
    fixedFilter(nearest(fixedFilter(nearest(t, [factor, 1], `${suffix}nearest_h`), taps, true, `${name}_${suffix}h`), [1, factor], `${suffix}nearest_w`), taps, false, `${name}_${suffix}w`);
  const y = separable(x, h, '');
  // A one-channel map of ones (a 1×1 convolution with a zero kernel and a bias of 1), filtered the same way by h′.
  const kernel = tf.zeros([1, 1, channels, 1]), bias = tf.ones([1]);
  let ones: tf.SymbolicTensor;
  try {
    ones = apply1(tf.layers.conv2d({ filters: 1, kernelSize: 1, useBias: true, trainable: false, weights: [kernel, bias], name: `${name}_ones` }), x);
  } finally {
    kernel.dispose();
    bias.dispose();
  }
  return apply1(tf.layers.multiply({ name }), [y, separable(ones, norm, 'norm_')]);
}
