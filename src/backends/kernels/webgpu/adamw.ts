// SoftsegAdamW (webgpu): one AdamW update of one variable (the formula in ../adamw.ts) in three dispatches of one
// shader variant per output — x', m', v' each recompute the update from x, m, v, g — instead of the ~13 elementwise ops the optimizer
// dispatches per variable without it. A training step updates every variable, so this removes ~10 dispatches per
// variable (~700 of a mobile-unet step's ~2100 kernel calls), which on a GPU cost more in launch overhead than
// in arithmetic.
import type * as tf from '@tensorflow/tfjs';
import { ADAMW, adamWInputs, type AdamWAttrs } from '../adamw.js';
import { flatDispatch, type WebGpuBackendLike, type WebGpuProgram } from './program.js';

const OUTPUTS = ['x', 'm', 'v'] as const;

function adamWProgram(shape: number[], which: number): WebGpuProgram {
  return {
    variableNames: ['x', 'm', 'v', 'g'],
    outputShape: shape,
    shaderKey: `softseg_adamw_${which}`,
    size: true,
    uniforms: 'keep : f32, b1 : f32, c1 : f32, b2 : f32, c2 : f32, step : f32, inv2 : f32, eps : f32,',
    ...flatDispatch(shape),
    getUserCode: () => `
      fn main(index : i32) {
        if (index < uniforms.size) {
          // Every variant reads all four inputs: the pipeline layout is derived from the bindings the shader uses.
          let gi = getGByOutputIndex(index);
          let mi = uniforms.b1 * getMByOutputIndex(index) + uniforms.c1 * gi;
          let vi = uniforms.b2 * getVByOutputIndex(index) + uniforms.c2 * gi * gi;
          let xi = getXByOutputIndex(index) * uniforms.keep - (uniforms.step * mi) / (sqrt(vi * uniforms.inv2) + uniforms.eps);
          setOutputAtIndex(index, ${['xi', 'mi', 'vi'][which]});
        }
      }`,
  };
}

function adamW(args: { inputs: tf.NamedTensorInfoMap; backend: unknown; attrs: unknown }): tf.TensorInfo[] {
  const backend = args.backend as WebGpuBackendLike;
  const { x, m, v, g } = adamWInputs(args.inputs);
  const a = args.attrs as unknown as AdamWAttrs;
  const uniforms = [1 - a.decay, a.beta1, 1 - a.beta1, a.beta2, 1 - a.beta2, a.lr / a.bias1, 1 / a.bias2, a.epsilon].map((value) => ({ type: 'float32' as const, data: [value] }));
  return OUTPUTS.map((_, which) => backend.runWebGPUProgram(adamWProgram(x.shape, which), [x, m, v, g], 'float32', uniforms));
}

export const adamWWebGpu: tf.KernelConfig = { kernelName: ADAMW, backendName: 'webgpu', kernelFunc: adamW as unknown as tf.KernelFunc };
