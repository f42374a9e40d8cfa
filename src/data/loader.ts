// The streaming batch loader: decode ‖ augment through a p-queue with at most `prefetch` batches in flight,
// a deterministic schedule (epoch e's order from (seed, e); sample i's augmentation from (seed, e, i)), so the
// batch at step s is the same whether or not the run was resumed at `startStep`.
import { performance } from 'node:perf_hooks';
import PQueue from 'p-queue';
import { augmentPreset, augmentSample, type AugmentOptions, type AugmentPreset } from '../augment/augment.js';
import type { WarpSpec } from '../augment/geometric.js';
import type { PhotometricOptions } from '../augment/photometric.js';
import { IMAGENET_NORMALIZATION, type Normalization } from '../augment/normalize.js';
import { BadFileError, SoftsegError } from '../errors.js';
import type { Dataset, DatasetItem } from './dataset.js';
import type { DecodedImage, DecodedMask } from './decode.js';
import { randomFor } from './seed.js';
import { forgetDecoded, loadSampleFiles, samplePreparer, type SoftCacheSource } from './sample.js';

export interface LoaderOptions {
  batchSize: number;
  /** Output size: S or [height, width]. */
  crop: number | [number, number];
  /**
   * Augmentation: a preset name (default 'default'), options without the crop size, or false (no randomness:
   * centred crop/pad to the crop size).
   */
  augment?: AugmentPreset | Omit<AugmentOptions, 'crop' | 'normalize' | 'ignoreIndex'> | false;
  /** Reshuffle every epoch (default true). */
  shuffle?: boolean;
  seed?: number;
  /** Default ImageNet; false keeps the 0..1 scale. */
  normalize?: Normalization | false;
  /** Batches in flight (being prepared or ready, not yet returned), default 2. */
  prefetch?: number;
  /** Samples decoded/augmented at once, default every prefetched one (prefetch × batch size, at most 32). */
  concurrency?: number;
  /** Keep decoded images and masks in memory after their first use (this thread only: sample workers decode each time). */
  cacheImages?: boolean;
  /** Drop the last incomplete batch of each epoch (default true). */
  dropLast?: boolean;
  /** The first step to return (resume). */
  startStep?: number;
  /**
   * Per-pixel soft labels for an item (e.g. a teacher's probabilities from the cache), HWC at the image's
   * resolution: they get the same geometric augmentation as the image, and the batch carries them as
   * `teacherProb` with a `keep` mask that is 0 on padding.
   */
  soft?: (item: DatasetItem, index: number) => Promise<{ probs: Float32Array; classes: number }>;
  /**
   * Also return a strongly augmented view of every crop (same geometry, these photometric options instead of
   * the augmentation's own) as `strongImages` — the student view of semi-supervised training.
   */
  strongView?: PhotometricOptions;
  /** Return the `keep` mask (0 on padding) even without `soft`. */
  keepMask?: boolean;
  /**
   * Soft labels from a teacher-output cache, read where the sample is prepared (on the sample workers with
   * `workers`); `onMiss` supplies them (e.g. runs the teacher) for images without a valid entry.
   */
  softCache?: SoftCacheSource & {
    onMiss: (item: DatasetItem, index: number, geometry: WarpSpec, reason: string) => Promise<{ probs: Float32Array; classes: number }>;
  };
  /**
   * An item whose image or mask fails to read (a BadFileError: changed or broken since validation) is skipped —
   * reported once through `onSkip` — and the next readable item of the data set takes its place in the batch
   * (deterministic: the same files give the same batches). Without it the failure stops the run, naming the file.
   */
  skipBad?: boolean;
  onSkip?: (problem: { file: string; reason: string }) => void;
  /**
   * Worker threads that decode and augment samples (and read `softCache`), shared by the process's loaders;
   * 0 (default) prepares them in this thread. Ignored with the `soft` hook, which runs here.
   */
  workers?: number;
}

/** One batch: NHWC normalised images and N×H×W class ids (the ignore index marks padding and unlabeled pixels). */
export interface Batch {
  images: Float32Array;
  /** [N, H, W, 3] the strong view of the same crops, with `strongView`. */
  strongImages?: Float32Array;
  masks?: Int32Array;
  /** [N, H, W, C] soft labels, when the loader was given `soft`. */
  teacherProb?: Float32Array;
  /** [N, H, W] 1 where a pixel holds image content (0 on padding), with `soft` or `keepMask`. */
  keep?: Uint8Array;
  /** Channels of teacherProb. */
  classes?: number;
  ids: string[];
  /** Number of samples (the last batch of an epoch can be smaller when dropLast is false). */
  n: number;
  size: [number, number];
  step: number;
  epoch: number;
}

