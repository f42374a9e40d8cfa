// TeacherLabels: cache hits and misses, one teacher run per image however many samples miss at once.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openCache } from '../../src/cache/store.js';
import { generateShapesDataset } from '../../src/data/synthetic.js';
import { openDataset } from '../../src/data/dataset.js';
import { TeacherLabels } from '../../src/labels/teacher-labels.js';
import type { Teacher, TeacherImage } from '../../src/teachers/teacher.js';
import { synthProbs } from '../cache/synth.js';

/** A stand-in teacher: fixed synthetic outputs, and a count of how often it ran. */
function countingTeacher(C: number): Teacher & { runs: number } {
  const t = {
    runs: 0, kind: 'tfjs', source: 'fake', fingerprint: 'f0'.repeat(32), numClasses: C, classes: [], describe: {},
    async predict(image: TeacherImage) {
      t.runs++;
      await new Promise((r) => setTimeout(r, 20)); // long enough for the other requests to arrive
      return synthProbs('teacher', image.width, image.height, C, 1, 6);
    },
    async predictBatch(images: readonly TeacherImage[]) { return Promise.all(images.map((im) => t.predict(im))); },
    async dispose() {},
  };
  return t as unknown as Teacher & { runs: number };
}

test('concurrent misses of one image run the teacher once; later reads are hits; --no-teacher misses are errors', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'softseg-teacher-labels-'));
  await generateShapesDataset(join(dir, 'data'), { count: 2, size: 24, numClasses: 3, seed: 1 });
  const ds = await openDataset(join(dir, 'data'));
  const teacher = countingTeacher(3);
  const labels = new TeacherLabels(openCache(join(dir, 'cache')), teacher.fingerprint, teacher, 3, { temperature: 2 });
  const geometry = { outHeight: 16, outWidth: 16, scaledHeight: 24, scaledWidth: 24, offsetY: 4, offsetX: 2, flip: true, ignoreIndex: 255 };
  const item = ds.items[0]!;
  const crops = await Promise.all(Array.from({ length: 5 }, () => labels.softCrop(item.image, geometry, item.id)));
  assert.equal(teacher.runs, 1);
  assert.equal(labels.misses, 1);
  for (const c of crops) assert.deepEqual(c.probs, crops[0]!.probs);
  assert.equal(crops[0]!.probs.length, 16 * 16 * 3);
  await labels.softCrop(item.image, geometry, item.id);
  assert.equal(teacher.runs, 1);
  assert.equal(labels.hits, 1);
  // a corrupt entry is reported and relabelled, never used
  const path = labels.cache.entryPath(teacher.fingerprint, await labels.imageHash(item.image));
  const bytes = await readFile(path);
  bytes[bytes.length - 30] ^= 0xff;
  await writeFile(path, bytes);
  const corrupt: string[] = [];
  const again = new TeacherLabels(openCache(join(dir, 'cache')), teacher.fingerprint, teacher, 3, { temperature: 2, onCorrupt: (e) => corrupt.push(e.imageName ?? '') });
  assert.deepEqual((await again.softCrop(item.image, geometry, item.id)).probs, crops[0]!.probs);
  assert.equal(teacher.runs, 2);
  assert.equal(corrupt.length, 1);
  const strict = new TeacherLabels(openCache(join(dir, 'cache')), teacher.fingerprint, null, 3, { noTeacher: true });
  await assert.rejects(strict.soft(ds.items[1]!.image), /no cached teacher output/);
});
