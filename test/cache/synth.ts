// Synthetic teacher outputs for the cache tests and measurements ([H, W, C] HWC probabilities, seeded).
import { Random } from '../../src/random.js';

export type SynthKind = 'teacher' | 'smooth' | 'dirichlet' | 'sparse-dirichlet' | 'peaked';

function gamma(rng: Random, a: number): number {
  // Marsaglia–Tsang; a < 1 via the a + 1 boost
  if (a < 1) return gamma(rng, a + 1) * Math.pow(rng.next() || 1e-12, 1 / a);
  const d = a - 1 / 3, c = 1 / Math.sqrt(9 * d);
  for (;;) {
    let x: number, v: number;
    do { x = rng.normal(); v = 1 + c * x; } while (v <= 0);
    v = v * v * v;
    const u = rng.next();
    if (u < 1 - 0.0331 * x * x * x * x || Math.log(u) < 0.5 * x * x + d * (1 - v + Math.log(v))) return d * v;
  }
}

function dirichletInto(rng: Random, out: Float32Array, base: number, C: number, alpha: number, scale = 1): void {
  let s = 0;
  const tmp = new Float64Array(C);
  for (let c = 0; c < C; c++) { tmp[c] = gamma(rng, alpha) + 1e-300; s += tmp[c]!; }
  for (let c = 0; c < C; c++) out[base + c] = (scale * tmp[c]!) / s;
}

/**
 * - smooth: a trained-teacher look-alike — per-class logit fields drawn on a coarse grid (8×8) and bilinearly
 *   upsampled, scaled by `sharpness` (confident regions, soft boundaries, a long tail of small probabilities);
 * - teacher: a trained segmentation teacher look-alike — a few classes present (Voronoi regions on a 1/8-resolution
 *   grid), the nearest region's class at logit σ, other present classes falling off with their extra distance,
 *   absent classes at σ·(−0.5 ± 0.1 per image ± 0.03 per grid point), upsampled bilinearly like a stride-8
 *   network; σ = `sharpness` (8: a confident teacher, boundaries soft over a few pixels);
 * - dirichlet: i.i.d. Dirichlet(1) pixels (flat, incompressible, the worst case for top-k);
 * - sparse-dirichlet: i.i.d. Dirichlet(0.1) pixels (a few classes share the mass);
 * - peaked: top class 0.9–0.999, the rest Dirichlet(1).
 */
export function synthProbs(kind: SynthKind, width: number, height: number, C: number, seed = 1, sharpness = 8): Float32Array {
  const rng = new Random(seed);
  const n = width * height;
  const out = new Float32Array(n * C);
  if (kind === 'teacher') {
    const gw = Math.ceil(width / 8) + 1, gh = Math.ceil(height / 8) + 1;
    const present = rng.shuffle([...Array(C).keys()]).slice(0, Math.min(C, 2 + rng.int(4)));
    const seeds = Array.from({ length: 6 }, (_, i) => ({ x: rng.uniform(0, gw), y: rng.uniform(0, gh), c: present[i % present.length]! }));
    const absentMean = Array.from({ length: C }, () => -0.5 + 0.1 * rng.normal());
    const grid = new Float64Array(gw * gh * C);
    const dist = new Float64Array(C);
    for (let y = 0; y < gh; y++) for (let x = 0; x < gw; x++) {
      let dAll = Infinity;
      for (let c = 0; c < C; c++) {
        dist[c] = Infinity;
        for (const s of seeds) if (s.c === c) dist[c] = Math.min(dist[c]!, Math.hypot(s.x - x, s.y - y));
        dAll = Math.min(dAll, dist[c]!);
      }
      for (let c = 0; c < C; c++) {
        // present classes: the nearest region wins with logit σ, the others fall off with their extra distance
        const z = Number.isFinite(dist[c]!) ? Math.max(1 - 0.5 * (dist[c]! - dAll), absentMean[c]! + 0.2) : absentMean[c]! + 0.03 * rng.normal();
        grid[(y * gw + x) * C + c] = z * sharpness;
      }
    }
    return upsampleSoftmax(grid, gw, gh, width, height, C);
  }
  if (kind === 'smooth') {
    const g = 8;
    const grid = new Float64Array(g * g * C);
    for (let i = 0; i < grid.length; i++) grid[i] = rng.normal() * sharpness;
    return upsampleSoftmax(grid, g, g, width, height, C);
  }
  for (let p = 0; p < n; p++) {
    const base = p * C;
    if (kind === 'dirichlet') dirichletInto(rng, out, base, C, 1);
    else if (kind === 'sparse-dirichlet') dirichletInto(rng, out, base, C, 0.1);
    else {
      const top = rng.uniform(0.9, 0.999);
      dirichletInto(rng, out, base, C, 1, 1 - top);
      const j = rng.int(C);
      // put the top mass on class j, moving class j's share elsewhere
      const moved = out[base + j]!;
      out[base + j] = top;
      out[base + ((j + 1) % C)] = out[base + ((j + 1) % C)]! + moved;
    }
  }
  return out;
}

/** Bilinear upsampling (align-corners) of [gh, gw, C] logits to [height, width, C], then softmax per pixel. */
function upsampleSoftmax(grid: Float64Array, gw: number, gh: number, width: number, height: number, C: number): Float32Array {
  const out = new Float32Array(width * height * C);
  const z = new Float64Array(C);
  for (let y = 0; y < height; y++) {
    const fy = (y / Math.max(1, height - 1)) * (gh - 1), y0 = Math.min(gh - 2, Math.floor(fy)), ty = fy - y0;
    for (let x = 0; x < width; x++) {
      const fx = (x / Math.max(1, width - 1)) * (gw - 1), x0 = Math.min(gw - 2, Math.floor(fx)), tx = fx - x0;
      let m = -Infinity;
      for (let c = 0; c < C; c++) {
        const a = grid[(y0 * gw + x0) * C + c]!, b = grid[(y0 * gw + x0 + 1) * C + c]!;
        const d = grid[((y0 + 1) * gw + x0) * C + c]!, e = grid[((y0 + 1) * gw + x0 + 1) * C + c]!;
        z[c] = (1 - ty) * ((1 - tx) * a + tx * b) + ty * ((1 - tx) * d + tx * e);
        if (z[c]! > m) m = z[c]!;
      }
      let s = 0;
      for (let c = 0; c < C; c++) { z[c] = Math.exp(z[c]! - m); s += z[c]!; }
      const base = (y * width + x) * C;
      for (let c = 0; c < C; c++) out[base + c] = z[c]! / s;
    }
  }
  return out;
}
