// Conv2DBackpropFilter (webgpu), NHWC: the filter gradient as one implicit GEMM instead of the shipped shader's one
// invocation per weight, each looping over every N·Ho·Wo position (62% of a unet training step on lavapipe, and few
// invocations for a GPU: 9·Ci·Co for a 3×3 conv):
//   dW[(a, b, c), o] = Σ_k A[k, (a, b, c)] · dY[k, o],  A[k, (a, b, c)] = X[n, a + y·sH − top, b + x·sW − left, c]
// over the output positions k = (n, y, x) (zero outside X; no im2col buffer). Workgroups of 8×8 invocations compute
// 32×32 blocks of the (kh·kw·Ci) × Co result, 4×4 per invocation, staging 32-position slices of A and dY in
// workgroup memory (four channels per read when Ci and Co are multiples of 4); the long position axis is split over
// workgroups (split-K) when the result has few blocks, and a second pass adds the splits. Tiny reductions (N·Ho·Wo
// below MIN_POSITIONS) keep the shipped kernel, whose per-weight loop is short there. On lavapipe (2-core CPU), a
// unet 32² batch-4 training step: filter gradients 5.5 s of GPU time with the shipped kernel, 1.3 s with one matrix
// product per tap (tfjs BatchMatMul on strided slices, this kernel's previous form), 1.0 s with this one reading
// scalars, 0.8 s with the vec4 reads (bench/gpu/step-profile.ts).
import * as tf from '@tensorflow/tfjs';
import { callShipped } from '../shipped.js';
import { flatDispatch, type WebGpuBackendLike, type WebGpuProgram } from './program.js';

/** Below this many output positions (N·Ho·Wo) the shipped kernel is used. */
const MIN_POSITIONS = 256;

interface Attrs {
  strides: number | [number, number];
  pad: 'valid' | 'same' | number | tf.backend_util.ExplicitPadding;
  dataFormat: 'NHWC' | 'NCHW';
  dimRoundingMode?: 'floor' | 'round' | 'ceil';
  filterShape: [number, number, number, number];
}

type Args = { inputs: tf.NamedTensorInfoMap; backend: unknown; attrs: unknown };

/** Tile of the implicit GEMM: TILE rows (kh·kw·ci) × TILE columns (co) per workgroup of 8×8 invocations, 4×4 each. */
const TILE = 32;
/** Output positions per split of the reduction (at least), and the workgroups the splits aim for. */
const MIN_SPLIT_POSITIONS = 256;
const TARGET_WORKGROUPS = 512;

const GEMM_UNIFORMS = 'positions : i32, rowsM : i32, colsN : i32, inChannels : i32, filterW : i32, outW : i32, outH : i32, outHW : i32, inDims : vec2<i32>, strides : vec2<i32>, pads : vec2<i32>, kPerSplit : i32, tilesPerSplit : i32,';

/**
 * Partial filter gradients [splits, kh·kw·ci, co]: workgroup (x, y, z) computes the TILE×TILE block (column block x,
 * row block y) over the z-th range of output positions. A[k, (a, b, c)] = X[n, a + y·sH − top, b + x·sW − left, c]
 * for position k = (n, y, x) (zero outside), B[k, o] = dY[k, o]; both staged through workgroup memory.
 */
/** WGSL: moves the reduction index k and its output position (n, y, x) on by `step` positions. */
function advancePosition(step: number): string {
  return `k += ${step};
            x += ${step};
            while (x >= uniforms.outW) {
              x -= uniforms.outW;
              y += 1;
            }
            while (y >= uniforms.outH) {
              y -= uniforms.outH;
              n += 1;
            }`;
}

/** WGSL: writes an invocation's 4×4 block (rows[ii][j], at row0 + tr, col0 + tc) into its split's [M, N] slab, inside the bounds. */
const STORE_BLOCK = `for (var ii = 0; ii < 4; ii++) {
          let outRow = row0 + tr + ii;
          for (var j = 0; j < 4; j++) {
            let outCol = col0 + tc + j;
            if (outRow < uniforms.rowsM && outCol < uniforms.colsN) {
              setOutputAtIndex((split * uniforms.rowsM + outRow) * uniforms.colsN + outCol, rows[ii][j]);
            }
          }
        }`;

