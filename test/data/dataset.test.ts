// Opening and decoding data sets: generated shapes sets (grayscale and palette masks), nested pairing,
// dataset.json handling, mask formats (palette, RGB with a palette map, 16-bit) and mask writers.
import assert from 'node:assert/strict';
import { copyFile, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { decode as decodePng, encode as encodePng } from 'fast-png';
import sharp from 'sharp';
import {
  checkDeclaredClasses,
  decodeImage,
  decodeMask,
  generateShapesDataset,
  givenClassNames,
  openDataset,
  vocPalette,
  writeMask,
  writePaletteMask,
} from '../../src/data/index.js';
import { SoftsegError } from '../../src/errors.js';

let tmp: string;
before(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'softseg-ds-'));
});
after(async () => {
  await rm(tmp, { recursive: true, force: true });
});

async function rejectsWith(p: Promise<unknown>, pattern: RegExp, file?: string): Promise<SoftsegError> {
  try {
    await p;
  } catch (err) {
    assert.ok(err instanceof SoftsegError, `expected a SoftsegError, got ${String(err)}`);
    assert.match(err.oneLine(), pattern);
    if (file) assert.equal(err.file, file);
    return err;
  }
  assert.fail('expected a rejection');
}

describe('shapes data sets', () => {
  it('grayscale and palette masks decode to the same class ids; images and ids are deterministic', async () => {
    const gray = await generateShapesDataset(join(tmp, 'gray'), { count: 6, size: 32, seed: 3 });
    const pal = await generateShapesDataset(join(tmp, 'pal'), { count: 6, size: 32, seed: 3, paletteMasks: true });
    const a = await openDataset(gray.root);
    const b = await openDataset(pal.root);
    assert.deepEqual(a.items.map((i) => i.id), ['shape_0000', 'shape_0001', 'shape_0002', 'shape_0003', 'shape_0004', 'shape_0005']);
    assert.equal(a.numClasses, 5);
    assert.deepEqual(a.classNames, ['background', 'circle', 'square', 'triangle', 'stripes']);
    assert.equal(a.ignoreIndex, 255);
    assert.deepEqual(a.palette, gray.palette);
    assert.deepEqual(a.scanProblems, []);
    const seen = new Set<number>();
    for (let i = 0; i < a.items.length; i++) {
      const ma = await decodeMask(a.items[i]!.mask!);
      const mb = await decodeMask(b.items[i]!.mask!);
      assert.deepEqual([ma.width, ma.height], [32, 32]);
      assert.deepEqual(mb.data, ma.data, 'palette indices are the class ids');
      ma.data.forEach((v) => seen.add(v));
      const ia = await decodeImage(a.items[i]!.image);
      const ib = await decodeImage(b.items[i]!.image);
      assert.equal(ia.data.length, 32 * 32 * 3);
      assert.deepEqual(ia.data, ib.data);
    }
    assert.ok(seen.has(0) && seen.size >= 3, `classes seen: ${[...seen]}`);
    // The palette file keeps the given palette.
    const raw = decodePng(await readFile(b.items[0]!.mask!));
    assert.deepEqual(raw.palette!.slice(0, 5), pal.palette);
    // Same seed → byte-identical files.
    const again = await generateShapesDataset(join(tmp, 'gray2'), { count: 6, size: 32, seed: 3 });
    assert.deepEqual(await readFile(join(again.root, 'images/shape_0004.png')), await readFile(join(gray.root, 'images/shape_0004.png')));
  });

  it('writes splits and unlabeled sets', async () => {
    const r = await generateShapesDataset(join(tmp, 'splits'), { splits: { train: 4, val: 2 }, size: 16, seed: 1, numClasses: 10 });
    assert.equal((await openDataset(r.splits.train!)).items.length, 4);
    assert.equal((await openDataset(r.splits.val!)).numClasses, 10);
    const u = await generateShapesDataset(join(tmp, 'unl'), { count: 3, size: 16, unlabeled: true });
    const ds = await openDataset(u.root, { labeled: false });
    assert.equal(ds.items.length, 3);
    assert.equal(ds.items[0]!.mask, undefined);
    await rejectsWith(openDataset(u.root), /no masks\/ folder/);
  });
});

