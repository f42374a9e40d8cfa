// The synthetic shapes generator: deterministic in the seed, every class reachable, confusable pairs present,
// and cheap enough to generate data sets inside tests.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { randomFor, renderShapes, SHAPE_CLASSES, shapesClasses } from '../../src/data/index.js';

describe('renderShapes', () => {
  it('is deterministic, reaches every class, and renders a 64² image in a few ms', () => {
    const a = renderShapes(randomFor(1, 2), 64, 10);
    const b = renderShapes(randomFor(1, 2), 64, 10);
    assert.deepEqual(a, b);
    assert.notDeepEqual(renderShapes(randomFor(1, 3), 64, 10).image, a.image);
    const seen = new Set<number>();
    const t = performance.now();
    const n = 200;
    for (let i = 0; i < n; i++) renderShapes(randomFor(5, i), 64, 10).mask.forEach((v) => seen.add(v));
    const ms = (performance.now() - t) / n;
    assert.deepEqual([...seen].sort((x, y) => x - y), [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    assert.ok(ms < 20, `${ms.toFixed(2)} ms per image`);
  });

  it('names classes and keeps confusable colour pairs', () => {
    const { classNames, palette } = shapesClasses(6);
    assert.deepEqual(classNames, ['background', 'circle', 'square', 'triangle', 'stripes', 'ring']);
    assert.equal(palette.length, 6);
    const dist = (i: number, j: number): number => Math.hypot(...SHAPE_CLASSES[i]!.color.map((c, k) => c - SHAPE_CLASSES[j]!.color[k]!));
    assert.ok(dist(0, 1) < 60 && dist(2, 4) < 60, 'circle/square and triangle/ring have similar colours');
  });
});
