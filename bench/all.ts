// Every benchmark in sequence, each in its own process, then one summary against the issues' goals:
//   node --import tsx bench/all.ts [--json --quick --backend auto|wasm|cpu|tensorflow --threads N --only engine,pipeline,label,cache]
// engine (bench/engine.ts; --quick = unet-lite and mobile-unet at 64², 3 timed steps), pipeline, label and
// cache (--quick passed through). Progress goes to stderr; the tables (or one JSON object) to stdout.
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { fmt, isError, list, parseArgs, run, table } from './common.js';
import { engineTable, type EngineBenchResult } from './engine.js';
import { loadFigure, loadText, verdict } from './fixtures.js';
import { pipelineTable, type PipelineResult } from './pipeline.js';
import { labelTable, type LabelBenchResult } from './label.js';
import { cacheTable, type CacheBenchResult } from './cache.js';

const HERE = dirname(fileURLToPath(import.meta.url));
const BENCHES = ['engine', 'pipeline', 'label', 'cache'] as const;
type BenchName = (typeof BENCHES)[number];

interface Outcome<T> {
  name: BenchName;
  seconds: number;
  loadBefore: number;
  loadAfter: number;
  result?: T;
  error?: string;
}

async function runBench<T>(name: BenchName, a: Record<string, string>): Promise<Outcome<T>> {
  const args = ['--import', 'tsx', join(HERE, `${name}.ts`), '--json'];
  if (a.backend) args.push('--backend', a.backend);
  if (a.threads) args.push('--threads', a.threads);
  if (name === 'engine') {
    args.push('--verbose');
    if (a.quick === 'true') args.push('--models', 'unet-lite,mobile-unet', '--sizes', '64', '--steps', '3', '--warmup', '1');
  } else if (a.quick === 'true') args.push('--quick');
  process.stderr.write(`== ${name}${a.quick === 'true' ? ' (--quick)' : ''} ==\n`);
  const loadBefore = loadFigure().load1;
  const t0 = performance.now();
  const r = await run(process.execPath, args, { echoStderr: true });
  const seconds = (performance.now() - t0) / 1000;
  const base = { name, seconds, loadBefore, loadAfter: loadFigure().load1 };
  const start = r.stdout.indexOf('{');
  try {
    if (start < 0) throw new Error('no JSON output');
    const result = JSON.parse(r.stdout.slice(start)) as T;
    return { ...base, result, error: r.code === 0 ? undefined : `exited with ${r.code}` };
  } catch (e) {
    const lines = r.stderr.trim().split('\n');
    return { ...base, error: `exited with ${r.code}: ${(e as Error).message}; ${lines.find((l) => /error/i.test(l)) ?? lines[lines.length - 1] ?? ''}` };
  }
}

