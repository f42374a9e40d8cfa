// Measurements behind the format's defaults (k, quantiser, compression): bytes/pixel, fidelity, decode speed.
// Run: node --import tsx test/cache/measure.ts [quick]
import { performance } from 'node:perf_hooks';
import { decodeEntry, encodeEntry, reconstructSoft, type Compression, type QuantScheme } from '../../src/cache/format.js';
import { entryFidelity } from '../../src/cache/fidelity.js';
import { synthProbs, type SynthKind } from './synth.js';

const quick = process.argv.includes('quick');
const size = 128;
const rows: string[] = [];
const line = (...cells: (string | number)[]) => rows.push(cells.map((c) => (typeof c === 'number' ? (Math.abs(c) < 1e-2 && c !== 0 ? c.toExponential(2) : c.toFixed(3)) : c)).join('\t'));

async function one(kind: SynthKind, C: number, k: number, scheme: QuantScheme, range: number, compression: Compression, sharp = 8, tail: 'lowrank' | 'prior' | 'even' = 'lowrank') {
  const probs = synthProbs(kind, size, size, C, 7, sharp);
  const bytes = await encodeEntry(probs, { width: size, height: size, numClasses: C, k, mode: 'soft', fingerprint: 'f'.repeat(64), imageHash: 'a'.repeat(64), imageName: 'x.png', scheme, range, compression, tail: { model: tail } });
  const entry = await decodeEntry(bytes);
  const fid = entryFidelity(probs, entry, [1, 4]);
  const reps = 20;
  const out = new Float32Array(size * size * C);
  const t0 = performance.now();
  for (let i = 0; i < reps; i++) reconstructSoft(await decodeEntry(bytes), 1, out);
  const ms = (performance.now() - t0) / reps;
  line((tail === 'lowrank' ? '' : `${tail} `) + kind + (kind === 'smooth' || kind === 'teacher' ? `σ${sharp}` : ''), C, k, `${scheme}/${range}`, compression, bytes.length / (size * size), (4 * C) / (bytes.length / (size * size)), fid.kl['1']!, fid.kl['4']!, fid.jml1['1']!, fid.pseudoAgreement, ms);
}

rows.push(['data', 'C', 'k', 'quant', 'compr', 'B/px', 'x f32', 'KL T1', 'KL T4', 'JML1 T1', 'agree', 'decode ms'].join('\t'));
const schemes: [QuantScheme, number][] = quick ? [['sqrt8', 32], ['log8', 16], ['log16', 40]] : [['log8', 16], ['log8', 24], ['sqrt8', 24], ['sqrt8', 32], ['log16', 40]];
for (const C of [21, 5]) {
  for (const kind of ['teacher', 'smooth', 'sparse-dirichlet', 'peaked', 'dirichlet'] as SynthKind[]) {
    for (const k of quick ? [3, 4, 6] : [2, 3, 4, 5, 6]) {
      if (k > C) continue;
      for (const [scheme, range] of schemes) {
        for (const compression of (quick || kind !== 'teacher' ? ['deflate'] : ['deflate', 'brotli']) as Compression[]) {
          await one(kind, C, k, scheme, range, compression);
          if (scheme === 'sqrt8' && compression === 'deflate' && C === 21) { await one(kind, C, k, scheme, range, compression, 8, 'prior'); await one(kind, C, k, scheme, range, compression, 8, 'even'); }
        }
      }
    }
  }
}
if (!quick) for (const sharp of [4, 12]) for (const k of [3, 4, 6]) await one('teacher', 21, k, 'sqrt8', 32, 'deflate', sharp);
console.log(rows.join('\n'));
