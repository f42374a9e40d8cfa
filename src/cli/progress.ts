/**
 * Progress for long jobs: a cli-progress bar on a terminal, plain periodic lines when output is piped
 * (cli-progress draws nothing without a TTY). Everything goes to stderr so --json output stays clean.
 */
import cliProgress from 'cli-progress';
import type { TrainingEvent } from '../engine/trainer.js';

const fmt = (v: number, digits = 4): string => (Math.abs(v) >= 100 ? v.toFixed(1) : v.toPrecision(digits));

export class TrainingProgress {
  private bar: cliProgress.SingleBar | null = null;
  private lastLine = 0;

  constructor(
    private readonly log: (line: string) => void,
    private readonly tty = process.stderr.isTTY === true,
    /** Seconds between plain lines when not on a TTY. */
    private readonly every = 10,
  ) {}

  handle(e: TrainingEvent): void {
    switch (e.type) {
      case 'start':
        this.log(e.resumedFrom ? `resuming from ${e.resumedFrom} at step ${e.step}/${e.steps}` : `training for ${e.steps} steps`);
        if (this.tty) {
          this.bar = new cliProgress.SingleBar(
            { format: 'step {value}/{total} |{bar}| loss {loss} lr {lr} {ips} img/s ETA {eta_formatted}', stream: process.stderr, hideCursor: true, etaBuffer: 20 },
            cliProgress.Presets.shades_classic,
          );
          this.bar.start(e.steps, e.step, { loss: '-', lr: '-', ips: '-' });
        }
        break;
      case 'step': {
        const payload = { loss: fmt(e.loss), lr: e.lr.toExponential(2), ips: e.imagesPerSec.toFixed(1) };
        if (this.bar) this.bar.update(e.step, payload);
        else if (Date.now() - this.lastLine > this.every * 1000 || e.step === e.steps) {
          this.lastLine = Date.now();
          const wait = e.loaderWaitShare > 0.05 ? ` (waiting on data ${(100 * e.loaderWaitShare).toFixed(0)}%)` : '';
          this.log(`step ${e.step}/${e.steps}  loss ${payload.loss}  lr ${payload.lr}  ${payload.ips} img/s${wait}`);
        }
        break;
      }
      case 'eval': {
        const m = e.metrics;
        const line = `eval @ ${e.step}: mIoU ${fmt(m.mIoUD ?? NaN)}  mIoU^I ${fmt(m.mIoUI ?? NaN)}  ECE ${fmt(m.ECED ?? NaN)}${e.best ? '  (best so far)' : ''}`;
        this.interject(line);
        break;
      }
      case 'checkpoint':
        if (!this.bar) this.log(`checkpoint @ ${e.step}: ${e.path}`);
        break;
      case 'done':
        this.bar?.stop();
        this.bar = null;
        if (e.interrupted) this.log(`interrupted at step ${e.step}; a checkpoint was written — rerun with --resume to continue`);
        break;
    }
  }

  /** A line between bar redraws. */
  private interject(line: string): void {
    if (this.bar) {
      process.stderr.write('\r\x1b[K');
      this.log(line);
      this.bar.render();
    } else this.log(line);
  }

  stop(): void {
    this.bar?.stop();
  }
}

/** A counter with rate and ETA for jobs over items (predict, label): a bar on a TTY, lines otherwise. */
export class ProgressCounter {
  private bar: cliProgress.SingleBar | null = null;
  private lastLine = 0;
  private readonly started = Date.now();

  constructor(
    private readonly unit: string,
    private readonly log: (line: string) => void,
    private readonly tty = process.stderr.isTTY === true,
  ) {}

  update(done: number, total: number): void {
    if (this.tty) {
      if (!this.bar) {
        this.bar = new cliProgress.SingleBar({ format: `{value}/{total} ${this.unit} |{bar}| {rate}/s ETA {eta_formatted}`, stream: process.stderr, hideCursor: true }, cliProgress.Presets.shades_classic);
        this.bar.start(total, 0, { rate: '-' });
      }
      this.bar.update(done, { rate: (done / ((Date.now() - this.started) / 1000)).toFixed(1) });
    } else if (Date.now() - this.lastLine > 10_000 || done === total) {
      this.lastLine = Date.now();
      this.log(`${done}/${total} ${this.unit} (${(done / ((Date.now() - this.started) / 1000)).toFixed(1)}/s)`);
    }
  }

  stop(): void {
    this.bar?.stop();
    this.bar = null;
  }
}
