// Transpose (webgpu) for int32 and bool tensors. tfjs-backend-webgpu 4.22's transpose shaders write the input
// element through setOutputAtIndex, which takes an f32: for an int32 input the WGSL does not compile, the
// device reports a validation error and the output is garbage (hard labels transposed in the losses hit this).
// This program writes with setOutputAtIndexI32 (which converts to the output's type); tensors stored as float32
// go to the shipped kernel.
import * as tf from '@tensorflow/tfjs';
import { callShipped } from '../shipped.js';
import { coordField, coordsType, flatDispatch, type WebGpuBackendLike, type WebGpuProgram } from './program.js';

function transposeIntProgram(shape: number[], perm: number[]): WebGpuProgram {
  const rank = shape.length;
  const outputShape = perm.map((p) => shape[p]!);
  const source = new Array<string>(rank);
  for (let i = 0; i < rank; i++) source[perm[i]!] = `coords.${coordField(i)}`;
  return {
    variableNames: ['A'],
    outputShape,
    shaderKey: `softseg_transpose_i32_${perm.join('_')}`,
    size: true,
    ...flatDispatch(outputShape),
    getUserCode: () => `
      fn main(index : i32) {
        if (index < uniforms.size) {
          ${rank <= 1
            ? 'setOutputAtIndexI32(index, A[index]);'
            : `let coords = getCoordsFromIndex(index);
          setOutputAtIndexI32(index, A[getIndexFromCoords${rank}D(${coordsType(rank)}(${source.join(', ')}), uniforms.aShape)]);`}
        }
      }`,
  };
}

/** `x` (stored as int32 or bool, on the GPU) transposed by `perm`; the output has x's dtype. */
export function transposeInt(backend: WebGpuBackendLike, x: tf.TensorInfo, perm: number[]): tf.TensorInfo {
  return backend.runWebGPUProgram(transposeIntProgram(x.shape, perm), [x], x.dtype);
}

/**
 * Whether the shipped webgpu transpose shaders cannot handle `x` (see the header): its GPU buffer holds int32
 * or bool. That includes float32 tensors cast from int32, which share the int32 buffer (a cast to a wider type
 * copies nothing).
 */
export function needsIntTranspose(backend: WebGpuBackendLike, x: tf.TensorInfo): boolean {
  const stored = backend.tensorMap.get(x.dataId).dtype;
  return (stored === 'int32' || stored === 'bool') && !backend.shouldExecuteOnCPU([x]);
}

function transpose(args: { inputs: tf.NamedTensorInfoMap; backend: unknown; attrs: unknown }): tf.TensorInfo {
  const { x } = args.inputs as { x: tf.TensorInfo };
  const { perm } = args.attrs as { perm: number[] };
  const backend = args.backend as WebGpuBackendLike;
  if (!needsIntTranspose(backend, x)) return callShipped(tf.Transpose, 'webgpu', args);
  return transposeInt(backend, x, perm);
}

export const transposeWebGpu: tf.KernelConfig = { kernelName: tf.Transpose, backendName: 'webgpu', kernelFunc: transpose as unknown as tf.KernelFunc };