describe('openDataset', () => {
  it('pairs images and masks recursively by relative stem, sorted by id', async () => {
    const src = await generateShapesDataset(join(tmp, 'src'), { count: 3, size: 16, seed: 2 });
    const root = join(tmp, 'nested');
    for (const d of ['images/b', 'images/a/deep', 'masks/b', 'masks/a/deep']) await mkdir(join(root, d), { recursive: true });
    await copyFile(join(src.root, 'images/shape_0000.png'), join(root, 'images/b/x.png'));
    await copyFile(join(src.root, 'masks/shape_0000.png'), join(root, 'masks/b/x.png'));
    await copyFile(join(src.root, 'images/shape_0001.png'), join(root, 'images/a/deep/y.png'));
    await copyFile(join(src.root, 'masks/shape_0001.png'), join(root, 'masks/a/deep/y.png'));
    await copyFile(join(src.root, 'images/shape_0002.png'), join(root, 'images/a/z.png'));
    await copyFile(join(src.root, 'masks/shape_0002.png'), join(root, 'masks/a/z.png'));
    await writeFile(join(root, 'images/README.txt'), 'not an image');
    const ds = await openDataset(root, { numClasses: 5 });
    assert.deepEqual(ds.items.map((i) => i.id), ['a/deep/y', 'a/z', 'b/x']);
    assert.equal(ds.items[2]!.mask, join(root, 'masks/b/x.png'));
    assert.deepEqual(ds.classNames, ['class 0', 'class 1', 'class 2', 'class 3', 'class 4']);
  });

  it('asks for --num-classes or dataset.json when the class count is unknown', async () => {
    const root = join(tmp, 'noclasses');
    await mkdir(join(root, 'images'), { recursive: true });
    await mkdir(join(root, 'masks'), { recursive: true });
    await rejectsWith(openDataset(root), /--num-classes.*dataset\.json/);
    assert.equal((await openDataset(root, { numClasses: 3 })).numClasses, 3);
    await writeFile(join(root, 'dataset.json'), '{"classes": ["a", "b"], "ignoreIndex": 200}');
    const ds = await openDataset(root);
    assert.deepEqual([ds.numClasses, ds.ignoreIndex, ds.classNames], [2, 200, ['a', 'b']]);
    assert.equal((await openDataset(root, { numClasses: 4 })).numClasses, 4, 'the option overrides dataset.json');
    await writeFile(join(root, 'dataset.json'), '{"classes": "a,b"}');
    await rejectsWith(openDataset(root), /"classes" must be an array/, join(root, 'dataset.json'));
    await rejectsWith(openDataset(join(tmp, 'does-not-exist')), /not found/);
  });

  it('checkDeclaredClasses: a set whose dataset.json declares other classes than the ones it is used with is an error naming the file', async () => {
    const root = join(tmp, 'declared');
    await mkdir(root, { recursive: true });
    const file = join(root, 'dataset.json');
    await checkDeclaredClasses(root, { numClasses: 3, names: ['a', 'b', 'c'] }, 'the training set t'); // no dataset.json: nothing to check
    await writeFile(file, '{"ignoreIndex": 200}');
    await checkDeclaredClasses(root, { numClasses: 3 }, 'the training set t'); // declares no classes
    await writeFile(file, '{"classes": ["a", "b"]}');
    await rejectsWith(checkDeclaredClasses(root, { numClasses: 3 }, 'the training set t'), /declares 2 classes, but the training set t has 3/, file);
    await writeFile(file, '{"numClasses": 3}');
    await checkDeclaredClasses(root, { numClasses: 3, names: ['a', 'b', 'c'] }, 'the model m'); // names are compared only when both list them
    await writeFile(file, '{"classes": ["a", "c", "b"]}');
    await rejectsWith(checkDeclaredClasses(root, { numClasses: 3, names: ['a', 'b', 'c'] }, 'the model m'), /class 1 is "c", but "b" in the model m/, file);
    await checkDeclaredClasses(root, { numClasses: 3, names: givenClassNames(['class 0', 'class 1', 'class 2']) }, 'the model m'); // default names declare nothing
    await writeFile(file, '{"classes": ["a", "b"], "numClasses": 3}');
    await rejectsWith(checkDeclaredClasses(root, { numClasses: 3 }, 'the model m'), /lists 2 class names but says numClasses 3/, file);
    assert.deepEqual(givenClassNames(['class 0', 'road']), ['class 0', 'road']);
    assert.equal(givenClassNames(null), undefined);
  });
});

