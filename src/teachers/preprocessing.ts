/**
 * The teacher preprocessing options as strings (the flags `label`, `cache verify`, `distill` and `ssl` share, or the
 * same keys in a config file) parsed into TeacherOptions. In the library, not in src/cli, so recipes use it too.
 */
import { SoftsegError } from '../errors.js';
import type { TeacherOptions } from './teacher.js';
import { parseTta } from './tta.js';

function numbers(value: string | undefined, name: string): number[] | undefined {
  if (value === undefined) return undefined;
  const v = value.split(',').map((x) => Number(x.trim()));
  if (v.length !== 3 || v.some((x) => !Number.isFinite(x))) throw new SoftsegError(`--${name} must be three comma-separated numbers (R,G,B), got ${value}`);
  return v;
}

/** Teacher options from the preprocessing flags' strings (as `label` takes them, and distill/ssl config values). */
export async function teacherOptionsFromFlags(flags: { size?: string; layout?: string; mean?: string; std?: string; tta?: string; outputs?: string }, numClasses?: number): Promise<TeacherOptions> {
  let size: TeacherOptions['size'];
  if (flags.size !== undefined) {
    const parts = flags.size.toLowerCase().split('x').map(Number);
    if (parts.length > 2 || parts.some((p) => !Number.isInteger(p) || p < 1)) throw new SoftsegError(`--size must be S or HxW, got ${flags.size}`);
    size = parts.length === 1 ? parts[0]! : [parts[0]!, parts[1]!];
  }
  return {
    size,
    layout: flags.layout as TeacherOptions['layout'],
    mean: numbers(flags.mean, 'mean'),
    std: numbers(flags.std, 'std'),
    tta: flags.tta ? parseTta(flags.tta) : undefined,
    outputs: flags.outputs as TeacherOptions['outputs'],
    numClasses,
  };
}