function gemmProgram(splits: number, m: number, nCols: number, vec4: boolean): WebGpuProgram {
  if (vec4) return gemmVec4Program(splits, m, nCols);
  return {
    variableNames: ['cbX', 'cbDy'],
    outputShape: [splits, m, nCols],
    shaderKey: 'softseg_conv_filter_grad_gemm',
    uniforms: GEMM_UNIFORMS,
    dispatchLayout: { x: [2], y: [1], z: [0] },
    dispatch: [Math.ceil(nCols / TILE), Math.ceil(m / TILE), splits],
    workgroupSize: [8, 8, 1],
    getUserCode: () => `
      var<workgroup> tileA : array<array<f32, ${TILE}>, ${TILE}>;
      var<workgroup> tileB : array<array<vec4<f32>, ${TILE / 4}>, ${TILE}>;

      // Position k = (n, y, x) of the output; rowTap: the filter row (a, b, c) of an A row as (a − top, b − left, c),
      // or c = −1 past the last row.
      fn readA(k : i32, n : i32, y : i32, x : i32, rowTap : vec3<i32>, kEnd : i32) -> f32 {
        if (k >= kEnd || rowTap.z < 0) { return 0.0; }
        let xr = rowTap.x + y * uniforms.strides.x;
        let xc = rowTap.y + x * uniforms.strides.y;
        if (xr < 0 || xr >= uniforms.inDims.x || xc < 0 || xc >= uniforms.inDims.y) { return 0.0; }
        return cbX[((n * uniforms.inDims.x + xr) * uniforms.inDims.y + xc) * uniforms.inChannels + rowTap.z];
      }

      fn readB(k : i32, col : i32, kEnd : i32) -> f32 {
        if (k >= kEnd || col >= uniforms.colsN) { return 0.0; }
        return cbDy[k * uniforms.colsN + col];
      }

      fn main() {
        let row0 = i32(workgroupId.y) * ${TILE};
        let col0 = i32(workgroupId.x) * ${TILE};
        let split = i32(workgroupId.z);
        let kBegin = split * uniforms.kPerSplit;
        let kEnd = min(uniforms.positions, kBegin + uniforms.kPerSplit);
        let tr = i32(localId.y) * 4;
        let tc = i32(localId.x) * 4;
        let li = i32(localIndex);
        // Each invocation loads the same A row and B column of every tile (r below): decompose its row once.
        let r = li % ${TILE};
        let row = row0 + r;
        let tap = row / uniforms.inChannels;
        let rowTap = select(vec3<i32>(0, 0, -1), vec3<i32>(tap / uniforms.filterW - uniforms.pads.x, tap % uniforms.filterW - uniforms.pads.y, row - tap * uniforms.inChannels), row < uniforms.rowsM);
        var acc0 = vec4<f32>(0.0);
        var acc1 = vec4<f32>(0.0);
        var acc2 = vec4<f32>(0.0);
        var acc3 = vec4<f32>(0.0);
        // The trip count is uniform (barriers inside); kEnd bounds the reads.
        for (var t = 0; t < uniforms.tilesPerSplit; t++) {
          let k0 = kBegin + t * ${TILE};
          // This invocation's positions step by ${64 / TILE}: (n, y, x) is divided out once per tile and then advanced.
          var k = k0 + li / ${TILE};
          var n = k / uniforms.outHW;
          var y = (k - n * uniforms.outHW) / uniforms.outW;
          var x = k - n * uniforms.outHW - y * uniforms.outW;
          for (var i = 0; i < ${(TILE * TILE) / 64}; i++) {
            let kk = li / ${TILE} + i * ${64 / TILE};
            tileA[kk][r] = readA(k, n, y, x, rowTap, kEnd);
            tileB[kk][r / 4][r % 4] = readB(k, col0 + r, kEnd);
            ${advancePosition(64 / TILE)}
          }
          workgroupBarrier();
          for (var kk = 0; kk < ${TILE}; kk++) {
            let b = tileB[kk][i32(localId.x)];
            // Four accumulators in registers (a private array indexed in a loop may live in memory).
            acc0 = fma(vec4<f32>(tileA[kk][tr]), b, acc0);
            acc1 = fma(vec4<f32>(tileA[kk][tr + 1]), b, acc1);
            acc2 = fma(vec4<f32>(tileA[kk][tr + 2]), b, acc2);
            acc3 = fma(vec4<f32>(tileA[kk][tr + 3]), b, acc3);
          }
          workgroupBarrier();
        }
        let rows = array<vec4<f32>, 4>(acc0, acc1, acc2, acc3);
        ${STORE_BLOCK}
      }`,
  };
}