describe('decoding', () => {
  it('converts grayscale and RGBA images to RGB and applies EXIF orientation', async () => {
    const g = join(tmp, 'g.png');
    await sharp(Buffer.from([10, 20, 30, 40, 50, 60]), { raw: { width: 3, height: 2, channels: 1 } }).toColourspace('b-w').png().toFile(g);
    const dg = await decodeImage(g);
    assert.deepEqual([dg.width, dg.height], [3, 2]);
    assert.deepEqual([...dg.data.subarray(0, 6)], [10, 10, 10, 20, 20, 20]);
    const rgba = join(tmp, 'rgba.png');
    await sharp(Buffer.from([1, 2, 3, 128, 4, 5, 6, 255]), { raw: { width: 2, height: 1, channels: 4 } }).png().toFile(rgba);
    assert.deepEqual([...(await decodeImage(rgba)).data], [1, 2, 3, 4, 5, 6]);
    const jpg = join(tmp, 'rot.jpg');
    await sharp(Buffer.alloc(8 * 4 * 3, 100), { raw: { width: 8, height: 4, channels: 3 } }).jpeg().withMetadata({ orientation: 6 }).toFile(jpg);
    const dj = await decodeImage(jpg);
    assert.deepEqual([dj.width, dj.height], [4, 8]);
    // WebP (lossless), TIFF and 16-bit PNG all come out as the same 8-bit RGB.
    const px = Buffer.from([0, 128, 255, 10, 20, 30]);
    const raw = { raw: { width: 2, height: 1, channels: 3 as const } };
    await sharp(px, raw).webp({ lossless: true }).toFile(join(tmp, 'f.webp'));
    await sharp(px, raw).tiff({ compression: 'lzw' }).toFile(join(tmp, 'f.tiff'));
    await writeFile(join(tmp, 'f16.png'), encodePng({ width: 2, height: 1, channels: 3, depth: 16, data: Uint16Array.from(px, (v) => v * 257) }));
    for (const f of ['f.webp', 'f.tiff', 'f16.png']) assert.deepEqual([...(await decodeImage(join(tmp, f))).data], [...px], f);
    await writeFile(join(tmp, 'bad.jpg'), Buffer.from('not a jpeg at all'));
    await rejectsWith(decodeImage(join(tmp, 'bad.jpg')), /cannot decode image/, join(tmp, 'bad.jpg'));
  });

  it('round-trips masks through writeMask and writePaletteMask', async () => {
    const data = Uint8Array.from({ length: 7 * 5 }, (_, i) => (i % 6 === 5 ? 255 : i % 6));
    await writeMask(join(tmp, 'm/gray.png'), data, 7, 5);
    const m = await decodeMask(join(tmp, 'm/gray.png'));
    assert.deepEqual([m.width, m.height], [7, 5]);
    assert.deepEqual(m.data, data);
    const meta = await sharp(join(tmp, 'm/gray.png')).metadata();
    assert.equal(meta.channels, 1);
    const palette: [number, number, number][] = [[1, 2, 3], [40, 50, 60], [70, 80, 90]];
    await writePaletteMask(join(tmp, 'm/pal.png'), data, 7, 5, palette);
    const p = await decodeMask(join(tmp, 'm/pal.png'));
    assert.deepEqual(p.data, data);
    const raw = decodePng(await readFile(join(tmp, 'm/pal.png')));
    assert.deepEqual(raw.palette!.slice(0, 3), palette);
    assert.deepEqual(raw.palette![255], vocPalette()[255]);
  });

  it('reads RGB masks through a palette map or as gray ids, 16-bit masks whose values fit in 8 bits, and names the file of any other', async () => {
    const rgb = join(tmp, 'rgb.png');
    const pal: [number, number, number][] = [[0, 0, 0], [200, 10, 10], [10, 200, 10]];
    const px = [0, 1, 2, 1];
    await writeFile(rgb, encodePng({ width: 2, height: 2, channels: 3, depth: 8, data: Uint8Array.from(px.flatMap((i) => pal[i]!)) }));
    await rejectsWith(decodeMask(rgb), /mask is RGB, not class ids.*palette/, rgb);
    assert.deepEqual([...(await decodeMask(rgb, { palette: pal })).data], px);
    await rejectsWith(decodeMask(rgb, { palette: pal.slice(0, 2) }), /colour \(10, 200, 10\).*not in the palette/, rgb);
    // Ids saved as gray RGB, RGBA or gray + alpha (R = G = B): read as ids, with or without a palette that lacks them.
    const ids = [0, 3, 255, 1];
    for (const [channels, pixel] of [[3, (v: number) => [v, v, v]], [4, (v: number) => [v, v, v, 255]], [2, (v: number) => [v, 128]]] as const) {
      const gray = join(tmp, `gray-${channels}.png`);
      await writeFile(gray, encodePng({ width: 2, height: 2, channels, depth: 8, data: Uint8Array.from(ids.flatMap(pixel)) }));
      assert.deepEqual([...(await decodeMask(gray)).data], ids, `${channels} channels`);
      assert.deepEqual([...(await decodeMask(gray, { palette: pal })).data], ids, `${channels} channels, palette`);
    }
    // One pixel whose channels differ: not gray, so an RGB mask without a palette (the error names the file).
    const almost = join(tmp, 'almost-gray.png');
    await writeFile(almost, encodePng({ width: 2, height: 2, channels: 3, depth: 8, data: Uint8Array.from([0, 0, 0, 3, 3, 3, 255, 255, 254, 1, 1, 1]) }));
    await rejectsWith(decodeMask(almost), /mask is RGB, not class ids/, almost);
    await rejectsWith(decodeMask(almost, { palette: pal }), /colour \(3, 3, 3\).*not in the palette/, almost);
    const deep = join(tmp, 'sixteen.png');
    await writeFile(deep, encodePng({ width: 2, height: 1, channels: 1, depth: 16, data: Uint16Array.from([1, 255]) }));
    assert.deepEqual([...(await decodeMask(deep)).data], [1, 255]);
    const deeper = join(tmp, 'sixteen-big.png');
    await writeFile(deeper, encodePng({ width: 2, height: 1, channels: 1, depth: 16, data: Uint16Array.from([1, 256]) }));
    await rejectsWith(decodeMask(deeper), /16-bit mask has value 256 at x=1, y=0, more than 255/, deeper);
    const deepRgb = join(tmp, 'sixteen-rgb.png');
    await writeFile(deepRgb, encodePng({ width: 1, height: 1, channels: 3, depth: 16, data: Uint16Array.from([1, 1, 1]) }));
    await rejectsWith(decodeMask(deepRgb), /16-bit colour mask/, deepRgb);
    const jpgMask = join(tmp, 'mask.jpg');
    await sharp(Buffer.alloc(12), { raw: { width: 2, height: 2, channels: 3 } }).jpeg().toFile(jpgMask);
    await rejectsWith(decodeMask(jpgMask), /not a PNG/, jpgMask);
    // A 1-bit grayscale mask unpacks to 0/1 ids.
    const bit = join(tmp, 'bit.png');
    await writeFile(bit, encodePng({ width: 3, height: 2, channels: 1, depth: 1, data: Uint8Array.from([0b10100000, 0b01000000]) }));
    assert.deepEqual([...(await decodeMask(bit)).data], [1, 0, 1, 0, 1, 0]);
  });
});
