// The zoo's weight initialisers, shared by the layer builder (base.ts) and the custom layers (layers.ts).
import * as tf from '@tensorflow/tfjs';

export type Initializer = ReturnType<typeof tf.initializers.heNormal>;

/**
 * The zoo's convolution initialiser: PyTorch's default for nn.Conv2d (Kaiming-uniform with a = √5), i.e.
 * uniform on ±1/√fan_in, std 1/√(3·fan_in). It replaced He-normal (std √(2/fan_in), √6 ≈ 2.45× larger): behind
 * batch norm the weight scale does not change the forward pass, but with Adam a larger weight makes every update
 * relatively smaller, and on the parity set (bench/parity) He-normal students reached ~25 val mIoU where these
 * reach ~30–36 (mobile-unet, 64², 1000 steps; the PyTorch twin moves the same way).
 */
export function convInitializer(seed?: number): Initializer {
  return tf.initializers.varianceScaling({ scale: 1 / 3, mode: 'fanIn', distribution: 'uniform', seed });
}

/**
 * {@link convInitializer} for a depthwise kernel [k, k, cin, 1]: its true fan-in is k·k, which TF.js's fan
 * computation reports as fan-out (it would take k·k·cin as fan-in and shrink the weights by √cin).
 */
export function depthwiseInitializer(seed?: number): Initializer {
  return tf.initializers.varianceScaling({ scale: 1 / 3, mode: 'fanOut', distribution: 'uniform', seed });
}

/** PyTorch's default bias initialiser for a layer with `fanIn` inputs: uniform on ±1/√fan_in. */
export function biasInitializer(fanIn: number, seed?: number): Initializer {
  const limit = 1 / Math.sqrt(fanIn);
  return tf.initializers.randomUniform({ minval: -limit, maxval: limit, seed });
}