/**
 * gemmProgram when Ci and Co are multiples of 4: the same blocks, but X and dY are read four channels at a time
 * (array<vec4<f32>> bindings), so each position's index arithmetic and bounds checks serve four elements.
 * Invocation li loads channel group g = li % 8 (A rows / B columns 4g … 4g + 3) at positions li / 8 + 8i.
 */
function gemmVec4Program(splits: number, m: number, nCols: number): WebGpuProgram {
  return {
    variableNames: ['cbX', 'cbDy'],
    variableComponents: [4, 4],
    outputShape: [splits, m, nCols],
    shaderKey: 'softseg_conv_filter_grad_gemm_vec4',
    uniforms: GEMM_UNIFORMS,
    dispatchLayout: { x: [2], y: [1], z: [0] },
    dispatch: [Math.ceil(nCols / TILE), Math.ceil(m / TILE), splits],
    workgroupSize: [8, 8, 1],
    getUserCode: () => `
      var<workgroup> tileA : array<array<vec4<f32>, ${TILE / 4}>, ${TILE}>;
      var<workgroup> tileB : array<array<vec4<f32>, ${TILE / 4}>, ${TILE}>;

      fn main() {
        let row0 = i32(workgroupId.y) * ${TILE};
        let col0 = i32(workgroupId.x) * ${TILE};
        let split = i32(workgroupId.z);
        let kBegin = split * uniforms.kPerSplit;
        let kEnd = min(uniforms.positions, kBegin + uniforms.kPerSplit);
        let li = i32(localIndex);
        let g = li % ${TILE / 4};
        // A rows 4g … 4g + 3 of this block: one tap, four consecutive channels (Ci is a multiple of 4).
        let row = row0 + 4 * g;
        let tap = row / uniforms.inChannels;
        let rowOk = row < uniforms.rowsM;
        let ta = tap / uniforms.filterW - uniforms.pads.x;
        let tb = tap % uniforms.filterW - uniforms.pads.y;
        let c4 = (row - tap * uniforms.inChannels) / 4;
        let col = col0 + 4 * g;
        let colOk = col < uniforms.colsN;
        var acc0 = vec4<f32>(0.0);
        var acc1 = vec4<f32>(0.0);
        var acc2 = vec4<f32>(0.0);
        var acc3 = vec4<f32>(0.0);
        for (var t = 0; t < uniforms.tilesPerSplit; t++) {
          var k = kBegin + t * ${TILE} + li / ${TILE / 4};
          var n = k / uniforms.outHW;
          var y = (k - n * uniforms.outHW) / uniforms.outW;
          var x = k - n * uniforms.outHW - y * uniforms.outW;
          for (var i = 0; i < ${(TILE * TILE) / 4 / 64}; i++) {
            let kk = li / ${TILE / 4} + i * ${64 / (TILE / 4)};
            var a = vec4<f32>(0.0);
            var b = vec4<f32>(0.0);
            if (k < kEnd) {
              let xr = ta + y * uniforms.strides.x;
              let xc = tb + x * uniforms.strides.y;
              if (rowOk && xr >= 0 && xr < uniforms.inDims.x && xc >= 0 && xc < uniforms.inDims.y) {
                a = cbX[((n * uniforms.inDims.x + xr) * uniforms.inDims.y + xc) * (uniforms.inChannels / 4) + c4];
              }
              if (colOk) { b = cbDy[(k * uniforms.colsN + col) / 4]; }
            }
            tileA[kk][g] = a;
            tileB[kk][g] = b;
            ${advancePosition(64 / (TILE / 4))}
          }
          workgroupBarrier();
          for (var kk = 0; kk < ${TILE}; kk++) {
            let bv = tileB[kk][i32(localId.x)];
            let av = tileA[kk][i32(localId.y)];
            acc0 = fma(vec4<f32>(av.x), bv, acc0);
            acc1 = fma(vec4<f32>(av.y), bv, acc1);
            acc2 = fma(vec4<f32>(av.z), bv, acc2);
            acc3 = fma(vec4<f32>(av.w), bv, acc3);
          }
          workgroupBarrier();
        }
        let rows = array<vec4<f32>, 4>(acc0, acc1, acc2, acc3);
        let tr = i32(localId.y) * 4;
        let tc = i32(localId.x) * 4;
        ${STORE_BLOCK}
      }`,
  };
}

