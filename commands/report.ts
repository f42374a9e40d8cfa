import { Args, Flags } from '@oclif/core';
import { SoftsegCommand, backendFlags } from '../src/cli/base.js';

export default class Report extends SoftsegCommand {
  static override summary = 'Write a self-contained HTML report of one or more runs.';
  static override description = `Reads each run directory (the --out folder of \`softseg train\`, \`distill\` or \`ssl\`) and writes ONE HTML file that opens anywhere without a network: a summary table (model, parameters, steps, final and best mIoU, mIoU^I, ECE, img/s), the training loss and its components and the validation mIoU, mIoU^I and ECE over steps, a per-class IoU chart comparing the runs, a confusion matrix per run (rows = ground truth, row-normalised), and a grid of validation samples: image | ground truth | teacher | each run's prediction, with a class legend.

Scores and samples use the validation set of the first run (its config.json "val") unless --data names another; every run is scored on that same set, so the per-class chart compares like with like. The teacher column appears when a run's softseg.json names a teacher model folder that can be opened; otherwise the page says why it is missing. Give several runs to compare them (e.g. the distilled student and the same student trained with CE alone).`;
  static override examples = [
    { description: 'Report one training run (writes report.html here):', command: '<%= config.bin %> report runs/teacher' },
    { description: 'Compare a distilled student with its CE-only twin, on a chosen validation set, 8 samples:', command: '<%= config.bin %> report runs/student-kd runs/student-ce --data data/val --samples 8 --out kd-vs-ce.html' },
    { description: 'Use each run\'s best checkpoint and print where the page went as JSON:', command: '<%= config.bin %> report runs/teacher --best --json' },
  ];
  static override strict = false;
  static override args = {
    run_dir: Args.string({ description: 'Run directories (the --out folders of train, distill or ssl); one or more.', required: true }),
  };
  static override flags = {
    ...backendFlags,
    out: Flags.string({ char: 'o', description: 'HTML file to write.', default: 'report.html' }),
    data: Flags.string({ description: 'Labeled validation set for scores and samples (default: the first run\'s config.json "val").' }),
    samples: Flags.integer({ description: 'Validation images in the sample grid (0 = none).', default: 6, min: 0, max: 200 }),
    best: Flags.boolean({ description: 'Use each run\'s best/ model instead of its final model/.', default: false }),
    limit: Flags.integer({ description: 'Score at most this many validation images (default: all).', min: 1 }),
    title: Flags.string({ description: 'Page title.' }),
  };

  async run(): Promise<Record<string, unknown>> {
    const { argv, flags } = await this.parse(Report);
    const runDirs = argv as string[];
    await this.startBackend(flags);
    const { buildReport } = await import('../src/report/index.js');
    const quiet = this.jsonEnabled();
    const result = await buildReport(runDirs, {
      out: flags.out,
      data: flags.data,
      samples: flags.samples,
      which: flags.best ? 'best' : 'model',
      limit: flags.limit,
      title: flags.title,
      onProgress: quiet ? undefined : (message) => this.logToStderr(message),
    });
    if (!quiet) this.log(`report: ${result.path} (${(result.bytes / 1024).toFixed(0)} KiB, ${result.runs.length} run${result.runs.length === 1 ? '' : 's'})`);
    return { ...result };
  }
}
