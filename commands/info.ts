import { SoftsegCommand, backendFlags } from '../src/cli/base.js';
import type { InstallationInfo } from '../src/cli/info.js';

export default class Info extends SoftsegCommand {
  static override summary = 'Show versions, the compute backend in use and why, threads, the GPU (WebGPU adapter) and whether it is used, and optional packages.';
  static override examples = ['<%= config.bin %> info', '<%= config.bin %> info --backend wasm --json'];
  static override flags = { ...backendFlags };

  async run(): Promise<InstallationInfo> {
    const { flags } = await this.parse(Info);
    const { collectInfo, formatInfo } = await import('../src/cli/info.js');
    const info = await collectInfo({ backend: flags.backend as never, threads: flags.threads, cliVersion: this.config.version });
    if (!this.jsonEnabled()) this.log(formatInfo(info));
    return info;
  }
}
