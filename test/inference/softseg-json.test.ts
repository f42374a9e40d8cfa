// softseg.json: one writer, one validating reader (eval/predict, TF.js teachers and the report all read through it).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readSoftsegJson, writeSoftsegJson } from '../../src/inference/softseg-json.js';
import { SoftsegError } from '../../src/errors.js';

test('softseg.json: written and read back; none is null; a field of the wrong type names the file and the field', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'softseg-json-'));
  assert.equal(await readSoftsegJson(dir), null);
  const meta = { architecture: 'unet-lite', numClasses: 3, classes: ['a', 'b', 'c'], inputSize: [64, 64] as [number, number], palette: null, teacher: 'runs/t', step: 10, metrics: { mIoUD: 50 } };
  await writeSoftsegJson(dir, meta);
  assert.deepEqual(await readSoftsegJson(dir), meta);
  const file = join(dir, 'softseg.json');
  for (const [bad, field] of [[{ numClasses: '3' }, 'numClasses'], [{ normalization: { mean: [0.5], std: [1, 1, 1] } }, 'normalization'], [{ classes: [1, 2] }, 'classes']] as const) {
    await writeFile(file, JSON.stringify({ ...meta, ...bad }));
    await assert.rejects(readSoftsegJson(dir), (e: unknown) => e instanceof SoftsegError && e.file === file && e.message.startsWith(`bad "${field}" in softseg.json`));
  }
  await writeFile(file, '{ not json');
  await assert.rejects(readSoftsegJson(dir), (e: unknown) => e instanceof SoftsegError && /softseg\.json is not valid JSON/.test(e.message));
});
