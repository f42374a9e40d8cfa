// Entry encoding on a worker thread: same bytes as in this thread, errors come back as SoftsegErrors.
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createEntryEncoder } from '../../src/cache/encoder.js';
import { encodeEntry, type EncodeOptions } from '../../src/cache/format.js';
import { SoftsegError } from '../../src/errors.js';
import { synthProbs } from './synth.js';

const options = (w: number, h: number, C: number): EncodeOptions =>
  ({ width: w, height: h, numClasses: C, mode: 'both', fingerprint: 'ef'.repeat(32), imageHash: '01'.repeat(32), imageName: 'a/b.png' });

test('a worker encoder starts (from source too) and writes the same bytes as encodeEntry', async () => {
  const encoder = await createEntryEncoder(2);
  try {
    assert.equal(encoder.threads, 2, encoder.fallbackReason);
    const jobs = [0, 1, 2, 3].map(async (seed) => {
      const probs = synthProbs('teacher', 40, 24, 21, seed, 6);
      const inline = await encodeEntry(probs, options(40, 24, 21));
      // a view into a bigger buffer is copied, not transferred: the caller's array stays usable
      const big = new Float32Array(probs.length + 16);
      big.set(probs, 16);
      const view = big.subarray(16);
      const viaWorker = await encoder.encode(view, options(40, 24, 21));
      assert.equal(view.length, probs.length);
      assert.deepEqual(viaWorker, inline);
    });
    await Promise.all(jobs);
    // write(): the worker encodes and writes the file (atomically), answering its length
    const dir = await mkdtemp(join(tmpdir(), 'softseg-encoder-'));
    try {
      const probs = synthProbs('teacher', 32, 16, 21, 9, 6);
      const inline = await encodeEntry(probs, options(32, 16, 21));
      const path = join(dir, 'sub', 'e.sse');
      assert.equal(await encoder.write(path, probs.slice(), options(32, 16, 21)), inline.length);
      assert.deepEqual(new Uint8Array(await readFile(path)), inline);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
    await assert.rejects(encoder.encode(new Float32Array(12).fill(NaN), options(2, 2, 3)), (e: unknown) => e instanceof SoftsegError && /no valid probability/.test(e.message));
  } finally {
    await encoder.close();
  }
});

test('threads = 0 encodes in this thread', async () => {
  const encoder = await createEntryEncoder(0);
  assert.equal(encoder.threads, 0);
  const probs = synthProbs('smooth', 8, 8, 5, 1, 8);
  assert.deepEqual(await encoder.encode(probs, options(8, 8, 5)), await encodeEntry(probs, options(8, 8, 5)));
  await encoder.close();
});
