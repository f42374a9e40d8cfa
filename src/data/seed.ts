// Deriving independent 32-bit seeds from (seed, epoch, index, ...) so that each sample's randomness depends on
// where it is in the schedule, never on timing or concurrency.
import { Random } from '../random.js';

/** A well-mixed 32-bit seed from integer parts (order matters). */
export function mixSeed(...parts: number[]): number {
  let h = 0x9e3779b9;
  for (const p of parts) {
    h ^= p >>> 0;
    h = Math.imul(h ^ (h >>> 16), 0x85ebca6b);
    h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
    h ^= h >>> 16;
    h = (h + 0x6d2b79f5) >>> 0;
  }
  return h >>> 0;
}

/** The generator for (seed, ...parts). */
export function randomFor(seed: number, ...parts: number[]): Random {
  return new Random(mixSeed(seed, ...parts));
}
