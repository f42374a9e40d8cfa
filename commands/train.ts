import { Flags } from '@oclif/core';
import { SoftsegCommand, backendFlags, failOneLine } from '../src/cli/base.js';
import type { SupervisedRun } from '../src/recipes/supervised.js';

export default class Train extends SoftsegCommand {
  static override summary = 'Train a segmentation model on a folder of images and masks (CE + JML).';
  static override description = `A data set is a folder with images/ and masks/ paired by file name (sub-folders allowed), and optionally a dataset.json with class names, number of classes, ignore index and palette. Masks are 8-bit grayscale or palette PNGs whose values are class ids; 255 is ignored by default.

The loss is 0.25·cross-entropy + 0.75·Jaccard Metric Loss (JML1, PRESENT classes, smooth 1) unless --loss says otherwise. --label-smoothing or --bls turn hard labels into soft ones, which JML handles correctly. AdamW with linear warm-up and poly decay.

RUN_DIR receives model/ (final model in TensorFlow.js format + softseg.json metadata), best/ (best val mIoU), checkpoints/ (resume with --resume), metrics.jsonl and config.json. Ctrl-C writes a checkpoint before exiting.`;
  static override examples = [
    '<%= config.bin %> train --data data/train --val data/val --model unet-lite --out runs/teacher --epochs 20',
    '<%= config.bin %> train --data data/train --model mobile-unet --out runs/student --steps 2000 --bls --crop 128',
    '<%= config.bin %> train --config train.yaml --resume',
  ];
  static override flags = {
    ...backendFlags,
    config: Flags.string({ description: 'JSON or YAML file with the same keys as these flags (flags win).' }),
    data: Flags.string({ description: 'Training data set folder (images/ + masks/).' }),
    val: Flags.string({ description: 'Validation data set folder, evaluated periodically; picks best/.' }),
    model: Flags.string({ description: 'Architecture (see `softseg models`).', default: 'unet-lite' }),
    out: Flags.string({ description: 'Run directory.' }),
    epochs: Flags.integer({ description: 'Passes over the data (default 10 when --steps is not given).', min: 1 }),
    steps: Flags.integer({ description: 'Optimizer steps (instead of --epochs).', min: 1 }),
    'batch-size': Flags.integer({ description: 'Images per step.', default: 8, min: 1 }),
    crop: Flags.integer({ description: 'Training crop size (square; a multiple of the model\'s size multiple).', default: 128, min: 8 }),
    lr: Flags.string({ description: 'Peak learning rate.', default: '1e-3' }),
    optimizer: Flags.string({ description: 'Optimizer.', options: ['adamw', 'sgd'], default: 'adamw' }),
    'weight-decay': Flags.string({ description: 'Weight decay (decoupled for AdamW).', default: '1e-4' }),
    loss: Flags.string({ description: 'Loss: cross-entropy, Jaccard Metric Loss, or both.', options: ['ce', 'jml', 'ce+jml'], default: 'ce+jml' }),
    'ce-weight': Flags.string({ description: 'Weight of the CE term with --loss ce+jml.', default: '0.25' }),
    'jml-weight': Flags.string({ description: 'Weight of the JML term with --loss ce+jml.', default: '0.75' }),
    'jml-reduction': Flags.string({ description: 'JML averaged per batch (aligns with dataset mIoU) or per image and class (mIoU^I/mIoU^C).', options: ['batch', 'image-class'], default: 'batch' }),
    'active-classes': Flags.string({ description: 'Classes the JML term averages over.', options: ['present', 'all'], default: 'present' }),
    'label-smoothing': Flags.string({ description: 'Uniform label smoothing ε (0 = off).', default: '0' }),
    bls: Flags.boolean({ description: 'Boundary label smoothing: smooth labels only near class boundaries.', default: false }),
    'bls-kernel': Flags.integer({ description: 'BLS window (odd).', default: 3 }),
    'bls-epsilon': Flags.string({ description: 'BLS ε on boundary pixels.', default: '0.5' }),
    width: Flags.string({ description: 'Width multiplier of the model.', default: '1' }),
    aux: Flags.boolean({ description: 'Add an auxiliary head (main + aux heads, as the method trains); predictions use the main head.', default: false }),
    'num-classes': Flags.integer({ description: 'Number of classes (overrides dataset.json).', min: 1 }),
    'ignore-index': Flags.integer({ description: 'Mask value to ignore (default 255 or dataset.json).' }),
    accumulate: Flags.integer({ description: 'Gradient accumulation: split each batch into K micro-batches (saves memory).', default: 1, min: 1 }),
    'warmup-steps': Flags.integer({ description: 'Linear warm-up steps (default 5% of the run).', min: 0 }),
    'eval-every': Flags.integer({ description: 'Validate every N steps (default: 5 times per run).', min: 1 }),
    'checkpoint-every': Flags.integer({ description: 'Checkpoint every N steps (default: 10 times per run).', min: 1 }),
    augment: Flags.string({ description: 'Augmentation preset.', options: ['default', 'strong', 'none'], default: 'default' }),
    seed: Flags.integer({ description: 'Seed for initialisation, shuffling and augmentation.', default: 0 }),
    'skip-bad': Flags.boolean({ description: 'Skip unreadable or inconsistent items (with a count) instead of stopping.', default: false }),
    'cache-images': Flags.boolean({ description: 'Keep decoded images in memory (small data sets).', default: false }),
    resume: Flags.boolean({ description: 'Continue from the last checkpoint in --out.', default: false }),
  };

  async run(): Promise<SupervisedRun['result'] & { runDir: string }> {
    const { flags } = await this.parse(Train);
    const { readConfigFile, mergeConfig } = await import('../src/recipes/config.js');
    const { TRAIN_DEFAULTS, TRAIN_KEYS, trainSupervised } = await import('../src/recipes/supervised.js');
    const { TrainingProgress } = await import('../src/cli/progress.js');
    const given = new Set(this.argv.filter((a) => a.startsWith('--')).map((a) => a.slice(2).split('=')[0]!));
    const numeric = ['lr', 'weight-decay', 'ce-weight', 'jml-weight', 'label-smoothing', 'bls-epsilon', 'width'];
    const flagValues: Record<string, unknown> = { ...flags };
    for (const k of numeric) {
      const v = Number(flags[k as keyof typeof flags]);
      if (!Number.isFinite(v)) failOneLine(this, `--${k} must be a number, got ${String(flags[k as keyof typeof flags])}`, 2);
      flagValues[k] = v;
    }
    for (const k of ['config', 'backend', 'threads', 'json']) delete flagValues[k];
    const file = flags.config ? await readConfigFile(flags.config) : {};
    const config = mergeConfig(TRAIN_DEFAULTS, file, flagValues, given, TRAIN_KEYS, flags.config);
    const backend = await this.startBackend(flags);
    const progress = new TrainingProgress((line) => this.logToStderr(line));
    const ctrl = new AbortController();
    const stop = () => ctrl.abort();
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
    try {
      const run = await trainSupervised(config, {
        backend, version: this.config.version, signal: ctrl.signal,
        onEvent: (e) => progress.handle(e), onWarning: (w) => this.warn(w),
      });
      const r = run.result;
      if (!this.jsonEnabled()) {
        this.log(r.interrupted ? `stopped at step ${r.steps}; resume with --resume` : `done: ${r.steps} steps; model in ${config.out}/model`);
        if (r.bestMetric !== null) this.log(`best val mIoU ${r.bestMetric.toFixed(2)} at step ${r.bestStep} (${config.out}/best)`);
      }
      return { ...r, runDir: config.out };
    } finally {
      progress.stop();
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
    }
  }
}
