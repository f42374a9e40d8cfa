import { SoftsegCommand, backendFlags } from '../src/cli/base.js';
import { configFlag, logRunSummary, reportMiss, resolveRunConfig, runTrainingCommand } from '../src/cli/training-flags.js';
import { flagsFromSchema } from '../src/cli/option-flags.js';
import { DISTILL_OPTIONS } from '../src/recipes/recipe-options.js';

export default class Distill extends SoftsegCommand {
  static override summary = 'Distill a student from cached teacher outputs with JML-KD.';
  static override description = `The student learns from the ground truth (cross-entropy + JML) and from the teacher's soft labels: temperature KL + Jaccard Metric Loss on the classes the teacher considers present (probability > --class-threshold), restricted to non-ignored pixels. Defaults are the authors' configuration: CE:JML 0.25:0.75, label:teacher 0.5:0.5, T = 1.

Teacher outputs come from --cache (run \`softseg label\` first to fill it, on a GPU machine if you have one); they get the same scale/crop/flip as the image. A miss runs the teacher once and stores the result. --unlabeled folders add images that only get the teacher terms; --unlabeled-ratio sets their share of each batch.`;
  static override examples = [
    '<%= config.bin %> distill --teacher runs/teacher --cache cache/ --data data/train --val data/val --model mobile-unet --out runs/kd --epochs 20',
    '<%= config.bin %> distill --teacher teacher.onnx --cache cache/ --data data/train --unlabeled data/extra --out runs/kd-u --temperature 2',
  ];
  static override flags = { ...backendFlags, ...configFlag, ...flagsFromSchema(DISTILL_OPTIONS) };

  async run(): Promise<Record<string, unknown>> {
    const { flags } = await this.parse(Distill);
    const { trainDistill, checkDistillConfig } = await import('../src/recipes/distill.js');
    const config = await resolveRunConfig(flags, DISTILL_OPTIONS, checkDistillConfig);
    let misses = 0;
    const run = await runTrainingCommand(this, flags, (env) => trainDistill(config, { ...env, onMiss: () => reportMiss(++misses) }));
    const r = run.result;
    logRunSummary(this, r, config.out, misses);
    return { ...r, runDir: config.out, teacher: run.teacher, cacheMisses: misses };
  }
}
