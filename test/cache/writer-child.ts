// A child process for the concurrent-writer test: writes entries into one cache.
// argv: cacheDir fingerprint seed count sharedHash
import { openCache } from '../../src/cache/store.js';
import { synthProbs } from './synth.js';

const [dir, fp, seedS, countS, shared] = process.argv.slice(2) as [string, string, string, string, string];
const cache = openCache(dir);
const seed = Number(seedS);
for (let i = 0; i < Number(countS); i++) {
  const probs = synthProbs('teacher', 48, 40, 21, seed * 1000 + i, 6);
  // every other write goes to the shared entry both processes fight over
  const hash = i % 2 === 0 ? shared : (seed * 1000 + i).toString(16).padStart(64, '0');
  await cache.put(fp, hash, probs, { width: 48, height: 40, numClasses: 21, mode: 'both', imageName: `w${seed}-${i}.png` });
}
