import { SoftsegCommand, backendFlags } from '../src/cli/base.js';
import { configFlag, logRunSummary, reportMiss, resolveRunConfig, runTrainingCommand } from '../src/cli/training-flags.js';
import { flagsFromSchema } from '../src/cli/option-flags.js';
import { SSL_OPTIONS } from '../src/recipes/recipe-options.js';

export default class Ssl extends SoftsegCommand {
  static override summary = 'Semi-supervised training on unlabeled folders with soft pseudo-labels.';
  static override description = `Each batch holds labeled images (cross-entropy + JML on the ground truth, as \`softseg train\`) and unlabeled images whose targets are a teacher's pseudo-labels: soft ones at temperature T with 0.25·KL + 0.75·JML on the classes the teacher considers present (> --class-threshold), or with --pseudo hard the argmax where the teacher's confidence is ≥ --confidence-threshold (default 0.95), with CE + JML. Total = labeled + λ_u·unlabeled; λ_u ramps in linearly after --unlabeled-warmup steps.

Teachers: a fixed trained teacher through the cache (--teacher + --cache; the default and recommended one — run \`softseg label\` to fill the cache, misses are labelled on the fly), or a mean teacher (--ema M: an exponential moving average of the student, batch-norm statistics included). A mean teacher must start from a supervised model: --init RUN_DIR (a \`softseg train\` run of the same architecture) or a supervised phase of --unlabeled-warmup steps; started from random weights it collapses.

The teacher sees a weak view of each unlabeled crop (geometry only), the student a strong one (--strong-aug: stronger colour jitter, grayscale, blur), plus CutMix between unlabeled images (--cutmix) with the pseudo-labels mixed the same way. The run warns, then stops, when val mIoU falls more than 15 points below its best, or — with a mean teacher, which collapses together with its student — when one class takes more than --collapse-share of the student's predicted unlabeled pixels, for several checks in a row.`;
  static override examples = [
    '<%= config.bin %> ssl --teacher runs/teacher --cache cache/ --data data/train --unlabeled data/extra --val data/val --model mobile-unet --out runs/ssl --epochs 20',
    '<%= config.bin %> ssl --ema 0.999 --init runs/supervised --data data/train --unlabeled data/extra --val data/val --model mobile-unet --out runs/mt',
    '<%= config.bin %> ssl --teacher runs/teacher --cache cache/ --pseudo hard --confidence-threshold 0.95 --data data/train --unlabeled data/extra --out runs/ssl-hard',
  ];
  static override flags = { ...backendFlags, ...configFlag, ...flagsFromSchema(SSL_OPTIONS) };

  async run(): Promise<Record<string, unknown>> {
    const { flags } = await this.parse(Ssl);
    const { trainSsl, checkSslConfig } = await import('../src/recipes/ssl.js');
    const config = await resolveRunConfig(flags, SSL_OPTIONS, checkSslConfig);
    let misses = 0;
    const run = await runTrainingCommand(this, flags, (env) => trainSsl(config, { ...env, onMiss: () => reportMiss(++misses) }));
    const r = run.result;
    logRunSummary(this, r, config.out, misses);
    return { ...r, runDir: config.out, teacher: run.teacher, cacheMisses: misses };
  }
}
