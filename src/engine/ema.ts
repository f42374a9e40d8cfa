/**
 * The mean teacher of `ssl --ema`: a copy of the student whose weights follow an exponential moving average of
 * the student's, and its life in a run as an engine hook — started from the student at the end of the warm-up,
 * updated after every optimizer step, saved in every checkpoint (so a resumed run continues identically) and,
 * at the end, beside the run's model.
 */
import { existsSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { createModel } from '../models/registry.js';
import { loadModel, saveModel } from '../models/io.js';
import type { SegModel } from '../models/base.js';
import { SoftsegError } from '../errors.js';
import type { TrainingHook } from './trainer.js';

/**
 * A mean teacher: a copy of the student whose weights — all of them, batch-norm moving statistics included —
 * follow θ_t ← m·θ_t + (1 − m)·θ_s. It predicts in inference mode and never gets gradients.
 */
export class EmaTeacher {
  readonly model: SegModel;

  constructor(readonly student: SegModel, readonly momentum: number) {
    if (!(momentum > 0 && momentum < 1)) throw new SoftsegError(`--ema momentum must be in (0, 1), got ${momentum}`);
    this.model = createModel(student.name, { ...student.options, inputSize: student.options.inputSize ?? undefined });
    const a = this.model.model.weights, b = student.model.weights;
    if (a.length !== b.length || a.some((v, i) => v.shape.join() !== b[i]!.shape.join())) {
      this.model.dispose();
      throw new SoftsegError('internal: the mean teacher does not match the student');
    }
    this.copyFromStudent();
  }

  /** θ_t ← θ_s. */
  copyFromStudent(): void {
    this.model.model.setWeights(this.student.model.getWeights());
  }

  /** One EMA update from the student's current weights. */
  update(): void {
    const m = this.momentum;
    const t = this.model.model.weights, s = this.student.model.weights;
    for (let i = 0; i < t.length; i++) {
      const next = tf.tidy(() => tf.add(tf.mul(t[i]!.read(), m), tf.mul(s[i]!.read(), 1 - m)));
      t[i]!.write(next);
      next.dispose();
    }
  }

  /** Teacher probabilities softmax(t/T) [n, h, w, C] of NHWC images, on the host. */
  async predict(images: Float32Array, n: number, size: [number, number], temperature: number): Promise<Float32Array> {
    const probs = tf.tidy(() => {
      const x = tf.tensor4d(images, [n, size[0], size[1], 3]);
      const logits = this.model.apply(x, false).main;
      return tf.softmax(temperature === 1 ? logits : tf.div(logits, temperature));
    });
    try {
      return (await probs.data()) as Float32Array;
    } finally {
      probs.dispose();
    }
  }

  async save(dir: string, step: number): Promise<void> {
    await saveModel(this.model, dir);
    await writeFile(join(dir, 'ema.json'), JSON.stringify({ step, momentum: this.momentum }));
  }

  /** Loads saved teacher weights when they belong to `step`; false otherwise. */
  async load(dir: string, step: number): Promise<boolean> {
    if (!existsSync(join(dir, 'ema.json'))) return false;
    const state = JSON.parse(await readFile(join(dir, 'ema.json'), 'utf8')) as { step: number };
    if (state.step !== step) return false;
    const loaded = await loadModel(dir);
    try {
      const w = loaded.getWeights();
      if (w.length !== this.model.model.weights.length) return false;
      this.model.model.setWeights(w);
      return true;
    } finally {
      loaded.dispose();
    }
  }

  dispose(): void {
    this.model.dispose();
  }
}

/**
 * A mean teacher in a run (a {@link TrainingHook}): it starts as a copy of the student when the unlabeled loss
 * starts (`warmup` steps in), is updated after every optimizer step from then on, is saved with every
 * checkpoint and restored on resume, and is saved into `finalDir` when the run ends.
 */
export class MeanTeacher implements TrainingHook {
  readonly teacher: EmaTeacher;
  /** The teacher has started (copied from the student at the end of the warm-up, or restored). */
  private started = false;
  /** The step a resumed run continues from (null for a new run). */
  private resumedAt: number | null = null;

  constructor(student: SegModel, momentum: number, private readonly o: { warmup: number; finalDir: string; onWarning?: (w: string) => void }) {
    this.teacher = new EmaTeacher(student, momentum);
  }

  /**
   * The teacher's probabilities for the unlabeled images of loop step `step`, or null during the warm-up. The
   * teacher starts here: a copy of the student, or — a run resumed from a checkpoint written before checkpoints
   * held the teacher — the copy in `finalDir` when it was saved at the same step.
   */
  async predict(step: number, images: Float32Array, n: number, size: [number, number], temperature: number): Promise<Float32Array | null> {
    if (step < this.o.warmup) return null;
    if (!this.started) {
      const legacy = step > this.o.warmup && step === this.resumedAt && (await this.teacher.load(this.o.finalDir, step));
      if (!legacy) {
        if (step > this.o.warmup) this.o.onWarning?.(`no mean-teacher state saved for step ${step}; restarting the teacher from the student`);
        this.teacher.copyFromStudent();
      }
      this.started = true;
    }
    return this.teacher.predict(images, n, size, temperature);
  }

  afterStep(): void {
    if (this.started) this.teacher.update();
  }

  async save(dir: string, step: number): Promise<void> {
    if (this.started) await this.teacher.save(join(dir, 'ema-teacher'), step);
  }

  async restore(dir: string, step: number): Promise<void> {
    this.resumedAt = step;
    this.started = await this.teacher.load(join(dir, 'ema-teacher'), step);
  }

  /** The run's last mean teacher, beside its model (checkpoints hold their own copies). */
  async end(step: number): Promise<void> {
    if (this.started) await this.teacher.save(this.o.finalDir, step);
  }

  dispose(): void {
    this.teacher.dispose();
  }
}
