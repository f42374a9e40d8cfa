/**
 * Teacher soft labels for training: read from the cache at the requested temperature (and, for training crops,
 * resampled through the sample's augmentation — on the loader's sample workers, see loaderSource); on a miss the teacher runs on
 * the fly and the entry is written (so the next run reads it), unless the run forbids that. The training always
 * sees the cache's reconstruction, so a fresh and a cached run train on identical targets.
 */
import { basename } from 'node:path';
import { decodeImage } from '../data/decode.js';
import { SoftsegError } from '../errors.js';
import type { TeacherCache } from '../cache/store.js';
import { rememberedImageHash } from '../cache/images.js';
import { CorruptEntryError, DEFAULT_K } from '../cache/format.js';
import { readSoftCrop, type SoftCropRequest } from '../cache/reader.js';
import type { LoaderOptions } from '../data/loader.js';
import type { WarpSpec } from '../augment/geometric.js';
import type { Teacher } from '../teachers/teacher.js';

export interface TeacherLabelsOptions {
  temperature?: number;
  /** Soft labels stored per pixel: top-k classes (default: the cache's default). */
  k?: number;
  /** A cache miss is an error instead of running the teacher. */
  noTeacher?: boolean;
  /** Called when the teacher had to run (for progress/logging). */
  onMiss?: (imagePath: string) => void;
  /** Called when an entry failed its checksum; it is then relabelled like a miss. */
  onCorrupt?: (error: CorruptEntryError) => void;
}

export class TeacherLabels {
  private readonly filling = new Map<string, Promise<void>>();
  misses = 0;
  hits = 0;

  constructor(
    readonly cache: TeacherCache,
    readonly fingerprint: string,
    private readonly teacher: Teacher | null,
    readonly numClasses: number,
    private readonly options: TeacherLabelsOptions = {},
  ) {}

  /** Content hash of an image file (remembered per path, size and mtime). */
  imageHash(path: string): Promise<string> {
    return rememberedImageHash(path);
  }

  /** Soft labels [h, w, C] of an image at the configured temperature, at the image's size. */
  async soft(imagePath: string, imageName = basename(imagePath)): Promise<{ probs: Float32Array; classes: number }> {
    return this.read(imagePath, imageName);
  }

  /**
   * For the loader (`softCache`): hits are read where samples are prepared (on the sample workers); a miss
   * or a corrupt entry comes back here and is filled by softCrop.
   */
  loaderSource(): NonNullable<LoaderOptions['softCache']> {
    return {
      dir: this.cache.dir, fingerprint: this.fingerprint, temperature: this.options.temperature ?? 1,
      onMiss: (item, _index, geometry) => this.softCrop(item.image, geometry, item.id),
    };
  }

  /** Soft labels of an image at the configured temperature, resampled through an augmentation's geometry (the crop's size). */
  async softCrop(imagePath: string, geometry: WarpSpec, imageName = basename(imagePath)): Promise<{ probs: Float32Array; classes: number }> {
    return this.read(imagePath, imageName, geometry);
  }

  /** Runs the teacher on one image and writes its entry (a cache miss). */
  private async label(imagePath: string, hash: string, imageName: string): Promise<void> {
    if (this.options.noTeacher || !this.teacher) {
      throw new SoftsegError(`no cached teacher output for ${imageName}`, { file: imagePath, hint: 'run `softseg label` for these images first, or drop --no-teacher to compute misses on the fly' });
    }
    this.options.onMiss?.(imagePath);
    const image = await decodeImage(imagePath);
    const probs = await this.teacher.predict(image);
    await this.cache.put(this.fingerprint, hash, probs, { width: image.width, height: image.height, numClasses: this.numClasses, mode: 'soft', k: Math.min(this.options.k ?? DEFAULT_K, this.numClasses), imageName });
    this.misses++;
  }

  private async read(imagePath: string, imageName: string, warp?: WarpSpec): Promise<{ probs: Float32Array; classes: number }> {
    const hash = await this.imageHash(imagePath);
    const request: SoftCropRequest = { dir: this.cache.dir, fingerprint: this.fingerprint, imageHash: hash, temperature: this.options.temperature ?? 1, warp };
    const readOnce = () => readSoftCrop(request);
    let crop = await readOnce().catch((e: unknown) => {
      if (!(e instanceof CorruptEntryError)) throw e;
      this.options.onCorrupt?.(e);
      return null;
    });
    if (!crop) {
      // one teacher run per image even when several samples of it miss at once (prefetched batches overlap)
      let filling = this.filling.get(hash);
      if (!filling) {
        filling = this.label(imagePath, hash, imageName).finally(() => this.filling.delete(hash));
        this.filling.set(hash, filling);
      }
      await filling;
      crop = await readOnce();
    } else this.hits++;
    if (!crop) throw new SoftsegError(`the cache entry of ${imageName} vanished right after it was written`, { file: imagePath });
    if (crop.numClasses !== this.numClasses) {
      throw new SoftsegError(`cached teacher output of ${imageName} has ${crop.numClasses} classes, the data set ${this.numClasses}`, { file: imagePath });
    }
    return { probs: crop.soft, classes: crop.numClasses };
  }
}
