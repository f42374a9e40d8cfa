// The zoo's custom layers. TensorFlow.js 4.22 computes dilated convolutions forward but throws in
// their gradients ("dilation rates greater than 1 are not yet supported in gradients"), so an atrous
// convolution that can be trained needs its own layer, AtrousConv2D. Saved models never name it:
// models/io.ts writes it as a stock Conv2D / DepthwiseConv2D and maps it back on load, so model.json
// loads in plain TensorFlow.js. BroadcastLike is no longer used by any architecture (DeepLabV3's
// image-pooling broadcast is built from stock layers); it stays, like AtrousConv2D's own class name,
// registered with tf.serialization on import so model.json files written before the stock-only form
// (softseg up to 9487cec) still load in softseg.
import * as tf from '@tensorflow/tfjs';
import { convInitializer, depthwiseInitializer } from './init.js';

type Shape = (number | null)[];

/** Configuration of {@link AtrousConv2D}, as stored in model.json. */
export interface AtrousConv2DConfig {
  /** Output channels of a full convolution; ignored (output = input channels) when `depthwise`. */
  filters: number;
  /** Square kernel size (odd). */
  kernelSize: number;
  /** Dilation rate ≥ 1. */
  rate: number;
  /** Depthwise (one filter per input channel, multiplier 1) instead of a full convolution. */
  depthwise?: boolean;
  useBias?: boolean;
  /** Seed of the kernel initializer (the zoo's, models/init.ts); absent = unseeded. */
  seed?: number | null;
  name?: string;
  trainable?: boolean;
}

/**
 * A 'same'-padded, stride-1 dilated convolution written as space-to-batch → valid convolution →
 * batch-to-space (how TensorFlow itself implements atrous convolution), so its gradient uses only
 * kernels whose gradients exist: SpaceToBatchND, Conv2D / DepthwiseConv2dNative with dilation 1,
 * BatchToSpaceND. Sizes that are not a multiple of the rate are padded at the end and cropped back.
 * Weights: `kernel` [k, k, cin, filters] (or [k, k, cin, 1] depthwise) and optional `bias`.
 */
export class AtrousConv2D extends tf.layers.Layer {
  static className = 'SoftsegAtrousConv2D';
  readonly filters: number;
  readonly kernelSize: number;
  readonly rate: number;
  readonly depthwise: boolean;
  readonly useBias: boolean;
  readonly seed: number | null;
  private kernel?: tf.LayerVariable;
  private bias?: tf.LayerVariable;

  constructor(config: AtrousConv2DConfig) {
    super({ name: config.name, trainable: config.trainable });
    if (!(Number.isInteger(config.rate) && config.rate >= 1)) throw new Error(`AtrousConv2D: rate must be an integer ≥ 1, got ${config.rate}`);
    if (!(Number.isInteger(config.kernelSize) && config.kernelSize % 2 === 1)) throw new Error(`AtrousConv2D: kernelSize must be odd, got ${config.kernelSize}`);
    this.filters = config.filters;
    this.kernelSize = config.kernelSize;
    this.rate = config.rate;
    this.depthwise = config.depthwise ?? false;
    this.useBias = config.useBias ?? false;
    this.seed = config.seed ?? null;
  }

  override build(inputShape: tf.Shape | tf.Shape[]): void {
    const shape = (Array.isArray(inputShape[0]) ? inputShape[0] : inputShape) as Shape;
    const cin = shape[3];
    if (cin == null) throw new Error('AtrousConv2D: the channel dimension of the input must be known');
    const k = this.kernelSize;
    const seed = this.seed ?? undefined;
    // The zoo's initialisers (models/base.ts); depthwise fan-in is k·k, which TF.js calls fan-out for [k, k, cin, 1].
    const init = this.depthwise ? depthwiseInitializer(seed) : convInitializer(seed);
    this.kernel = this.addWeight('kernel', this.depthwise ? [k, k, cin, 1] : [k, k, cin, this.filters], 'float32', init);
    if (this.useBias) this.bias = this.addWeight('bias', [this.depthwise ? cin : this.filters], 'float32', tf.initializers.zeros());
    this.built = true;
  }

  override computeOutputShape(inputShape: tf.Shape | tf.Shape[]): tf.Shape {
    const s = (Array.isArray(inputShape[0]) ? inputShape[0] : inputShape) as Shape;
    return [s[0], s[1], s[2], this.depthwise ? s[3] : this.filters];
  }

  override call(inputs: tf.Tensor | tf.Tensor[]): tf.Tensor {
    return tf.tidy(() => {
      const x = (Array.isArray(inputs) ? inputs[0] : inputs) as tf.Tensor4D;
      const kernel = this.kernel!.read() as tf.Tensor4D;
      const r = this.rate;
      const [, h, w] = x.shape;
      const p = (r * (this.kernelSize - 1)) / 2;
      const eh = (r - (h % r)) % r;
      const ew = (r - (w % r)) % r;
      let y: tf.Tensor4D;
      if (r === 1) {
        y = this.depthwise ? tf.depthwiseConv2d(x, kernel, 1, 'same') : tf.conv2d(x, kernel, 1, 'same');
      } else {
        const s2b = tf.spaceToBatchND(x, [r, r], [[p, p + eh], [p, p + ew]]) as tf.Tensor4D;
        const conv = this.depthwise ? tf.depthwiseConv2d(s2b, kernel, 1, 'valid') : tf.conv2d(s2b, kernel, 1, 'valid');
        y = tf.batchToSpaceND(conv, [r, r], [[0, eh], [0, ew]]) as tf.Tensor4D;
      }
      return this.bias ? tf.add(y, this.bias.read()) : y;
    });
  }

  override getConfig(): tf.serialization.ConfigDict {
    return {
      ...super.getConfig(),
      filters: this.filters,
      kernelSize: this.kernelSize,
      rate: this.rate,
      depthwise: this.depthwise,
      useBias: this.useBias,
      seed: this.seed,
    };
  }
}

/**
 * Broadcasts a [N, 1, 1, C] tensor (the first input) to the spatial size of a reference tensor (the
 * second input): [N, H, W, C]. No weights. DeepLabV3's image-pooling branch used it until its
 * broadcast was built from stock layers; kept so model.json files that name it still load in softseg.
 */
export class BroadcastLike extends tf.layers.Layer {
  static className = 'SoftsegBroadcastLike';

  constructor(config: { name?: string; trainable?: boolean } = {}) {
    super(config);
  }

  override computeOutputShape(inputShape: tf.Shape | tf.Shape[]): tf.Shape {
    const [a, ref] = inputShape as Shape[];
    return [a[0], ref[1], ref[2], a[3]];
  }

  override call(inputs: tf.Tensor | tf.Tensor[]): tf.Tensor {
    return tf.tidy(() => {
      const [a, ref] = inputs as tf.Tensor[];
      return tf.tile(a, [1, ref.shape[1]!, ref.shape[2]!, 1]);
    });
  }
}

tf.serialization.registerClass(AtrousConv2D);
tf.serialization.registerClass(BroadcastLike);

/** The custom layer classes a zoo model.json written before the stock-only form may name; importing this module registers them. */
export const customLayers = [AtrousConv2D, BroadcastLike] as const;
