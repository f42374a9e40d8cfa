// Shared test set-up: the backend under test (wasm, the embedded default, unless SOFTSEG_TEST_BACKEND says otherwise).
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { initBackend, type BackendRequest } from '../../src/backends/select.js';

export const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '../..');

export async function useBackend(name: BackendRequest = (process.env.SOFTSEG_TEST_BACKEND as BackendRequest) ?? 'wasm'): Promise<void> {
  await initBackend({ backend: name });
}

/** The reference vectors shipped beside the repo (../shared), or SOFTSEG_VECTORS. */
export function referenceVectorsPath(): string {
  const candidates = [process.env.SOFTSEG_VECTORS, join(repoRoot, '../shared/reference-vectors/vectors.json')].filter(Boolean) as string[];
  const found = candidates.find((p) => existsSync(p));
  if (!found) throw new Error(`reference vectors not found (tried ${candidates.join(', ')}); set SOFTSEG_VECTORS`);
  return found;
}
