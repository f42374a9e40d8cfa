import { Flags } from '@oclif/core';
import { SoftsegCommand, backendFlags } from '../src/cli/base.js';
import type { PredictFolderResult } from '../src/inference/predict-folder.js';

export default class Predict extends SoftsegCommand {
  static override summary = 'Write predicted masks for a folder of images.';
  static override description = `Runs a trained model over every image under --images (recursively) at its original resolution (sliding window with averaged logits when an image is larger than --max-pixels) and writes, mirroring the folder structure:
  OUT/<name>.png          class ids, 8-bit grayscale (what \`softseg eval --pred\` scores)
  OUT/color/<name>.png    the same mask in the class colours
  OUT/overlay/<name>.jpg  image and colours blended (--overlay)
  OUT/probs/<name>.npy    class probabilities, float32 H×W×C (--probs; numpy.load reads it)
Existing outputs are skipped, so an interrupted run continues where it stopped. Every image is decoded before the first prediction: an unreadable one stops the run before any work (one line per file), or with --skip-bad is left out and listed.`;
  static override examples = [
    '<%= config.bin %> predict --model runs/student --images photos/ --out predictions/ --overlay',
  ];
  static override flags = {
    ...backendFlags,
    model: Flags.string({ description: 'Run directory (uses model/) or a model folder with model.json.', required: true }),
    best: Flags.boolean({ description: 'Use the run\'s best/ model.', default: false }),
    images: Flags.string({ description: 'Folder of images (searched recursively).', required: true }),
    out: Flags.string({ description: 'Output folder.', required: true }),
    overlay: Flags.boolean({ description: 'Also write overlays for people to look at.', default: false }),
    probs: Flags.boolean({ description: 'Also write class probabilities as .npy.', default: false }),
    'max-pixels': Flags.integer({ description: 'Largest image (H×W) run in one pass; larger ones use a sliding window.', default: 1024 * 1024 }),
    tile: Flags.integer({ description: 'Sliding-window tile size.', default: 512 }),
    overwrite: Flags.boolean({ description: 'Recompute outputs that already exist.', default: false }),
    'skip-bad': Flags.boolean({ description: 'Skip unreadable images (with a count and a list) instead of stopping.', default: false }),
  };

  async run(): Promise<PredictFolderResult> {
    const { flags } = await this.parse(Predict);
    await this.startBackend(flags);
    const { openTrainedModel } = await import('../src/inference/model-dir.js');
    const { predictFolder } = await import('../src/inference/predict-folder.js');
    const { ProgressCounter } = await import('../src/cli/progress.js');
    const trained = await openTrainedModel(flags.model, flags.best ? 'best' : 'model', { inference: true });
    const progress = new ProgressCounter('images', (line) => this.logToStderr(line));
    try {
      const r = await predictFolder(trained, flags.images, flags.out, {
        overlay: flags.overlay, probs: flags.probs, overwrite: flags.overwrite, skipBad: flags['skip-bad'], maxPixels: flags['max-pixels'], tileSize: flags.tile,
        onProgress: (done, total) => progress.update(done, total),
      });
      progress.stop();
      for (const p of r.bad) this.warn(`skipped ${p.file}: ${p.reason}`);
      if (!this.jsonEnabled()) this.log(`${r.written} written, ${r.skipped} already there${r.bad.length ? `, ${r.bad.length} bad skipped (--skip-bad)` : ''}, in ${r.outDir}`);
      return r;
    } finally {
      progress.stop();
      trained.model.dispose();
    }
  }
}
