import { plannedCommand } from '../src/cli/base.js';

export default plannedCommand(
  'Distill a student from cached teacher outputs with JML-KD.',
  'Trains a student with CE and JML on ground truth plus temperature KL and JML towards cached teacher soft labels, with active-class filtering.',
  'issue 6, Students: distill and ssl',
);
