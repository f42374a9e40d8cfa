import { plannedCommand } from '../../src/cli/base.js';

export default plannedCommand(
  'Show what a teacher-output cache holds.',
  'Entries per teacher, bytes, bytes per pixel and classes.',
  'issue 5, Teachers and the teacher-output cache',
);
