import { plannedCommand } from '../src/cli/base.js';

export default plannedCommand(
  'Run the whole pipeline on generated sample data.',
  'Generates a small data set, trains a teacher, labels, distills a student and compares it with a CE-only student, then prints a summary table and writes a report.',
  'issue 7, First five minutes',
);
