/**
 * The teacher preprocessing flags `label`, `cache verify` (and anything else that opens a teacher) share:
 * they enter the teacher's fingerprint, so the same flags must be given wherever one cache is used.
 */
import { Flags } from '@oclif/core';
import { SoftsegError } from '../errors.js';
import type { TeacherOptions } from '../teachers/teacher.js';

export const teacherPreprocessingFlags = {
  size: Flags.string({ description: 'Run the teacher at this fixed size (S or HxW); default: the model\'s input size, or each image\'s own size.' }),
  layout: Flags.string({ description: 'Tensor layout of the teacher (default: from its input signature).', options: ['nchw', 'nhwc'] }),
  mean: Flags.string({ description: 'Normalisation mean, comma-separated RGB on 0..1 (or 0..255); default: model metadata, else ImageNet.' }),
  std: Flags.string({ description: 'Normalisation std, comma-separated RGB; default: model metadata, else ImageNet.' }),
  tta: Flags.string({ description: 'Test-time augmentation averaged in probability space, e.g. flip or flip,scales=0.75,1,1.25.' }),
  outputs: Flags.string({ description: 'What the teacher model outputs.', options: ['logits', 'probabilities'] }),
};

/** The same flags for distill/ssl, grouped under TEACHER PREPROCESSING in --help. */
export const teacherFlagsForTraining = Object.fromEntries(
  Object.entries(teacherPreprocessingFlags).map(([name, flag]) => [name, { ...flag, helpGroup: 'TEACHER PREPROCESSING (as given to `softseg label`; omitted: what the cache recorded for this teacher)' }]),
) as typeof teacherPreprocessingFlags;

function numbers(value: string | undefined, name: string): number[] | undefined {
  if (value === undefined) return undefined;
  const v = value.split(',').map((x) => Number(x.trim()));
  if (v.length !== 3 || v.some((x) => !Number.isFinite(x))) throw new SoftsegError(`--${name} must be three comma-separated numbers (R,G,B), got ${value}`);
  return v;
}

/** Teacher options from the preprocessing flags (TTA parsed lazily so --help does not load the teachers module). */
export async function teacherOptionsFromFlags(flags: { size?: string; layout?: string; mean?: string; std?: string; tta?: string; outputs?: string }, numClasses?: number): Promise<TeacherOptions> {
  let size: TeacherOptions['size'];
  if (flags.size !== undefined) {
    const parts = flags.size.toLowerCase().split('x').map(Number);
    if (parts.length > 2 || parts.some((p) => !Number.isInteger(p) || p < 1)) throw new SoftsegError(`--size must be S or HxW, got ${flags.size}`);
    size = parts.length === 1 ? parts[0]! : [parts[0]!, parts[1]!];
  }
  const { parseTta } = await import('../teachers/tta.js');
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
