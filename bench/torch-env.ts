// Debian's python3 with python3-torch for the PyTorch benchmarks (bench:torch, bench:parity): installed by
// scripts/install-system-deps.sh --torch (bench-only; users and tests never need it).
import { existsSync } from 'node:fs';
import { run } from './common.js';

/** Debian's python3 (pyenv's shim may come first on PATH and has no python3-torch). */
export function python(): string {
  return existsSync('/usr/bin/python3') ? '/usr/bin/python3' : 'python3';
}

export async function hasTorch(py: string): Promise<string | null> {
  const r = await run(py, ['-c', 'import torch; print(torch.__version__)']).catch(() => ({ code: 1, stdout: '', stderr: '' }));
  return r.code === 0 ? r.stdout.trim() : null;
}

/**
 * The torch version of Debian's python3, or an error saying how to install it: the benchmarks never install
 * system packages themselves (`scripts/install-system-deps.sh --torch` does).
 */
export async function ensureTorch(py: string): Promise<string> {
  const have = await hasTorch(py);
  if (have) return have;
  throw new Error(`${py} cannot import torch: run scripts/install-system-deps.sh --torch (Debian's python3-torch; as root), then re-run`);
}
