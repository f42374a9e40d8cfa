// The parity bench's teacher, shared by both sides of the distill and ssl rows: softseg trains it (through the
// CLI, as a user would), `softseg label` caches its soft labels for the labeled and unlabeled images, and this
// module exports the cached probabilities — exactly what softseg's loader reads — as raw float32 [N, H, W, C]
// files in sorted file-name order for the PyTorch twin (bench/parity/twin.py --teacher-probs DIR).
//   node --import tsx bench/parity/teacher.ts --data DIR --out DIR [--model unet-lite --steps 1200]
import { existsSync } from 'node:fs';
import { mkdir, readdir, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { initBackend } from '../../src/backends/select.js';
import { openCache } from '../../src/cache/store.js';
import { TeacherLabels } from '../../src/labels/teacher-labels.js';
import { openTeacher } from '../../src/teachers/index.js';
import { writeFileAtomic } from '../../src/data/fs-util.js';
import { run } from '../common.js';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '../..');

export interface ParityTeacher {
  /** The softseg run directory (the teacher for `distill --teacher` / `ssl --teacher`). */
  dir: string;
  cache: string;
  /** Folder of train.f32, unlabeled.f32 and meta.json for twin.py. */
  probs: string;
  /** The teacher's own val scores. */
  val: { mIoUD: number; mIoUI: number; ECED: number };
}

async function cli(args: string[], what: string): Promise<string> {
  const r = await run(process.execPath, [join(ROOT, 'bin', 'run.js'), ...args]);
  if (r.code !== 0) throw new Error(`parity teacher: ${what} failed: ${r.stderr.trim().split('\n').pop()}`);
  return r.stdout;
}

async function exportProbs(labels: TeacherLabels, imagesDir: string, file: string): Promise<string[]> {
  const names = (await readdir(imagesDir)).filter((n) => n.endsWith('.png')).sort();
  const chunks: Buffer[] = [];
  for (const name of names) {
    const { probs } = await labels.soft(join(imagesDir, name));
    chunks.push(Buffer.from(probs.buffer, probs.byteOffset, probs.byteLength));
  }
  await writeFile(file, Buffer.concat(chunks));
  return names;
}

/** Trains (once) the teacher on `data.train`, labels train + unlabeled into a cache and exports the probabilities. */
export async function prepareTeacher(out: string, data: { train: string; unlabeled: string; val: string }, o: { model: string; steps: number; classes: number }): Promise<ParityTeacher> {
  const dir = join(out, 'teacher');
  const cache = join(out, 'cache');
  const probs = join(out, 'probs');
  if (!existsSync(join(dir, 'model', 'model.json'))) {
    process.stderr.write(`parity: training the teacher (${o.model}, ${o.steps} steps) in ${dir}\n`);
    await cli(['train', '--data', data.train, '--model', o.model, '--steps', String(o.steps), '--seed', '100', '--out', dir, '--overwrite', '--eval-every', String(o.steps), '--backend', 'wasm', '--json'], 'teacher training');
  }
  const scored = JSON.parse(await cli(['eval', '--model', dir, '--data', data.val, '--backend', 'wasm', '--json'], 'teacher eval')) as Record<string, number> & { metrics?: Record<string, number> };
  const m = scored.metrics ?? scored;
  if (!existsSync(join(probs, 'meta.json'))) {
    process.stderr.write(`parity: labelling train + unlabeled into ${cache}\n`);
    await cli(['label', '--teacher', dir, '--cache', cache, '--images', join(data.train, 'images'), '--images', join(data.unlabeled, 'images'), '--backend', 'wasm'], 'label');
    await initBackend({ backend: 'wasm' });
    const teacher = await openTeacher(dir);
    try {
      // no teacher given to TeacherLabels: a miss (there should be none) is an error, not a silent relabel
      const labels = new TeacherLabels(openCache(cache), teacher.fingerprint, null, o.classes, { temperature: 1, noTeacher: true });
      await mkdir(probs, { recursive: true });
      const train = await exportProbs(labels, join(data.train, 'images'), join(probs, 'train.f32'));
      const unlabeled = await exportProbs(labels, join(data.unlabeled, 'images'), join(probs, 'unlabeled.f32'));
      await writeFileAtomic(join(probs, 'meta.json'), JSON.stringify({ classes: o.classes, train, unlabeled, fingerprint: teacher.fingerprint }));
    } finally {
      await teacher.dispose();
    }
  }
  return { dir, cache, probs, val: { mIoUD: m.mIoUD!, mIoUI: m.mIoUI!, ECED: m.ECED! } };
}

if (process.argv[1] && import.meta.url.endsWith(process.argv[1].split('/').pop()!)) {
  const arg = (name: string, fb: string) => { const i = process.argv.indexOf(`--${name}`); return i >= 0 ? process.argv[i + 1]! : fb; };
  const data = arg('data', '');
  const t = await prepareTeacher(arg('out', '/tmp/parity-teacher'), { train: join(data, 'train'), unlabeled: join(data, 'unlabeled'), val: join(data, 'val') }, { model: arg('model', 'unet-lite'), steps: Number(arg('steps', '1200')), classes: 11 });
  console.log(JSON.stringify(t));
}