export interface LoaderStats {
  batches: number;
  /** Time the consumer spent waiting inside next(). */
  waitMs: number;
  /** Time from the first next() call to the latest return. */
  totalMs: number;
  /** waitMs / totalMs (0 before two batches). */
  waitFraction: number;
  /** Time spent decoding (sum over parallel jobs) and augmenting (main thread). */
  decodeMs: number;
  augmentMs: number;
  samples: number;
  inFlight: number;
  maxInFlight: number;
  cachedImages: number;
}

export interface Loader {
  /** The batch of the next step. */
  next(): Promise<Batch>;
  /** Stops prefetching and waits for running jobs; nothing keeps the process alive afterwards. */
  close(): Promise<void>;
  stats(): LoaderStats;
  /** Starts the wait/total clocks again (e.g. after warm-up). */
  resetStats(): void;
  readonly stepsPerEpoch: number;
  /** The step next() returns next. */
  readonly step: number;
  readonly normalization: Normalization | false;
}

interface Loaded {
  image: DecodedImage;
  mask?: DecodedMask;
}

/** What a prepared or augmented sample gives the batch. */
interface AugmentedLike {
  image: Float32Array;
  strongImage?: Float32Array;
  mask?: Uint8Array;
  keep?: Uint8Array;
  soft?: Float32Array;
}

