import { plannedCommand } from '../src/cli/base.js';

export default plannedCommand(
  'Train a segmentation model on a folder of images and masks (CE + JML).',
  'Trains a zoo model with cross-entropy plus Jaccard Metric Losses, optional label smoothing or boundary label smoothing, checkpoints and resume.',
  'issue 4, Data and supervised training',
);
