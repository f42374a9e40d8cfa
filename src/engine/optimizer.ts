/**
 * Optimizers of the training engine: AdamW (Adam with decoupled weight decay, as PyTorch's AdamW) and SGD
 * with momentum, with a learning rate set per step by the schedule, and state that checkpoints can save.
 */
import * as tf from '@tensorflow/tfjs';
import { SoftsegError } from '../errors.js';
import { ADAMW, type AdamWAttrs } from '../backends/kernels/adamw.js';

export type OptimizerKind = 'adamw' | 'sgd';

/** Named state tensors (moments, iteration count) as TF.js optimizers save them. */
export type OptimizerState = Awaited<ReturnType<tf.Optimizer['getWeights']>>;

export interface OptimizerConfig {
  kind?: OptimizerKind;
  /** Peak learning rate (the schedule scales it per step). */
  lr?: number;
  /** Decoupled weight decay (AdamW) or L2 decay added to the gradient (SGD); on kernels only unless `decayAll`. */
  weightDecay?: number;
  /** Decay every parameter — biases and batch-norm γ/β too — as PyTorch's `AdamW(model.parameters())` does. */
  decayAll?: boolean;
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
  decayAll: false,
  beta1: 0.9,
  beta2: 0.999,
  epsilon: 1e-8,
  momentum: 0.9,
};

/** Weights that get weight decay: convolution and dense kernels, not biases, batch-norm gamma/beta. */
export function decays(variableName: string): boolean {
  return /(^|\/)(depthwise_)?kernel(_\d+)?$/.test(variableName);
}

interface Moments {
  m: tf.Variable;
  v: tf.Variable;
}

/**
 * AdamW (decoupled weight decay, as PyTorch's AdamW) or SGD with momentum. AdamW runs one fused
 * SoftsegAdamW kernel per variable where the backend has it (wasm with the project kernels) and the same
 * update as plain ops elsewhere; its state has tf.train.adam's layout: `iter` first, then `${variable}/m`
 * for every variable, then `${variable}/v`.
 */
export class SegOptimizer {
  readonly config: Required<OptimizerConfig>;
  /** SGD only: TF.js's momentum optimizer. */
  private readonly inner: tf.Optimizer | null;
  private lr: number;
  /** AdamW: moments per variable name, in the order the variables were first updated. */
  private readonly moments = new Map<string, Moments>();
  /** AdamW: completed updates (t of the bias corrections is iterations + 1). */
  private iterations = 0;
  private iterTensor: tf.Tensor | null = null;

  constructor(config: OptimizerConfig = {}) {
    this.config = { ...OPTIMIZER_DEFAULTS, ...Object.fromEntries(Object.entries(config).filter(([, v]) => v !== undefined)) };
    const c = this.config;
    if (!(c.lr > 0) || !Number.isFinite(c.lr)) throw new SoftsegError(`learning rate must be > 0, got ${c.lr}`);
    if (!(c.weightDecay >= 0)) throw new SoftsegError(`weight decay must be ≥ 0, got ${c.weightDecay}`);
    if (c.kind !== 'adamw' && c.kind !== 'sgd') throw new SoftsegError(`optimizer must be adamw or sgd, got ${String(c.kind)}`);
    this.lr = c.lr;
    this.inner = c.kind === 'sgd' ? tf.train.momentum(c.lr, c.momentum) : null;
  }

  /** Whether the variable of this name gets weight decay: kernels ({@link decays}), or every one with `decayAll`. */
  decays(variableName: string): boolean {
    return this.config.decayAll || decays(variableName);
  }

  /** Sets the learning rate of the next update (the schedule calls this every step). */
  setLearningRate(lr: number): void {
    this.lr = lr;
    // TF.js optimizers read this field on every applyGradients call.
    if (this.inner) (this.inner as unknown as { learningRate: number }).learningRate = lr;
  }

  get learningRate(): number {
    return this.lr;
  }

  /** Applies gradients keyed by variable name (the caller keeps ownership of them); decay first, as PyTorch's AdamW does. */
  apply(grads: tf.NamedTensorMap): void {
    const wd = this.config.weightDecay;
    if (this.config.kind === 'adamw') {
      this.applyAdamW(grads);
      return;
    }
    const decayed = wd > 0 ? Object.keys(grads).filter((name) => this.decays(name) && tf.engine().registeredVariables[name]) : [];
    // SGD: classic L2 decay folded into the gradient.
    const withDecay: tf.NamedTensorMap = { ...grads };
    const made: tf.Tensor[] = [];
    for (const name of decayed) {
      const t = tf.tidy(() => tf.add(grads[name]!, tf.mul(tf.engine().registeredVariables[name]!, wd)));
      withDecay[name] = t;
      made.push(t);
    }
    this.inner!.applyGradients(withDecay);
    tf.dispose(made);
  }

