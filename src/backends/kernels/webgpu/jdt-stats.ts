// SoftsegJdtStats / SoftsegJdtStatsGrad (webgpu): the JDT loss statistics of ../jdt-stats.ts (the wasm/cpu
// kernels; same inputs, attributes and outputs) instead of the ~25 elementwise ops and the outer-axis Sums and Maxes
// (each a transpose plus a reduction on webgpu) of the loss's plain-op path.
//   Forward: a two-level reduction over the P pixels of each image. Pass 1 has one invocation per (image, pixel
//   chunk, class) — adjacent invocations read adjacent classes of the same pixels — and writes partial tp, fp, fn
//   sums and the three maxima [6, N, chunks, C]; pass 2 combines the chunks of each (image, class) into [6, N, C].
//   Backward: one elementwise pass, as the wasm kernel.
// Reads go through f32()/i32(): the shader's array types follow the GPU buffers' dtypes, which can differ from the
// tensors' (a cast between int32 and float32 may share the buffer).
import * as tf from '@tensorflow/tfjs';
import { JDT_STATS, JDT_STATS_GRAD, type JdtStatsAttrs } from '../jdt-stats.js';
import { flatDispatch, type WebGpuBackendLike, type WebGpuProgram } from './program.js';

type Args = { inputs: tf.NamedTensorInfoMap; backend: unknown; attrs: unknown };
type Uniform = { type: 'int32' | 'float32'; data: number[] };

/** Invocations pass 1 aims for (N · chunks · C), and the fewest pixels a chunk gets. */
const TARGET_INVOCATIONS = 8192;
const MIN_CHUNK_PIXELS = 16;

interface Geometry { n: number; p: number; c: number; chunks: number; chunkPixels: number }

function geometry(prob: tf.TensorInfo, kernel: string): Geometry {
  const [n, p, c] = prob.shape;
  if (prob.shape.length !== 3 || n === undefined || p === undefined || c === undefined) throw new Error(`${kernel}: prob must be [N,P,C]`);
  const wanted = Math.max(1, Math.ceil(TARGET_INVOCATIONS / Math.max(1, n * c)));
  const chunkPixels = Math.max(MIN_CHUNK_PIXELS, Math.ceil(p / wanted));
  return { n, p, c, chunks: Math.max(1, Math.ceil(p / chunkPixels)), chunkPixels };
}

const UNIFORMS = 'images : i32, pixels : i32, classes : i32, chunks : i32, chunkPixels : i32, ignoreIndex : i32, hasIgnore : i32,';

function uniforms(g: Geometry, attrs: JdtStatsAttrs): Uniform[] {
  return [g.n, g.p, g.c, g.chunks, g.chunkPixels, attrs.ignoreIndex ?? 0, attrs.ignoreIndex === null ? 0 : 1].map((v) => ({ type: 'int32', data: [v] }));
}

interface Variant { hard: boolean; keep: boolean }

/**
 * WGSL: the masked probability and label (pm, ym) of pixel i (flat over N·P) and class c, as the wasm kernel:
 * hard labels are clamped to [0, C − 1]; a pixel whose hard label equals the ignore index has k = 0 unless a keep
 * input is given, which then sets k.
 */
function maskedValues(v: Variant): string {
  return `
      fn masked(i : i32, c : i32) -> vec3<f32> {
        var k = 1.0;
        ${v.hard
          ? `let raw = i32(jdtLabel[i]);
        let cls = clamp(raw, 0, uniforms.classes - 1);
        ${v.keep ? '' : 'if (uniforms.hasIgnore != 0 && raw == uniforms.ignoreIndex) { k = 0.0; }'}
        let y = select(0.0, 1.0, c == cls);`
          : 'let y = f32(jdtLabel[i * uniforms.classes + c]);'}
        ${v.keep ? 'k = f32(jdtKeep[i]);' : ''}
        return vec3<f32>(f32(jdtProb[i * uniforms.classes + c]) * k, y * k, k);
      }`;
}

const inputNames = (v: Variant): string[] => ['jdtProb', 'jdtLabel', ...(v.keep ? ['jdtKeep'] : [])];
const variantKey = (v: Variant): string => `${v.hard ? 'hard' : 'soft'}${v.keep ? '_keep' : ''}`;

/** Pass 1: partial sums of pm + ym − |d|, d + |d|, |d| − d (d = pm − ym) and maxima of ym, pm, pm + ym [6, N, chunks, C]. */
function partialProgram(g: Geometry, v: Variant): WebGpuProgram {
  const m = g.n * g.chunks * g.c;
  return {
    variableNames: inputNames(v),
    outputShape: [6, g.n, g.chunks, g.c],
    shaderKey: `softseg_jdt_partial_${variantKey(v)}`,
    uniforms: UNIFORMS,
    ...flatDispatch([m]),
    dispatchLayout: { x: [0, 1, 2, 3] },
    getUserCode: () => `${maskedValues(v)}
      fn main(index : i32) {
        let m = uniforms.images * uniforms.chunks * uniforms.classes;
        if (index < m) {
          let c = index % uniforms.classes;
          let chunk = (index / uniforms.classes) % uniforms.chunks;
          let img = index / (uniforms.classes * uniforms.chunks);
          let q0 = chunk * uniforms.chunkPixels;
          let q1 = min(uniforms.pixels, q0 + uniforms.chunkPixels);
          var s = vec3<f32>(0.0, 0.0, 0.0);
          var mx = vec3<f32>(-3.4e38, -3.4e38, -3.4e38);
          for (var q = q0; q < q1; q++) {
            let e = masked(img * uniforms.pixels + q, c);
            let d = e.x - e.y;
            let a = abs(d);
            s += vec3<f32>(e.x + e.y - a, d + a, a - d);
            mx = max(mx, vec3<f32>(e.y, e.x, e.x + e.y));
          }
          setOutputAtIndex(index, s.x);
          setOutputAtIndex(m + index, s.y);
          setOutputAtIndex(2 * m + index, s.z);
          setOutputAtIndex(3 * m + index, mx.x);
          setOutputAtIndex(4 * m + index, mx.y);
          setOutputAtIndex(5 * m + index, mx.z);
        }
      }`,
  };
}

