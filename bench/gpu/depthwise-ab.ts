// GPU time of the webgpu depthwise-gradient kernels, project vs shipped, interleaved (median of 6 each, tf.profile):
//   node --import tsx bench/gpu/depthwise-ab.ts [--kernel DepthwiseConv2dNativeBackpropFilter|DepthwiseConv2dNativeBackpropInput]
//     [--cases '[[[4,32,32,32],[3,3,32,1],1], …]']   ([x shape, filter shape, stride], pad 'same')
import * as tf from '@tensorflow/tfjs';
import { parseArgs } from 'node:util';
import { initBackend } from '../../src/backends/select.js';
import { webGpuKernels } from '../../src/backends/kernels/webgpu/index.js';
import { shippedKernel } from '../../src/backends/kernels/shipped.js';

const { values: args } = parseArgs({
  options: {
    kernel: { type: 'string', default: 'DepthwiseConv2dNativeBackpropFilter' },
    cases: { type: 'string', default: '[[[4,32,32,32],[3,3,32,1],1],[[4,16,16,64],[3,3,64,1],1],[[4,32,32,32],[3,3,32,1],2],[[8,64,64,32],[3,3,32,1],1],[[4,32,32,16],[3,3,16,2],1]]' },
  },
});
await initBackend({ backend: 'webgpu' });
const name = args.kernel;
const project = webGpuKernels.find((k) => k.kernelName === name);
const shipped = shippedKernel(name, 'webgpu');
if (project === undefined || shipped === undefined) throw new Error(`${name}: no webgpu project kernel replacing a shipped one`);
const use = (on: boolean): void => {
  tf.unregisterKernel(name, 'webgpu');
  tf.registerKernel(on ? project : shipped);
};
const median = (xs: number[]): string => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!.toFixed(2);

for (const [xShape, fShape, stride] of JSON.parse(args.cases) as Array<[[number, number, number, number], [number, number, number, number], number]>) {
  const x = tf.randomNormal(xShape, 0, 1, 'float32', 1) as tf.Tensor4D, filter = tf.randomNormal(fShape, 0, 1, 'float32', 2) as tf.Tensor4D;
  const dy = tf.tidy(() => tf.randomNormal(tf.depthwiseConv2d(x, filter, stride, 'same').shape, 0, 1, 'float32', 3));
  const attrs = { strides: [stride, stride], dilations: [1, 1], pad: 'same', filterShape: fShape, inputShape: xShape } as unknown as tf.NamedAttrMap;
  const call = (): tf.Tensor => tf.engine().runKernel(name, name.endsWith('Filter') ? { x, dy } : { dy, filter }, attrs) as tf.Tensor;
  const gpu: Record<'on' | 'off', number[]> = { on: [], off: [] };
  for (const arm of ['on', 'off'] as const) { // compile
    use(arm === 'on');
    const y = call();
    await y.data();
    y.dispose();
  }
  for (let r = 0; r < 6; r++) {
    for (const arm of (r % 2 ? ['on', 'off'] : ['off', 'on']) as Array<'on' | 'off'>) {
      use(arm === 'on');
      const p = await tf.profile(async () => { const y = call(); await y.data(); y.dispose(); });
      gpu[arm].push(p.kernels.reduce((a, k) => a + (typeof k.kernelTimeMs === 'number' ? k.kernelTimeMs : 0), 0));
    }
  }
  use(true);
  console.log(`${name} x ${JSON.stringify(xShape)} filter ${JSON.stringify(fShape)} stride ${stride}: GPU ms project ${median(gpu.on)}, shipped ${median(gpu.off)}`);
  tf.dispose([x, filter, dy]);
}
process.exit(0);
