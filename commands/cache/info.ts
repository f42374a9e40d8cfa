import { Args } from '@oclif/core';
import { SoftsegCommand } from '../../src/cli/base.js';
import type { CacheInfo } from '../../src/cache/store.js';

export default class CacheInfoCommand extends SoftsegCommand {
  static override summary = 'Show what a teacher-output cache holds.';
  static override description = 'Entries per teacher (with the teacher\'s description), bytes, bytes per pixel and the ratio to float32 probabilities, class counts, top-k and modes. Reads entry headers only; `softseg cache verify` checks checksums.';
  static override examples = ['<%= config.bin %> cache info cache/', '<%= config.bin %> cache info cache/ --json'];
  static override args = { cache: Args.string({ description: 'Cache directory.', required: true }) };

  async run(): Promise<CacheInfo> {
    const { args } = await this.parse(CacheInfoCommand);
    const { openCache } = await import('../../src/cache/store.js');
    const { formatCacheInfo } = await import('../../src/cli/cache-tables.js');
    const info = await openCache(args.cache).info();
    if (!this.jsonEnabled()) this.log(formatCacheInfo(info));
    return info;
  }
}
