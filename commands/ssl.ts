import { Flags } from '@oclif/core';
import { SoftsegCommand, backendFlags } from '../src/cli/base.js';
import { logRunSummary, reportMiss, resolveRunConfig, runTrainingCommand, trainingFlags } from '../src/cli/training-flags.js';
import { teacherFlagsForTraining } from '../src/cli/teacher-flags.js';
import { distillFlags } from './distill.js';

export default class Ssl extends SoftsegCommand {
  static override summary = 'Semi-supervised training on unlabeled folders with soft pseudo-labels.';
  static override description = `Each batch holds labeled images (cross-entropy + JML on the ground truth, as \`softseg train\`) and unlabeled images whose targets are a teacher's pseudo-labels (method.md §6): soft ones at temperature T with 0.25·KL + 0.75·JML on the classes the teacher considers present (> --class-threshold), or with --pseudo hard the argmax where the teacher's confidence is ≥ --threshold (default 0.95), with CE + JML. Total = labeled + λ_u·unlabeled; λ_u ramps in linearly after --unlabeled-warmup steps.

Teachers: a fixed trained teacher through the cache (--teacher + --cache; the default and recommended one — run \`softseg label\` to fill the cache, misses are labelled on the fly), or a mean teacher (--ema M: an exponential moving average of the student, batch-norm statistics included). A mean teacher must start from a supervised model: --init RUN_DIR (a \`softseg train\` run of the same architecture) or a supervised phase of --unlabeled-warmup steps; started from random weights it collapses.

The teacher sees a weak view of each unlabeled crop (geometry only), the student a strong one (--strong-aug: stronger colour jitter, grayscale, blur), plus CutMix between unlabeled images (--cutmix) with the pseudo-labels mixed the same way. The run warns, then stops, when val mIoU falls more than 15 points below its best, or — with a mean teacher, which collapses together with its student — when one class takes more than --collapse-share of the student's predicted unlabeled pixels, for several checks in a row.`;
  static override examples = [
    '<%= config.bin %> ssl --teacher runs/teacher --cache cache/ --data data/train --unlabeled data/extra --val data/val --model mobile-unet --out runs/ssl --epochs 20',
    '<%= config.bin %> ssl --ema 0.999 --init runs/supervised --data data/train --unlabeled data/extra --val data/val --model mobile-unet --out runs/mt',
    '<%= config.bin %> ssl --teacher runs/teacher --cache cache/ --pseudo hard --threshold 0.95 --data data/train --unlabeled data/extra --out runs/ssl-hard',
  ];
  static override flags = {
    ...backendFlags,
    ...trainingFlags,
    model: Flags.string({ description: 'Student architecture (see `softseg models`).', default: 'mobile-unet' }),
    ...distillFlags,
    ...teacherFlagsForTraining,
    temperature: Flags.string({ description: 'Pseudo-label temperature T: p_t = softmax(t/T), KL scaled by T².', default: '1' }),
    unlabeled: Flags.string({ description: 'Folder of unlabeled images (repeatable).', multiple: true }),
    ema: Flags.string({ description: 'Mean teacher instead of --teacher: EMA momentum of the student\'s weights, e.g. 0.999 (needs --init or --unlabeled-warmup).' }),
    init: Flags.string({ description: 'Start the student (and the mean teacher) from this supervised run\'s model (same --model/--width/--aux).' }),
    pseudo: Flags.string({ description: 'Soft pseudo-labels (KL + JML) or hard argmax ones above --threshold (CE + JML).', options: ['soft', 'hard'], default: 'soft' }),
    threshold: Flags.string({ description: 'Confidence threshold τ: pixels whose teacher confidence is below it get no pseudo-label (default 0.95 with --pseudo hard, none with soft).' }),
    'teacher-classes': Flags.string({ description: 'Classes of the soft JML term: those the teacher gives > --class-threshold somewhere in the batch, or all.', options: ['present', 'all'], default: 'present' }),
    'class-threshold': Flags.string({ description: 'Active-class threshold on teacher probabilities (soft JML term).', default: '0.01' }),
    'unlabeled-warmup': Flags.integer({ description: 'Supervised-only steps before the unlabeled loss ramps in (linearly, over as many steps).', default: 0, min: 0 }),
    'unlabeled-weight': Flags.string({ description: 'Weight λ_u of the unlabeled loss at full strength.', default: '1' }),
    'unlabeled-ratio': Flags.string({ description: 'Share of each batch from --unlabeled.', default: '0.5' }),
    'strong-aug': Flags.string({ description: 'Photometric augmentation of the student\'s view of unlabeled images.', options: ['strong', 'default'], default: 'strong' }),
    cutmix: Flags.string({ description: 'Probability of CutMix per unlabeled image (0 = off).', default: '0.5' }),
    'collapse-share': Flags.string({ description: 'Collapse guard (mean teacher): stop when one class takes more than this share of the student\'s predicted unlabeled pixels (1 = off).', default: '0.95' }),
  };

  async run(): Promise<Record<string, unknown>> {
    const { flags } = await this.parse(Ssl);
    const { SSL_DEFAULTS, SSL_KEYS, trainSsl, checkSslConfig } = await import('../src/recipes/ssl.js');
    const config = await resolveRunConfig(this, this.argv, flags, SSL_DEFAULTS, SSL_KEYS, checkSslConfig);
    let misses = 0;
    const run = await runTrainingCommand(this, flags, (env) => trainSsl(config, { ...env, onMiss: () => reportMiss(++misses) }));
    const r = run.result;
    logRunSummary(this, r, config.out, misses);
    return { ...r, runDir: config.out, teacher: run.teacher, cacheMisses: misses };
  }
}
