// Augmentation set from flags and config files: presets are shorthands whose values each flag overrides, bad values
// are refused, the crop defaults to the images' size when they are smaller, and the effective values are recorded.
import { describe, it, before } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { defaultCrop, DEFAULT_CROP, resolveAugmentation } from '../../src/recipes/augmentation.js';
import { generateShapesDataset } from '../../src/data/synthetic.js';
import { SoftsegError } from '../../src/errors.js';
import { checkConfig, TRAIN_DEFAULTS } from '../../src/recipes/supervised.js';
import { softseg } from '../helpers/cli.js';

describe('resolveAugmentation', () => {
  it('a preset alone gives its values; each given value overrides it; none without overrides is no augmentation', () => {
    const d = resolveAugmentation({ augment: 'default' });
    assert.deepEqual(d, { scale: [0.75, 1.25], flip: 0.5, brightness: 0, contrast: 0, saturation: 0, grayscale: 0, blur: false });
    const o = resolveAugmentation({ augment: 'default', scale: '0.5,2', flip: 0, brightness: 0.2 });
    assert.deepEqual(o, { scale: [0.5, 2], flip: 0, brightness: 0.2, contrast: 0, saturation: 0, grayscale: 0, blur: false });
    assert.equal(resolveAugmentation({ augment: 'none' }), false);
    assert.deepEqual(resolveAugmentation({ augment: 'none', flip: 0.5 }), { scale: false, flip: 0.5, brightness: 0, contrast: 0, saturation: 0, grayscale: 0, blur: false });
    assert.deepEqual(resolveAugmentation({ augment: 'strong', scale: 'none', blur: 0.1 }).valueOf(), {
      scale: false, flip: 0.5, brightness: 0.5, contrast: 0.5, saturation: 0.5, grayscale: 0.2, blur: { p: 0.1, sigma: [0.1, 2] },
    });
    assert.deepEqual((resolveAugmentation({ augment: 'default', scale: [0.8, 1.2] }) as { scale: number[] }).scale, [0.8, 1.2]);
    // mask sampling is recorded only when not the default (runs recorded before the option compare equal on --resume)
    assert.equal((resolveAugmentation({ augment: 'default', maskSampling: 'floor' }) as { maskSampling?: string }).maskSampling, 'floor');
    assert.deepEqual(resolveAugmentation({ augment: 'default', maskSampling: 'centre' }), d);
  });

  it('refuses bad values with the flag named (the probabilities through the option schema, as every option)', () => {
    for (const [c, re] of [
      [{ scale: '2,1' }, /--scale/], [{ scale: '0,1' }, /--scale/], [{ scale: 'big' }, /--scale/],
      [{ flip: 1.5 }, /--flip must be a number in \[0, 1\]/], [{ brightness: -0.1 }, /--brightness/], [{ blur: 2 }, /--blur/], [{ maskSampling: 'round' as never }, /--mask-sampling/],
    ] as const) {
      const config = { ...TRAIN_DEFAULTS, data: 'd', out: 'o', ...c };
      assert.throws(() => checkConfig(config), (e: unknown) => e instanceof SoftsegError && e.exitCode === 2 && re.test(e.message));
    }
  });

  it('the crop defaults to the images\' size (to the size multiple) when they are smaller, and says so', () => {
    assert.deepEqual(defaultCrop(96, [64, 64], 8), { crop: 96 });
    assert.deepEqual(defaultCrop(undefined, [512, 400], 8), { crop: DEFAULT_CROP });
    const small = defaultCrop(0, [70, 90], 8);
    assert.equal(small.crop, 64);
    assert.match(small.note!, /--crop 64: the images are 70×90/);
  });
});

describe('train records the effective augmentation', () => {
  let root = '';
  before(async () => {
    root = await mkdtemp(join(tmpdir(), 'softseg-aug-'));
    await generateShapesDataset(join(root, 'data'), { count: 4, size: 48, numClasses: 3, seed: 1 });
  });

  it('--scale/--flip/--brightness/--mask-sampling override the preset; the crop follows the 48² images; config.json has both', async () => {
    const r = await softseg('train', '--data', join(root, 'data'), '--out', join(root, 'run'), '--model', 'mobile-unet', '--steps', '1', '--batch-size', '2', '--scale', '0.75,1.25', '--flip', '0', '--brightness', '0.1', '--mask-sampling', 'floor', '--backend', 'wasm');
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /--crop 48: the images are 48×48/);
    const config = JSON.parse(await readFile(join(root, 'run', 'config.json'), 'utf8'));
    assert.equal(config.crop, 48);
    assert.deepEqual(config.augmentation, { scale: [0.75, 1.25], maskSampling: 'floor', flip: 0, brightness: 0.1, contrast: 0, saturation: 0, grayscale: 0, blur: false });
    assert.equal(config.maskSampling, 'floor');
    const bad = await softseg('train', '--data', join(root, 'data'), '--out', join(root, 'run2'), '--steps', '1', '--scale', '3,2', '--backend', 'wasm');
    assert.equal(bad.code, 2, 'a bad augmentation value is a usage error');
    assert.match(bad.stderr, /--scale must be LO,HI/);
  });
});
