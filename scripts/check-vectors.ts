/**
 * npm run check:vectors [-- <file.json>] [--backend wasm|cpu] [--rtol 1e-5]
 * Evaluates every case of a reference-vector file with softseg's implementation: one line per case
 * (id, pass/fail, worst error) and a final "N passed, M failed" line; exit code 1 if any case fails.
 * The file defaults to $SOFTSEG_VECTORS, else the repository's copy, test/fixtures/reference-vectors.json.
 */
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { DEFAULT_TOLERANCE, checkVectorFile } from '../src/reference/vectors.js';
import { initBackend } from '../src/backends/select.js';
import { SoftsegError } from '../src/errors.js';

const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const usage = 'usage: npm run check:vectors [-- <vectors.json>] [--backend wasm|cpu] [--rtol 1e-5] [--verbose]';

let parsed;
try {
  parsed = parseArgs({
    allowPositionals: true,
    options: { backend: { type: 'string', default: 'wasm' }, rtol: { type: 'string' }, verbose: { type: 'boolean', short: 'v' } },
  });
} catch (e) {
  console.error(`${(e as Error).message}\n${usage}`);
  process.exit(2);
}
const { values, positionals } = parsed;
if (positionals.length > 1) {
  console.error(usage);
  process.exit(2);
}
const file = positionals[0] ?? (process.env.SOFTSEG_VECTORS || join(repoRoot, 'test/fixtures/reference-vectors.json'));
try {
  await initBackend({ backend: values.backend as 'wasm' | 'cpu' });
  const tol = { ...DEFAULT_TOLERANCE, ...(values.rtol ? { rtol: Number(values.rtol) } : {}) };
  console.error(`checking ${relative(process.cwd(), resolve(file)) || file}`);
  let passed = 0, failed = 0;
  await checkVectorFile(file, tol, (r) => {
    if (r.passed) passed++;
    else failed++;
    const worst = r.worstKey ? `worst ${r.worstKey} abs err ${r.worstAbsError.toExponential(2)} (${r.worstRatio.toFixed(3)} of tolerance)` : '';
    const notes = r.notes.length > 0 ? `  [${r.notes.join('; ')}]` : '';
    console.log(`${r.id.padEnd(40)} ${r.passed ? 'pass' : 'FAIL'}  ${r.error ? `error: ${r.error}` : worst}${notes}`);
    if (!r.passed && values.verbose) for (const f of r.failures) console.log(`    ${f}`);
  });
  console.log(`${passed} passed, ${failed} failed`);
  process.exit(failed > 0 ? 1 : 0);
} catch (e) {
  console.error(e instanceof SoftsegError ? `error: ${e.oneLine()}` : e);
  process.exit(2);
}
