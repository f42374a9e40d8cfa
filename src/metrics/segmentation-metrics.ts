/**
 * Streaming evaluation metrics for semantic segmentation (method.md §7): dataset-, image- and
 * class-level accuracy / IoU / Dice, their worst-case variants, and ECE / SCE calibration.
 *
 * Memory. Pixel-level state is constant in the number of images: the dataset-level metrics use a
 * C×C confusion matrix and calibration-bin accumulators (B bins for ECE^D, C×B for SCE^D); ECE^I and
 * SCE^I are per-image values that are only summed. The worst-case statistics (`mIoUI5`, `mIoUIQ`,
 * `mIoUC5`, …) are means of the q% smallest per-image values, which no fixed-size summary yields
 * exactly for every q, so the accumulator keeps ONE float64 per image and metric for the
 * image-level values and one per (image, active class) and metric for the class-level values:
 * O(images·C) scalars, never pixels.
 *
 * All values are percentages (ECE in %, SCE in ‰), computed with float64 accumulation.
 */
import { SoftsegError } from '../errors.js';
import { binEdges, binIndex, eceFromBins } from './calibration.js';
import { confusionToAcc, confusionToDice, confusionToIoU } from './confusion.js';
import { Float64List, Q_SWEEP, SortedValues, worstCountClass, worstCountImage } from './worst-case.js';

/** Options of {@link SegmentationMetrics}. */
export interface SegmentationMetricsOptions {
  /** Number of classes C (≥ 2). */
  numClasses: number;
  /** Label value of pixels to ignore (default 255); `null` for none. */
  ignoreIndex?: number | null;
  /** Worst-case percentage q of the `mIoUI{q}` / `mIoUC{q}` metrics, in (0, 100] (default 1). */
  q?: number;
  /** Number of calibration bins B (default 10). */
  numBins?: number;
  /**
   * Binary segmentation (foreground = class 1): D-level, I-level and SCE use class 1 only and an
   * image's active classes are those in the ground truth OR the prediction. Default
   * `numClasses === 2`; only allowed with two classes.
   */
  binary?: boolean;
}

/** Shape of a batch of probabilities: `n` images, `c` classes, `h`×`w` pixels. */
export interface ProbShape {
  n: number;
  c: number;
  h: number;
  w: number;
}

/** Shape of a batch of hard label / prediction maps. */
export interface MapShape {
  n: number;
  h: number;
  w: number;
}

/** Memory layout of a probability tensor. */
export type ProbLayout = 'NCHW' | 'NHWC';

type MetricBase = 'mAcc' | 'mIoU' | 'mDice';
/** Keys of the q-worst metrics, e.g. `mIoUI5`, `mDiceC50`. */
export type WorstCaseKey = `${MetricBase}${'I' | 'C'}${number}`;

/** Everything {@link SegmentationMetrics.compute} returns. Scalars are percentages. */
export interface MetricsResult {
  /** Dataset level: overall pixel accuracy (binary: foreground recall). */
  Acc: number;
  mAccD: number;
  mIoUD: number;
  mDiceD: number;
  /** Image level: mean over images. */
  mAccI: number;
  mIoUI: number;
  mDiceI: number;
  /** Image level: average of the q-worst values over q = 10, 20, …, 100. */
  mAccIQ: number;
  mIoUIQ: number;
  mDiceIQ: number;
  /** Class level: mean over classes of the mean over images where the class is active. */
  mAccC: number;
  mIoUC: number;
  mDiceC: number;
  mAccCQ: number;
  mIoUCQ: number;
  mDiceCQ: number;
  /** q-worst metrics for the configured q: `mAccI{q}`, `mIoUI{q}`, `mDiceI{q}`, `mAccC{q}`, … */
  [key: WorstCaseKey]: number;
  /** Calibration (absent when any batch came without probabilities). ECE in %, SCE in ‰. */
  ECED?: number;
  ECEI?: number;
  SCED?: number;
  SCEI?: number;
  /** The worst-case percentage q used for the `…{q}` keys. */
  q: number;
  /** Images seen, and images with at least one valid pixel (the ones the I/C metrics average). */
  numImages: number;
  numValidImages: number;
  /** Per-class dataset-level values (%); `null` where the class's denominator is zero. */
  perClassIoU: (number | null)[];
  perClassDice: (number | null)[];
  perClassAcc: (number | null)[];
  /** Dataset confusion matrix over valid pixels, rows = ground truth, columns = prediction. */
  confusion: number[][];
}

