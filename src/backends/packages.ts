// Which optional engine packages resolve from this install, found without loading them.
import { createRequire } from 'node:module';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';

export const OPTIONAL_PACKAGES = ['@tensorflow/tfjs-node-gpu', 'webgpu', '@tensorflow/tfjs-backend-webgpu', '@tensorflow/tfjs-node', 'onnxruntime-node'] as const;
export type OptionalPackage = (typeof OPTIONAL_PACKAGES)[number];

export interface PackageStatus {
  name: string;
  installed: boolean;
  version?: string;
  /** Directory holding the package's package.json. */
  dir?: string;
}

const require = createRequire(import.meta.url);

function readManifest(file: string): { name?: string; version?: string } | undefined {
  try {
    return JSON.parse(readFileSync(file, 'utf8')) as { name?: string; version?: string };
  } catch {
    return undefined;
  }
}

/** Resolves `name` from this module's location (so from the project's node_modules) without executing it. */
export function packageStatus(name: string, resolveFrom: (specifier: string) => string = require.resolve): PackageStatus {
  // Prefer the manifest itself; packages whose "exports" hide package.json are found via their entry point.
  let manifestPath: string | undefined;
  try {
    manifestPath = resolveFrom(`${name}/package.json`);
  } catch {
    try {
      let dir = path.dirname(resolveFrom(name));
      for (;;) {
        const candidate = path.join(dir, 'package.json');
        if (existsSync(candidate) && readManifest(candidate)?.name === name) {
          manifestPath = candidate;
          break;
        }
        const parent = path.dirname(dir);
        if (parent === dir) break;
        dir = parent;
      }
    } catch {
      return { name, installed: false };
    }
  }
  if (manifestPath === undefined) return { name, installed: false };
  const manifest = readManifest(manifestPath);
  return { name, installed: true, version: manifest?.version, dir: path.dirname(manifestPath) };
}

/** Whether tfjs-node-gpu, webgpu (with tfjs-backend-webgpu), tfjs-node and onnxruntime-node resolve, with their versions. Loads none of them. */
export function installedOptionalPackages(): Record<OptionalPackage, PackageStatus> {
  const out = {} as Record<OptionalPackage, PackageStatus>;
  for (const name of OPTIONAL_PACKAGES) out[name] = packageStatus(name);
  return out;
}
