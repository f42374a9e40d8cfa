import { plannedCommand } from '../src/cli/base.js';

export default plannedCommand(
  'Evaluate a trained model: mIoU, fine-grained mIoU, calibration.',
  'Scores a model (or a folder of predicted masks) against ground truth: dataset, per-image and per-class mIoU with worst-case variants, accuracy, per-class IoU and ECE.',
  'issue 4, Data and supervised training',
);
