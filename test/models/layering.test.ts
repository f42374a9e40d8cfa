// The zoo is the library's bottom layer: src/models/ builds, initialises, saves and loads architectures and
// needs only TensorFlow.js, the error type, atomic file writes and the backend kernels it calls. The rest of the
// library (recipes, engine, data, teachers, CLI) imports the zoo, never the other way round.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdir, readFile } from 'node:fs/promises';
import { dirname, join, normalize, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '../..');
const MODELS = join(ROOT, 'src', 'models');
const ALLOWED = ['src/models/', 'src/errors.ts', 'src/data/fs-util.ts', 'src/backends/kernels/'];

test('src/models imports nothing above it: only the zoo itself, errors, fs-util and backend kernels', async () => {
  const files = (await readdir(MODELS)).filter((f) => f.endsWith('.ts'));
  assert.ok(files.length >= 8, `expected the zoo's files in ${MODELS}`);
  const outside: string[] = [];
  for (const f of files) {
    const text = await readFile(join(MODELS, f), 'utf8');
    for (const m of text.matchAll(/(?:from|import)\s*\(?\s*'(\.[^']+)'/g)) {
      const target = relative(ROOT, normalize(join(MODELS, m[1]!))).replace(/\.js$/, '.ts');
      if (!ALLOWED.some((a) => target === a || target.startsWith(a))) outside.push(`src/models/${f} → ${target}`);
    }
  }
  assert.deepEqual(outside, []);
});
