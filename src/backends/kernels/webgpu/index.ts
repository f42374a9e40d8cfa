// The project's kernels for the webgpu backend. Registered by registerWebGpuBackend() right after
// tfjs-backend-webgpu is imported (it registers its own kernels on import, which would otherwise replace ours);
// the kernels they replace are kept (shipped.ts) so that ours can fall back to them.
import * as tf from '@tensorflow/tfjs';
import { replaceKernels } from '../shipped.js';
import { adamWWebGpu } from './adamw.js';
import { batchNormTrainWebGpuKernels } from './batch-norm-train.js';
import { conv2DBackpropFilterWebGpu } from './conv2d-backprop-filter.js';
import { depthwiseConv2dNativeBackpropFilterWebGpu } from './depthwise-conv2d-backprop-filter.js';
import { depthwiseConv2dNativeBackpropInputWebGpu } from './depthwise-conv2d-backprop-input.js';
import { hardNllWebGpuKernels } from './hard-nll.js';
import { jdtStatsWebGpuKernels } from './jdt-stats.js';
import { logSoftmaxWebGpuKernels } from './log-softmax.js';
import { reduceWebGpuKernels } from './reduce.js';
import { transposeWebGpu } from './transpose.js';

export const webGpuKernels: readonly tf.KernelConfig[] = [
  // Work-arounds for tfjs-backend-webgpu 4.22's int32 transpose shaders (they do not compile).
  transposeWebGpu,
  ...reduceWebGpuKernels,
  // Speed: the shipped filter gradient loops over every position per weight.
  conv2DBackpropFilterWebGpu,
  // Parallelism: the shipped depthwise filter gradient has one invocation per weight.
  depthwiseConv2dNativeBackpropFilterWebGpu,
  // Speed: the stride-1 depthwise input gradient without the shipped per-tap float division.
  depthwiseConv2dNativeBackpropInputWebGpu,
  // Fewer dispatches: the optimizer's update of a variable in one shader (three outputs).
  adamWWebGpu,
  // Training-mode batch norm and its gradient (the zoo's batch-norm layer uses them where registered).
  ...batchNormTrainWebGpuKernels,
  // The JDT loss statistics and their gradient (the losses use them where registered).
  ...jdtStatsWebGpuKernels,
  // Log-softmax with the probabilities, and its gradient (the hard-label objective shares them between CE and JDT).
  ...logSoftmaxWebGpuKernels,
  // The hard-label cross-entropy's sums and their gradient.
  ...hardNllWebGpuKernels,
];

let registered = false;

/** Registers the webgpu project kernels (idempotent). Call after importing @tensorflow/tfjs-backend-webgpu. */
export function registerWebGpuKernels(): void {
  if (registered) return;
  replaceKernels(webGpuKernels);
  registered = true;
}

