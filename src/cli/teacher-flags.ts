/**
 * The teacher preprocessing flags `label`, `cache verify` (and anything else that opens a teacher) share:
 * they enter the teacher's fingerprint, so the same flags must be given wherever one cache is used.
 */
import { Flags } from '@oclif/core';

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

export { teacherOptionsFromFlags } from '../teachers/preprocessing.js';
