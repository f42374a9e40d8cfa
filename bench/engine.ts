// softseg's engine benchmark (a benchmark, never a timed test):
//   npm run bench:engine [-- --json --backend auto|wasm|webgpu|cpu|tensorflow (default auto) --models unet,unet-lite,mobile-unet --sizes 64,128
//                            --batch 8 --classes 11 --steps N --warmup N --threads N --train-seconds S]
// Per model and size: training images/s (full step: forward, 0.25·CE + 0.75·JML loss, backward, AdamW
// update; warm-up steps excluded, median of the timed steps), inference images/s (eval-mode forward +
// softmax, read back; median batch) and peak RSS. Each row runs in a fresh child process
// (bench/engine-row.ts), so its peak RSS is that row's alone. Without --steps the number of timed
// steps is adaptive: at least 3, more while under --train-seconds (default 8) and 20 steps.
import { fileURLToPath, pathToFileURL } from 'node:url';
import { dirname, join } from 'node:path';
import { availableParallelism } from 'node:os';
import { ROW_MARKER, contended, fmt, isError, list, median, parseArgs, parseMarked, run, table, type RowOutcome } from './common.js';

export interface EngineBenchOptions {
  backend: string;
  models: string[];
  sizes: number[];
  batch: number;
  classes: number;
  steps?: number;
  warmup?: number;
  threads?: number;
  trainSeconds?: number;
  /** Progress lines on stderr. */
  verbose?: boolean;
}

export interface EngineBenchResult {
  backend: string | null;
  reason: string | null;
  threads: number | null;
  rows: RowOutcome[];
  wallSeconds: number;
}

const HERE = dirname(fileURLToPath(import.meta.url));

export function engineOptionsFromArgs(a: Record<string, string>): EngineBenchOptions {
  const num = (k: string): number | undefined => (a[k] === undefined ? undefined : Number(a[k]));
  return {
    backend: a.backend ?? 'auto',
    models: list(a.models, ['unet', 'unet-lite', 'mobile-unet']),
    sizes: list(a.sizes, ['64', '128']).map(Number),
    batch: num('batch') ?? 8,
    classes: num('classes') ?? 11,
    steps: num('steps'),
    warmup: num('warmup'),
    threads: num('threads'),
    trainSeconds: num('train-seconds'),
  };
}

/** Measures one row in a fresh `node --import tsx bench/engine-row.ts` process. */
export async function runEngineRow(o: EngineBenchOptions, model: string, size: number): Promise<RowOutcome> {
  const args = ['--import', 'tsx', join(HERE, 'engine-row.ts'), '--model', model, '--size', String(size), '--batch', String(o.batch), '--classes', String(o.classes), '--backend', o.backend];
  if (o.steps !== undefined) args.push('--steps', String(o.steps));
  if (o.warmup !== undefined) args.push('--warmup', String(o.warmup));
  if (o.threads !== undefined) args.push('--threads', String(o.threads));
  if (o.trainSeconds !== undefined) args.push('--train-seconds', String(o.trainSeconds));
  let why = '';
  // A row process that dies without reporting (a crash, not a reported error) is retried once.
  for (let attempt = 0; attempt < 2; attempt++) {
    const r = await run(process.execPath, args);
    const parsed = parseMarked<Record<string, unknown>>(r.stdout, ROW_MARKER);
    if (parsed) return { model, size, batch: o.batch, ...parsed } as RowOutcome;
    const lines = r.stderr.trim().split('\n');
    const first = lines.find((l) => /error/i.test(l)) ?? lines[0] ?? '';
    why = `row process exited with ${r.code}: ${first.trim() || 'no output'}`;
    if (o.verbose) process.stderr.write(`(${why}${attempt === 0 ? '; retrying' : ''}) `);
  }
  return { model, size, batch: o.batch, error: why };
}

export async function runEngineBench(o: EngineBenchOptions): Promise<EngineBenchResult> {
  const start = performance.now();
  const rows: RowOutcome[] = [];
  for (const model of o.models) {
    for (const size of o.sizes) {
      if (o.verbose) process.stderr.write(`softseg: ${model} ${size}² batch ${o.batch} … `);
      const s = performance.now();
      const row = await runEngineRow(o, model, size);
      rows.push(row);
      if (o.verbose) {
        process.stderr.write(isError(row) ? `error: ${row.error}\n` : `train ${fmt(row.trainImgS)} img/s, infer ${fmt(row.inferImgS)} img/s (${((performance.now() - s) / 1000).toFixed(0)} s)\n`);
      }
    }
  }
  const ok = rows.find((r) => !isError(r));
  return {
    backend: ok && !isError(ok) ? ok.backend : null,
    reason: ok && !isError(ok) ? ok.reason : null,
    threads: ok && !isError(ok) ? ok.threads : null,
    rows,
    wallSeconds: (performance.now() - start) / 1000,
  };
}

export function engineTable(r: EngineBenchResult): string {
  const rows = r.rows.map((row) => {
    const name = `${row.model} ${row.size}² b${row.batch}`;
    if (isError(row)) return [name, 'error', row.error, '', '', '', '', '', '', '', ''];
    return [
      name,
      fmt(row.trainImgS),
      fmt(median(row.trainStepMs), 4),
      String(row.trainStepMs.length),
      fmt(row.inferImgS),
      fmt(row.inferUnfoldedImgS),
      fmt(row.peakRssMB, 4),
      row.wasmHeapMB === null ? '–' : fmt(row.wasmHeapMB, 4),
      `${fmt(row.lossFirst)}→${fmt(row.lossLast)}`,
      fmt(row.cpuPerWall, 2),
      `${row.loadAvg.toFixed(1)}${contended(row.loadAvg, row.threads) ? '*' : ''}`,
    ];
  });
  const head = `softseg engine benchmark — backend ${r.backend ?? '?'} (${r.reason ?? '?'}), ${r.threads ?? '?'} thread(s); ${r.wallSeconds.toFixed(0)} s`;
  const note = [
    `(infer = eval-mode forward + softmax + read-back in the inference form softseg runs, batch norm folded; unfolded = the trained model as it is;`,
    ` cpu/wall = CPU seconds per wall second in the timed steps, ≈ threads when the row had its cores;`,
    ` load = 1-min load average at the end of the row, its own process included; * = other work competed for the ${availableParallelism()} cores, timings are unreliable)`,
  ].join('\n');
  return `${head}\n${table(['row', 'train img/s', 'step ms (median)', 'steps', 'infer img/s', 'unfolded', 'peak RSS MiB', 'wasm heap MiB', 'loss', 'cpu/wall', 'load'], rows)}\n${note}`;
}

async function main(): Promise<void> {
  const a = parseArgs(process.argv.slice(2));
  const o = { ...engineOptionsFromArgs(a), verbose: a.json !== 'true' || a.verbose === 'true' };
  const result = await runEngineBench(o);
  if (a.json === 'true') process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
  else process.stdout.write(`${engineTable(result)}\n`);
  if (result.rows.some(isError)) process.exitCode = 1;
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main().catch((err: unknown) => {
    console.error(err);
    process.exit(1);
  });
}