/** The scalar metric names a result carries for worst-case percentage `q`, in a fixed order. */
export function metricKeys(q: number, calibration = true): string[] {
  const keys = ['Acc', 'mAccD', 'mIoUD', 'mDiceD'];
  for (const level of ['I', 'C']) {
    for (const suffix of ['', 'Q', String(q)]) {
      for (const base of ['mAcc', 'mIoU', 'mDice']) keys.push(`${base}${level}${suffix}`);
    }
  }
  if (calibration) keys.push('ECED', 'ECEI', 'SCED', 'SCEI');
  return keys;
}

/** The scalar metrics of a result as a plain record keyed like the reference vectors. */
export function metricScalars(result: MetricsResult): Record<string, number> {
  const out: Record<string, number> = {};
  const rec = result as unknown as Record<string, unknown>;
  for (const key of metricKeys(result.q, result.ECED !== undefined)) {
    const v = rec[key];
    if (typeof v === 'number') out[key] = v;
  }
  return out;
}

const METRICS = 3; // Acc, IoU, Dice
const ACC = 0;
const IOU = 1;
const DICE = 2;
const BASES: readonly MetricBase[] = ['mAcc', 'mIoU', 'mDice'];

/**
 * Streaming accumulator of the §7 metrics. Feed batches with {@link update} (probabilities) or
 * {@link updateFromPrediction} (hard predictions; calibration metrics then unavailable), read the
 * values with {@link compute}. Results do not depend on how images are split into batches.
 */
export class SegmentationMetrics {
  readonly numClasses: number;
  readonly ignoreIndex: number | null;
  readonly q: number;
  readonly numBins: number;
  readonly binary: boolean;

  private readonly edges: Float64Array;
  /** Dataset confusion matrix, row-major C×C (rows = ground truth). */
  private readonly confusionCounts: Float64Array;
  /** ECE^D bins. */
  private readonly eceTotal: Float64Array;
  private readonly eceCorrect: Float64Array;
  private readonly eceConf: Float64Array;
  /** SCE^D bins, C×B. */
  private readonly sceTotal: Float64Array;
  private readonly sceCorrect: Float64Array;
  private readonly sceConf: Float64Array;
  /** Per-image scratch. */
  private readonly imgTp: Float64Array;
  private readonly imgGt: Float64Array;
  private readonly imgPred: Float64Array;
  private readonly imgEceTotal: Float64Array;
  private readonly imgEceCorrect: Float64Array;
  private readonly imgEceConf: Float64Array;
  private readonly imgSceTotal: Float64Array;
  private readonly imgSceCorrect: Float64Array;
  private readonly imgSceConf: Float64Array;
  /** Sums of the per-image ECE / SCE (no storage). */
  private eceISum = 0;
  private sceISum = 0;
  private images = 0;
  private validImages = 0;
  private calibrationComplete = true;
  /** Per-image values (image level), one list per metric. */
  private readonly imageValues: Float64List[];
  /** Per-(image, active class) values (class level), index metric·C + class. */
  private readonly classValues: Float64List[];

