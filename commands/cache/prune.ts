import { Args, Flags } from '@oclif/core';
import { SoftsegCommand } from '../../src/cli/base.js';
import type { PruneResult } from '../../src/cache/store.js';

export default class CachePrune extends SoftsegCommand {
  static override summary = 'Remove cache entries of other teachers or of missing images.';
  static override description = `With --keep-teacher, removes every entry of any other teacher (give full fingerprints or prefixes of at least 8 characters, as \`softseg cache info\` shows them). With --images, hashes every image under the folders and removes the entries of images no longer there (entries are keyed by content, so renamed or moved images keep theirs). Also removes temp files left by killed writers. --dry-run lists what would go.`;
  static override examples = [
    '<%= config.bin %> cache prune cache/ --keep-teacher 3fa8c2d19b7e4a60',
    '<%= config.bin %> cache prune cache/ --images data/train --images data/unlabeled --dry-run',
  ];
  static override args = { cache: Args.string({ description: 'Cache directory.', required: true }) };
  static override flags = {
    'keep-teacher': Flags.string({ description: 'Teacher fingerprint (or prefix) whose entries stay; repeat for several.', multiple: true }),
    images: Flags.string({ description: 'Folder of current images; entries of images not found in any of them are removed. Repeatable.', multiple: true }),
    'dry-run': Flags.boolean({ description: 'Only list what would be removed.', default: false }),
  };

  async run(): Promise<PruneResult> {
    const { args, flags } = await this.parse(CachePrune);
    if (!flags['keep-teacher'] && !flags.images) this.error('give --keep-teacher and/or --images (what to keep)', { exit: 2 });
    const { openCache } = await import('../../src/cache/store.js');
    const { formatBytes } = await import('../../src/cli/cache-tables.js');
    let keepImageHashes: Set<string> | undefined;
    if (flags.images) {
      const { hashImagesIn } = await import('../../src/cache/images.js');
      const { ProgressCounter } = await import('../../src/cli/progress.js');
      const progress = new ProgressCounter('images hashed', (line) => this.logToStderr(line));
      const images = await hashImagesIn(flags.images, (d, t) => progress.update(d, t));
      progress.stop();
      keepImageHashes = new Set(images.map((i) => i.hash));
    }
    const r = await openCache(args.cache).prune({ keepFingerprints: flags['keep-teacher'], keepImageHashes, dryRun: flags['dry-run'] });
    if (!this.jsonEnabled()) {
      for (const e of r.removed) this.log(`${r.dryRun ? 'would remove' : 'removed'} ${e.path}${e.imageName ? ` (${e.imageName})` : ''}: ${e.reason}`);
      this.log(`${r.dryRun ? 'would remove' : 'removed'} ${r.removed.length} files, ${formatBytes(r.bytesFreed)}`);
    }
    return r;
  }
}
