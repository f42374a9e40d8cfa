// Does a webgpu project kernel pay? Training-step time with some project kernels on and off, alternating in one
// process (same model, batch and shaders; off = the shipped kernel, or for the project's own Softseg* ops the
// plain-op fallback the callers use without them):
//   node --import tsx bench/gpu/kernel-ab.ts --kernels SoftsegBatchNormTrain,SoftsegBatchNormTrainGrad [--models unet,mobile-unet] [--size 32] [--batch 4] [--rounds 4]
// Prints the median step time of each arm and the GPU time of the step's kernels (tf.profile) for each arm.
import * as tf from '@tensorflow/tfjs';
import { parseArgs } from 'node:util';
import { createModel } from '../../src/models/registry.js';
import { initBackend } from '../../src/backends/select.js';
import { shippedKernel } from '../../src/backends/kernels/shipped.js';
import { webGpuKernels } from '../../src/backends/kernels/webgpu/index.js';
import { hardLabelObjective } from '../../src/losses/index.js';
import { SegOptimizer } from '../../src/engine/optimizer.js';
import { TrainStep, type TensorBatch } from '../../src/engine/step.js';

const { values: args } = parseArgs({
  options: {
    kernels: { type: 'string' },
    models: { type: 'string', default: 'unet,mobile-unet' },
    size: { type: 'string', default: '32' },
    batch: { type: 'string', default: '4' },
    rounds: { type: 'string', default: '4' },
  },
});
if (args.kernels === undefined) throw new Error('--kernels NAME[,NAME…] (webgpu project kernels to switch off in the "off" arm)');
const names = args.kernels.split(',');
const size = Number(args.size), batchSize = Number(args.batch), rounds = Number(args.rounds);

await initBackend({ backend: 'webgpu' });
const configs = names.map((name) => {
  const config = webGpuKernels.find((k) => k.kernelName === name);
  if (config === undefined) throw new Error(`${name}: not a webgpu project kernel (${webGpuKernels.map((k) => k.kernelName).join(', ')})`);
  return config;
});

function use(project: boolean): void {
  for (const config of configs) {
    if (tf.getKernel(config.kernelName, 'webgpu') !== undefined) tf.unregisterKernel(config.kernelName, 'webgpu');
    const replacement = project ? config : shippedKernel(config.kernelName, 'webgpu');
    if (replacement !== undefined) tf.registerKernel(replacement);
  }
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

for (const name of args.models.split(',')) {
  const model = createModel(name, { numClasses: 11, seed: 1 });
  const optimizer = new SegOptimizer({ lr: 1e-3 });
  const step = new TrainStep(model, (out, b) => hardLabelObjective(out, b.labels!), optimizer);
  const batch: TensorBatch = tf.tidy(() => ({
    images: tf.randomNormal([batchSize, size, size, 3], 0, 1, 'float32', 1) as tf.Tensor4D,
    labels: tf.randomUniform([batchSize, size, size], 0, 11, 'int32', 2) as tf.Tensor3D,
  }));
  const times: Record<'on' | 'off', number[]> = { on: [], off: [] };
  const gpu: Record<'on' | 'off', { ms: number; calls: number }> = { on: { ms: 0, calls: 0 }, off: { ms: 0, calls: 0 } };
  for (const arm of ['on', 'off'] as const) { // warm-up: compile both arms' shaders
    use(arm === 'on');
    await step.run(batch);
  }
  for (let r = 0; r < rounds; r++) {
    for (const arm of (r % 2 === 0 ? ['on', 'off'] : ['off', 'on']) as Array<'on' | 'off'>) {
      use(arm === 'on');
      const t = performance.now();
      await step.run(batch);
      times[arm].push(performance.now() - t);
    }
  }
  for (const arm of ['on', 'off'] as const) {
    use(arm === 'on');
    const profile = await tf.profile(async () => { await step.run(batch); });
    gpu[arm] = { ms: profile.kernels.reduce((s, k) => s + (typeof k.kernelTimeMs === 'number' ? k.kernelTimeMs : 0), 0), calls: profile.kernels.length };
  }
  use(true);
  const line = (arm: 'on' | 'off'): string => `${arm === 'on' ? 'project' : 'without'}: median step ${median(times[arm]).toFixed(0)} ms (${times[arm].map((t) => t.toFixed(0)).join(' ')}), GPU ${gpu[arm].ms.toFixed(0)} ms in ${gpu[arm].calls} kernel calls`;
  console.log(`${name} ${size}² b${batchSize} webgpu, ${names.join('+')}\n  ${line('on')}\n  ${line('off')}`);
  tf.dispose(Object.values(batch));
  optimizer.dispose();
  model.dispose();
}
