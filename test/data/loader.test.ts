// The streaming loader: deterministic batches (same seed → same batches, independent of concurrency), exact
// resume at startStep, epoch reshuffles covering every item, bounded prefetch, the image cache, and a process
// that exits after close().
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { createLoader, generateShapesDataset, openDataset, type Batch, type Dataset, type LoaderOptions } from '../../src/data/index.js';
import { repoRoot } from '../helpers/backend.js';
import { collectGarbage } from '../helpers/memory.js';
import { BadFileError } from '../../src/errors.js';

let tmp: string;
let ds: Dataset;
before(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'softseg-loader-'));
  const { root } = await generateShapesDataset(join(tmp, 'shapes'), { count: 20, size: 32, seed: 11 });
  ds = await openDataset(root);
});
after(async () => {
  await rm(tmp, { recursive: true, force: true });
});

async function take(options: LoaderOptions, steps: number): Promise<Batch[]> {
  const loader = createLoader(ds, options);
  const out: Batch[] = [];
  for (let i = 0; i < steps; i++) out.push(await loader.next());
  await loader.close();
  return out;
}

describe('createLoader', () => {
  it('gives identical batches for the same seed, whatever the concurrency, and resumes exactly', async () => {
    const base: LoaderOptions = { batchSize: 4, crop: 24, seed: 7, augment: 'strong' };
    const a = await take({ ...base, concurrency: 1 }, 9);
    const b = await take({ ...base, concurrency: 4, prefetch: 3 }, 9);
    assert.deepEqual(b, a);
    const resumed = await take({ ...base, startStep: 6 }, 3);
    assert.deepEqual(resumed, a.slice(6));
    assert.deepEqual(a.map((x) => [x.step, x.epoch]), [[0, 0], [1, 0], [2, 0], [3, 0], [4, 0], [5, 1], [6, 1], [7, 1], [8, 1]]);
    const other = await take({ ...base, seed: 8 }, 1);
    assert.notDeepEqual(other[0]!.images, a[0]!.images);

    const batch = a[0]!;
    assert.equal(batch.images.length, 4 * 24 * 24 * 3);
    assert.equal(batch.masks!.length, 4 * 24 * 24);
    assert.deepEqual(batch.size, [24, 24]);
    for (const v of batch.masks!) assert.ok((v >= 0 && v < 5) || v === 255);
  });

  it('reshuffles every epoch and covers every item once per epoch', async () => {
    const batches = await take({ batchSize: 5, crop: 32, seed: 3, augment: false }, 8);
    const e0 = batches.slice(0, 4).flatMap((b) => b.ids);
    const e1 = batches.slice(4, 8).flatMap((b) => b.ids);
    const all = ds.items.map((i) => i.id);
    assert.deepEqual([...e0].sort(), all);
    assert.deepEqual([...e1].sort(), all);
    assert.notDeepEqual(e0, e1);
    const ordered = await take({ batchSize: 5, crop: 32, shuffle: false, augment: false }, 1);
    assert.deepEqual(ordered[0]!.ids, all.slice(0, 5));
  });

  it('keeps at most `prefetch` batches in flight, caches images on request, and handles a short last batch', async () => {
    const loader = createLoader(ds, { batchSize: 3, crop: 16, seed: 1, prefetch: 2, cacheImages: true, dropLast: false });
    assert.equal(loader.stepsPerEpoch, 7);
    for (let i = 0; i < 9; i++) {
      const b = await loader.next();
      if (b.step === 6) {
        assert.equal(b.n, 2);
        assert.equal(b.images.length, 2 * 16 * 16 * 3);
      }
      await sleep(5); // a slow consumer: the loader must not run ahead
      const s = loader.stats();
      assert.ok(s.inFlight <= 2 && s.maxInFlight <= 2, JSON.stringify(s));
      assert.ok(s.samples <= (i + 1 + 2) * 3, JSON.stringify(s));
    }
    const s = loader.stats();
    assert.equal(s.cachedImages, 20);
    assert.equal(s.batches, 9);
    assert.ok(s.totalMs > 0 && s.waitFraction >= 0 && s.waitFraction <= 1);
    await loader.close();
    await assert.rejects(loader.next(), /closed/);
    const busy = createLoader(ds, { batchSize: 4, crop: 16, seed: 2, prefetch: 1 });
    const waiting = assert.rejects(busy.next().then(() => busy.next()), /closed/);
    await busy.close();
    await waiting;
    assert.throws(() => createLoader(ds, { batchSize: 21, crop: 16 }), /larger than the data set/);
  });

  it('holds no batch it has returned: each can be collected while the loader is still open', async () => {
    // Issue 13 §2: a long-lived promise raced against every batch kept each returned batch reachable until
    // close() — memory grew by a batch per step for the whole run.
    const loader = createLoader(ds, { batchSize: 4, crop: 16, seed: 3, prefetch: 2 });
    const refs: WeakRef<Float32Array>[] = [];
    for (let i = 0; i < 12; i++) refs.push(new WeakRef((await loader.next()).images));
    await sleep(0);
    collectGarbage();
    collectGarbage();
    const alive = refs.filter((r) => r.deref() !== undefined).length;
    await loader.close();
    assert.equal(alive, 0, `${alive} of 12 returned batches are still reachable from the open loader`);
  });

  it('with skipBad, an item whose image fails to read mid-run is reported once and the next item takes its place (same batches every run, on workers too)', async () => {
    // Issue 13 §4: --skip-bad must skip a bad file wherever it is met, not only at validation.
    const { root } = await generateShapesDataset(join(tmp, 'breaks'), { count: 8, size: 32, seed: 12 });
    const set = await openDataset(root);
    const broken = set.items[5]!.image;
    const bytes = await readFile(broken);
    await writeFile(broken, bytes.subarray(0, Math.floor(bytes.length * 0.6)));
    for (const workers of [0, 1]) {
      const options: LoaderOptions = { batchSize: 4, crop: 16, seed: 5, workers, shuffle: false };
      const stop = createLoader(set, options);
      await stop.next();
      await assert.rejects(stop.next(), (err: unknown) => err instanceof BadFileError && err.file === broken && /cannot decode image/.test(err.message));
      await stop.close();
      const runs: { batches: Batch[]; skipped: string[] }[] = [];
      for (let r = 0; r < 2; r++) {
        const skipped: string[] = [];
        const loader = createLoader(set, { ...options, skipBad: true, onSkip: (p) => skipped.push(p.file) });
        const batches: Batch[] = [];
        for (let i = 0; i < 4; i++) batches.push(await loader.next());
        await loader.close();
        runs.push({ batches, skipped });
      }
      assert.deepEqual(runs[0]!.skipped, [broken], `workers ${workers}: reported once over two epochs`);
      assert.deepEqual(runs[0]!.batches[1]!.ids, ['shape_0004', 'shape_0006', 'shape_0006', 'shape_0007'], `workers ${workers}`);
      assert.deepEqual(runs[1], runs[0]);
    }
  });

  it('lets the process exit after close()', async () => {
    const script = join(tmp, 'exit.mts');
    const src = resolve(repoRoot, 'src/data/index.ts');
    await writeFile(
      script,
      `import { createLoader, openDataset } from ${JSON.stringify(src)};
const ds = await openDataset(${JSON.stringify(ds.root)});
const loader = createLoader(ds, { batchSize: 4, crop: 32, seed: 1, prefetch: 3, concurrency: 3 });
await loader.next();
await loader.close();
console.log('closed');
`,
    );
    const r = spawnSync(process.execPath, ['--import', 'tsx', script], { cwd: repoRoot, timeout: 30_000, encoding: 'utf8' });
    assert.equal(r.signal, null, 'the process did not exit by itself');
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /closed/);
  });
});