  constructor(options: SegmentationMetricsOptions) {
    const { numClasses, ignoreIndex = 255, q = 1, numBins = 10 } = options;
    if (!Number.isInteger(numClasses) || numClasses < 2) {
      throw new SoftsegError(`numClasses must be an integer ≥ 2, got ${numClasses}`);
    }
    if (ignoreIndex !== null && !Number.isFinite(ignoreIndex)) {
      throw new SoftsegError(`ignoreIndex must be a number or null, got ${ignoreIndex}`);
    }
    if (ignoreIndex !== null && Number.isInteger(ignoreIndex) && ignoreIndex >= 0 && ignoreIndex < numClasses) {
      throw new SoftsegError(`ignoreIndex ${ignoreIndex} is a class id (numClasses = ${numClasses})`, {
        hint: 'use a label value outside 0..numClasses-1, e.g. 255',
      });
    }
    if (!(typeof q === 'number' && q > 0 && q <= 100)) {
      throw new SoftsegError(`q (worst-case percentage) must be in (0, 100], got ${q}`);
    }
    const binary = options.binary ?? numClasses === 2;
    if (binary && numClasses !== 2) {
      throw new SoftsegError(`binary metrics need numClasses = 2, got ${numClasses}`);
    }
    this.numClasses = numClasses;
    this.ignoreIndex = ignoreIndex;
    this.q = q;
    this.edges = binEdges(numBins);
    this.numBins = numBins;
    this.binary = binary;

    const C = numClasses;
    const B = numBins;
    this.confusionCounts = new Float64Array(C * C);
    this.eceTotal = new Float64Array(B);
    this.eceCorrect = new Float64Array(B);
    this.eceConf = new Float64Array(B);
    this.sceTotal = new Float64Array(C * B);
    this.sceCorrect = new Float64Array(C * B);
    this.sceConf = new Float64Array(C * B);
    this.imgTp = new Float64Array(C);
    this.imgGt = new Float64Array(C);
    this.imgPred = new Float64Array(C);
    this.imgEceTotal = new Float64Array(B);
    this.imgEceCorrect = new Float64Array(B);
    this.imgEceConf = new Float64Array(B);
    this.imgSceTotal = new Float64Array(C * B);
    this.imgSceCorrect = new Float64Array(C * B);
    this.imgSceConf = new Float64Array(C * B);
    this.imageValues = Array.from({ length: METRICS }, () => new Float64List());
    this.classValues = Array.from({ length: METRICS * C }, () => new Float64List(16));
  }

  /** Forget everything accumulated so far. */
  reset(): void {
    this.confusionCounts.fill(0);
    for (const a of [this.eceTotal, this.eceCorrect, this.eceConf, this.sceTotal, this.sceCorrect, this.sceConf]) a.fill(0);
    this.eceISum = 0;
    this.sceISum = 0;
    this.images = 0;
    this.validImages = 0;
    this.calibrationComplete = true;
    for (const l of this.imageValues) l.clear();
    for (const l of this.classValues) l.clear();
  }

  /** Number of images accumulated so far. */
  get imageCount(): number {
    return this.images;
  }

  /**
   * Adds a batch of class probabilities `prob` (`[n,c,h,w]` in `layout`, default NCHW) with hard
   * labels `label` (`[n,h,w]`, values `0..C−1` or `ignoreIndex`). The prediction is the first
   * argmax over classes.
   */
  update(prob: ArrayLike<number>, label: ArrayLike<number>, shape: ProbShape, layout: ProbLayout = 'NCHW'): void {
    const { n, h, w } = this.checkShape(shape);
    const C = this.numClasses;
    const P = h * w;
    if (prob.length !== n * C * P) {
      throw new SoftsegError(`probabilities have ${prob.length} values, expected n·c·h·w = ${n * C * P}`);
    }
    if (label.length !== n * P) {
      throw new SoftsegError(`labels have ${label.length} values, expected n·h·w = ${n * P}`);
    }
    if (layout !== 'NCHW' && layout !== 'NHWC') throw new SoftsegError(`unknown layout '${String(layout)}', expected NCHW or NHWC`);
    // index of prob[img, c, p] = base + c·cs + p·ps
    const cs = layout === 'NCHW' ? P : 1;
    const ps = layout === 'NCHW' ? 1 : C;
    const B = this.numBins;
    const edges = this.edges;
    for (let img = 0; img < n; img++) {
      const base = img * C * P;
      const lbase = img * P;
      this.beginImage();
      let sawIgnore = false;
      for (let p = 0; p < P; p++) {
        const y = this.readLabel(label[lbase + p]);
        if (y < 0) {
          sawIgnore = true;
          continue;
        }
        const off = base + p * ps;
        let pred = 0;
        let conf = prob[off];
        if (!(conf >= 0)) throw badProb(conf);
        for (let c = 1; c < C; c++) {
          const v = prob[off + c * cs];
          if (!(v >= 0)) throw badProb(v);
          if (v > conf) {
            conf = v;
            pred = c;
          }
        }
        this.countPixel(y, pred);
        const correct = pred === y ? 1 : 0;
        const b = binIndex(conf, edges);
        this.imgEceTotal[b] += 1;
        this.imgEceCorrect[b] += correct;
        this.imgEceConf[b] += conf;
        for (let c = 0; c < C; c++) {
          const v = prob[off + c * cs];
          const k = c * B + binIndex(v, edges);
          this.imgSceTotal[k] += 1;
          this.imgSceConf[k] += v;
          if (correct === 1 && c === y) this.imgSceCorrect[k] += 1;
        }
      }
      this.endImage(sawIgnore, true);
    }
  }

