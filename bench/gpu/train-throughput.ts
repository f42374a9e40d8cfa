// Training throughput on a GPU (issue 14, item 5): images/s of a full training step (forward, hardLabelObjective,
// backward, AdamW) for every zoo model at each size and batch on the webgpu backend, next to PyTorch eager CUDA
// (bench/torch_models.py --device cuda) on the same GPU when python3 has torch with CUDA.
//
//   node --import tsx bench/gpu/train-throughput.ts [--models unet,unet-lite,mobile-unet,deeplabv3] [--sizes 128,256]
//       [--batches 8,16] [--classes 11] [--warmup 3] [--seconds 5] [--torch auto|no] [--software] [--json]
//
// On a machine without npm (the device tool's), run the self-contained pack instead: bench/gpu/pack.sh builds it,
// bench/gpu/pack/run.sh runs it (see bench/README.md). A software adapter (lavapipe) is refused unless --software.
import * as tf from '@tensorflow/tfjs';
import * as tfwebgpu from '@tensorflow/tfjs-backend-webgpu';
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { createModel, listModels } from '../../src/models/registry.js';
import { initBackend } from '../../src/backends/select.js';
import { setWebGpuLoaderForTesting } from '../../src/backends/webgpu.js';
import { hardLabelObjective } from '../../src/losses/index.js';
import { SegOptimizer } from '../../src/engine/optimizer.js';
import { TrainStep, type TensorBatch } from '../../src/engine/step.js';

const { values: args } = parseArgs({
  options: {
    models: { type: 'string', default: listModels().join(',') },
    sizes: { type: 'string', default: '128,256' },
    batches: { type: 'string', default: '8,16' },
    classes: { type: 'string', default: '11' },
    warmup: { type: 'string', default: '3' },
    seconds: { type: 'string', default: '5' },
    torch: { type: 'string', default: 'auto' },
    'torch-script': { type: 'string' },
    software: { type: 'boolean', default: false },
    json: { type: 'boolean', default: false },
  },
});
const list = (s: string): number[] => s.split(',').map(Number);
const classes = Number(args.classes), warmup = Number(args.warmup), seconds = Number(args.seconds);

// Use the tfjs-backend-webgpu imported above (one copy of tfjs-core also when this file is bundled into the pack).
setWebGpuLoaderForTesting({ import: async (s) => (s === '@tensorflow/tfjs-backend-webgpu' ? tfwebgpu : import(s)) });
const backend = await initBackend({ backend: 'webgpu' });
const adapter = backend.adapter!;
console.error(`webgpu adapter: ${backend.reason}`);
if (adapter.software && !args.software) {
  console.error('a software adapter: its speed is not a GPU\'s (pass --software to time it anyway)');
  process.exit(2);
}

interface Row { model: string; size: number; batch: number; webgpuImgS: number | null; firstStepS: number | null; torchImgS: number | null; note?: string }

async function webgpuRow(model: string, size: number, batch: number): Promise<Pick<Row, 'webgpuImgS' | 'firstStepS' | 'note'>> {
  const seg = createModel(model, { numClasses: classes, seed: 1 });
  const optimizer = new SegOptimizer({ lr: 1e-3 });
  const step = new TrainStep(seg, (out, b) => hardLabelObjective(out, b.labels!), optimizer);
  const data: TensorBatch = tf.tidy(() => ({
    images: tf.randomNormal([batch, size, size, 3], 0, 1, 'float32', 1) as tf.Tensor4D,
    labels: tf.randomUniform([batch, size, size], 0, classes, 'int32', 2) as tf.Tensor3D,
  }));
  try {
    const t0 = performance.now();
    for (let i = 0; i < warmup; i++) await step.run(data); // every step ends in a read of the loss: synchronised
    const firstStepS = (performance.now() - t0) / 1000;
    const times: number[] = [];
    const start = performance.now();
    while (times.length < 3 || (times.length < 200 && performance.now() - start < seconds * 1000)) {
      const t = performance.now();
      await step.run(data);
      times.push(performance.now() - t);
    }
    times.sort((a, b) => a - b);
    return { webgpuImgS: (batch * 1000) / times[Math.floor(times.length / 2)]!, firstStepS };
  } catch (e) {
    return { webgpuImgS: null, firstStepS: null, note: `webgpu failed: ${(e as Error).message.split('\n')[0]}` };
  } finally {
    tf.dispose(Object.values(data));
    optimizer.dispose();
    seg.dispose();
  }
}

