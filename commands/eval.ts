import { Flags } from '@oclif/core';
import { SoftsegCommand, backendFlags } from '../src/cli/base.js';

export default class Eval extends SoftsegCommand {
  static override summary = 'Evaluate a trained model: mIoU, fine-grained mIoU, calibration.';
  static override description = `Scores a model on a labeled data set (images/ + masks/) at each image's own resolution (sliding window for large images): dataset mIoU, per-image mIoU^I and per-class mIoU^C with their worst-q% variants, pixel accuracy, Dice, per-class IoU and ECE. With --pred, scores a folder of predicted class-id masks (as written by \`softseg predict\`) without a model.

Every file is checked first, as in training: an image without a mask, a mask value that is not a class id, or an unreadable file stops the run before any work (one line per file), or with --skip-bad is left out and listed.`;
  static override examples = [
    '<%= config.bin %> eval --model runs/teacher --data data/val',
    '<%= config.bin %> eval --model runs/teacher --data data/val --best --json',
    '<%= config.bin %> eval --pred predictions/ --data data/val',
  ];
  static override flags = {
    ...backendFlags,
    model: Flags.string({ description: 'Run directory (uses model/) or a model folder with model.json.', exclusive: ['pred'] }),
    best: Flags.boolean({ description: 'Use the run\'s best/ model instead of model/.', default: false }),
    pred: Flags.string({ description: 'Folder of predicted masks to score instead of a model.' }),
    data: Flags.string({ description: 'Labeled data set folder.', required: true }),
    q: Flags.integer({ description: 'Worst-case percentage for mIoU^I_q and mIoU^C_q.', default: 5, min: 1, max: 100 }),
    'num-classes': Flags.integer({ description: 'Number of classes (default: the model\'s, and --data\'s dataset.json must not declare others; without --model, dataset.json\'s).', min: 1 }),
    'ignore-index': Flags.integer({ description: 'Mask value to ignore (default 255 or dataset.json).' }),
    'skip-bad': Flags.boolean({ description: 'Skip unreadable or inconsistent items (with a count and a list) instead of stopping.', default: false }),
  };

  async run(): Promise<Record<string, unknown>> {
    const { flags } = await this.parse(Eval);
    if (!flags.model && !flags.pred) this.error('give --model (a trained model) or --pred (a folder of predicted masks)', { exit: 2 });
    const { evaluateDataset, openEvalSet, publicMetrics, scorePredictions } = await import('../src/inference/evaluate.js');
    const { formatMetrics } = await import('../src/cli/tables.js');
    let result;
    let classNames: string[];
    const skipped: { file: string; reason: string }[] = [];
    const skip = (p: { file: string; reason: string }) => {
      skipped.push({ file: p.file, reason: p.reason });
      this.warn(`skipped ${p.file}: ${p.reason}`);
    };
    const skipBad = flags['skip-bad'];
    let count = 0;
    if (flags.model) {
      await this.startBackend(flags);
      const { openTrainedModel } = await import('../src/inference/model-dir.js');
      const trained = await openTrainedModel(flags.model, flags.best ? 'best' : 'model', { inference: true });
      try {
        const { ds, skipped: bad } = await openEvalSet(flags.data, {
          numClasses: flags['num-classes'], ignoreIndex: flags['ignore-index'] ?? trained.meta.ignoreIndex, skipBad,
          model: { numClasses: trained.meta.numClasses, classes: trained.meta.classes, name: flags.model },
        });
        count = bad.count;
        bad.problems.forEach(skip);
        classNames = ds.classNames.length ? ds.classNames : trained.meta.classes;
        result = await evaluateDataset(trained.model, ds, { normalize: trained.meta.normalization, q: flags.q, onSkip: skipBad ? (p) => { count++; skip(p); } : undefined });
      } finally {
        trained.model.dispose();
      }
    } else {
      const { ds, skipped: bad } = await openEvalSet(flags.data, { numClasses: flags['num-classes'], ignoreIndex: flags['ignore-index'], skipBad });
      count = bad.count;
      bad.problems.forEach(skip);
      classNames = ds.classNames;
      result = await scorePredictions(ds, flags.pred!, { q: flags.q });
    }
    if (!this.jsonEnabled()) {
      this.log(formatMetrics(result, classNames));
      if (count > 0) this.log(`${count} item(s) skipped (--skip-bad), listed above`);
    }
    return { ...publicMetrics(result), classNames, bad: skipped, badItems: count };
  }
}
