// Debian's python3 with python3-torch for the PyTorch benchmarks (bench:torch, bench:parity): installed with
// apt-get when missing (bench-only; users and tests never need it).
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

/** Makes `import torch` work in Debian's python3, installing python3-torch with apt-get when missing. */
export async function ensureTorch(py: string): Promise<string> {
  const have = await hasTorch(py);
  if (have) return have;
  process.stderr.write(`bench:torch: ${py} cannot import torch; installing Debian's python3-torch (bench-only):\n`);
  if (typeof process.getuid === 'function' && process.getuid() !== 0) {
    throw new Error('python3-torch is missing and this is not root: run `sudo apt-get install -y python3-torch`, then re-run');
  }
  for (const args of [['update'], ['install', '-y', 'python3-torch']]) {
    process.stderr.write(`bench:torch: $ apt-get ${args.join(' ')}\n`);
    const r = await run('apt-get', args, { echoStderr: true, env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } });
    const tail = r.stdout.trim().split('\n').slice(-3).join('\n');
    if (tail) process.stderr.write(`${tail}\n`);
    if (r.code !== 0) throw new Error(`apt-get ${args.join(' ')} failed with exit code ${r.code}`);
  }
  const now = await hasTorch(py);
  if (!now) throw new Error(`python3-torch installed, but ${py} still cannot import torch`);
  process.stderr.write(`bench:torch: torch ${now} installed\n`);
  return now;
}

