/**
 * What every softseg command shares: the global flags (--backend, --threads), --json output, and turning
 * library errors into one line and an exit code.
 */
import { Command, Flags } from '@oclif/core';
import { SoftsegError } from '../errors.js';
import type { BackendInfo, BackendRequest } from '../backends/select.js';

// Listed here rather than imported so that loading a command (e.g. for --help) does not load TensorFlow.js.
const BACKEND_REQUESTS: readonly BackendRequest[] = ['auto', 'tensorflow', 'webgpu', 'wasm', 'cpu'];

export const backendFlags = {
  backend: Flags.string({
    description: 'Compute backend. auto tries tfjs-node-gpu, then webgpu on a hardware GPU (Vulkan; never a software adapter such as lavapipe, which only an explicit --backend webgpu uses), then tfjs-node, then the embedded wasm backend, and says which it chose. `softseg info` shows the GPU.',
    options: [...BACKEND_REQUESTS],
    default: 'auto',
    helpGroup: 'GLOBAL',
    env: 'SOFTSEG_BACKEND',
  }),
  threads: Flags.integer({
    description: 'Threads for the wasm backend (wasm threads are opt-in; see `softseg info`).',
    min: 1,
    helpGroup: 'GLOBAL',
  }),
};

export abstract class SoftsegCommand extends Command {
  static override enableJsonFlag = true;

  /** Starts the requested backend and tells the user (stderr) which one runs and why. */
  async startBackend(flags: { backend?: string; threads?: number }): Promise<BackendInfo> {
    const { initBackend } = await import('../backends/select.js');
    const info = await initBackend({ backend: (flags.backend ?? 'auto') as BackendRequest, threads: flags.threads });
    if (!this.jsonEnabled()) this.logToStderr(`backend: ${info.name} (${info.reason})`);
    return info;
  }

  /** Warnings (oclif's flag deprecations included) as one line on stderr, none with --json. */
  override warn(input: string | Error): string | Error {
    const text = typeof input === 'string' ? input : input.message;
    if (!this.jsonEnabled()) process.stderr.write(`Warning: ${text.replace(/\s*\n\s*/g, ' ')}\n`);
    return input;
  }

  protected override async catch(err: Error & { exitCode?: number; code?: string; oclif?: { exit?: number } }): Promise<unknown> {
    if (err instanceof SoftsegError) {
      // A flag's own check (option-flags.ts) fails inside oclif's parser, which wraps the message: unwrap it.
      err.message = err.message.replace(/^Parsing --\S+\s*\n\t/, '').replace(/\s*See more help with --help\s*$/, '');
      for (const line of err.details ?? []) process.stderr.write(`${line.replace(/\s*\n\s*/g, ' ')}\n`);
      failOneLine(this, err.oneLine(), err.exitCode);
    }
    // oclif's flag parser (unknown flag, bad integer, a flag given twice, …): one line too, exit 2.
    if (err.oclif?.exit === 2 && err.code !== 'EEXIT') {
      const message = err.message.replace(/\s*See more help with --help\s*$/, '').replace(/^Parsing (--\S+)\s+/, '$1: ');
      failOneLine(this, `${message} (see --help)`, 2);
    }
    return super.catch(err);
  }
}

/**
 * Prints `Error: message` as exactly one line on stderr and exits with `code`. (oclif's this.error wraps
 * long messages over several lines, which breaks grep and log parsers.)
 */
export function failOneLine(command: Command, message: string, code: number): never {
  process.stderr.write(`Error: ${message.replace(/\s*\n\s*/g, ' ')}\n`);
  return command.exit(code);
}
