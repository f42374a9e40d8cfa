// Per-kernel timings on wasm: the shipped kernel (where tfjs ships one) vs the project kernel, at UNet-like
// shapes (batch 8). Where wasm ships no kernel, the forward conv of the same layer is the yardstick.
// Run: node --import tsx scripts/bench-kernels.ts [--reps N] [--json]
import * as tf from '@tensorflow/tfjs';
import { initBackend, registerProjectKernels, shippedKernel } from '../src/backends/index.js';

const args = process.argv.slice(2);
const reps = Number(args[args.indexOf('--reps') + 1]) || 5;
const asJson = args.includes('--json');

interface Layer { name: string; x: [number, number, number, number]; k: number; cout: number; s: number; depthwise?: boolean }
const layers: Layer[] = [
  { name: 'conv3x3 64² 16→16', x: [8, 64, 64, 16], k: 3, cout: 16, s: 1 },
  { name: 'conv3x3 64² 32→32', x: [8, 64, 64, 32], k: 3, cout: 32, s: 1 },
  { name: 'conv3x3 32² 64→64', x: [8, 32, 32, 64], k: 3, cout: 64, s: 1 },
  { name: 'conv3x3 16² 128→128', x: [8, 16, 16, 128], k: 3, cout: 128, s: 1 },
  { name: 'conv3x3 128² 16→16', x: [8, 128, 128, 16], k: 3, cout: 16, s: 1 },
  { name: 'conv3x3 64² 64→64', x: [8, 64, 64, 64], k: 3, cout: 64, s: 1 },
  { name: 'conv1x1 64² 48→16', x: [8, 64, 64, 48], k: 1, cout: 16, s: 1 },
  { name: 'conv3x3 s2 128² 3→16', x: [8, 128, 128, 3], k: 3, cout: 16, s: 2 },
  { name: 'conv3x3 s2 64² 32→64', x: [8, 64, 64, 32], k: 3, cout: 64, s: 2 },
  { name: 'dw3x3 64² 16', x: [8, 64, 64, 16], k: 3, cout: 1, s: 1, depthwise: true },
  { name: 'dw3x3 32² 32', x: [8, 32, 32, 32], k: 3, cout: 1, s: 1, depthwise: true },
  { name: 'dw3x3 s2 32² 64', x: [8, 32, 32, 64], k: 3, cout: 1, s: 2, depthwise: true },
  { name: 'dw3x3 16² 128', x: [8, 16, 16, 128], k: 3, cout: 1, s: 1, depthwise: true },
  { name: 'dw3x3 128² 16', x: [8, 128, 128, 16], k: 3, cout: 1, s: 1, depthwise: true },
];

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

function timeMs(f: () => void, n: number): number {
  f(); // warm-up (XNNPACK operator creation, heap growth)
  const times: number[] = [];
  for (let i = 0; i < n; i++) {
    const t0 = performance.now();
    f();
    times.push(performance.now() - t0);
  }
  return median(times);
}

/** Runs a kernel config's function directly on the active backend and frees its output. */
function runConfig(config: tf.KernelConfig, inputs: Record<string, tf.Tensor>, attrs: Record<string, unknown>): () => void {
  const backend = tf.backend() as unknown as tf.KernelBackend & { disposeData(id: object): void };
  return () => {
    const out = config.kernelFunc({ inputs, attrs: attrs as tf.NamedAttrMap, backend }) as tf.TensorInfo;
    backend.disposeData(out.dataId);
  };
}

interface Row { layer: string; kernel: string; shippedMs: number | null; projectMs: number; forwardMs: number; speedup: number | null }