  private applyAdamW(grads: tf.NamedTensorMap): void {
    const { beta1, beta2, epsilon, weightDecay } = this.config;
    const t = this.iterations + 1;
    const bias1 = 1 - beta1 ** t;
    const bias2 = 1 - beta2 ** t;
    const fused = tf.getKernel(ADAMW, tf.getBackend()) !== undefined;
    for (const name of Object.keys(grads)) {
      const x = tf.engine().registeredVariables[name];
      const g = grads[name];
      if (x === undefined) throw new Error(`optimizer: no variable named ${name}`);
      if (g == null) continue;
      let state = this.moments.get(name);
      if (state === undefined) {
        state = tf.tidy(() => ({ m: tf.variable(tf.zerosLike(x), false), v: tf.variable(tf.zerosLike(x), false) }));
        this.moments.set(name, state);
      }
      const attrs: AdamWAttrs = { lr: this.lr, beta1, beta2, epsilon, decay: weightDecay > 0 && this.decays(name) ? this.lr * weightDecay : 0, bias1, bias2 };
      const { m, v } = state;
      tf.tidy(() => {
        let nx: tf.Tensor, nm: tf.Tensor, nv: tf.Tensor;
        if (fused) {
          [nx, nm, nv] = tf.engine().runKernel(ADAMW, { x, m, v, g }, attrs as unknown as tf.NamedAttrMap) as tf.Tensor[] as [tf.Tensor, tf.Tensor, tf.Tensor];
        } else {
          [nx, nm, nv] = adamWOps(x, m, v, g, attrs);
        }
        x.assign(nx);
        m.assign(nm);
        v.assign(nv);
      });
    }
    this.iterations = t;
  }

  /** Optimizer state (moments, iteration count) for a checkpoint. */
  async getState(): Promise<OptimizerState> {
    if (this.inner) return this.inner.getWeights();
    if (this.iterTensor) this.iterTensor.dispose();
    this.iterTensor = tf.keep(tf.scalar(this.iterations, 'int32'));
    const entries = [...this.moments];
    return [
      { name: 'iter', tensor: this.iterTensor },
      ...entries.map(([name, s]) => ({ name: `${name}/m`, tensor: s.m as tf.Tensor })),
      ...entries.map(([name, s]) => ({ name: `${name}/v`, tensor: s.v as tf.Tensor })),
    ];
  }

  async setState(state: OptimizerState): Promise<void> {
    if (this.inner) {
      await this.inner.setWeights(state);
      return;
    }
    const [iter, ...rest] = state;
    if (iter === undefined || iter.name !== 'iter') throw new SoftsegError('optimizer state must start with the iteration count');
    const first = new Map<string, tf.Tensor>(), second = new Map<string, tf.Tensor>();
    for (const { name, tensor } of rest) {
      if (name.endsWith('/m')) first.set(name.slice(0, -2), tensor);
      else if (name.endsWith('/v')) second.set(name.slice(0, -2), tensor);
      else throw new SoftsegError(`unexpected AdamW state entry ${name}`);
    }
    this.iterations = (await iter.tensor.data())[0]!;
    this.disposeMoments();
    for (const [name, m] of first) {
      const v = second.get(name);
      if (v === undefined) throw new SoftsegError(`AdamW state has ${name}/m but no ${name}/v`);
      this.moments.set(name, { m: tf.variable(m, false), v: tf.variable(v, false) });
    }
  }

  private disposeMoments(): void {
    for (const { m, v } of this.moments.values()) tf.dispose([m, v]);
    this.moments.clear();
  }

  dispose(): void {
    this.inner?.dispose();
    this.disposeMoments();
    this.iterTensor?.dispose();
    this.iterTensor = null;
  }
}

/** AdamW with plain ops, in tf.train.adam's order (backends without the SoftsegAdamW kernel; the kernel's test reference). */
export function adamWOps(x: tf.Tensor, m: tf.Tensor, v: tf.Tensor, g: tf.Tensor, a: AdamWAttrs): [tf.Tensor, tf.Tensor, tf.Tensor] {
  return tf.tidy(() => {
    const x0 = a.decay > 0 ? tf.mul(x, 1 - a.decay) : x;
    const nm = tf.add(tf.mul(m, a.beta1), tf.mul(g, 1 - a.beta1));
    const nv = tf.add(tf.mul(v, a.beta2), tf.mul(tf.square(g), 1 - a.beta2));
    const mh = tf.div(nm, a.bias1);
    const vh = tf.div(nv, a.bias2);
    const nx = tf.add(tf.mul(tf.div(mh, tf.add(tf.sqrt(vh), a.epsilon)), -a.lr), x0);
    return [nx, nm, nv];
  });
}
