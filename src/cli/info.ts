/** `softseg info`: what this installation is and what it will compute with. */
import { availableParallelism } from 'node:os';
import * as tf from '@tensorflow/tfjs';
import { initBackend, type BackendOptions } from '../backends/select.js';
import { installedOptionalPackages } from '../backends/packages.js';

export interface InstallationInfo {
  softseg: string;
  node: string;
  platform: string;
  cpus: number;
  tfjs: string;
  backend: { name: string; requested: string; reason: string; threads: number };
  optionalPackages: Record<string, { installed: boolean; version?: string }>;
}

export async function collectInfo(options: BackendOptions & { cliVersion: string }): Promise<InstallationInfo> {
  const backend = await initBackend(options);
  const optionalPackages: InstallationInfo['optionalPackages'] = {};
  for (const [name, status] of Object.entries(installedOptionalPackages())) {
    optionalPackages[name] = { installed: status.installed, ...(status.version ? { version: status.version } : {}) };
  }
  return {
    softseg: options.cliVersion,
    node: process.version,
    platform: `${process.platform}-${process.arch}`,
    cpus: availableParallelism(),
    tfjs: tf.version.tfjs,
    backend: { name: backend.name, requested: backend.requested, reason: backend.reason, threads: backend.threads },
    optionalPackages,
  };
}

export function formatInfo(info: InstallationInfo): string {
  const rows: [string, string][] = [
    ['softseg', info.softseg],
    ['node', `${info.node} (${info.platform}, ${info.cpus} CPUs)`],
    ['tfjs', info.tfjs],
    ['backend', `${info.backend.name} — ${info.backend.reason}`],
    ['threads', String(info.backend.threads)],
    ...Object.entries(info.optionalPackages).map(([name, s]): [string, string] => [name, s.installed ? `installed ${s.version ?? ''}`.trim() : 'not installed']),
  ];
  const width = Math.max(...rows.map(([k]) => k.length));
  return rows.map(([k, v]) => `${k.padEnd(width)}  ${v}`).join('\n');
}