/** Pass 2: one invocation per (statistic, image, class) [6, N, C]: the chunks' sum (halved) or maximum. */
function combineProgram(g: Geometry): WebGpuProgram {
  return {
    variableNames: ['jdtPart'],
    outputShape: [6, g.n, g.c],
    shaderKey: 'softseg_jdt_combine',
    size: true,
    uniforms: UNIFORMS,
    ...flatDispatch([6, g.n, g.c]),
    getUserCode: () => `
      fn main(index : i32) {
        if (index < uniforms.size) {
          let nc = uniforms.images * uniforms.classes;
          let stat = index / nc;
          let img = (index % nc) / uniforms.classes;
          let c = index % uniforms.classes;
          let base = (stat * uniforms.images + img) * uniforms.chunks * uniforms.classes + c;
          var r = 0.0;
          if (stat < 3) {
            for (var k = 0; k < uniforms.chunks; k++) { r += jdtPart[base + k * uniforms.classes]; }
            r = r * 0.5;
          } else if (uniforms.pixels > 0) {
            r = -3.4e38;
            for (var k = 0; k < uniforms.chunks; k++) { r = max(r, jdtPart[base + k * uniforms.classes]); }
          }
          setOutputAtIndex(index, r);
        }
      }`,
  };
}

/** Backward: dprob = k·(gPos, gNeg or gZero of the image and class, by the sign of pm − ym), from dy [6, N, C]. */
function gradProgram(g: Geometry, v: Variant): WebGpuProgram {
  return {
    variableNames: [...inputNames(v), 'jdtDy'],
    outputShape: [g.n, g.p, g.c],
    shaderKey: `softseg_jdt_grad_${variantKey(v)}`,
    size: true,
    uniforms: UNIFORMS,
    ...flatDispatch([g.n, g.p, g.c]),
    getUserCode: () => `${maskedValues(v)}
      fn main(index : i32) {
        if (index < uniforms.size) {
          let c = index % uniforms.classes;
          let i = index / uniforms.classes;
          let o = (i / uniforms.pixels) * uniforms.classes + c;
          let nc = uniforms.images * uniforms.classes;
          let e = masked(i, c);
          let a = jdtDy[o];
          let b = jdtDy[nc + o];
          let d = jdtDy[2 * nc + o];
          var r = (a + b - d) * 0.5;
          if (e.x > e.y) { r = b; } else if (e.x < e.y) { r = a - d; }
          setOutputAtIndex(index, e.z * r);
        }
      }`,
  };
}

function inputsOf(args: Args): { prob: tf.TensorInfo; list: tf.TensorInfo[]; v: Variant; attrs: JdtStatsAttrs } {
  const { prob, label, keep } = args.inputs as { prob: tf.TensorInfo; label: tf.TensorInfo; keep?: tf.TensorInfo };
  const attrs = args.attrs as unknown as JdtStatsAttrs;
  return { prob, list: keep ? [prob, label, keep] : [prob, label], v: { hard: attrs.hard, keep: keep !== undefined }, attrs };
}

function jdtStats(args: Args): tf.TensorInfo {
  const backend = args.backend as WebGpuBackendLike;
  const { prob, list, v, attrs } = inputsOf(args);
  const g = geometry(prob, JDT_STATS);
  const part = backend.runWebGPUProgram(partialProgram(g, v), list, 'float32', uniforms(g, attrs));
  try {
    return backend.runWebGPUProgram(combineProgram(g), [part], 'float32', uniforms(g, attrs));
  } finally {
    backend.disposeData(part.dataId);
  }
}

function jdtStatsGrad(args: Args): tf.TensorInfo {
  const backend = args.backend as WebGpuBackendLike;
  const { prob, list, v, attrs } = inputsOf(args);
  const g = geometry(prob, JDT_STATS_GRAD);
  const { dy } = args.inputs as { dy: tf.TensorInfo };
  return backend.runWebGPUProgram(gradProgram(g, v), [...list, dy], 'float32', uniforms(g, attrs));
}

export const jdtStatsWebGpuKernels: readonly tf.KernelConfig[] = [
  { kernelName: JDT_STATS, backendName: 'webgpu', kernelFunc: jdtStats as unknown as tf.KernelFunc },
  { kernelName: JDT_STATS_GRAD, backendName: 'webgpu', kernelFunc: jdtStatsGrad as unknown as tf.KernelFunc },
];
