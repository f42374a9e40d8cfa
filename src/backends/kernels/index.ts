// The project's kernel registry, keyed by (kernelName, backendName). `registerProjectKernels()` installs them
// once, replacing shipped kernels of the same key (the shipped ones are kept so they can be restored or timed).
import * as tf from '@tensorflow/tfjs';
import { adamWWasm } from './adamw.js';
import { batchNormTrainKernels } from './batch-norm-train.js';
import { concatWasm } from './concat.js';
import { conv2DBackpropFilterWasm } from './conv2d-backprop-filter.js';
import { conv2DBackpropInputWasm } from './conv2d-backprop-input.js';
import { depthwiseConv2dNativeBackpropFilterWasm } from './depthwise-conv2d-backprop-filter.js';
import { depthwiseConv2dNativeBackpropInputWasm } from './depthwise-conv2d-backprop-input.js';
import { hardNllKernels } from './hard-nll.js';
import { identityWasm } from './identity.js';
import { jdtStatsKernels } from './jdt-stats.js';
import { logSoftmaxKernels } from './log-softmax.js';
import { maxPoolGradWasm } from './max-pool-grad.js';
import { replaceKernels, setUpKernel, shippedKernel } from './shipped.js';
import { sliceWasm } from './slice.js';
import { splitVWasm } from './split-v.js';
import { stridedSliceWasm } from './strided-slice.js';
import { tileWasm } from './tile.js';

/** Every project kernel, one per (kernelName, backendName). */
export const projectKernels: readonly tf.KernelConfig[] = [
  conv2DBackpropFilterWasm,
  conv2DBackpropInputWasm,
  depthwiseConv2dNativeBackpropFilterWasm,
  depthwiseConv2dNativeBackpropInputWasm,
  tileWasm,
  identityWasm,
  maxPoolGradWasm,
  sliceWasm,
  splitVWasm,
  concatWasm,
  stridedSliceWasm,
  // Fused loss kernels (wasm and cpu); the losses fall back to plain ops on backends without them.
  ...jdtStatsKernels,
  ...hardNllKernels,
  // Fused optimizer update (wasm); the optimizer falls back to plain ops elsewhere.
  adamWWasm,
  // Training-mode batch norm with its gradient (wasm); the zoo's batch-norm layer uses it where registered.
  ...batchNormTrainKernels,
  // Log-softmax and softmax in one pass (wasm); the hard-label objective shares them between its CE and JDT terms.
  ...logSoftmaxKernels,
];

let registered = false;

/** Registers the project kernels (idempotent). Safe before or after the backend is initialised:
 * the project kernels need no setup function. */
export function registerProjectKernels(): void {
  if (registered) return;
  replaceKernels(projectKernels);
  registered = true;
}

/** Puts the shipped kernels back (and removes project kernels that had no shipped counterpart). */
export function unregisterProjectKernels(): void {
  if (!registered) return;
  for (const config of projectKernels) {
    tf.unregisterKernel(config.kernelName, config.backendName);
    const original = shippedKernel(config.kernelName, config.backendName);
    if (original !== undefined) {
      tf.registerKernel(original);
      setUpKernel(original);
    }
  }
  registered = false;
}

export function projectKernelsRegistered(): boolean {
  return registered;
}

export { shippedKernel };

/** (kernelName, backendName, replaces-a-shipped-kernel) for each project kernel, for run metadata. */
export function listProjectKernels(): Array<{ kernelName: string; backendName: string; replacesShipped: boolean }> {
  return projectKernels.map((c) => ({
    kernelName: c.kernelName,
    backendName: c.backendName,
    replacesShipped: shippedKernel(c.kernelName, c.backendName) !== undefined,
  }));
}
