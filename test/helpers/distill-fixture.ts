// A distillation fixture for recipe tests: a labeled set (data/), an unlabeled folder (extra/) and an untrained
// unet-lite teacher saved as a softseg run (teacher/), all under a new temporary folder.
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createModel } from '../../src/models/registry.js';
import { IMAGENET_NORMALIZATION } from '../../src/augment/normalize.js';
import { generateShapesDataset } from '../../src/data/synthetic.js';
import { saveRunModel } from '../../src/engine/trainer.js';

export async function distillFixture(prefix: string, o: { labeled: number; unlabeled: number; numClasses: number }): Promise<string> {
  const root = await mkdtemp(join(tmpdir(), prefix));
  await generateShapesDataset(join(root, 'data'), { count: o.labeled, size: 32, numClasses: o.numClasses, seed: 2 });
  await generateShapesDataset(join(root, 'extra'), { count: o.unlabeled, size: 32, numClasses: o.numClasses, seed: 3, unlabeled: true });
  const teacher = createModel('unet-lite', { numClasses: o.numClasses, width: 0.25, seed: 5 });
  await saveRunModel(teacher, join(root, 'teacher', 'model'), { architecture: 'unet-lite', numClasses: o.numClasses, normalization: IMAGENET_NORMALIZATION });
  teacher.dispose();
  return root;
}