  /**
   * Adds a batch of hard predictions `pred` (`[n,h,w]`, values `0..C−1`) with labels `label`.
   * Accuracy / IoU / Dice metrics are exact; the calibration metrics become unavailable.
   */
  updateFromPrediction(pred: ArrayLike<number>, label: ArrayLike<number>, shape: MapShape): void {
    const { n, h, w } = this.checkShape({ ...shape, c: this.numClasses });
    const C = this.numClasses;
    const P = h * w;
    if (pred.length !== n * P) throw new SoftsegError(`predictions have ${pred.length} values, expected n·h·w = ${n * P}`);
    if (label.length !== n * P) throw new SoftsegError(`labels have ${label.length} values, expected n·h·w = ${n * P}`);
    this.calibrationComplete = false;
    for (let img = 0; img < n; img++) {
      this.beginImage();
      for (let p = 0; p < P; p++) {
        const y = this.readLabel(label[img * P + p]);
        if (y < 0) continue;
        const k = pred[img * P + p];
        if (!(Number.isInteger(k) && k >= 0 && k < C)) {
          throw new SoftsegError(`prediction value ${k} is not a class id 0..${C - 1}`);
        }
        this.countPixel(y, k);
      }
      this.endImage(false, false);
    }
  }

  /** All metric values accumulated so far. */
  compute(): MetricsResult {
    const C = this.numClasses;
    const confusion: number[][] = [];
    for (let g = 0; g < C; g++) confusion.push(Array.from(this.confusionCounts.subarray(g * C, (g + 1) * C)));
    const perClassIoU = confusionToIoU(confusion);
    const perClassDice = confusionToDice(confusion);
    const perClassAcc = confusionToAcc(confusion);

    // Dataset level (binary: foreground only); classes with a zero denominator are dropped.
    const dClasses = this.binary ? [1] : Array.from({ length: C }, (_, c) => c);
    let tpSum = 0;
    let gtSum = 0;
    for (const c of dClasses) {
      tpSum += this.confusionCounts[c * C + c];
      for (let p = 0; p < C; p++) gtSum += this.confusionCounts[c * C + p];
    }
    const meanOver = (vals: (number | null)[]): number => {
      let s = 0;
      let k = 0;
      for (const c of dClasses) {
        const v = vals[c];
        if (v === null) continue;
        s += v;
        k++;
      }
      return k === 0 ? Number.NaN : s / k;
    };

    const result: MetricsResult = {
      Acc: gtSum > 0 ? (100 * tpSum) / gtSum : Number.NaN,
      mAccD: meanOver(perClassAcc),
      mIoUD: meanOver(perClassIoU),
      mDiceD: meanOver(perClassDice),
      mAccI: Number.NaN,
      mIoUI: Number.NaN,
      mDiceI: Number.NaN,
      mAccIQ: Number.NaN,
      mIoUIQ: Number.NaN,
      mDiceIQ: Number.NaN,
      mAccC: Number.NaN,
      mIoUC: Number.NaN,
      mDiceC: Number.NaN,
      mAccCQ: Number.NaN,
      mIoUCQ: Number.NaN,
      mDiceCQ: Number.NaN,
      q: this.q,
      numImages: this.images,
      numValidImages: this.validImages,
      perClassIoU,
      perClassDice,
      perClassAcc,
      confusion,
    };

    for (let m = 0; m < METRICS; m++) {
      const base = BASES[m];
      // Image level.
      const img = new SortedValues(this.imageValues[m]);
      const worstI = (q: number): number => (img.count === 0 ? Number.NaN : 100 * img.meanOfSmallest(worstCountImage(q, img.count)));
      result[`${base}I`] = 100 * img.mean();
      result[`${base}IQ`] = mean(Q_SWEEP.map(worstI));
      result[`${base}I${this.q}`] = worstI(this.q);
      // Class level: classes never active are skipped.
      const cls: SortedValues[] = [];
      for (let c = 0; c < C; c++) {
        const s = new SortedValues(this.classValues[m * C + c]);
        if (s.count > 0) cls.push(s);
      }
      const worstC = (q: number): number => 100 * mean(cls.map((s) => s.meanOfSmallest(worstCountClass(q, s.count))));
      result[`${base}C`] = 100 * mean(cls.map((s) => s.mean()));
      result[`${base}CQ`] = mean(Q_SWEEP.map(worstC));
      result[`${base}C${this.q}`] = worstC(this.q);
    }

    if (this.calibrationComplete && this.images > 0) {
      const B = this.numBins;
      result.ECED = eceFromBins(this.eceTotal, this.eceCorrect, this.eceConf);
      result.ECEI = this.eceISum / this.images;
      const sClasses = this.binary ? [1] : Array.from({ length: C }, (_, c) => c);
      let sce = 0;
      for (const c of sClasses) sce += eceFromBins(this.sceTotal, this.sceCorrect, this.sceConf, c * B, B);
      result.SCED = (10 * sce) / sClasses.length;
      result.SCEI = (10 * this.sceISum) / this.images;
    }
    return result;
  }

