// One row of the engine benchmark, measured in its own process so that the peak RSS belongs to this
// row alone: builds one zoo model, times full training steps (forward, loss, backward, AdamW update)
// and inference batches (eval-mode forward + softmax, read back), and prints one JSON line prefixed
// with ROW_MARKER on stdout. bench/engine.ts spawns it; it can also be run by hand:
//   node --import tsx bench/engine-row.ts --model unet-lite --size 64 --batch 8 --backend wasm
import * as tf from '@tensorflow/tfjs';
import { loadavg } from 'node:os';
import { initBackend, type BackendRequest } from '../src/backends/select.js';
import { TrainStep, checkStepFits, wasmHeapBytes } from '../src/engine/step.js';
import { SegOptimizer } from '../src/engine/optimizer.js';
import { hardLabelObjective } from '../src/losses/objectives.js';
import { foldBatchNorm } from '../src/models/fold.js';
import { createModel } from '../src/models/registry.js';
import { ROW_MARKER, median, parseArgs, type RowResult } from './common.js';

interface RowOptions {
  backend: BackendRequest;
  threads?: number;
  model: string;
  size: number;
  batch: number;
  classes: number;
  /** Fixed number of timed training steps; undefined = adaptive (time budget). */
  steps?: number;
  warmup?: number;
  /** Seconds of timed training to aim for in adaptive mode. */
  trainSeconds: number;
  inferSeconds: number;
}

function rowOptions(argv: string[]): RowOptions {
  const a = parseArgs(argv);
  const num = (k: string): number | undefined => (a[k] === undefined ? undefined : Number(a[k]));
  const model = a.model;
  if (typeof model !== 'string') throw new Error('engine-row: --model is required');
  return {
    backend: (a.backend as BackendRequest | undefined) ?? 'auto',
    threads: num('threads'),
    model,
    size: num('size') ?? 64,
    batch: num('batch') ?? 8,
    classes: num('classes') ?? 11,
    steps: num('steps'),
    warmup: num('warmup'),
    trainSeconds: num('train-seconds') ?? 8,
    inferSeconds: num('infer-seconds') ?? 3,
  };
}

const now = (): number => performance.now();

async function main(): Promise<void> {
  const o = rowOptions(process.argv.slice(2));
  const t0 = now();
  const backend = await initBackend({ backend: o.backend, threads: o.threads });
  const seg = createModel(o.model, { numClasses: o.classes, aux: false, seed: 1 });
  checkStepFits(seg, o.batch, o.size, o.size);

  // Synthetic batch: N(0,1) images, uniformly random class ids (every class present).
  const images = tf.randomNormal([o.batch, o.size, o.size, 3], 0, 1, 'float32', 7) as tf.Tensor4D;
  const labels = tf.randomUniform([o.batch, o.size, o.size], 0, o.classes, 'int32', 8) as tf.Tensor3D;
  const step = new TrainStep(seg, (out, batch) => hardLabelObjective(out, batch.labels!), new SegOptimizer({ kind: 'adamw', lr: 1e-3 }));
  const setupMs = now() - t0;

  // Training. The first step pays for one-time work (kernel set-up, optimizer slots); a second warm-up
  // step is added when steps are cheap.
  const warmupMs: number[] = [];
  const losses: number[] = [];
  const warmup = o.warmup ?? 1;
  for (let i = 0; i < warmup; i++) {
    const s = now();
    losses.push((await step.run({ images, labels })).loss);
    warmupMs.push(now() - s);
  }
  if (o.warmup === undefined && o.steps === undefined && warmupMs[0]! < 3000) {
    const s = now();
    losses.push((await step.run({ images, labels })).loss);
    warmupMs.push(now() - s);
  }
  const tensorsBefore = tf.memory().numTensors;
  const trainMs: number[] = [];
  const trainStart = now();
  const cpuStart = process.cpuUsage();
  const minSteps = o.steps ?? 3;
  const maxSteps = o.steps ?? 20;
  while (trainMs.length < minSteps || (trainMs.length < maxSteps && now() - trainStart < o.trainSeconds * 1000)) {
    const s = now();
    losses.push((await step.run({ images, labels })).loss);
    trainMs.push(now() - s);
  }
  const cpu = process.cpuUsage(cpuStart);
  const cpuPerWall = (cpu.user + cpu.system) / 1000 / (now() - trainStart);
  const leakedTensors = tf.memory().numTensors - tensorsBefore;
  const rssAfterTrain = process.memoryUsage().rss;

  // Inference: eval-mode forward + softmax, probabilities read back to JS — in the inference form eval, predict
  // and teachers run (batch norm folded into the convolutions), and as the trained model for comparison.
  const timeInference = async (m: typeof seg): Promise<number[]> => {
    const infer = async (): Promise<void> => {
      const prob = tf.tidy(() => tf.softmax(m.apply(images, false).main));
      await prob.data();
      prob.dispose();
    };
    await infer();
    const ms: number[] = [];
    const start = now();
    while (ms.length < 3 || (ms.length < 30 && now() - start < o.inferSeconds * 1000)) {
      const s = now();
      await infer();
      ms.push(now() - s);
    }
    return ms;
  };
  const folded = await foldBatchNorm(seg);
  const inferMs = await timeInference(folded);
  const unfoldedMs = await timeInference(seg);
  if (folded !== seg) folded.dispose();

  const trainMed = median(trainMs);
  const inferMed = median(inferMs);
  const result: RowResult = {
    model: o.model,
    size: o.size,
    batch: o.batch,
    classes: o.classes,
    backend: backend.name,
    reason: backend.reason,
    threads: backend.threads,
    params: seg.model.countParams(),
    trainImgS: (o.batch * 1000) / trainMed,
    trainStepMs: trainMs,
    warmupStepMs: warmupMs,
    inferImgS: (o.batch * 1000) / inferMed,
    inferBatchMs: inferMs,
    inferUnfoldedImgS: (o.batch * 1000) / median(unfoldedMs),
    peakRssMB: process.resourceUsage().maxRSS / 1024,
    rssAfterTrainMB: rssAfterTrain / 1024 ** 2,
    wasmHeapMB: (wasmHeapBytes() ?? 0) / 1024 ** 2 || null,
    leakedTensorsPerStep: leakedTensors / trainMs.length,
    lossFirst: losses[0]!,
    lossLast: losses[losses.length - 1]!,
    setupMs,
    loadAvg: loadavg()[0]!,
    cpuPerWall,
    trainImgPerCpuS: (o.batch * trainMs.length * 1e6) / (cpu.user + cpu.system),
  };
  tf.dispose([images, labels]);
  seg.dispose();
  process.stdout.write(`${ROW_MARKER}${JSON.stringify(result)}\n`);
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    const e = err as { message?: string; hint?: string };
    process.stdout.write(`${ROW_MARKER}${JSON.stringify({ error: e.message ?? String(err), hint: e.hint })}\n`);
    process.exit(1);
  },
);
