// The synthetic shapes generator: deterministic in the seed, every class reachable, confusable pairs present,
// and cheap enough to generate data sets inside tests.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { randomFor, renderShapes, SHAPE_CLASSES, shapesClasses } from '../../src/data/index.js';

describe('renderShapes', () => {
  it('is deterministic and reaches every class', () => {
    const a = renderShapes(randomFor(1, 2), 64, 10);
    const b = renderShapes(randomFor(1, 2), 64, 10);
    assert.deepEqual(a, b);
    assert.notDeepEqual(renderShapes(randomFor(1, 3), 64, 10).image, a.image);
    const seen = new Set<number>();
    for (let i = 0; i < 200; i++) renderShapes(randomFor(5, i), 64, 10).mask.forEach((v) => seen.add(v));
    assert.deepEqual([...seen].sort((x, y) => x - y), [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
  });

  it('names classes and keeps confusable colour pairs', () => {
    const { classNames, palette } = shapesClasses(6);
    assert.deepEqual(classNames, ['background', 'circle', 'square', 'triangle', 'stripes', 'ring']);
    assert.equal(palette.length, 6);
    const dist = (i: number, j: number): number => Math.hypot(...SHAPE_CLASSES[i]!.color.map((c, k) => c - SHAPE_CLASSES[j]!.color[k]!));
    assert.ok(dist(0, 1) < 60 && dist(2, 4) < 60, 'circle/square and triangle/ring have similar colours');
  });
});
