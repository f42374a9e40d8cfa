/**
 * Evaluates one `metrics` case of the reference vectors (`test/fixtures/reference-vectors.json`):
 * `options` {num_classes, ignore_index, q, num_bins, binary}, `inputs` {prob [N,C,H,W], label [N,H,W]}.
 * Returns the computed values keyed like the case's `expected` (key names built from `q`).
 */
import { SoftsegError } from '../errors.js';
import { SegmentationMetrics, metricScalars } from './segmentation-metrics.js';

/** A tensor as written in the vector file: row-major `data` with its `shape`. */
export interface VectorTensor {
  shape: number[];
  dtype?: string;
  data: number[];
}

/** The parts of a `metrics` vector case this function reads. */
export interface MetricsVectorCase {
  id?: string;
  kind?: string;
  options: {
    num_classes: number;
    ignore_index?: number | null;
    q?: number;
    num_bins?: number;
    binary?: boolean;
  };
  inputs: { prob: VectorTensor; label: VectorTensor };
}

function tensor(value: unknown, name: string, rank: number): VectorTensor {
  const t = value as Partial<VectorTensor> | null | undefined;
  if (!t || !Array.isArray(t.shape) || !Array.isArray(t.data) || t.shape.length !== rank) {
    throw new SoftsegError(`metrics case: inputs.${name} must be a rank-${rank} tensor {shape, data}`);
  }
  const size = t.shape.reduce((a, b) => a * b, 1);
  if (t.data.length !== size) {
    throw new SoftsegError(`metrics case: inputs.${name} has ${t.data.length} values for shape [${t.shape.join(', ')}]`);
  }
  return t as VectorTensor;
}

/** Computes every metric of a parsed `metrics` vector case. */
export function evaluateMetricsCase(caseObj: unknown): Record<string, number> {
  const c = caseObj as Partial<MetricsVectorCase> | null | undefined;
  const where = c?.id ? ` '${c.id}'` : '';
  if (!c || typeof c !== 'object' || !c.options || !c.inputs) {
    throw new SoftsegError(`metrics case${where}: needs 'options' and 'inputs'`);
  }
  if (c.kind !== undefined && c.kind !== 'metrics') {
    throw new SoftsegError(`case${where} has kind '${c.kind}', expected 'metrics'`);
  }
  const prob = tensor(c.inputs.prob, 'prob', 4);
  const label = tensor(c.inputs.label, 'label', 3);
  const [n, numClasses, h, w] = prob.shape;
  const o = c.options;
  const metrics = new SegmentationMetrics({
    numClasses: o.num_classes,
    ignoreIndex: o.ignore_index === undefined ? 255 : o.ignore_index,
    q: o.q ?? 1,
    numBins: o.num_bins ?? 10,
    binary: o.binary ?? undefined,
  });
  if (label.shape[0] !== n || label.shape[1] !== h || label.shape[2] !== w) {
    throw new SoftsegError(`metrics case${where}: label shape [${label.shape.join(', ')}] does not match prob [${prob.shape.join(', ')}]`);
  }
  // The reference evaluated float32 probabilities.
  metrics.update(Float32Array.from(prob.data), label.data, { n, c: numClasses, h, w });
  return metricScalars(metrics.compute());
}