async function main(): Promise<void> {
  await initBackend({ backend: 'wasm' });
  registerProjectKernels();
  const rows: Row[] = [];
  for (const l of layers) {
    const [n, h, w, c] = l.x;
    const ho = Math.ceil(h / l.s);
    const wo = Math.ceil(w / l.s);
    const coutTotal = l.depthwise ? c * l.cout : l.cout;
    const x = tf.randomNormal(l.x);
    const filter = tf.randomNormal([l.k, l.k, c, l.cout]);
    const dy = tf.randomNormal([n, ho, wo, coutTotal]);
    const forward = l.depthwise
      ? () => tf.depthwiseConv2d(x as tf.Tensor4D, filter as tf.Tensor4D, l.s, 'same').dispose()
      : () => tf.conv2d(x as tf.Tensor4D, filter as tf.Tensor4D, l.s, 'same').dispose();
    const forwardMs = timeMs(forward, reps);
    const base = { strides: [l.s, l.s], pad: 'same', dataFormat: 'NHWC', dilations: [1, 1] };
    const kernels: Array<[string, Record<string, tf.Tensor>, Record<string, unknown>]> = l.depthwise
      ? [
          ['DepthwiseConv2dNativeBackpropFilter', { x, dy }, { ...base, filterShape: filter.shape }],
          ['DepthwiseConv2dNativeBackpropInput', { dy, filter }, { ...base, inputShape: l.x }],
        ]
      : [
          ['Conv2DBackpropFilter', { x, dy }, { ...base, filterShape: filter.shape }],
          ['Conv2DBackpropInput', { dy, filter }, { ...base, inputShape: l.x }],
        ];
    for (const [kernel, inputs, attrs] of kernels) {
      const project = tf.getKernel(kernel, 'wasm');
      if (project === undefined) throw new Error(`${kernel} not registered`);
      const projectMs = timeMs(runConfig(project, inputs, attrs), reps);
      const shipped = shippedKernel(kernel, 'wasm');
      const shippedMs = shipped ? timeMs(runConfig(shipped, inputs, attrs), Math.max(1, Math.min(reps, 3))) : null;
      const row = { layer: l.name, kernel, shippedMs, projectMs, forwardMs, speedup: shippedMs === null ? null : shippedMs / projectMs };
      rows.push(row);
      if (!asJson) {
        const shippedText = shippedMs === null ? '   (none)' : `${shippedMs.toFixed(1).padStart(9)}`;
        const speed = row.speedup === null ? '' : `  ×${row.speedup.toFixed(1)}`;
        console.log(
          `${l.name.padEnd(22)} ${kernel.padEnd(36)} shipped ${shippedText} ms  project ${projectMs.toFixed(1).padStart(7)} ms` +
            `  (forward ${forwardMs.toFixed(1)} ms, ${(projectMs / forwardMs).toFixed(2)}× fwd)${speed}`,
        );
      }
    }
    x.dispose();
    filter.dispose();
    dy.dispose();
  }
  // Data-movement kernels that training graphs hit: the FusedBatchNorm gradient's Tile, the concat gradient's
  // SplitV (→ Slice), stride-2 StridedSlice.
  const moves: Array<[string, string, number[], Record<string, unknown>]> = [];
  for (const [h, c] of [[64, 16], [64, 32], [128, 16], [32, 64]]) {
    moves.push([`BN-grad tile [1,1,1,${c}]→8×${h}²`, 'Tile', [1, 1, 1, c], { reps: [8, h, h, 1] }]);
    moves.push([`concat-grad split 8×${h}²×${2 * c}`, 'SplitV', [8, h, h, 2 * c], { numOrSizeSplits: [c, c], axis: 3 }]);
    moves.push([`slice channels 8×${h}²×${2 * c}`, 'Slice', [8, h, h, 2 * c], { begin: [0, 0, 0, c], size: [8, h, h, c] }]);
    moves.push([`stridedSlice s2 8×${h}²×${c}`, 'StridedSlice', [8, h, h, c], {
      begin: [0, 0, 0, 0], end: [8, h, h, c], strides: [1, 2, 2, 1], beginMask: 0, endMask: 0, ellipsisMask: 0, newAxisMask: 0, shrinkAxisMask: 0,
    }]);
  }
  const backend = tf.backend() as unknown as tf.KernelBackend & { disposeData(id: object): void };
  for (const [layer, kernel, shape, attrs] of moves) {
    const x = tf.randomNormal(shape);
    const call = (config: tf.KernelConfig) => () => {
      const out = config.kernelFunc({ inputs: { x }, attrs: attrs as tf.NamedAttrMap, backend });
      for (const o of Array.isArray(out) ? out : [out]) backend.disposeData(o.dataId);
    };
    const project = tf.getKernel(kernel, 'wasm');
    const shipped = shippedKernel(kernel, 'wasm');
    if (project === undefined || shipped === undefined) throw new Error(`${kernel} missing`);
    const projectMs = timeMs(call(project), reps);
    const shippedMs = timeMs(call(shipped), reps);
    rows.push({ layer, kernel, shippedMs, projectMs, forwardMs: NaN, speedup: shippedMs / projectMs });
    if (!asJson) {
      console.log(`${layer.padEnd(34)} ${kernel.padEnd(13)} shipped ${shippedMs.toFixed(2).padStart(8)} ms  project ${projectMs.toFixed(2).padStart(7)} ms  ×${(shippedMs / projectMs).toFixed(1)}`);
    }
    x.dispose();
  }
  if (asJson) console.log(JSON.stringify({ backend: 'wasm', threads: 1, reps, rows }, null, 2));
}

await main();