  // ---------------------------------------------------------------------------------------------

  private checkShape(shape: ProbShape): ProbShape {
    const { n, c, h, w } = shape;
    for (const [name, v] of [['n', n], ['c', c], ['h', h], ['w', w]] as const) {
      if (!Number.isInteger(v) || v < 0) throw new SoftsegError(`shape.${name} must be a non-negative integer, got ${v}`);
    }
    if (c !== this.numClasses) {
      throw new SoftsegError(`probabilities have ${c} classes but the metrics were set up for ${this.numClasses}`);
    }
    return shape;
  }

  /** The class id of a label value, or −1 for an ignored pixel; throws for anything else. */
  private readLabel(v: number): number {
    if (v === this.ignoreIndex) return -1;
    if (!(Number.isInteger(v) && v >= 0 && v < this.numClasses)) {
      throw new SoftsegError(`label value ${v} is neither a class id 0..${this.numClasses - 1} nor the ignore index ${String(this.ignoreIndex)}`);
    }
    return v;
  }

  private beginImage(): void {
    this.imgTp.fill(0);
    this.imgGt.fill(0);
    this.imgPred.fill(0);
    this.imgEceTotal.fill(0);
    this.imgEceCorrect.fill(0);
    this.imgEceConf.fill(0);
    this.imgSceTotal.fill(0);
    this.imgSceCorrect.fill(0);
    this.imgSceConf.fill(0);
  }

  private countPixel(y: number, pred: number): void {
    this.confusionCounts[y * this.numClasses + pred] += 1;
    this.imgGt[y] += 1;
    this.imgPred[pred] += 1;
    if (y === pred) this.imgTp[y] += 1;
  }

