/** `softseg info`: what this installation is and what it will compute with. */
import { availableParallelism } from 'node:os';
import * as tf from '@tensorflow/tfjs';
import { initBackend, type BackendOptions } from '../backends/select.js';
import { installedOptionalPackages } from '../backends/packages.js';
import { adapterLine, probeWebGpuAdapter, type WebGpuAdapterInfo } from '../backends/webgpu.js';

export interface InstallationInfo {
  softseg: string;
  node: string;
  platform: string;
  cpus: number;
  tfjs: string;
  backend: { name: string; requested: string; reason: string; threads: number };
  /** The WebGPU adapter (the GPU Dawn would use, via Vulkan on Linux) and whether the backend runs on it, or why there is none. */
  gpu: { available: true; used: boolean; adapter: WebGpuAdapterInfo } | { available: false; why: string; hint: string };
  optionalPackages: Record<string, { installed: boolean; version?: string }>;
}

export async function collectInfo(options: BackendOptions & { cliVersion: string }): Promise<InstallationInfo> {
  const backend = await initBackend(options);
  const probe = await probeWebGpuAdapter();
  const gpu: InstallationInfo['gpu'] = probe.ok
    ? { available: true, used: backend.name === 'webgpu', adapter: probe.adapter }
    : { available: false, why: probe.why, hint: probe.hint };
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
    gpu,
    optionalPackages,
  };
}

const mib = (bytes: number): string => `${Math.round(bytes / 2 ** 20)} MiB`;

function gpuRows(gpu: InstallationInfo['gpu']): [string, string][] {
  if (!gpu.available) return [['gpu', `none for webgpu: ${gpu.why} — ${gpu.hint}`]];
  const a = gpu.adapter;
  const use = gpu.used ? 'used (backend webgpu)' : a.software ? 'not used: a software adapter is used only with --backend webgpu' : 'not used (choose it with --backend webgpu)';
  const l = a.limits;
  return [
    ['gpu', `${adapterLine(a)} — ${use}`],
    ['gpu limits', `buffer ${mib(l.maxBufferSize)}, storage binding ${mib(l.maxStorageBufferBindingSize)}, workgroup storage ${l.maxComputeWorkgroupStorageSize / 1024} KiB, ` +
      `${l.maxComputeInvocationsPerWorkgroup} invocations/workgroup, ${l.maxComputeWorkgroupsPerDimension} workgroups/dim, ${l.maxStorageBuffersPerShaderStage} storage buffers/stage`],
  ];
}

export function formatInfo(info: InstallationInfo): string {
  const rows: [string, string][] = [
    ['softseg', info.softseg],
    ['node', `${info.node} (${info.platform}, ${info.cpus} CPUs)`],
    ['tfjs', info.tfjs],
    ['backend', `${info.backend.name} — ${info.backend.reason}`],
    ['threads', String(info.backend.threads)],
    ...gpuRows(info.gpu),
    ...Object.entries(info.optionalPackages).map(([name, s]): [string, string] => [name, s.installed ? `installed ${s.version ?? ''}`.trim() : 'not installed']),
  ];
  const width = Math.max(...rows.map(([k]) => k.length));
  return rows.map(([k, v]) => `${k.padEnd(width)}  ${v}`).join('\n');
}
