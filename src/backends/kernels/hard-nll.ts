// SoftsegHardNll / SoftsegHardNllGrad (wasm and cpu): the hard-label part of softmax cross-entropy in one pass
// over the log-probabilities (logSoftmax stays a TF.js op). Forward: [Σ keep·(−logp[y]), Σ keep] over all rows
// (float64 sums; y clamped to [0, C − 1], keep = label ≠ ignoreIndex). Gradient (of the first output only):
// −dy[0]·keep at [row, y], 0 elsewhere.
import * as tf from '@tensorflow/tfjs';
import { allocOutput, readValues, writeOutput } from './kernel-io.js';

export const HARD_NLL = 'SoftsegHardNll';
export const HARD_NLL_GRAD = 'SoftsegHardNllGrad';

/** Inputs: logp [M, C] float32, label [M] int32. */
export interface HardNllAttrs {
  /** Labels equal to this are ignored; null: none. */
  ignoreIndex: number | null;
}

function rows(logp: tf.TensorInfo): [number, number] {
  if (logp.shape.length !== 2) throw new Error(`${HARD_NLL}: logp must be [M, C]`);
  return [logp.shape[0]!, logp.shape[1]!];
}

function hardNll(args: { inputs: tf.NamedTensorInfoMap; backend: unknown; attrs: unknown }): tf.TensorInfo {
  const { logp, label } = args.inputs as { logp: tf.TensorInfo; label: tf.TensorInfo };
  const { ignoreIndex } = args.attrs as unknown as HardNllAttrs;
  const [m, c] = rows(logp);
  const z = readValues(args.backend, logp);
  const lab = readValues(args.backend, label);
  let nll = 0;
  let count = 0;
  for (let i = 0; i < m; i++) {
    const raw = lab[i]!;
    if (ignoreIndex !== null && raw === ignoreIndex) continue;
    const y = raw < 0 ? 0 : raw > c - 1 ? c - 1 : raw;
    nll -= z[i * c + y]!;
    count++;
  }
  return writeOutput(args.backend, [2], Float32Array.of(nll, count));
}

function hardNllGrad(args: { inputs: tf.NamedTensorInfoMap; backend: unknown; attrs: unknown }): tf.TensorInfo {
  const { logp, label, dy } = args.inputs as { logp: tf.TensorInfo; label: tf.TensorInfo; dy: tf.TensorInfo };
  const { ignoreIndex } = args.attrs as unknown as HardNllAttrs;
  const [m, c] = rows(logp);
  const { info, values: out } = allocOutput(args.backend, [m, c]);
  const lab = readValues(args.backend, label);
  const g = -readValues(args.backend, dy)[0]!;
  for (let i = 0; i < m; i++) {
    const raw = lab[i]!;
    if (ignoreIndex !== null && raw === ignoreIndex) continue;
    const y = raw < 0 ? 0 : raw > c - 1 ? c - 1 : raw;
    out[i * c + y] = g;
  }
  return info;
}

const configs = (backendName: string): tf.KernelConfig[] => [
  { kernelName: HARD_NLL, backendName, kernelFunc: hardNll as unknown as tf.KernelFunc },
  { kernelName: HARD_NLL_GRAD, backendName, kernelFunc: hardNllGrad as unknown as tf.KernelFunc },
];

export const hardNllKernels: readonly tf.KernelConfig[] = [...configs('wasm'), ...configs('cpu')];
