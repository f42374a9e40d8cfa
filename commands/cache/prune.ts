import { plannedCommand } from '../../src/cli/base.js';

export default plannedCommand(
  'Remove cache entries of other teachers or of missing images.',
  'Deletes entries that no current teacher or image refers to.',
  'issue 5, Teachers and the teacher-output cache',
);
