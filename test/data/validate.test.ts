// Validation: one problem naming the file for each bad-input kind, skipBad turning them into a count, and the
// validation cache (hits on an unchanged set, misses on a changed file, harmless when it cannot be written).
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readFile, rm, stat, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import sharp from 'sharp';
import { createLoader, generateShapesDataset, openDataset, validateDataset, writeMask, type DataProblem } from '../../src/data/index.js';
import { checkedDataset, imageFileSet } from '../../src/data/validate.js';
import { SoftsegError } from '../../src/errors.js';

let tmp: string;
before(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'softseg-val-'));
});
after(async () => {
  await rm(tmp, { recursive: true, force: true });
});

function find(problems: DataProblem[], kind: DataProblem['kind']): DataProblem[] {
  return problems.filter((p) => p.kind === kind);
}

describe('validateDataset', () => {
  it('a mask that fits the stored pixels of an image with an EXIF rotation is a size mismatch that says so; one drawn upright passes', async () => {
    const root = join(tmp, 'exif');
    await mkdir(join(root, 'images'), { recursive: true });
    await mkdir(join(root, 'masks'), { recursive: true });
    await writeFile(join(root, 'dataset.json'), '{"numClasses": 2}');
    for (const name of ['stored', 'upright']) {
      // Stored 24 wide × 16 high, EXIF orientation 6 (turn 90°): upright it is 16 × 24.
      await sharp(Buffer.alloc(24 * 16 * 3, 90), { raw: { width: 24, height: 16, channels: 3 } }).jpeg().withMetadata({ orientation: 6 }).toFile(join(root, 'images', `${name}.jpg`));
    }
    await writeMask(join(root, 'masks', 'stored.png'), new Uint8Array(24 * 16), 24, 16);
    await writeMask(join(root, 'masks', 'upright.png'), new Uint8Array(16 * 24), 16, 24);
    const p = (await validateDataset(await openDataset(root))).problems;
    assert.deepEqual(p.map((x) => [x.kind, x.file]), [['size-mismatch', join(root, 'masks', 'stored.png')]]);
    assert.match(p[0]!.reason, /mask is 24x16 but its image is 16x24 once turned upright by its EXIF orientation \(6\), which softseg applies/);
  });

  it('reports every bad-input kind with its file, and skipBad turns them into a count', async () => {
    const { root } = await generateShapesDataset(join(tmp, 'bad'), { count: 12, size: 24, seed: 5 });
    const img = (i: number): string => join(root, 'images', `shape_000${i}.png`);
    const mask = (i: number): string => join(root, 'masks', `shape_000${i}.png`);
    await writeFile(img(0), Buffer.from('this is not a PNG file, just bytes'));
    await rm(mask(1));
    await rm(img(2));
    await writeMask(mask(3), new Uint8Array(20 * 24), 20, 24);
    const oob = new Uint8Array(24 * 24).fill(1);
    oob[5] = 7;
    oob[6] = 9;
    oob[7] = 255;
    await writeMask(mask(4), oob, 24, 24);
    await sharp(await readFile(img(5))).toColourspace('b-w').png().toFile(img(5) + '.tmp.png');
    await rm(img(5));
    await writeFile(img(5), await readFile(img(5) + '.tmp.png'));
    await rm(img(5) + '.tmp.png');
    await writeFile(mask(6), Buffer.alloc(0));

    const ds = await openDataset(root);
    const report = await validateDataset(ds);
    const p = report.problems;
    assert.deepEqual(find(p, 'corrupt-image').map((x) => x.file), [img(0)]);
    assert.match(find(p, 'corrupt-image')[0]!.reason, /cannot decode image/);
    assert.deepEqual(find(p, 'missing-mask').map((x) => x.file), [img(1)]);
    assert.match(find(p, 'missing-mask')[0]!.reason, /masks\/shape_0001\.png/);
    assert.deepEqual(find(p, 'missing-image').map((x) => x.file), [mask(2)]);
    assert.deepEqual(find(p, 'size-mismatch').map((x) => x.file), [mask(3)]);
    assert.match(find(p, 'size-mismatch')[0]!.reason, /20x24 but its image is 24x24/);
    assert.deepEqual(find(p, 'label-out-of-range').map((x) => x.file), [mask(4)]);
    assert.match(find(p, 'label-out-of-range')[0]!.reason, /values 7, 9, not a class id \(0\.\.4\) nor the ignore index 255/);
    assert.deepEqual(find(p, 'mixed-channels').map((x) => x.file), [img(5)]);
    assert.match(find(p, 'mixed-channels')[0]!.reason, /grayscale while 8 of 9 images are RGB/);
    assert.deepEqual(find(p, 'corrupt-mask').map((x) => x.file), [mask(6)]);
    assert.equal(p.length, 7, p.map((x) => `${x.kind} ${x.file}`).join('\n'));
    assert.deepEqual(report.badIds, ['shape_0000', 'shape_0003', 'shape_0004', 'shape_0005', 'shape_0006']);

    const clean = await openDataset(root, { skipBad: true });
    assert.equal(clean.items.length, 12 - 2 - 5);
    assert.equal(clean.skipped!.count, 5);
    assert.equal(clean.skipped!.problems.length, 7);
    assert.ok(!clean.items.some((i) => report.badIds.includes(i.id)));
    assert.deepEqual((await validateDataset(clean)).problems, []);

    // Without validation the loader still refuses the bad files, naming them.
    const loader = createLoader({ ...ds, items: ds.items.filter((i) => i.id === 'shape_0004') }, { batchSize: 1, crop: 16, seed: 1 });
    await assert.rejects(loader.next(), (err: unknown) => err instanceof SoftsegError && err.file === mask(4) && /value 7/.test(err.message));
    await loader.close();
  });

  it('decodes images in full: a truncated PNG (a valid header) is found before any work, and checkedDataset fails or skips it', async () => {
    // Issue 13 §2/§4: the header-only check passed it and training failed on it 45 steps later, even with --skip-bad.
    const { root } = await generateShapesDataset(join(tmp, 'truncated'), { count: 4, size: 32, seed: 8 });
    const cut = join(root, 'images', 'shape_0002.png');
    const bytes = await readFile(cut);
    await writeFile(cut, bytes.subarray(0, Math.floor(bytes.length * 0.6)));
    const ds = await openDataset(root);
    const report = await validateDataset(ds);
    assert.deepEqual(report.problems.map((p) => [p.kind, p.file]), [['corrupt-image', cut]]);
    assert.match(report.problems[0]!.reason, /cannot decode image/);
    // The verdict is cached with the file's size and times: a second check reads no image and says the same.
    const again = await validateDataset(ds);
    assert.deepEqual([again.checked, again.problems.map((p) => p.file)], [0, [cut]]);

    await assert.rejects(checkedDataset(ds, { skipBad: false, where: 'train set', hint: 'pass --skip-bad' }), (err: unknown) =>
      err instanceof SoftsegError && /^1 problem\(s\) in train set$/.test(err.message) && err.details?.length === 1 && err.details[0]!.startsWith(`${cut}: cannot decode image`));
    const { ds: kept, skipped } = await checkedDataset(ds, { skipBad: true, where: 'train set', hint: '' });
    assert.deepEqual(kept.items.map((i) => i.id), ['shape_0000', 'shape_0001', 'shape_0003']);
    assert.deepEqual([skipped.count, skipped.problems.map((p) => p.file)], [1, [cut]]);

    // A folder of images (predict, label): the same full check; grayscale beside RGB is no problem there.
    const gray = join(root, 'images', 'shape_0003.png');
    await writeFile(gray, await sharp(await readFile(gray)).toColourspace('b-w').png().toBuffer());
    const files = imageFileSet(join(root, 'images'), ds.items.map((i) => i.image));
    assert.deepEqual((await validateDataset(files, { channels: false })).problems.map((p) => p.file), [cut]);
  });

  it('reports empty folders and fails skipBad when nothing is left', async () => {
    const root = join(tmp, 'empty');
    await mkdir(join(root, 'images'), { recursive: true });
    await mkdir(join(root, 'masks'), { recursive: true });
    const ds = await openDataset(root, { numClasses: 2 });
    const { problems } = await validateDataset(ds);
    assert.deepEqual(problems.map((p) => [p.kind, p.file]), [
      ['empty-folder', join(root, 'images')],
      ['empty-folder', join(root, 'masks')],
    ]);
    await assert.rejects(openDataset(root, { numClasses: 2, skipBad: true }), (err: unknown) => err instanceof SoftsegError && /no usable items/.test(err.message));
  });

  it('caches per-file facts: near-instant when unchanged, re-checks a changed file, survives a failed write', async () => {
    const { root } = await generateShapesDataset(join(tmp, 'cache'), { count: 10, size: 24, seed: 6 });
    const ds = await openDataset(root);
    const first = await validateDataset(ds);
    assert.deepEqual([first.checked, first.cached, first.problems.length], [20, 0, 0]);
    const second = await validateDataset(ds);
    assert.deepEqual([second.checked, second.cached, second.problems.length], [0, 20, 0]);

    // Same size, same mtime, different content: the ctime still gives it away.
    const m = join(root, 'masks', 'shape_0003.png');
    const before = await stat(m);
    const bad = new Uint8Array(24 * 24).fill(8);
    await writeMask(m, bad, 24, 24);
    await utimes(m, before.atime, before.mtime);
    const third = await validateDataset(ds);
    assert.equal(third.checked, 1);
    assert.equal(third.cached, 19);
    assert.deepEqual(third.problems.map((p) => [p.kind, p.file]), [['label-out-of-range', m]]);

    // Facts, not verdicts, are cached: a different class count is judged again without re-reading.
    const fewer = await validateDataset({ ...ds, numClasses: 2 });
    assert.equal(fewer.checked, 0);
    assert.ok(fewer.problems.length > 1);

    // A cache that cannot be written does not fail validation.
    await rm(join(root, '.softseg'), { recursive: true, force: true });
    await writeFile(join(root, '.softseg'), 'a file where the cache folder should be');
    const fourth = await validateDataset(ds);
    assert.equal(fourth.checked, 20);
    assert.equal(fourth.problems.length, 1);
    assert.ok(fourth.cacheError);
  });
});
