import { Flags } from '@oclif/core';
import { SoftsegCommand, backendFlags } from '../src/cli/base.js';
import { teacherPreprocessingFlags } from '../src/cli/teacher-flags.js';
import type { LabelResult } from '../src/labels/label-folder.js';

export default class Label extends SoftsegCommand {
  static override summary = 'Run a teacher over images and cache its soft labels or pseudo-labels.';
  static override description = `Runs the teacher once per image (folders searched recursively) and stores its per-pixel class distribution compactly in CACHE: the top-k classes with quantised log-probabilities and the residual mass (spread over the other classes by a per-image low-rank model of the teacher's log-probabilities), so soft labels at any temperature can be rebuilt at train time; plus each image's per-class maximum (active classes) and confidence. --mode pseudo keeps hard labels with confidence (the confidence threshold is chosen when reading).

Entries are keyed by the teacher's fingerprint (weights + preprocessing) and the image's content: renaming or moving images keeps them, a changed teacher never reuses them, and one CACHE can hold several teachers. Valid entries are skipped, so an interrupted run resumes. Entries are encoded on worker threads while the teacher runs (--encode-threads). The images to label are decoded before the teacher starts: an unreadable one stops the run before any work (one line per file), or with --skip-bad is left out and listed. --shard i/n labels a deterministic part (by image content), so n processes or machines sharing one CACHE split the work.

Teachers: a softseg run directory, a TensorFlow.js model.json folder (LayersModel or GraphModel), or an .onnx file (e.g. exported from PyTorch, run with onnxruntime-node: 7–16x faster than wasm on CPU).`;
  static override examples = [
    '<%= config.bin %> label --teacher runs/teacher --images data/train/images --images data/unlabeled --cache cache/',
    '<%= config.bin %> label --teacher deeplab.onnx --mean 0.485,0.456,0.406 --std 0.229,0.224,0.225 --images photos/ --cache cache/ --tta flip',
    '<%= config.bin %> label --teacher runs/teacher --images photos/ --cache /shared/cache --shard 2/4',
  ];
  static override flags = {
    ...backendFlags,
    teacher: Flags.string({ description: 'Teacher: a softseg run directory, a TF.js model.json folder, or an .onnx file.', required: true }),
    images: Flags.string({ description: 'Folder of images (repeatable; searched recursively).', required: true, multiple: true }),
    cache: Flags.string({ description: 'Cache folder (created when missing; shared by `distill` and `ssl`).', required: true }),
    mode: Flags.string({ description: 'What to store: soft labels, pseudo-labels (hard + confidence), or both.', options: ['soft', 'pseudo', 'both'], default: 'soft' }),
    k: Flags.integer({ description: 'Classes kept per pixel for soft labels (top-k + residual mass; default 4, or the teacher\'s classes when fewer; at most the teacher\'s classes).', min: 1, max: 255 }),
    shard: Flags.string({ description: 'Label only part i of n (e.g. 1/4), for several processes or machines on one cache.' }),
    'batch-size': Flags.integer({ description: 'Images per teacher call.', default: 8, min: 1 }),
    'num-classes': Flags.integer({ description: 'Expected number of classes (checked against the teacher).', min: 1 }),
    overwrite: Flags.boolean({ description: 'Relabel images that already have valid entries.', default: false }),
    'skip-bad': Flags.boolean({ description: 'Skip unreadable images (with a count and a list) instead of stopping.', default: false }),
    'encode-threads': Flags.integer({ description: 'Worker threads encoding entries while the teacher runs (default: cores − 1 for a TF.js teacher, all cores for an ONNX one, 1 to 8; 0 = encode on the main thread).', min: 0, max: 64 }),
    ...teacherPreprocessingFlags,
  };

  async run(): Promise<LabelResult> {
    const { flags } = await this.parse(Label);
    const { openTeacher } = await import('../src/teachers/index.js');
    const { openCache } = await import('../src/cache/store.js');
    const { labelFolders, parseShard } = await import('../src/labels/label-folder.js');
    const { teacherOptionsFromFlags } = await import('../src/cli/teacher-flags.js');
    const { ProgressCounter } = await import('../src/cli/progress.js');
    const shard = flags.shard ? parseShard(flags.shard) : undefined;
    await this.startBackend(flags);
    const teacher = await openTeacher(flags.teacher, await teacherOptionsFromFlags(flags, flags['num-classes']));
    if (!this.jsonEnabled()) this.logToStderr(`teacher ${teacher.kind} ${teacher.fingerprint.slice(0, 16)}: ${teacher.numClasses} classes`);
    const progress = new ProgressCounter('images', (line) => this.logToStderr(line));
    try {
      const r = await labelFolders(teacher, openCache(flags.cache), flags.images, {
        mode: flags.mode as 'soft' | 'pseudo' | 'both', k: flags.k, shard, batchSize: flags['batch-size'], overwrite: flags.overwrite, skipBad: flags['skip-bad'], encodeThreads: flags['encode-threads'],
        onProgress: (done, total) => progress.update(done, total),
      });
      progress.stop();
      if (r.encoder.fallbackReason) this.warn(r.encoder.fallbackReason);
      for (const p of r.bad) this.warn(`skipped ${p.file}: ${p.reason}`);
      if (!this.jsonEnabled()) {
        const part = shard ? ` (shard ${shard.index + 1}/${shard.count}: ${r.inShard} of ${r.images})` : '';
        const bad = r.bad.length > 0 ? `, ${r.bad.length} unreadable skipped (--skip-bad)` : '';
        this.log(`${r.labelled} labelled, ${r.skipped} already cached${bad}${part}; ${r.imagesPerSec.toFixed(1)} images/s, ${(r.bytes / 1024).toFixed(0)} KiB written to ${flags.cache}`);
      }
      return r;
    } finally {
      progress.stop();
      await teacher.dispose();
    }
  }
}