/** Creates a streaming loader over a data set. See {@link LoaderOptions}. */
export function createLoader(ds: Dataset, options: LoaderOptions): Loader {
  const B = options.batchSize;
  if (!Number.isInteger(B) || B < 1) throw new SoftsegError(`batch size must be a positive integer, got ${B}`);
  const [oh, ow] = typeof options.crop === 'number' ? [options.crop, options.crop] : options.crop;
  if (!(oh >= 1 && ow >= 1)) throw new SoftsegError(`crop size must be positive, got ${String(options.crop)}`);
  const n = ds.items.length;
  if (n === 0) throw new SoftsegError('the data set has no items', { file: ds.root });
  const dropLast = options.dropLast ?? true;
  const stepsPerEpoch = dropLast ? Math.floor(n / B) : Math.ceil(n / B);
  if (stepsPerEpoch === 0) {
    throw new SoftsegError(`batch size ${B} is larger than the data set (${n} items)`, { file: ds.root, hint: 'use a smaller --batch-size' });
  }
  const seed = (options.seed ?? 0) >>> 0;
  const shuffle = options.shuffle ?? true;
  const prefetch = Math.max(1, options.prefetch ?? 2);
  const normalize = options.normalize === undefined ? IMAGENET_NORMALIZATION : options.normalize;
  const aug = options.augment ?? 'default';
  const augOpts: AugmentOptions =
    aug === false
      ? { crop: [oh, ow], scale: false, flip: 0, cropPosition: 'center' }
      : typeof aug === 'string'
        ? augmentPreset(aug, [oh, ow])
        : { ...aug, crop: [oh, ow] };
  augOpts.normalize = normalize;
  augOpts.ignoreIndex = ds.ignoreIndex;
  if (options.strongView) augOpts.strongView = options.strongView;
  const hooks = options.soft !== undefined;
  const wantSoft = hooks || options.softCache !== undefined;
  const preparer = hooks ? null : samplePreparer(options.workers ?? 0);
  preparer?.catch(() => undefined);
  const wantKeep = wantSoft || options.keepMask === true;
  const labeled = ds.labeled && ds.items.every((it) => it.mask !== undefined);

  // Every prefetched sample in flight at once: a training step on the main thread rarely yields, so a sample
  // advances one stage (decode → augment → soft labels) per gap between steps; with few in flight the rest of
  // the pipeline lands in the next wait (mobile-unet 64² b8: loader wait 30% at 2, 12% at 16).
  const queue = new PQueue({ concurrency: Math.max(1, options.concurrency ?? Math.min(32, prefetch * B)) });
  const cachedIndices = new Set<number>();
  const pending = new Map<number, Promise<Batch>>();
  let nextStep = Math.max(0, Math.floor(options.startStep ?? 0));
  let scheduledUpTo = nextStep; // first step not yet scheduled
  let closed = false;
  // Rejects a next() that is still waiting when close() is called (cleared queue jobs never settle). One waiter
  // per call, dropped when it settles: racing every batch against one long-lived "closed" promise would hang a
  // reaction on it per step, each holding its settled batch until close() (~ a batch of memory per step).
  const waiters = new Set<(err: Error) => void>();

  const st = { batches: 0, waitMs: 0, firstCall: -1, lastReturn: -1, decodeMs: 0, augmentMs: 0, samples: 0, maxInFlight: 0 };

  const perms = new Map<number, Uint32Array>();
  function permutation(epoch: number): Uint32Array {
    let p = perms.get(epoch);
    if (!p) {
      const order = Array.from({ length: n }, (_, i) => i);
      if (shuffle) randomFor(seed, 0x5eed, epoch).shuffle(order);
      p = Uint32Array.from(order);
      perms.set(epoch, p);
      for (const k of perms.keys()) if (k < epoch - 1) perms.delete(k);
    }
    return p;
  }

  const fileRequest = (item: DatasetItem, cacheImages: boolean) => ({
    image: item.image, mask: labeled ? item.mask : undefined, palette: ds.palette, numClasses: ds.numClasses, ignoreIndex: ds.ignoreIndex, cacheImages,
  });

  async function load(index: number): Promise<Loaded> {
    const t = performance.now();
    const loaded = await loadSampleFiles(fileRequest(ds.items[index]!, options.cacheImages === true));
    st.decodeMs += performance.now() - t;
    if (options.cacheImages && !closed) cachedIndices.add(index);
    return loaded;
  }

  /** The sample through prepareSample (here or on a sample worker), soft labels of misses filled in here. */
  async function prepared(index: number, epoch: number): Promise<AugmentedLike & { classes?: number }> {
    const item = ds.items[index]!;
    const p = await preparer!;
    const inThread = p.threads === 0;
    const soft = options.softCache;
    const sample = await p.prepare({
      ...fileRequest(item, inThread && options.cacheImages === true), seed, epoch, index, augment: augOpts, keep: wantKeep,
      soft: soft ? { dir: soft.dir, fingerprint: soft.fingerprint, temperature: soft.temperature } : undefined,
    });
    st.decodeMs += sample.decodeMs;
    st.augmentMs += sample.augmentMs;
    if (inThread && options.cacheImages && !closed) cachedIndices.add(index);
    if (soft && sample.softMissing !== undefined) {
      const c = await soft.onMiss(item, index, sample.geometry, sample.softMissing);
      sample.soft = c.probs;
      sample.classes = c.classes;
    }
    if (sample.soft && sample.soft.length !== oh * ow * sample.classes!) {
      throw new SoftsegError(`soft labels have ${sample.soft.length} values, expected ${oh}×${ow}×${sample.classes}`, { file: item.image });
    }
    return sample;
  }

  /** The sample with the `soft` hook: decoded and augmented here, with the hook's full-size soft labels. */
  async function withHooks(index: number, epoch: number): Promise<AugmentedLike & { classes?: number }> {
    const item = ds.items[index]!;
    const [{ image, mask }, full] = await Promise.all([load(index), options.soft?.(item, index)]);
    const t = performance.now();
    if (full && full.probs.length !== image.width * image.height * full.classes) {
      throw new SoftsegError(`soft labels have ${full.probs.length} values, expected ${image.height}×${image.width}×${full.classes}`, { file: item.image });
    }
    const out: AugmentedLike & { classes?: number } = augmentSample(
      {
        image: image.data, mask: mask?.data, soft: full?.probs, width: image.width, height: image.height,
        keep: wantKeep && !full ? new Uint8Array(image.width * image.height).fill(1) : undefined,
      },
      randomFor(seed, epoch, index),
      augOpts,
    );
    st.augmentMs += performance.now() - t;
    out.classes = full?.classes;
    return out;
  }

  /** Items that failed to read (skipBad): never tried again. */
  const badItems = new Set<number>();

  /** The sample of `index`, or with skipBad of the next readable item after it when its files fail to read. */
  async function sampleOrNext(index: number, epoch: number): Promise<{ out: AugmentedLike & { classes?: number }; used: number }> {
    for (let k = 0, i = index; k < n; k++, i = (i + 1) % n) {
      if (badItems.has(i)) continue;
      try {
        return { out: preparer ? await prepared(i, epoch) : await withHooks(i, epoch), used: i };
      } catch (e) {
        if (!options.skipBad || !(e instanceof BadFileError)) throw e;
        if (!badItems.has(i)) {
          badItems.add(i);
          options.onSkip?.({ file: e.file!, reason: e.message });
        }
      }
    }
    throw new SoftsegError('no item of the data set could be read (--skip-bad skipped them all)', { file: ds.root });
  }

  function schedule(step: number): void {
    const epoch = Math.floor(step / stepsPerEpoch);
    const pos = step % stepsPerEpoch;
    const perm = permutation(epoch);
    const indices = Array.from(perm.subarray(pos * B, Math.min((pos + 1) * B, n)));
    const N = indices.length;
    const plane = oh * ow;
    const images = new Float32Array(N * plane * 3);
    const masks = labeled ? new Int32Array(N * plane) : undefined;
    const keep = wantKeep ? new Uint8Array(N * plane) : undefined;
    const strongImages = options.strongView ? new Float32Array(N * plane * 3) : undefined;
    const batch: Batch = { images, masks, keep, ids: indices.map((i) => ds.items[i]!.id), n: N, size: [oh, ow], step, epoch };
    if (strongImages) batch.strongImages = strongImages;
    const jobs = indices.map((index, j) =>
      queue.add(
        async () => {
          if (closed) return;
          const { out, used } = await sampleOrNext(index, epoch);
          if (closed) return;
          if (used !== index) batch.ids[j] = ds.items[used]!.id;
          images.set(out.image, j * plane * 3);
          if (strongImages && out.strongImage) strongImages.set(out.strongImage, j * plane * 3);
          if (out.soft && out.classes) {
            batch.classes = out.classes;
            batch.teacherProb ??= new Float32Array(N * plane * out.classes);
            batch.teacherProb.set(out.soft, j * plane * out.classes);
          }
          if (keep && out.keep) keep.set(out.keep, j * plane);
          if (masks && out.mask) {
            const m = out.mask;
            const o = j * plane;
            for (let i = 0; i < plane; i++) masks[o + i] = m[i]!;
          }
          st.samples++;
        },
        { priority: -step },
      ),
    );
    const p = Promise.all(jobs).then(() => batch);
    p.catch(() => undefined); // a prefetched batch may fail before anyone awaits it; next() rethrows
    pending.set(step, p);
    st.maxInFlight = Math.max(st.maxInFlight, pending.size);
  }

  function topUp(): void {
    while (!closed && pending.size < prefetch) schedule(scheduledUpTo++);
  }
  topUp();

  return {
    get stepsPerEpoch() {
      return stepsPerEpoch;
    },
    get step() {
      return nextStep;
    },
    normalization: normalize,
    async next(): Promise<Batch> {
      if (closed) throw new Error('loader is closed');
      const t0 = performance.now();
      if (st.firstCall < 0) st.firstCall = t0;
      const step = nextStep;
      if (!pending.has(step)) schedule(scheduledUpTo++);
      const p = pending.get(step)!;
      let batch: Batch;
      let reject: (err: Error) => void = () => undefined;
      try {
        batch = await new Promise<Batch>((res, rej) => {
          reject = rej;
          waiters.add(rej);
          p.then(res, rej);
        });
      } finally {
        waiters.delete(reject);
        pending.delete(step);
      }
      if (closed) throw new Error('loader is closed');
      nextStep++;
      topUp();
      const t1 = performance.now();
      st.waitMs += t1 - t0;
      st.lastReturn = t1;
      st.batches++;
      return batch;
    },
    async close(): Promise<void> {
      closed = true;
      for (const rej of waiters) rej(new Error('loader is closed'));
      waiters.clear();
      queue.clear();
      await queue.onIdle();
      pending.clear();
      if (options.cacheImages) forgetDecoded(ds.items.map((it) => it.image));
    },
    stats(): LoaderStats {
      const totalMs = st.firstCall < 0 || st.lastReturn < 0 ? 0 : st.lastReturn - st.firstCall;
      return {
        batches: st.batches,
        waitMs: st.waitMs,
        totalMs,
        waitFraction: totalMs > 0 && st.batches > 1 ? st.waitMs / totalMs : 0,
        decodeMs: st.decodeMs,
        augmentMs: st.augmentMs,
        samples: st.samples,
        inFlight: pending.size,
        maxInFlight: st.maxInFlight,
        cachedImages: cachedIndices.size,
      };
    },
    resetStats(): void {
      Object.assign(st, { batches: 0, waitMs: 0, firstCall: -1, lastReturn: -1, decodeMs: 0, augmentMs: 0, samples: 0 });
    },
  };
}

