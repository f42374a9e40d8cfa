import { plannedCommand } from '../src/cli/base.js';

export default plannedCommand(
  'Write a self-contained HTML report of one or more runs.',
  'Loss and metric curves, per-class IoU bars, a confusion matrix and a grid of validation samples, in one HTML file that needs no network.',
  'issue 7, First five minutes',
);
