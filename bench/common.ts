// Shared helpers of the benchmarks (bench/engine.ts, bench/engine-row.ts, bench/torch.ts).
import { spawn } from 'node:child_process';

/** Prefix of the one JSON line a row process prints on stdout. */
export const ROW_MARKER = '@@SOFTSEG_BENCH_ROW ';

/** One measured row of the engine benchmark (or an error). */
export interface RowResult {
  model: string;
  size: number;
  batch: number;
  classes: number;
  backend: string;
  reason: string;
  threads: number;
  /** All weights including batch-norm moving statistics. */
  params: number;
  /** batch ÷ median timed step. */
  trainImgS: number;
  trainStepMs: number[];
  warmupStepMs: number[];
  /** Inference in the form eval, predict and teachers run (batch norm folded). */
  inferImgS: number;
  inferBatchMs: number[];
  /** Inference with the trained model as it is (batch norm as a separate op). */
  inferUnfoldedImgS: number;
  /** Peak resident set size of the row's process (MiB). */
  peakRssMB: number;
  rssAfterTrainMB: number;
  wasmHeapMB: number | null;
  leakedTensorsPerStep: number;
  lossFirst: number;
  lossLast: number;
  setupMs: number;
  /** 1-minute load average at the end of the row (this process included): > cores means contention. */
  loadAvg: number;
  /** CPU seconds per wall second of the timed training steps (≈ threads when the process had its cores to itself). */
  cpuPerWall: number;
  /** Training images per CPU-second (all threads) in the timed steps: a contention-robust measure of work, not of speed. */
  trainImgPerCpuS: number;
}

/**
 * Whether other work competed for the cores during a row: the 1-minute load average at its end,
 * minus the row's own threads, is above 0.75. The load average lags by tens of seconds, so this is a
 * hint, not proof (a PyTorch process with 2 OpenMP threads slows down several-fold when it has to share).
 */
export const contended = (loadAvg: number, ownThreads: number): boolean => loadAvg - ownThreads > 0.75;

export type RowOutcome = RowResult | { model: string; size: number; batch: number; error: string; hint?: string };

export const isError = (r: RowOutcome): r is Extract<RowOutcome, { error: string }> => 'error' in r;

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

/** `--key value`, `--key=value` and bare `--flag` (→ 'true'). */
export function parseArgs(argv: string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (!arg.startsWith('--')) continue;
    const eq = arg.indexOf('=');
    if (eq > 0) out[arg.slice(2, eq)] = arg.slice(eq + 1);
    else if (i + 1 < argv.length && !argv[i + 1]!.startsWith('--')) out[arg.slice(2)] = argv[++i]!;
    else out[arg.slice(2)] = 'true';
  }
  return out;
}

export const list = (s: string | undefined, fallback: string[]): string[] => (s ? s.split(',').map((x) => x.trim()).filter(Boolean) : fallback);

/** Runs a command, collecting stdout; stderr is passed through (prefixed) when `echoStderr`. */
export function run(cmd: string, args: string[], opts: { echoStderr?: boolean; env?: NodeJS.ProcessEnv } = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], env: opts.env ?? process.env });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => {
      stderr += d.toString();
      if (opts.echoStderr) process.stderr.write(d);
    });
    child.on('error', reject);
    child.on('close', (code) => resolve({ code: code ?? 1, stdout, stderr }));
  });
}

/** The JSON object after `marker` on the last line that has it. */
export function parseMarked<T>(stdout: string, marker: string): T | undefined {
  const line = stdout.split('\n').reverse().find((l) => l.startsWith(marker));
  return line ? (JSON.parse(line.slice(marker.length)) as T) : undefined;
}

/** A plain-text table (right-aligned numbers, left-aligned first column). */
export function table(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const fmt = (r: string[]): string => r.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ');
  return [fmt(header), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(fmt)].join('\n');
}

/** Number with about 3 significant digits. */
export function fmt(x: number | null | undefined, digits = 3): string {
  if (x === null || x === undefined || !Number.isFinite(x)) return '–';
  if (x === 0) return '0';
  const mag = Math.floor(Math.log10(Math.abs(x)));
  const decimals = Math.max(0, digits - 1 - mag);
  return x.toFixed(Math.min(decimals, 3));
}
