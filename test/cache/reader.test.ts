// Soft labels read on a worker thread: the same maps as in this thread, misses are null, corrupt entries are
// CorruptEntryErrors naming the image.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CorruptEntryError } from '../../src/cache/format.js';
import { createSoftLabelReader, readSoftCrop } from '../../src/cache/reader.js';
import { openCache } from '../../src/cache/store.js';
import { synthProbs } from './synth.js';

const FP = '5a'.repeat(32);

test('a reader worker reads, tempers and resamples exactly like this thread; misses are null; corruption names the image', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'softseg-reader-'));
  const cache = openCache(dir);
  const hashes = ['01', '02'].map((h) => h.repeat(32));
  for (const [i, h] of hashes.entries()) {
    await cache.put(FP, h, synthProbs('teacher', 30, 20, 21, i, 6), { width: 30, height: 20, numClasses: 21, mode: 'soft', imageName: `img${i}.png` });
  }
  const reader = await createSoftLabelReader(1);
  try {
    assert.equal(reader.threads, 1, reader.fallbackReason);
    const warp = { outHeight: 16, outWidth: 16, scaledHeight: 26, scaledWidth: 39, offsetY: 5, offsetX: 20, flip: true, ignoreIndex: 255 };
    for (const h of hashes) {
      for (const q of [{ temperature: 2, warp }, { temperature: 1 }]) {
        const request = { dir, fingerprint: FP, imageHash: h, ...q };
        const [viaWorker, here] = [await reader.read(request), await readSoftCrop(request)];
        assert.ok(viaWorker && here);
        assert.deepEqual(viaWorker.soft, here.soft);
        assert.equal(viaWorker.soft.length, (q.warp ? 16 * 16 : 30 * 20) * 21);
        assert.deepEqual([viaWorker.width, viaWorker.height, viaWorker.numClasses], [30, 20, 21]);
      }
    }
    assert.equal(await reader.read({ dir, fingerprint: FP, imageHash: '03'.repeat(32), temperature: 1 }), null);
    const path = cache.entryPath(FP, hashes[1]!);
    const bytes = await readFile(path);
    bytes[bytes.length - 20] ^= 0xff;
    await writeFile(path, bytes);
    await assert.rejects(reader.read({ dir, fingerprint: FP, imageHash: hashes[1]!, temperature: 1 }), (e: unknown) => e instanceof CorruptEntryError && e.imageName === 'img1.png' && e.entryPath === path);
  } finally {
    await reader.close();
  }
});