function summary(o: { engine?: Outcome<EngineBenchResult>; pipeline?: Outcome<PipelineResult>; label?: Outcome<LabelBenchResult>; cache?: Outcome<CacheBenchResult> }): string {
  const rows: string[][] = [];
  const e = o.engine?.result;
  if (e) {
    for (const row of e.rows) {
      rows.push([`engine ${row.model} ${row.size}² b${row.batch}`, isError(row) ? row.error : `train ${fmt(row.trainImgS)} img/s, infer ${fmt(row.inferImgS)} img/s`, '', '']);
    }
  }
  const p = o.pipeline?.result;
  if (p) {
    for (const row of p.rows) {
      rows.push([`pipeline ${row.model} ${row.size}² b${row.batch}`, `${fmt(row.pipelineImgS)} vs bare ${fmt(row.bareImgS)} img/s`, `pipeline ÷ bare ${row.ratio === null ? '–' : row.ratio.toFixed(2)}`, '']);
      rows.push([`  loader wait ${row.model}`, `${(100 * row.loaderWaitShare).toFixed(1)}% of step time`, '< 5%', verdict(row.loaderWaitShare < 0.05)]);
    }
  }
  const l = o.label?.result;
  if (l) {
    for (const row of l.rows) {
      rows.push([`label ${row.teacher} ${row.model} ${row.size}²`, `${fmt(row.labelImgS)} vs bare ${fmt(row.bareImgS)} img/s`, `ratio ${row.ratio.toFixed(2)} (≥ 0.9)`, verdict(row.ratio >= 0.9)]);
    }
    if (l.onnxSkipped) rows.push(['label onnx', `skipped: ${l.onnxSkipped}`, '', '']);
  }
  const c = o.cache?.result;
  if (c) {
    for (const s of c.sizeRows.filter((x) => !x.source.startsWith('synth') || x.source.startsWith('synth teacher'))) {
      rows.push([`cache ${s.source} ${s.size}²`, `${fmt(s.bytesPerPixel)} B/px, KL(T=1) ${s.kl['1']?.toExponential(2) ?? '–'}`, `${fmt(s.vsFloat32)}× (≥ 20×)`, `${verdict(s.vsFloat32 >= 20)} / ${verdict((s.kl['1'] ?? Infinity) <= 1e-3)}`]);
    }
    const d = c.distill;
    rows.push(['cache reads per distill step', `${fmt(d.readMsPerStep)} ms (8 × get, T=2) vs step ${fmt(d.bareStepMs, 4)} ms`, `${(100 * d.readShareOfBareStep).toFixed(1)}% of the step`, '']);
    rows.push(['distill loader wait', `${(100 * d.loaderWaitShare).toFixed(1)}% (trainDistill ${fmt(d.pipelineImgS)} img/s)`, '< 5%', verdict(d.loaderWaitShare < 0.05)]);
  }
  for (const x of [o.engine, o.pipeline, o.label, o.cache]) {
    if (x?.error) rows.push([x.name, `error: ${x.error}`, '', '']);
  }
  const loads = [o.engine, o.pipeline, o.label, o.cache].filter((x) => x).map((x) => `${x!.name} ${x!.seconds.toFixed(0)} s, load ${x!.loadBefore.toFixed(1)}→${x!.loadAfter.toFixed(1)}`);
  return `summary\n${table(['figure', 'value', 'ratio / goal', 'PASS/MISS'], rows)}\n${loads.join('; ')}\n${loadText(loadFigure())} now — figures taken under load (> cores) are unreliable.`;
}

async function main(): Promise<void> {
  const a = parseArgs(process.argv.slice(2));
  const only = list(a.only, [...BENCHES]) as BenchName[];
  const outcomes: { engine?: Outcome<EngineBenchResult>; pipeline?: Outcome<PipelineResult>; label?: Outcome<LabelBenchResult>; cache?: Outcome<CacheBenchResult> } = {};
  const print = (text: string) => {
    if (a.json !== 'true') process.stdout.write(`${text}\n\n`);
  };
  for (const name of BENCHES) {
    if (!only.includes(name)) continue;
    if (name === 'engine') {
      outcomes.engine = await runBench<EngineBenchResult>('engine', a);
      if (outcomes.engine.result) print(engineTable(outcomes.engine.result));
    } else if (name === 'pipeline') {
      outcomes.pipeline = await runBench<PipelineResult>('pipeline', a);
      if (outcomes.pipeline.result) print(pipelineTable(outcomes.pipeline.result));
    } else if (name === 'label') {
      outcomes.label = await runBench<LabelBenchResult>('label', a);
      if (outcomes.label.result) print(labelTable(outcomes.label.result));
    } else {
      outcomes.cache = await runBench<CacheBenchResult>('cache', a);
      if (outcomes.cache.result) print(cacheTable(outcomes.cache.result));
    }
  }
  if (a.json === 'true') process.stdout.write(`${JSON.stringify({ ...outcomes, load: loadFigure() }, null, 2)}\n`);
  else process.stdout.write(`${summary(outcomes)}\n`);
  if (Object.values(outcomes).some((x) => x?.error)) process.exitCode = 1;
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
