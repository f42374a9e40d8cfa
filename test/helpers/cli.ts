// Running the built CLI (bin/run.js → dist/) as a user does; `npm test` builds before the tests run.
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { repoRoot } from './backend.js';

const exec = promisify(execFile);
export const bin = join(repoRoot, 'bin/run.js');

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** `softseg ...args` in the repository root; never throws, the exit code is in the result. */
export async function softseg(...args: string[]): Promise<CliResult> {
  try {
    const { stdout, stderr } = await exec(process.execPath, [bin, ...args], { cwd: repoRoot, maxBuffer: 16 << 20 });
    return { code: 0, stdout, stderr };
  } catch (e) {
    const err = e as { code: number; stdout: string; stderr: string };
    return { code: err.code, stdout: err.stdout, stderr: err.stderr };
  }
}