  /** Folds the per-image scratch into the accumulators. */
  private endImage(sawIgnore: boolean, withCalibration: boolean): void {
    const C = this.numClasses;
    const B = this.numBins;
    this.images++;
    let valid = 0;
    for (let c = 0; c < C; c++) valid += this.imgGt[c];

    if (withCalibration) {
      for (let b = 0; b < B; b++) {
        this.eceTotal[b] += this.imgEceTotal[b];
        this.eceCorrect[b] += this.imgEceCorrect[b];
        this.eceConf[b] += this.imgEceConf[b];
      }
      for (let k = 0; k < C * B; k++) {
        this.sceTotal[k] += this.imgSceTotal[k];
        this.sceCorrect[k] += this.imgSceCorrect[k];
        this.sceConf[k] += this.imgSceConf[k];
      }
      // ECE^I: an image without valid pixels contributes 0 (quirk, method.md §7.4).
      this.eceISum += eceFromBins(this.imgEceTotal, this.imgEceCorrect, this.imgEceConf);
      // SCE^I: classes of the label map clamped to [0, C−1], ignored pixels included (quirk).
      let classes: number[];
      if (this.binary) classes = [1];
      else {
        classes = [];
        for (let c = 0; c < C; c++) if (this.imgGt[c] > 0) classes.push(c);
        if (sawIgnore && this.ignoreIndex !== null) {
          const clamped = Math.min(C - 1, Math.max(0, Math.trunc(this.ignoreIndex)));
          if (!classes.includes(clamped)) classes.push(clamped);
        }
      }
      let sce = 0;
      for (const c of classes) sce += eceFromBins(this.imgSceTotal, this.imgSceCorrect, this.imgSceConf, c * B, B);
      this.sceISum += classes.length === 0 ? 0 : sce / classes.length;
    }

    if (valid === 0) return; // skipped entirely by the accuracy / IoU / Dice metrics
    this.validImages++;

    const imageSums = [0, 0, 0];
    let active = 0;
    let accDefined = true;
    for (let c = 0; c < C; c++) {
      const tp = this.imgTp[c];
      const fn = this.imgGt[c] - tp;
      const fp = this.imgPred[c] - tp;
      const inGt = this.imgGt[c] > 0;
      const isActive = this.binary ? inGt || this.imgPred[c] > 0 : inGt;
      if (!isActive) continue;
      active++;
      const iou = tp / (tp + fp + fn);
      const dice = (2 * tp) / (2 * tp + fp + fn);
      this.classValues[IOU * C + c].push(iou);
      this.classValues[DICE * C + c].push(dice);
      // Accuracy (recall) is 0/0 for a class active only through the prediction (binary only):
      // [ours] that (image, class) pair is left out of the accuracy means.
      if (inGt) this.classValues[ACC * C + c].push(tp / (tp + fn));
      else if (c === 1) accDefined = false;
      imageSums[ACC] += inGt ? tp / (tp + fn) : 0;
      imageSums[IOU] += iou;
      imageSums[DICE] += dice;
    }
    if (this.binary) {
      if (active < 2) {
        for (let m = 0; m < METRICS; m++) this.imageValues[m].push(1);
      } else {
        const tp = this.imgTp[1];
        const fn = this.imgGt[1] - tp;
        const fp = this.imgPred[1] - tp;
        if (accDefined) this.imageValues[ACC].push(tp / (tp + fn));
        this.imageValues[IOU].push(tp / (tp + fp + fn));
        this.imageValues[DICE].push((2 * tp) / (2 * tp + fp + fn));
      }
    } else {
      for (let m = 0; m < METRICS; m++) this.imageValues[m].push(imageSums[m] / active);
    }
  }
}

function badProb(v: number): SoftsegError {
  return new SoftsegError(`probability ${v} is not a number ≥ 0`, { hint: 'pass softmax probabilities, not logits' });
}

function mean(values: readonly number[]): number {
  if (values.length === 0) return Number.NaN;
  let s = 0;
  for (const v of values) s += v;
  return s / values.length;
}
