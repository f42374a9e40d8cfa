/**
 * Optimizers of the training engine: AdamW (Adam with decoupled weight decay, as PyTorch's AdamW) and SGD
 * with momentum, with a learning rate set per step by the schedule, and state that checkpoints can save.
 */
import * as tf from '@tensorflow/tfjs';
import { SoftsegError } from '../errors.js';

export type OptimizerKind = 'adamw' | 'sgd';

/** Named state tensors (moments, iteration count) as TF.js optimizers save them. */
export type OptimizerState = Awaited<ReturnType<tf.Optimizer['getWeights']>>;

export interface OptimizerConfig {
  kind?: OptimizerKind;
  /** Peak learning rate (the schedule scales it per step). */
  lr?: number;
  /** Decoupled weight decay (AdamW) or L2 decay added to the gradient (SGD); not applied to biases and batch-norm parameters. */
  weightDecay?: number;
  beta1?: number;
  beta2?: number;
  epsilon?: number;
  /** SGD momentum. */
  momentum?: number;
}

export const OPTIMIZER_DEFAULTS: Required<OptimizerConfig> = {
  kind: 'adamw',
  lr: 1e-3,
  weightDecay: 1e-4,
  beta1: 0.9,
  beta2: 0.999,
  epsilon: 1e-8,
  momentum: 0.9,
};

/** Weights that get weight decay: convolution and dense kernels, not biases, batch-norm gamma/beta. */
export function decays(variableName: string): boolean {
  return /(^|\/)(depthwise_)?kernel(_\d+)?$/.test(variableName);
}

export class SegOptimizer {
  readonly config: Required<OptimizerConfig>;
  private readonly inner: tf.Optimizer;
  private lr: number;

  constructor(config: OptimizerConfig = {}) {
    this.config = { ...OPTIMIZER_DEFAULTS, ...Object.fromEntries(Object.entries(config).filter(([, v]) => v !== undefined)) };
    const c = this.config;
    if (!(c.lr > 0) || !Number.isFinite(c.lr)) throw new SoftsegError(`learning rate must be > 0, got ${c.lr}`);
    if (!(c.weightDecay >= 0)) throw new SoftsegError(`weight decay must be ≥ 0, got ${c.weightDecay}`);
    if (c.kind !== 'adamw' && c.kind !== 'sgd') throw new SoftsegError(`optimizer must be adamw or sgd, got ${String(c.kind)}`);
    this.lr = c.lr;
    this.inner = c.kind === 'adamw' ? tf.train.adam(c.lr, c.beta1, c.beta2, c.epsilon) : tf.train.momentum(c.lr, c.momentum);
  }

  /** Sets the learning rate of the next update (the schedule calls this every step). */
  setLearningRate(lr: number): void {
    this.lr = lr;
    // TF.js optimizers read this field on every applyGradients call.
    (this.inner as unknown as { learningRate: number }).learningRate = lr;
  }

  get learningRate(): number {
    return this.lr;
  }

  /** Applies gradients keyed by variable name (the caller keeps ownership of them); decay first, as PyTorch's AdamW does. */
  apply(grads: tf.NamedTensorMap): void {
    const wd = this.config.weightDecay;
    const decayed = wd > 0 ? Object.keys(grads).filter((name) => decays(name) && tf.engine().registeredVariables[name]) : [];
    if (this.config.kind === 'adamw') {
      tf.tidy(() => {
        for (const name of decayed) {
          const v = tf.engine().registeredVariables[name]!;
          v.assign(tf.mul(v, 1 - this.lr * wd));
        }
      });
      this.inner.applyGradients(grads);
      return;
    }
    // SGD: classic L2 decay folded into the gradient.
    const withDecay: tf.NamedTensorMap = { ...grads };
    const made: tf.Tensor[] = [];
    for (const name of decayed) {
      const t = tf.tidy(() => tf.add(grads[name]!, tf.mul(tf.engine().registeredVariables[name]!, wd)));
      withDecay[name] = t;
      made.push(t);
    }
    this.inner.applyGradients(withDecay);
    tf.dispose(made);
  }

  /** Optimizer state (moments, iteration count) for a checkpoint. */
  async getState(): Promise<OptimizerState> {
    return this.inner.getWeights();
  }

  async setState(state: OptimizerState): Promise<void> {
    await this.inner.setWeights(state);
  }

  dispose(): void {
    this.inner.dispose();
  }
}
