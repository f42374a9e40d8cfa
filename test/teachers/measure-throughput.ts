// Teacher throughput, ONNX (onnxruntime-node, CPU, threads = cores) vs TF.js (wasm), for the same unet-lite
// (11 classes) exported to ONNX by export-onnx.ts. Not a test: `node --import tsx test/teachers/measure-throughput.ts [wasmThreads] [ortThreads]`.
// Reports images/s through Teacher.predictBatch (normalisation, padding, softmax included), batch 8, median of 3.
import { mkdtemp, rm } from 'node:fs/promises';
import { availableParallelism, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { initBackend } from '../../src/backends/select.js';
import { createModel } from '../../src/models/registry.js';
import { saveRunModel } from '../../src/engine/trainer.js';
import { openTeacher, type Teacher } from '../../src/teachers/teacher.js';
import { layersModelToOnnx } from './export-onnx.js';
import { testImage, writeBytes } from './nets.js';

const wasmThreads = Number(process.argv[2] ?? 1);
const ortThreads = Number(process.argv[3] ?? availableParallelism());
const info = await initBackend({ backend: 'wasm', threads: wasmThreads });
const dir = await mkdtemp(join(tmpdir(), 'softseg-teacher-bench-'));
const seg = createModel('unet-lite', { numClasses: 11, seed: 1 });
await saveRunModel(seg, join(dir, 'run', 'model'), { architecture: 'unet-lite', numClasses: 11 });
await writeBytes(join(dir, 'unet-lite.onnx'), layersModelToOnnx(seg.model));
seg.dispose();

async function rate(t: Teacher, size: number, batch: number): Promise<number> {
  const imgs = Array.from({ length: batch }, (_, i) => testImage(size, size, i));
  await t.predictBatch(imgs); // warm-up
  const rates: number[] = [];
  for (let r = 0; r < 3; r++) {
    const reps = size <= 64 ? 4 : 2;
    const t0 = performance.now();
    for (let i = 0; i < reps; i++) await t.predictBatch(imgs);
    rates.push((reps * batch * 1000) / (performance.now() - t0));
  }
  return rates.sort((a, b) => a - b)[1]!;
}

console.log(`cores ${availableParallelism()}, TF.js ${info.name} (${info.threads} thread(s)), onnxruntime threads ${ortThreads}, load ${loadavg()[0]!.toFixed(1)}`);
const onnx = await openTeacher(join(dir, 'unet-lite.onnx'), { multiple: 8, threads: ortThreads });
const onnxFlip = await openTeacher(join(dir, 'unet-lite.onnx'), { multiple: 8, threads: ortThreads, tta: { flip: true } });
const tfjs = await openTeacher(join(dir, 'run'));
for (const size of [64, 128]) {
  const a = await rate(onnx, size, 8);
  const b = await rate(tfjs, size, 8);
  const flipA = await rate(onnxFlip, size, 8);
  console.log(`unet-lite ${size}²: onnx ${a.toFixed(0)} img/s, tfjs-${info.name} ${b.toFixed(1)} img/s (x${(a / b).toFixed(1)}); onnx with --tta flip ${flipA.toFixed(0)} img/s`);
}
await onnx.dispose();
await onnxFlip.dispose();
await tfjs.dispose();
await rm(dir, { recursive: true, force: true });
process.exit(0);
