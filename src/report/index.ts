/**
 * `softseg report`: one self-contained HTML page about one or more runs — loss and metric curves, a per-class
 * IoU chart comparing the runs, confusion matrices, a summary table and a grid of validation samples
 * (image | ground truth | teacher | students) with a class legend.
 *
 * gather.ts reads the run directories and runs the models (on the backend already started, e.g. by
 * initBackend); render.ts turns the gathered data into HTML; svg.ts draws the charts.
 *
 * A distilled student's softseg.json may name its teacher as `"teacher": "path"` or `"teacher": { "dir" |
 * "path" | "model": "path", … }` (relative paths are tried from the working directory, then from the run).
 * The teacher column appears when that path opens as a TensorFlow.js model folder or run directory.
 */
import { writeFileAtomic } from '../data/fs-util.js';
import { resolve } from 'node:path';
import { SoftsegError } from '../errors.js';
import { gatherReport, type GatherOptions } from './gather.js';
import { renderReport } from './render.js';

export { gatherReport, readMetricsLog, spreadIndices, uniqueRunNames } from './gather.js';
export { renderReport } from './render.js';
export { esc } from './format.js';

export interface ReportOptions extends GatherOptions {
  /** Output HTML file (default report.html). */
  out?: string;
  /** Page title (default: "softseg report: <run>"). */
  title?: string;
}

export interface ReportResult {
  /** Absolute path of the written HTML file. */
  path: string;
  /** Run names as the report shows them. */
  runs: string[];
  /** Size of the file in bytes. */
  bytes: number;
}

/** Gathers, renders and writes the report; returns where it went and how big it is. */
export async function buildReport(runDirs: string[], options: ReportOptions = {}): Promise<ReportResult> {
  const path = resolve(options.out ?? 'report.html');
  const data = await gatherReport(runDirs, options);
  const html = renderReport(data, { title: options.title });
  try {
    await writeFileAtomic(path, html);
  } catch (err) {
    throw new SoftsegError(`cannot write the report (${(err as Error).message})`, { file: path, cause: err });
  }
  return { path, runs: data.runs.map((r) => r.name), bytes: Buffer.byteLength(html) };
}