/** Sum of the splits: [splits, M, N] → the filter shape. */
function splitSumProgram(filterShape: number[]): WebGpuProgram {
  return {
    variableNames: ['cbPart'],
    outputShape: filterShape,
    shaderKey: 'softseg_conv_filter_grad_splits',
    size: true,
    uniforms: 'splits : i32,',
    ...flatDispatch(filterShape),
    getUserCode: () => `
      fn main(index : i32) {
        if (index < uniforms.size) {
          var acc = 0.0;
          for (var s = 0; s < uniforms.splits; s++) { acc += cbPart[s * uniforms.size + index]; }
          setOutputAtIndex(index, acc);
        }
      }`,
  };
}

function implicitGemm(backend: WebGpuBackendLike, x: tf.TensorInfo, dy: tf.TensorInfo, filterShape: [number, number, number, number], info: tf.backend_util.Conv2DInfo): tf.TensorInfo {
  const [kh, kw, ci, co] = filterShape;
  const positions = info.batchSize * info.outHeight * info.outWidth;
  const m = kh * kw * ci;
  const tiles = Math.ceil(m / TILE) * Math.ceil(co / TILE);
  const splits = Math.max(1, Math.min(Math.ceil(TARGET_WORKGROUPS / tiles), Math.floor(positions / MIN_SPLIT_POSITIONS)));
  const tilesPerSplit = Math.ceil(positions / splits / TILE);
  const kPerSplit = tilesPerSplit * TILE;
  const used = Math.ceil(positions / kPerSplit);
  const i32 = (...data: number[]) => ({ type: 'int32' as const, data });
  const vec4 = ci % 4 === 0 && co % 4 === 0;
  const part = backend.runWebGPUProgram(gemmProgram(used, m, co, vec4), [x, dy], 'float32', [
    i32(positions), i32(m), i32(co), i32(ci), i32(kw), i32(info.outWidth), i32(info.outHeight), i32(info.outHeight * info.outWidth), i32(info.inHeight, info.inWidth),
    i32(info.strideHeight, info.strideWidth), i32(info.padInfo.top, info.padInfo.left), i32(kPerSplit), i32(tilesPerSplit),
  ]);
  try {
    return backend.runWebGPUProgram(splitSumProgram(filterShape), [part], 'float32', [i32(used)]);
  } finally {
    backend.disposeData(part.dataId);
  }
}


function conv2DBackpropFilter(args: Args): tf.TensorInfo {
  const { x, dy } = args.inputs as { x: tf.TensorInfo; dy: tf.TensorInfo };
  const attrs = args.attrs as Attrs;
  if (attrs.dataFormat === 'NCHW' || x.dtype !== 'float32' || dy.dtype !== 'float32') return callShipped(tf.Conv2DBackpropFilter, 'webgpu', args);
  const info = tf.backend_util.computeConv2DInfo(x.shape as [number, number, number, number], attrs.filterShape, attrs.strides, 1, attrs.pad, attrs.dimRoundingMode, false, 'channelsLast');
  if (info.batchSize * info.outHeight * info.outWidth < MIN_POSITIONS) return callShipped(tf.Conv2DBackpropFilter, 'webgpu', args);
  return implicitGemm(args.backend as WebGpuBackendLike, x, dy, attrs.filterShape, info);
}

export const conv2DBackpropFilterWebGpu: tf.KernelConfig = {
  kernelName: tf.Conv2DBackpropFilter,
  backendName: 'webgpu',
  kernelFunc: conv2DBackpropFilter as unknown as tf.KernelFunc,
};
