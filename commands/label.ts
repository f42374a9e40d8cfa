import { plannedCommand } from '../src/cli/base.js';

export default plannedCommand(
  'Run a teacher over images and cache its soft labels or pseudo-labels.',
  'Runs a TF.js or ONNX teacher once per image and stores compact top-k soft labels, active classes and confidence in a content-addressed, checksummed cache.',
  'issue 5, Teachers and the teacher-output cache',
);
