import { Flags } from '@oclif/core';
import { SoftsegCommand } from '../src/cli/base.js';
import { optionFlag } from '../src/cli/option-flags.js';
import type { ModelInfo } from '../src/models/registry.js';

export default class Models extends SoftsegCommand {
  static override summary = 'List the model zoo with parameters and multiply-adds at an input size.';
  static override description =
    'Every architecture takes the same options (classes, width multiplier, auxiliary head), so any of them can be a teacher or a student. ' +
    'Multiply-adds are for one image\'s forward pass (convolutions and heads; batch norm and activations not counted).';
  static override examples = ['<%= config.bin %> models', '<%= config.bin %> models --size 128 --num-classes 21 --json', '<%= config.bin %> models --width 0.5 --aux'];
  static override flags = {
    size: Flags.integer({ description: 'Square input size the counts are for.', default: 64, min: 8 }),
    'num-classes': Flags.integer({ description: 'Number of classes (output channels).', default: 21, min: 1, max: 256, aliases: ['classes'], deprecateAliases: true }),
    width: optionFlag({ type: 'number', default: 1, min: 0, max: 16, ends: '(]', description: 'Width multiplier for hidden channels.' }),
    aux: Flags.boolean({ description: 'Include the auxiliary head.', default: false }),
  };

  async run(): Promise<ModelInfo[]> {
    const { flags } = await this.parse(Models);
    const width = (flags.width as number | undefined) ?? 1;
    const numClasses = flags['num-classes'];
    // Counting needs a backend only to build the layers; the cpu backend starts instantly and prints nothing.
    const { initBackend } = await import('../src/backends/select.js');
    await initBackend({ backend: 'cpu' });
    const { listModels, modelInfo } = await import('../src/models/registry.js');
    const rows = listModels().map((name) => modelInfo(name, flags.size, { numClasses, width, aux: flags.aux }));
    if (!this.jsonEnabled()) {
      const table = [['model', 'params', 'MACs', 'size ×', 'description'], ...rows.map((r) => [
        r.name,
        `${(r.params / 1e6).toFixed(2)} M`,
        `${(r.multiplyAdds / 1e6).toFixed(1)} M`,
        String(r.sizeMultiple),
        r.description,
      ])];
      const widths = table[0]!.map((_, i) => Math.max(...table.map((row) => row[i]!.length)));
      this.log(`at ${flags.size}×${flags.size}, ${numClasses} classes, width ${width}${flags.aux ? ', with aux head' : ''}:`);
      for (const row of table) this.log(row.map((cell, i) => (i === row.length - 1 ? cell : cell.padEnd(widths[i]!))).join('  '));
    }
    return rows;
  }
}
