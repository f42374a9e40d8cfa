// Training-step time and a per-kernel profile on the webgpu backend (any adapter, lavapipe included), next to
// wasm: `node --import tsx bench/gpu/step-profile.ts [--models unet,mobile-unet] [--size 32] [--batch 4] [--steps 3] [--top 12]`.
// The per-kernel times come from tf.profile (GPU timestamps when the adapter has timestamp-query).
import * as tf from '@tensorflow/tfjs';
import { parseArgs } from 'node:util';
import { createModel } from '../../src/models/registry.js';
import { initBackend } from '../../src/backends/select.js';
import { hardLabelObjective } from '../../src/losses/index.js';
import { SegOptimizer } from '../../src/engine/optimizer.js';
import { TrainStep, type TensorBatch } from '../../src/engine/step.js';

const { values: args } = parseArgs({
  options: {
    models: { type: 'string', default: 'unet,mobile-unet' },
    size: { type: 'string', default: '32' },
    batch: { type: 'string', default: '4' },
    steps: { type: 'string', default: '3' },
    top: { type: 'string', default: '12' },
    backends: { type: 'string', default: 'wasm,webgpu' },
  },
});
const size = Number(args.size), batchSize = Number(args.batch), steps = Number(args.steps), top = Number(args.top);

function randomBatch(classes: number): TensorBatch {
  return tf.tidy(() => ({
    images: tf.randomNormal([batchSize, size, size, 3], 0, 1, 'float32', 1) as tf.Tensor4D,
    labels: tf.randomUniform([batchSize, size, size], 0, classes, 'int32', 2) as tf.Tensor3D,
  }));
}

for (const name of args.models.split(',')) {
  for (const backend of args.backends.split(',') as Array<'wasm' | 'webgpu'>) {
    await initBackend({ backend });
    const model = createModel(name, { numClasses: 11, seed: 1 });
    const optimizer = new SegOptimizer({ lr: 1e-3 });
    const step = new TrainStep(model, (out, b) => hardLabelObjective(out, b.labels!), optimizer);
    const batch = randomBatch(11);
    const t0 = performance.now();
    await step.run(batch); // shader compilation / warm-up
    const first = performance.now() - t0;
    const times: number[] = [];
    for (let i = 0; i < steps; i++) {
      const t = performance.now();
      await step.run(batch);
      times.push(performance.now() - t);
    }
    times.sort((a, b) => a - b);
    const median = times[Math.floor(times.length / 2)]!;
    console.log(`${name} ${size}² b${batchSize} ${backend}: first step ${(first / 1000).toFixed(1)} s, median step ${median.toFixed(0)} ms, ${(batchSize / (median / 1000)).toFixed(1)} img/s`);
    if (backend === 'webgpu' && top > 0) {
      const profile = await tf.profile(async () => { await step.run(batch); });
      const byKernel = new Map<string, { ms: number; calls: number }>();
      for (const k of profile.kernels) {
        const ms = typeof k.kernelTimeMs === 'number' ? k.kernelTimeMs : 0;
        const e = byKernel.get(k.name) ?? { ms: 0, calls: 0 };
        byKernel.set(k.name, { ms: e.ms + ms, calls: e.calls + 1 });
      }
      const total = [...byKernel.values()].reduce((a, b) => a + b.ms, 0);
      console.log(`  kernels (GPU time ${total.toFixed(0)} ms in ${profile.kernels.length} kernel calls):`);
      for (const [k, v] of [...byKernel].sort((a, b) => b[1].ms - a[1].ms).slice(0, top)) {
        console.log(`    ${k.padEnd(34)} ${v.ms.toFixed(1).padStart(8)} ms  ${((100 * v.ms) / total).toFixed(1).padStart(5)}%  ${String(v.calls).padStart(4)} calls`);
      }
    }
    tf.dispose(Object.values(batch));
    optimizer.dispose();
    model.dispose();
  }
}
