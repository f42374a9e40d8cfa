// softseg vs PyTorch (a benchmark, never a timed test):
//   npm run bench:torch [-- --json --backend auto|wasm|… --models unet,unet-lite,mobile-unet --sizes 64,128
//                           --batch 8 --torch-threads 2 --omp-passive --steps N --threads N]
// Runs the same architectures and training step in PyTorch (CPU, bench/torch_models.py, Debian's
// python3-torch — installed by scripts/install-system-deps.sh --torch; a bench-only helper, never needed by
// users or tests) and softseg's engine bench in the same run, row by row (softseg row, then the
// PyTorch row, each in a fresh process so peak RSS is per row), and prints softseg ÷ PyTorch for
// training and inference images/s and peak RSS, with the targets marked PASS/MISS.
import { availableParallelism } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs';
import { modelInfo } from '../src/models/registry.js';
import { engineOptionsFromArgs, runEngineRow, type EngineBenchOptions } from './engine.js';
import { contended, fmt, isError, parseArgs, parseMarked, run, table, type RowOutcome } from './common.js';
import { ensureTorch, python } from './torch-env.js';

const HERE = dirname(fileURLToPath(import.meta.url));
const HELPER = join(HERE, 'torch_models.py');
const TORCH_MARKER = '@@TORCH_BENCH_ROW ';

interface TorchRow {
  model: string;
  size: number;
  batch: number;
  torch: string;
  threads: number;
  params: number;
  trainableParams: number;
  trainImgS: number;
  trainStepMs: number[];
  inferImgS: number;
  peakRssMB: number;
  rssAfterImportMB: number;
  lossFirst: number;
  lossLast: number;
  loadAvg: number;
  cpuPerWall: number;
  trainImgPerCpuS: number;
  ompWaitPolicy: string | null;
}
type TorchOutcome = TorchRow | { model: string; size: number; batch: number; error: string };
const torchError = (r: TorchOutcome): r is Extract<TorchOutcome, { error: string }> => 'error' in r;

async function torchRow(py: string, o: EngineBenchOptions, threads: number, ompPassive: boolean, model: string, size: number): Promise<TorchOutcome> {
  const args = [HELPER, 'row', '--model', model, '--size', String(size), '--batch', String(o.batch), '--classes', String(o.classes), '--threads', String(threads)];
  const env = ompPassive ? { ...process.env, OMP_WAIT_POLICY: 'PASSIVE' } : process.env;
  const r = await run(py, args, { env });
  const parsed = parseMarked<TorchRow>(r.stdout, TORCH_MARKER);
  if (parsed) return parsed;
  return { model, size, batch: o.batch, error: `torch row exited with ${r.code}: ${r.stderr.trim().split('\n').slice(-2).join(' | ')}` };
}

interface Pair {
  model: string;
  size: number;
  batch: number;
  softseg: RowOutcome;
  torch: TorchOutcome;
  trainRatio: number | null;
  inferRatio: number | null;
  /** softseg ÷ PyTorch in training images per CPU-second: robust to contention, but blind to parallel speed-up. */
  cpuRatio: number | null;
  memoryRatio: number | null;
  /** Other work competed for the cores during the softseg or the PyTorch row (see contended()). */
  contended: boolean;
}

interface Target {
  what: string;
  model: string;
  size: number;
  metric: 'trainRatio' | 'memoryRatio';
  /** ≥ for ratios of speed, ≤ for memory. */
  op: '>=' | '<=';
  bound: number;
}

const TARGETS: Target[] = [
  { what: 'unet-lite 64² training ≥ 0.15× PyTorch', model: 'unet-lite', size: 64, metric: 'trainRatio', op: '>=', bound: 0.15 },
  { what: 'mobile-unet 64² training ≥ 0.10× PyTorch', model: 'mobile-unet', size: 64, metric: 'trainRatio', op: '>=', bound: 0.1 },
  { what: 'mobile-unet 128² training ≥ 0.10× PyTorch', model: 'mobile-unet', size: 128, metric: 'trainRatio', op: '>=', bound: 0.1 },
  { what: 'unet 128² b8 peak RSS ≤ 2× PyTorch', model: 'unet', size: 128, metric: 'memoryRatio', op: '<=', bound: 2 },
];

