import { Args, Flags } from '@oclif/core';
import { teacherPreprocessingFlags } from '../../src/cli/teacher-flags.js';
import { SoftsegCommand, backendFlags } from '../../src/cli/base.js';
import type { VerifyResult } from '../../src/cache/store.js';
import type { TeacherFidelityResult } from '../../src/cache/fidelity.js';

type VerifyOutput = VerifyResult & { fidelity?: TeacherFidelityResult };

export default class CacheVerify extends SoftsegCommand {
  static override summary = 'Verify cache checksums and soft-label fidelity.';
  static override description = `Checks every entry's length and checksum and that its payload decodes; prints one line per bad entry and exits 1 if there is any (relabel those images: \`softseg label\` overwrites them).
With --teacher and --images, also re-runs the teacher on a seeded sample of --samples images that have entries and reports the fidelity of the cache against the fresh outputs: mean KL and JML1 distance between exact and reconstructed soft labels at T = 1 and T = 4, and pseudo-label (argmax) agreement. Give the teacher the same preprocessing flags as \`softseg label\` did, or its fingerprint (and so its entries) differ.`;
  static override examples = [
    '<%= config.bin %> cache verify cache/',
    '<%= config.bin %> cache verify cache/ --teacher teacher.onnx --images data/unlabeled --samples 20',
  ];
  static override args = { cache: Args.string({ description: 'Cache directory.', required: true }) };
  static override flags = {
    ...backendFlags,
    teacher: Flags.string({ description: 'Teacher (.onnx, model.json or softseg run directory) to compare the cache with.', dependsOn: ['images'] }),
    images: Flags.string({ description: 'Folder of the images the cache was labeled from (with --teacher).', multiple: true }),
    samples: Flags.integer({ description: 'Images to re-run the teacher on.', default: 10, min: 1, aliases: ['sample'], deprecateAliases: true }),
    seed: Flags.integer({ description: 'Seed of the sample.', default: 0 }),
    ...teacherPreprocessingFlags,
  };

  async run(): Promise<VerifyOutput> {
    const { args, flags } = await this.parse(CacheVerify);
    const { openCache } = await import('../../src/cache/store.js');
    const { ProgressCounter } = await import('../../src/cli/progress.js');
    const cache = openCache(args.cache);
    const progress = new ProgressCounter('entries', (line) => this.logToStderr(line));
    const result: VerifyOutput = await cache.verify({ onProgress: (d, t) => progress.update(d, t) });
    progress.stop();
    if (!this.jsonEnabled()) {
      for (const p of result.problems) this.log(`BAD ${p.path}${p.imageName ? ` (${p.imageName})` : ''}: ${p.reason}`);
      this.log(`${result.checked} entries checked, ${result.problems.length} bad`);
    }
    if (flags.teacher) result.fidelity = await this.fidelity(cache, { ...flags, teacher: flags.teacher, images: flags.images ?? [] });
    // exit 1 after the output (--json included); this.exit would print an error object in --json mode
    if (result.problems.length) process.exitCode = 1;
    return result;
  }

  private async fidelity(cache: import('../../src/cache/store.js').TeacherCache, flags: { teacher: string; images: string[]; samples: number; seed: number; size?: string; layout?: string; mean?: string; std?: string; tta?: string; outputs?: string; backend?: string; threads?: number }): Promise<TeacherFidelityResult> {
    await this.startBackend(flags);
    const { openTeacher } = await import('../../src/teachers/index.js');
    const { SoftsegError } = await import('../../src/errors.js');
    const { teacherOptionsFromFlags } = await import('../../src/cli/teacher-flags.js');
    const { decodeImage } = await import('../../src/data/decode.js');
    const { hashImagesIn } = await import('../../src/cache/images.js');
    const { teacherFidelity } = await import('../../src/cache/fidelity.js');
    const teacher = await openTeacher(flags.teacher, await teacherOptionsFromFlags(flags));
    try {
      const images = await hashImagesIn(flags.images);
      const progress = this.jsonEnabled() ? null : (await import('../../src/cli/progress.js')).ProgressCounter;
      const bar = progress ? new progress('images', (line) => this.logToStderr(line)) : null;
      const r = await teacherFidelity(cache, teacher, images, decodeImage, { sample: flags.samples, seed: flags.seed, onProgress: (d, t) => bar?.update(d, t) });
      bar?.stop();
      if (r.withEntries === 0) {
        throw new SoftsegError(`none of the ${images.length} images has an entry of teacher ${teacher.fingerprint.slice(0, 16)} in this cache`, {
          file: flags.teacher, hint: 'check --images, and give the same preprocessing flags (--size, --layout, --mean, --std, --tta) as `softseg label`; `softseg cache info` lists the cached teachers',
        });
      }
      if (!this.jsonEnabled()) {
        const f = (v: number | undefined) => (v === undefined ? '—' : v.toExponential(2));
        this.log(`fidelity of teacher ${teacher.fingerprint.slice(0, 16)} over ${r.sampled} of ${r.withEntries} images with entries:`);
        this.log(`  mean KL (nats/pixel)  T=1 ${f(r.mean.kl['1'])}  T=4 ${f(r.mean.kl['4'])}`);
        this.log(`  JML1 distance         T=1 ${f(r.mean.jml1['1'])}  T=4 ${f(r.mean.jml1['4'])}`);
        this.log(`  pseudo-label agreement ${(100 * r.mean.pseudoAgreement).toFixed(3)}%`);
      }
      return r;
    } finally {
      await teacher.dispose();
    }
  }
}
