// Shared test set-up: the backend under test (wasm, the embedded default, unless SOFTSEG_TEST_BACKEND says otherwise).
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { initBackend, type BackendRequest } from '../../src/backends/select.js';

export const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '../..');

export async function useBackend(name: BackendRequest = (process.env.SOFTSEG_TEST_BACKEND as BackendRequest) ?? 'wasm'): Promise<void> {
  await initBackend({ backend: name });
}

/** The repository's copy of the reference vectors (test/fixtures/README.md says where it comes from). */
export const REFERENCE_VECTORS = join(repoRoot, 'test/fixtures/reference-vectors.json');

/** The reference vectors the tests check: SOFTSEG_VECTORS when set, else the repository's copy. */
export function referenceVectorsPath(): string {
  const path = process.env.SOFTSEG_VECTORS || REFERENCE_VECTORS;
  if (!existsSync(path)) throw new Error(`reference vectors not found: ${path}${process.env.SOFTSEG_VECTORS ? ' (from SOFTSEG_VECTORS)' : ''}`);
  return path;
}

/** Checks every reference vector case on the active backend: the failures (`id: reason`), the case count, and
 * how many tensors the check left behind. */
export async function checkAllVectors(): Promise<{ failed: string[]; count: number; leaked: number }> {
  const { checkVectorFile } = await import('../../src/reference/vectors.js');
  const tf = await import('@tensorflow/tfjs');
  const before = tf.memory().numTensors;
  const results = await checkVectorFile(referenceVectorsPath());
  const failed = results.filter((r) => !r.passed).map((r) => `${r.id}: ${r.error ?? r.failures.join('; ')}`);
  return { failed, count: results.length, leaked: tf.memory().numTensors - before };
}