function targetLines(pairs: Pair[], batch: number): string[] {
  return TARGETS.map((t) => {
    const p = pairs.find((x) => x.model === t.model && x.size === t.size);
    const v = p?.[t.metric] ?? null;
    const cond = t.metric === 'memoryRatio' && batch !== 8 ? ' (target is for batch 8)' : '';
    if (v === null) return `  n/a   ${t.what}: not measured${cond}`;
    const ok = t.op === '>=' ? v >= t.bound : v <= t.bound;
    const doubt = p!.contended && t.metric !== 'memoryRatio' ? '*' : ' ';
    return `  ${ok ? 'PASS' : 'MISS'}${doubt} ${t.what}: ${fmt(v)}${cond}${doubt === '*' ? ' (measured under contention: unreliable)' : ''}`;
  });
}

async function main(): Promise<void> {
  const a = parseArgs(process.argv.slice(2));
  const o = engineOptionsFromArgs(a);
  const torchThreads = a['torch-threads'] ? Number(a['torch-threads']) : 2;
  const json = a.json === 'true';
  // OMP_WAIT_POLICY=PASSIVE for the PyTorch rows: OpenMP threads sleep instead of spinning at barriers,
  // which keeps PyTorch's 2-thread numbers sane when other processes share the cores (off by default:
  // PyTorch's own defaults are what is compared).
  const ompPassive = a['omp-passive'] === 'true';
  const py = python();
  const torchVersion = await ensureTorch(py);

  // Parameter counts: PyTorch mirror vs softseg's modelInfo (TF.js counts BN moving stats; so does the helper).
  tf.enableProdMode();
  const tp = parseMarked<Record<string, { params: number; trainableParams: number }>>((await run(py, [HELPER, 'params', '--classes', String(o.classes)])).stdout, TORCH_MARKER) ?? {};
  const paramRows = o.models.map((m) => {
    const info = modelInfo(m, o.sizes[0] ?? 64, { numClasses: o.classes });
    const t = tp[m];
    const same = t !== undefined && t.params === info.params && t.trainableParams === info.trainableParams;
    return { model: m, softseg: info.params, softsegTrainable: info.trainableParams, torch: t?.params ?? null, torchTrainable: t?.trainableParams ?? null, match: same };
  });

  const start = performance.now();
  const pairs: Pair[] = [];
  for (const model of o.models) {
    for (const size of o.sizes) {
      process.stderr.write(`${model} ${size}² b${o.batch}: softseg … `);
      const s = await runEngineRow(o, model, size);
      process.stderr.write(isError(s) ? `error (${s.error}); ` : `train ${fmt(s.trainImgS)} infer ${fmt(s.inferImgS)} img/s; `);
      process.stderr.write('pytorch … ');
      const t = await torchRow(py, o, torchThreads, ompPassive, model, size);
      process.stderr.write(torchError(t) ? `error (${t.error})\n` : `train ${fmt(t.trainImgS)} infer ${fmt(t.inferImgS)} img/s\n`);
      const both = !isError(s) && !torchError(t);
      pairs.push({
        model,
        size,
        batch: o.batch,
        softseg: s,
        torch: t,
        trainRatio: both ? s.trainImgS / t.trainImgS : null,
        inferRatio: both ? s.inferImgS / t.inferImgS : null,
        cpuRatio: both ? s.trainImgPerCpuS / t.trainImgPerCpuS : null,
        memoryRatio: both ? s.peakRssMB / t.peakRssMB : null,
        contended: (!isError(s) && contended(s.loadAvg, s.threads)) || (!torchError(t) && contended(t.loadAvg, t.threads)),
      });
    }
  }
  const wallSeconds = (performance.now() - start) / 1000;
  const firstOk = pairs.map((p) => p.softseg).find((r) => !isError(r));
  const backend = firstOk && !isError(firstOk) ? `${firstOk.backend} (${firstOk.reason}), ${firstOk.threads} thread(s)` : '?';

  if (json) {
    process.stdout.write(`${JSON.stringify({ backend, torch: torchVersion, torchThreads, ompPassive, params: paramRows, pairs, targets: targetLines(pairs, o.batch), wallSeconds }, null, 2)}\n`);
  } else {
    const out: string[] = [];
    out.push(`softseg ${backend} vs PyTorch ${torchVersion} CPU, ${torchThreads} thread(s)${ompPassive ? ' (OMP_WAIT_POLICY=PASSIVE)' : ''}; batch ${o.batch}, ${o.classes} classes; ${wallSeconds.toFixed(0)} s`);
    out.push('');
    out.push(table(
      ['model', 'params softseg', 'params PyTorch', 'trainable softseg', 'trainable PyTorch', 'match'],
      paramRows.map((r) => [r.model, String(r.softseg), String(r.torch ?? '–'), String(r.softsegTrainable), String(r.torchTrainable ?? '–'), r.match ? 'yes' : 'NO']),
    ));
    out.push('');
    out.push(table(
      ['row', 'train softseg', 'train PyTorch', 'ratio', 'train img/CPU·s s/t=ratio', 'infer softseg', 'infer PyTorch', 'ratio', 'RSS softseg MiB', 'RSS PyTorch MiB', 'ratio', 'cpu/wall s/t', 'load s/t'],
      pairs.map((p) => {
        const s = p.softseg, t = p.torch;
        const name = `${p.model} ${p.size}² b${p.batch}`;
        const load = `${isError(s) ? '–' : s.loadAvg.toFixed(1)}/${torchError(t) ? '–' : t.loadAvg.toFixed(1)}${p.contended ? '*' : ''}`;
        const cpu = `${isError(s) ? '–' : fmt(s.cpuPerWall, 2)}/${torchError(t) ? '–' : fmt(t.cpuPerWall, 2)}`;
        return [
          name,
          isError(s) ? 'error' : fmt(s.trainImgS),
          torchError(t) ? 'error' : fmt(t.trainImgS),
          fmt(p.trainRatio),
          isError(s) || torchError(t) ? '–' : `${fmt(s.trainImgPerCpuS)}/${fmt(t.trainImgPerCpuS)}=${fmt(p.cpuRatio)}`,
          isError(s) ? 'error' : fmt(s.inferImgS),
          torchError(t) ? 'error' : fmt(t.inferImgS),
          fmt(p.inferRatio),
          isError(s) ? 'error' : fmt(s.peakRssMB, 4),
          torchError(t) ? 'error' : fmt(t.peakRssMB, 4),
          fmt(p.memoryRatio),
          cpu,
          load,
        ];
      }),
    ));
    out.push(
      [
        `(images/s; ratio = softseg ÷ PyTorch; RSS = peak resident set of the row's own process, runtime included;`,
        ` img/CPU·s = training images per CPU-second (all threads): robust to contention, blind to multi-thread speed-up;`,
        ` cpu/wall s/t = CPU seconds per wall second in the timed training steps of the softseg / PyTorch row;`,
        ` load s/t = 1-min load average at the end of each row, its own process included;`,
        ` * = other work competed for the ${availableParallelism()} cores during the row: its timings are unreliable,`,
        `     PyTorch's 2 spinning OpenMP threads most of all — re-run on an idle machine, or add --omp-passive)`,
      ].join('\n'),
    );
    out.push('');
    const usedWasm = firstOk !== undefined && !isError(firstOk) && firstOk.backend === 'wasm';
    out.push(`Targets (issue 3, 2-core machine, wasm)${usedWasm ? '' : ' — this run did not use wasm, so they do not apply as such'}:`);
    out.push(...targetLines(pairs, o.batch));
    const errors = pairs.flatMap((p) => [p.softseg, p.torch]).filter((r) => 'error' in r) as { model: string; size: number; error: string }[];
    for (const e of errors) out.push(`error: ${e.model} ${e.size}²: ${e.error}`);
    process.stdout.write(`${out.join('\n')}\n`);
  }
  if (pairs.some((p) => isError(p.softseg) || torchError(p.torch))) process.exitCode = 1;
}

main().catch((err: unknown) => {
  console.error(`bench:torch: ${err instanceof Error ? err.message : String(err)}`);
  process.exit(1);
});
