import { Flags } from '@oclif/core';
import { SoftsegCommand, backendFlags } from '../src/cli/base.js';
import { logRunSummary, reportMiss, resolveRunConfig, runTrainingCommand, trainingFlags } from '../src/cli/training-flags.js';
import { teacherFlagsForTraining } from '../src/cli/teacher-flags.js';

export const distillFlags = {
  teacher: Flags.string({ description: 'Teacher: a softseg run directory, a TF.js model.json folder, or an .onnx file.' }),
  cache: Flags.string({ description: 'Teacher-output cache folder (filled by `softseg label`; misses are labelled on the fly).' }),
  temperature: Flags.string({ description: 'Distillation temperature T: soft labels ∝ p^(1/T), KL scaled by T².', default: '1' }),
  'no-teacher': Flags.boolean({ description: 'A cache miss is an error instead of running the teacher.', default: false }),
};

export default class Distill extends SoftsegCommand {
  static override summary = 'Distill a student from cached teacher outputs with JML-KD.';
  static override description = `The student learns from the ground truth (cross-entropy + JML) and from the teacher's soft labels: temperature KL + Jaccard Metric Loss on the classes the teacher considers present (probability > --threshold), restricted to non-ignored pixels (method.md §5). Defaults are the authors' configuration: CE:JML 0.25:0.75, label:teacher 0.5:0.5, T = 1.

Teacher outputs come from --cache (run \`softseg label\` first to fill it, on a GPU machine if you have one); they get the same scale/crop/flip as the image. A miss runs the teacher once and stores the result. --unlabeled folders add images that only get the teacher terms; --unlabeled-ratio sets their share of each batch.`;
  static override examples = [
    '<%= config.bin %> distill --teacher runs/teacher --cache cache/ --data data/train --val data/val --model mobile-unet --out runs/kd --epochs 20',
    '<%= config.bin %> distill --teacher teacher.onnx --cache cache/ --data data/train --unlabeled data/extra --out runs/kd-u --temperature 2',
  ];
  static override flags = {
    ...backendFlags,
    ...trainingFlags,
    model: Flags.string({ description: 'Student architecture (see `softseg models`).', default: 'mobile-unet' }),
    ...distillFlags,
    ...teacherFlagsForTraining,
    unlabeled: Flags.string({ description: 'Folder of unlabeled images (repeatable): teacher terms only.', multiple: true }),
    'unlabeled-ratio': Flags.string({ description: 'Share of each batch from --unlabeled.', default: '0.5' }),
    'kd-loss': Flags.string({ description: 'Teacher terms: temperature KL and JML, or one of them.', options: ['kl+jml', 'kl', 'jml'], default: 'kl+jml' }),
    'label-weight': Flags.string({ description: 'Weight of the ground-truth terms.', default: '0.5' }),
    'teacher-weight': Flags.string({ description: 'Weight of the teacher terms.', default: '0.5' }),
    'teacher-classes': Flags.string({ description: 'Classes of the JML teacher term: those the teacher gives > --threshold somewhere in the batch, or all.', options: ['present', 'all'], default: 'present' }),
    threshold: Flags.string({ description: 'Active-class threshold on teacher probabilities.', default: '0.01' }),
  };

  async run(): Promise<Record<string, unknown>> {
    const { flags } = await this.parse(Distill);
    const { DISTILL_DEFAULTS, DISTILL_KEYS, trainDistill, checkDistillConfig } = await import('../src/recipes/distill.js');
    const config = await resolveRunConfig(this, this.argv, flags, DISTILL_DEFAULTS, DISTILL_KEYS, checkDistillConfig);
    let misses = 0;
    const run = await runTrainingCommand(this, flags, (env) => trainDistill(config, { ...env, onMiss: () => reportMiss(++misses) }));
    const r = run.result;
    logRunSummary(this, r, config.out, misses);
    return { ...r, runDir: config.out, teacher: run.teacher, cacheMisses: misses };
  }
}
