// Evaluation metrics (method.md §7): accuracy / IoU / Dice at dataset, image and class level,
// worst-case variants, ECE and SCE calibration.
export { SegmentationMetrics, metricKeys, metricScalars } from './segmentation-metrics.js';
export type { SegmentationMetricsOptions, ProbShape, MapShape, ProbLayout, MetricsResult, WorstCaseKey } from './segmentation-metrics.js';
export { confusionCounts, confusionToIoU, confusionToDice, confusionToAcc, meanDefined } from './confusion.js';
export type { ClassCounts } from './confusion.js';
export { binEdges, binIndex, eceFromBins } from './calibration.js';
export { worstCountImage, worstCountClass, Q_SWEEP } from './worst-case.js';
export { evaluateMetricsCase } from './reference-case.js';
export type { MetricsVectorCase, VectorTensor } from './reference-case.js';
