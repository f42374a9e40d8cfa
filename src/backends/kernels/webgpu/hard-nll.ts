// SoftsegHardNll / SoftsegHardNllGrad (webgpu): the hard-label part of cross-entropy as ../hard-nll.ts (the wasm/cpu
// kernels; same inputs, attributes and outputs) — [Σ keep·(−logp[y]), Σ keep] over the rows, and its gradient
// −dy[0]·keep at [row, y] — instead of one-hot, multiply, a last-axis Sum (a workgroup per pixel on webgpu) and the
// masked mean's ops. Forward: pass 1 sums chunks of rows into [2, chunks], pass 2 adds the chunks. Backward: one
// elementwise pass.
import * as tf from '@tensorflow/tfjs';
import { HARD_NLL, HARD_NLL_GRAD, type HardNllAttrs } from '../hard-nll.js';
import { flatDispatch, type WebGpuBackendLike, type WebGpuProgram } from './program.js';

type Args = { inputs: tf.NamedTensorInfoMap; backend: unknown; attrs: unknown };

/** Chunks pass 1 aims for, and the fewest rows a chunk gets. */
const TARGET_CHUNKS = 4096;
const MIN_CHUNK_ROWS = 32;

const UNIFORMS = 'rows : i32, classes : i32, chunks : i32, chunkRows : i32, ignoreIndex : i32, hasIgnore : i32,';

/** WGSL: the class of row i (clamped to [0, C − 1]) and whether it counts. */
const LABEL = `
      fn rowLabel(i : i32) -> vec2<i32> {
        let raw = i32(nllLabel[i]);
        let keep = select(1, 0, uniforms.hasIgnore != 0 && raw == uniforms.ignoreIndex);
        return vec2<i32>(clamp(raw, 0, uniforms.classes - 1), keep);
      }`;

function partialProgram(chunks: number): WebGpuProgram {
  return {
    variableNames: ['nllLogp', 'nllLabel'],
    outputShape: [2, chunks],
    shaderKey: 'softseg_hard_nll_partial',
    uniforms: UNIFORMS,
    ...flatDispatch([chunks]),
    dispatchLayout: { x: [0, 1] },
    getUserCode: () => `${LABEL}
      fn main(index : i32) {
        if (index < uniforms.chunks) {
          let r0 = index * uniforms.chunkRows;
          let r1 = min(uniforms.rows, r0 + uniforms.chunkRows);
          var nll = 0.0;
          var count = 0.0;
          for (var i = r0; i < r1; i++) {
            let l = rowLabel(i);
            if (l.y != 0) {
              nll -= f32(nllLogp[i * uniforms.classes + l.x]);
              count += 1.0;
            }
          }
          setOutputAtIndex(index, nll);
          setOutputAtIndex(uniforms.chunks + index, count);
        }
      }`,
  };
}

function combineProgram(): WebGpuProgram {
  return {
    variableNames: ['nllPart'],
    outputShape: [2],
    shaderKey: 'softseg_hard_nll_combine',
    uniforms: UNIFORMS,
    ...flatDispatch([2]),
    getUserCode: () => `
      fn main(index : i32) {
        if (index < 2) {
          var s = 0.0;
          for (var k = 0; k < uniforms.chunks; k++) { s += nllPart[index * uniforms.chunks + k]; }
          setOutputAtIndex(index, s);
        }
      }`,
  };
}

function gradProgram(shape: number[]): WebGpuProgram {
  return {
    variableNames: ['nllLabel', 'nllDy'],
    outputShape: shape,
    shaderKey: 'softseg_hard_nll_grad',
    size: true,
    uniforms: UNIFORMS,
    ...flatDispatch(shape),
    getUserCode: () => `${LABEL}
      fn main(index : i32) {
        if (index < uniforms.size) {
          let l = rowLabel(index / uniforms.classes);
          setOutputAtIndex(index, select(0.0, -nllDy[0], l.y != 0 && l.x == index % uniforms.classes));
        }
      }`,
  };
}

function geometry(logp: tf.TensorInfo, kernel: string, attrs: HardNllAttrs): { m: number; c: number; chunks: number; uniforms: Array<{ type: 'int32'; data: number[] }> } {
  if (logp.shape.length !== 2) throw new Error(`${kernel}: logp must be [M, C]`);
  const [m, c] = logp.shape as [number, number];
  const chunkRows = Math.max(MIN_CHUNK_ROWS, Math.ceil(m / TARGET_CHUNKS));
  const chunks = Math.max(1, Math.ceil(m / chunkRows));
  const values = [m, c, chunks, chunkRows, attrs.ignoreIndex ?? 0, attrs.ignoreIndex === null ? 0 : 1];
  return { m, c, chunks, uniforms: values.map((v) => ({ type: 'int32' as const, data: [v] })) };
}

function hardNll(args: Args): tf.TensorInfo {
  const backend = args.backend as WebGpuBackendLike;
  const { logp, label } = args.inputs as { logp: tf.TensorInfo; label: tf.TensorInfo };
  const g = geometry(logp, HARD_NLL, args.attrs as unknown as HardNllAttrs);
  const part = backend.runWebGPUProgram(partialProgram(g.chunks), [logp, label], 'float32', g.uniforms);
  try {
    return backend.runWebGPUProgram(combineProgram(), [part], 'float32', g.uniforms);
  } finally {
    backend.disposeData(part.dataId);
  }
}

function hardNllGrad(args: Args): tf.TensorInfo {
  const backend = args.backend as WebGpuBackendLike;
  const { logp, label, dy } = args.inputs as { logp: tf.TensorInfo; label: tf.TensorInfo; dy: tf.TensorInfo };
  const g = geometry(logp, HARD_NLL_GRAD, args.attrs as unknown as HardNllAttrs);
  return backend.runWebGPUProgram(gradProgram(logp.shape), [label, dy], 'float32', g.uniforms);
}

export const hardNllWebGpuKernels: readonly tf.KernelConfig[] = [
  { kernelName: HARD_NLL, backendName: 'webgpu', kernelFunc: hardNll as unknown as tf.KernelFunc },
  { kernelName: HARD_NLL_GRAD, backendName: 'webgpu', kernelFunc: hardNllGrad as unknown as tf.KernelFunc },
];
