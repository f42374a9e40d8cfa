// SoftsegLogSoftmax / SoftsegLogSoftmaxGrad (webgpu): log-softmax over the last axis and the probabilities, and
// their gradient, with the formulas of ../log-softmax.ts (the wasm kernels), one invocation per row (a pixel's C
// class scores). The plain-op path dispatches Max, Sub, Exp, Sum, Log, Sub and Exp forward and Sum, Exp, Mul, Sub
// backward, and the shipped last-axis Max and Sum use a whole workgroup (with barriers) per row — for a pixel's
// ~10 classes most of its invocations idle: on lavapipe those reductions were the largest items of a mobile-unet step.
// Forward: two dispatches of one shader (log-probabilities, probabilities), each computing the row's maximum and
// Σ exp(z − max). Backward: dz = dlogp − p·Σ dlogp + p ⊙ (dprob − Σ p·dprob).
import * as tf from '@tensorflow/tfjs';
import { LOG_SOFTMAX, LOG_SOFTMAX_GRAD } from '../log-softmax.js';
import { flatDispatch, type WebGpuBackendLike, type WebGpuProgram } from './program.js';

type Args = { inputs: tf.NamedTensorInfoMap; backend: unknown; attrs: unknown };

function rowsOf(x: tf.TensorInfo, kernel: string): { rows: number; c: number } {
  if (x.dtype !== 'float32') throw new Error(`${kernel}: inputs must be float32, got ${x.dtype}`);
  const c = x.shape[x.shape.length - 1] ?? 0;
  return { rows: c === 0 ? 0 : x.shape.reduce((a, b) => a * b, 1) / c, c };
}

function forwardProgram(shape: number[], rows: number, which: 'logp' | 'prob'): WebGpuProgram {
  return {
    variableNames: ['lsZ'],
    outputShape: shape,
    shaderKey: `softseg_log_softmax_${which}`,
    uniforms: 'rows : i32, classes : i32,',
    ...flatDispatch([rows]),
    dispatchLayout: { x: shape.map((_, i) => i) },
    getUserCode: () => `
      fn main(index : i32) {
        if (index < uniforms.rows) {
          let base = index * uniforms.classes;
          var m = lsZ[base];
          for (var j = 1; j < uniforms.classes; j++) { m = max(m, lsZ[base + j]); }
          var s = 0.0;
          for (var j = 0; j < uniforms.classes; j++) { s += exp(lsZ[base + j] - m); }
          ${which === 'logp'
            ? `let lse = m + log(s);
          for (var j = 0; j < uniforms.classes; j++) { setOutputAtIndex(base + j, lsZ[base + j] - lse); }`
            : `let inv = 1.0 / s;
          for (var j = 0; j < uniforms.classes; j++) { setOutputAtIndex(base + j, exp(lsZ[base + j] - m) * inv); }`}
        }
      }`,
  };
}

function gradProgram(shape: number[], rows: number): WebGpuProgram {
  return {
    variableNames: ['lsDlogp', 'lsDprob', 'lsProb'],
    outputShape: shape,
    shaderKey: 'softseg_log_softmax_grad',
    uniforms: 'rows : i32, classes : i32,',
    ...flatDispatch([rows]),
    dispatchLayout: { x: shape.map((_, i) => i) },
    getUserCode: () => `
      fn main(index : i32) {
        if (index < uniforms.rows) {
          let base = index * uniforms.classes;
          var sl = 0.0;
          var sp = 0.0;
          for (var j = 0; j < uniforms.classes; j++) {
            sl += lsDlogp[base + j];
            sp += lsProb[base + j] * lsDprob[base + j];
          }
          for (var j = 0; j < uniforms.classes; j++) {
            let p = lsProb[base + j];
            setOutputAtIndex(base + j, lsDlogp[base + j] - p * sl + p * (lsDprob[base + j] - sp));
          }
        }
      }`,
  };
}

const geometryUniforms = (rows: number, c: number): Array<{ type: 'int32'; data: number[] }> => [{ type: 'int32', data: [rows] }, { type: 'int32', data: [c] }];

function logSoftmax(args: Args): tf.TensorInfo[] {
  const backend = args.backend as WebGpuBackendLike;
  const { logits } = args.inputs as { logits: tf.TensorInfo };
  const { rows, c } = rowsOf(logits, LOG_SOFTMAX);
  return (['logp', 'prob'] as const).map((which) => backend.runWebGPUProgram(forwardProgram(logits.shape, rows, which), [logits], 'float32', geometryUniforms(rows, c)));
}

function logSoftmaxGrad(args: Args): tf.TensorInfo {
  const backend = args.backend as WebGpuBackendLike;
  const { dlogp, dprob, prob } = args.inputs as { dlogp: tf.TensorInfo; dprob: tf.TensorInfo; prob: tf.TensorInfo };
  const { rows, c } = rowsOf(prob, LOG_SOFTMAX_GRAD);
  return backend.runWebGPUProgram(gradProgram(prob.shape, rows), [dlogp, dprob, prob], 'float32', geometryUniforms(rows, c));
}

export const logSoftmaxWebGpuKernels: readonly tf.KernelConfig[] = [
  { kernelName: LOG_SOFTMAX, backendName: 'webgpu', kernelFunc: logSoftmax as unknown as tf.KernelFunc },
  { kernelName: LOG_SOFTMAX_GRAD, backendName: 'webgpu', kernelFunc: logSoftmaxGrad as unknown as tf.KernelFunc },
];
