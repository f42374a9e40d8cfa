import { plannedCommand } from '../src/cli/base.js';

export default plannedCommand(
  'Write predicted masks for a folder of images.',
  'Runs a trained model over images and writes class-id masks, colour visualisations and optional overlays at the original resolution.',
  'issue 4, Data and supervised training',
);
