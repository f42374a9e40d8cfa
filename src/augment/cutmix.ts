/**
 * CutMix between the images of a batch (the unlabeled images of \`ssl\`): a box from another image pasted into
 * the same place of every map given — the student's view, its soft pseudo-labels, its keep mask — so images and
 * targets stay aligned.
 */
import type { Random } from '../random.js';

/** One CutMix paste: rows `row` got the box [y0, y1) × [x0, x1) from row `from`. */
export interface CutmixBox {
  row: number;
  from: number;
  y0: number;
  y1: number;
  x0: number;
  x1: number;
}

/**
 * CutMix between the images of a batch, in place: with probability `p` per image, a random box (area ratio
 * 1 − λ, λ ~ U(0, 1), centre uniform, clipped to the image) from another image of the batch (as it was before
 * any paste) replaces the same box of this image — in every map given (the student's view, the soft
 * pseudo-labels, the keep mask), so image and targets stay aligned. Returns the boxes.
 */
export function cutmix(maps: { data: Float32Array | Uint8Array; channels: number }[], n: number, size: [number, number], p: number, rng: Random): CutmixBox[] {
  const [H, W] = size;
  const boxes: CutmixBox[] = [];
  if (n < 2 || p <= 0) return boxes;
  for (let row = 0; row < n; row++) {
    if (!(rng.next() < p)) continue;
    const from = (row + 1 + rng.int(n - 1)) % n;
    const r = Math.sqrt(1 - rng.next());
    const bh = Math.round(H * r), bw = Math.round(W * r);
    const cy = rng.int(H), cx = rng.int(W);
    const y0 = Math.max(0, cy - Math.floor(bh / 2)), y1 = Math.min(H, cy + Math.ceil(bh / 2));
    const x0 = Math.max(0, cx - Math.floor(bw / 2)), x1 = Math.min(W, cx + Math.ceil(bw / 2));
    if (y1 > y0 && x1 > x0) boxes.push({ row, from, y0, y1, x0, x1 });
  }
  if (boxes.length === 0) return boxes;
  for (const { data, channels } of maps) {
    const source = data.slice();
    const plane = H * W * channels;
    for (const b of boxes) {
      for (let y = b.y0; y < b.y1; y++) {
        const start = (y * W + b.x0) * channels, end = (y * W + b.x1) * channels;
        data.set(source.subarray(b.from * plane + start, b.from * plane + end), b.row * plane + start);
      }
    }
  }
  return boxes;
}
