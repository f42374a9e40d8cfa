import { plannedCommand } from '../../src/cli/base.js';

export default plannedCommand(
  'Verify cache checksums and soft-label fidelity.',
  'Checks every entry checksum; with --teacher and --sample N compares reconstructed soft labels with fresh teacher outputs.',
  'issue 5, Teachers and the teacher-output cache',
);