const here = dirname(fileURLToPath(import.meta.url));
const torchScript = args['torch-script'] ?? [join(here, '../torch_models.py'), join(here, 'torch_models.py')].find((p) => existsSync(p));
const MARKER = 'SOFTSEG_TORCH_RESULT ';
let torchNote: string | undefined;
const torchCuda = ((): boolean => {
  if (args.torch === 'no') return (torchNote = 'PyTorch skipped (--torch no)'), false;
  if (torchScript === undefined) return (torchNote = 'torch_models.py not found'), false;
  try {
    const out = execFileSync('python3', ['-c', 'import torch; print(torch.__version__, torch.cuda.is_available(), torch.cuda.get_device_name(0) if torch.cuda.is_available() else "")'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
    console.error(`PyTorch: ${out}`);
    if (!out.includes(' True')) torchNote = `PyTorch without CUDA (${out})`;
    return out.includes(' True');
  } catch {
    torchNote = 'python3 with torch not found';
    return false;
  }
})();
if (torchNote) console.error(torchNote);

function torchRow(model: string, size: number, batch: number): number | null {
  if (!torchCuda || model === 'deeplabv3') return null; // torch_models.py mirrors unet, unet-lite and mobile-unet
  try {
    const out = execFileSync('python3', [torchScript!, 'row', '--device', 'cuda', '--model', model, '--size', String(size), '--batch', String(batch),
      '--classes', String(classes), '--warmup', String(warmup), '--train-seconds', String(seconds), '--infer-seconds', '0.5'], { encoding: 'utf8', maxBuffer: 64 << 20 });
    const line = out.split('\n').find((l) => l.startsWith(MARKER));
    return line ? (JSON.parse(line.slice(MARKER.length)) as { trainImgS: number }).trainImgS : null;
  } catch (e) {
    console.error(`PyTorch ${model} ${size}² b${batch} failed: ${(e as Error).message.split('\n')[0]}`);
    return null;
  }
}

const rows: Row[] = [];
const fmt = (v: number | null, digits = 1): string => (v === null ? '—' : v.toFixed(digits));
if (!args.json) console.log(`| model | size | batch | webgpu img/s | PyTorch CUDA img/s | webgpu ÷ PyTorch | first ${warmup} steps (s) |\n|---|---|---|---|---|---|---|`);
for (const model of args.models.split(',')) {
  for (const size of list(args.sizes)) {
    for (const batch of list(args.batches)) {
      const w = await webgpuRow(model, size, batch);
      const row: Row = { model, size, batch, ...w, torchImgS: torchRow(model, size, batch) };
      rows.push(row);
      if (!args.json) {
        const ratio = row.webgpuImgS !== null && row.torchImgS !== null ? (row.webgpuImgS / row.torchImgS).toFixed(2) : '—';
        console.log(`| ${model} | ${size}² | ${batch} | ${fmt(row.webgpuImgS)} | ${fmt(row.torchImgS)} | ${ratio} | ${fmt(row.firstStepS)} |${row.note ? ` ${row.note}` : ''}`);
      }
    }
  }
}
const goal = rows.find((r) => r.model === 'unet' && r.size === 256 && r.batch === 16);
const summary = goal && goal.webgpuImgS !== null && goal.torchImgS !== null
  ? `unet 256² b16: webgpu ${goal.webgpuImgS.toFixed(1)} img/s = ${(goal.webgpuImgS / goal.torchImgS).toFixed(2)}× PyTorch eager CUDA (goal ≥ 0.25×)`
  : undefined;
if (args.json) console.log(JSON.stringify({ adapter, torch: torchCuda ? 'cuda' : torchNote, rows, summary }, null, 2));
else if (summary) console.log(`\n${summary}`);
