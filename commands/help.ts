import { Args, Command, loadHelpClass } from '@oclif/core';
import { failOneLine } from '../src/cli/base.js';

export default class Help extends Command {
  static override summary = 'Show help for softseg or for one of its commands (the same as --help).';
  static override examples = ['<%= config.bin %> help', '<%= config.bin %> help train', '<%= config.bin %> help cache verify'];
  static override strict = false;
  static override args = { command: Args.string({ description: 'Command (and sub-command) to explain.', required: false }) };

  async run(): Promise<void> {
    const { argv } = await this.parse(Help);
    const words = argv as string[];
    const id = words.join(':');
    if (id && !this.config.findCommand(id) && this.config.topics.every((t) => t.name !== id)) {
      failOneLine(this, `no command "${words.join(' ')}"; \`${this.config.bin} help\` lists them`, 2);
    }
    const HelpClass = await loadHelpClass(this.config);
    await new HelpClass(this.config).showHelp(words);
  }
}
