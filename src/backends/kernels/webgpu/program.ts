// What a project WebGPU kernel needs to run its own WGSL through tfjs-backend-webgpu: the shape of a program
// object (the fields `runWebGPUProgram` reads; tfjs adds the shared prelude — shapes and strides as uniforms,
// getCoordsFromIndex, getIndexFromCoordsND, setOutputAtIndex(I32) — in front of `getUserCode()`), and the
// backend's few members we use. Kept structural so that the package stays an optional dependency.
import type * as tf from '@tensorflow/tfjs';

export interface WebGpuProgram {
  variableNames: string[];
  outputShape: number[];
  shaderKey: string;
  dispatchLayout: { x: number[]; y?: number[]; z?: number[] };
  dispatch: [number, number, number];
  workgroupSize: [number, number, number];
  /** Per input, the elements per array entry of its WGSL binding (4: array<vec4<f32>>); default 1. */
  variableComponents?: number[];
  /** Adds `uniforms.size` (the output's element count). */
  size?: boolean;
  /** Extra uniform fields, WGSL struct syntax ("a : f32, b : i32,"), filled from runWebGPUProgram's uniform list. */
  uniforms?: string;
  getUserCode(): string;
}

export interface WebGpuBackendLike {
  runWebGPUProgram(program: WebGpuProgram, inputs: tf.TensorInfo[], outputDtype: tf.DataType, uniforms?: Array<{ type: 'int32' | 'float32' | 'uint32'; data: number[] }>): tf.TensorInfo;
  shouldExecuteOnCPU(inputs: tf.TensorInfo[]): boolean;
  disposeData(dataId: object): boolean;
  /** dtype here is the GPU buffer's, which can differ from the tensor's (a cast int32 → float32 shares the buffer). */
  tensorMap: { get(dataId: object): { dtype: tf.DataType } };
}

/** One invocation per output element, 64 per workgroup (tfjs reshapes dispatches over the 65535 limit). */
export function flatDispatch(outputShape: number[], workgroupSize: [number, number, number] = [64, 1, 1]): Pick<WebGpuProgram, 'dispatchLayout' | 'dispatch' | 'workgroupSize'> {
  const size = outputShape.reduce((a, b) => a * b, 1);
  return { dispatchLayout: { x: outputShape.map((_, i) => i) }, dispatch: [Math.ceil(size / workgroupSize[0]), 1, 1], workgroupSize };
}

/** The WGSL type tfjs uses for coordinates of a rank-`rank` tensor. */
export function coordsType(rank: number): string {
  return rank <= 1 ? 'i32' : rank <= 4 ? `vec${rank}<i32>` : `vec${rank}`;
}

/** Field `i` of a coordinates value (x, y, z, w, u, v). */
export const coordField = (i: number): string => 'xyzwuv'[i]!;
