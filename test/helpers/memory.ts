// Memory measurements for tests: a full garbage collection on demand (without starting node with --expose-gc),
// so a reading is what the process holds, not how far its collector has got.
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as (options?: { type: 'major'; execution: 'sync' }) => void;

/** Collects garbage (twice: finalizers of the first pass free more) and returns the process's RSS in bytes. */
export function settledRss(): number {
  gc();
  gc();
  return process.memoryUsage().rss;
}

export { gc as collectGarbage };
