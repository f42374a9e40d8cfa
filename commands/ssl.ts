import { plannedCommand } from '../src/cli/base.js';

export default plannedCommand(
  'Semi-supervised training on unlabeled folders with soft pseudo-labels.',
  'Trains on labeled plus unlabeled images with a fixed (cached) or mean teacher, soft JML pseudo-labels or hard thresholded ones, and a collapse guard.',
  'issue 6, Students: distill and ssl',
);
