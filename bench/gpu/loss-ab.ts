// The hard-label objective's forward + backward on webgpu with some project loss kernels on and off, interleaved
// (median of 10 each; off = the losses' plain-op path):
//   node --import tsx bench/gpu/loss-ab.ts --kernels SoftsegLogSoftmax,SoftsegLogSoftmaxGrad [--shape 4,32,11]   (N, H = W, C)
// "Off" switches off only the named kernels; the other project kernels stay on.
import * as tf from '@tensorflow/tfjs';
import { parseArgs } from 'node:util';
import { initBackend } from '../../src/backends/select.js';
import { webGpuKernels } from '../../src/backends/kernels/webgpu/index.js';
import { hardLabelObjective } from '../../src/losses/index.js';

const { values: args } = parseArgs({ options: { kernels: { type: 'string' }, shape: { type: 'string', default: '4,32,11' } } });
if (args.kernels === undefined) throw new Error('--kernels NAME[,NAME…]');
await initBackend({ backend: 'webgpu' });
const configs = args.kernels.split(',').map((name) => {
  const config = webGpuKernels.find((k) => k.kernelName === name);
  if (config === undefined) throw new Error(`${name}: not a webgpu project kernel`);
  return config;
});
const use = (on: boolean): void => {
  for (const c of configs) {
    if (tf.getKernel(c.kernelName, 'webgpu') !== undefined) tf.unregisterKernel(c.kernelName, 'webgpu');
    if (on) tf.registerKernel(c);
  }
};
const [n, s, c] = args.shape.split(',').map(Number) as [number, number, number];
const logits = tf.randomNormal([n, s, s, c], 0, 1, 'float32', 1) as tf.Tensor4D;
const labels = tf.randomUniform([n, s, s], 0, c, 'int32', 2) as tf.Tensor3D;
const run = async (): Promise<void> => {
  const g = tf.grad((z: tf.Tensor) => hardLabelObjective({ main: z as tf.Tensor4D }, labels).total)(logits);
  await g.data();
  g.dispose();
};
const times: Record<'on' | 'off', number[]> = { on: [], off: [] };
for (const arm of ['on', 'off'] as const) {
  use(arm === 'on');
  await run();
  await run();
}
for (let r = 0; r < 10; r++) {
  for (const arm of (r % 2 ? ['on', 'off'] : ['off', 'on']) as Array<'on' | 'off'>) {
    use(arm === 'on');
    const t = performance.now();
    await run();
    times[arm].push(performance.now() - t);
  }
}
for (const arm of ['on', 'off'] as const) {
  use(arm === 'on');
  const p = await tf.profile(run);
  const gpu = p.kernels.reduce((a, k) => a + (typeof k.kernelTimeMs === 'number' ? k.kernelTimeMs : 0), 0);
  const sorted = [...times[arm]].sort((a, b) => a - b);
  console.log(`[${n},${s},${s},${c}] ${arm === 'on' ? 'with' : 'without'} ${args.kernels}: median ${sorted[5]!.toFixed(1)} ms (GPU ${gpu.toFixed(1)} ms in ${p.kernels.length} kernel calls)`);
}
use(true);
tf.dispose([logits, labels]);
process.exit(0);
