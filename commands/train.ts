import { SoftsegCommand, backendFlags } from '../src/cli/base.js';
import { logRunSummary, resolveRunConfig, runTrainingCommand, trainingFlags } from '../src/cli/training-flags.js';
import type { SupervisedRun } from '../src/recipes/supervised.js';
import { TRAIN_OPTIONS } from '../src/recipes/recipe-options.js';

export default class Train extends SoftsegCommand {
  static override summary = 'Train a segmentation model on a folder of images and masks (CE + JML).';
  static override description = `A data set is a folder with images/ and masks/ paired by file name (sub-folders allowed), and optionally a dataset.json with class names, number of classes, ignore index and palette. Masks are 8-bit grayscale or palette PNGs whose values are class ids; 255 is ignored by default.

The loss is 0.25·cross-entropy + 0.75·Jaccard Metric Loss (JML1, PRESENT classes, smooth 1) unless --loss says otherwise. --label-smoothing or --bls turn hard labels into soft ones, which JML handles correctly. AdamW with linear warm-up and poly decay.

The run folder (--out) receives model/ (final model in TensorFlow.js layers format, loadable with plain TensorFlow.js in a web page or Node, + softseg.json metadata), best/ (best val mIoU), checkpoints/ (resume with --resume), metrics.jsonl and config.json. A new run needs an empty or missing folder: --resume continues the run there with its own options (train --out DIR --resume is enough), --overwrite replaces it. Ctrl-C writes a checkpoint and exits with code 130 (SIGTERM: 143).`;
  static override examples = [
    '<%= config.bin %> train --data data/train --val data/val --model unet-lite --out runs/teacher --epochs 20',
    '<%= config.bin %> train --data data/train --model mobile-unet --out runs/student --steps 2000 --bls --crop 128',
    '<%= config.bin %> train --out runs/student --resume',
  ];
  static override flags = { ...backendFlags, ...trainingFlags };


  async run(): Promise<SupervisedRun['result'] & { runDir: string }> {
    const { flags } = await this.parse(Train);
    const { trainSupervised, checkConfig } = await import('../src/recipes/supervised.js');
    const config = await resolveRunConfig(flags, TRAIN_OPTIONS, checkConfig);
    const run = await runTrainingCommand(this, flags, (env) => trainSupervised(config, env));
    const r = run.result;
    logRunSummary(this, r, config.out);
    return { ...r, runDir: config.out };
  }
}
