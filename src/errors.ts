/**
 * The one error type the library throws for problems a user can fix (bad options, bad files,
 * a missing optional package). Commands turn it into one line and a non-zero exit code.
 */
export class SoftsegError extends Error {
  /** The file the problem is about, when there is one. */
  readonly file?: string;
  /** What the user can do about it. */
  readonly hint?: string;
  /** Process exit code the CLI uses for this error. */
  readonly exitCode: number;
  /** One line per underlying problem (e.g. each bad file of a data set), printed before the summary line. */
  readonly details?: string[];

  constructor(message: string, options: { file?: string; hint?: string; exitCode?: number; cause?: unknown; details?: string[] } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'SoftsegError';
    this.file = options.file;
    this.hint = options.hint;
    this.exitCode = options.exitCode ?? 1;
    if (options.details) this.details = options.details;
  }

  /** One line for a terminal: `file: message (hint)`. */
  oneLine(): string {
    const where = this.file ? `${this.file}: ` : '';
    const hint = this.hint ? ` — ${this.hint}` : '';
    return `${where}${this.message}${hint}`;
  }
}

/**
 * A data file that cannot be used (unreadable or corrupt image, bad mask): what `--skip-bad` may skip when it is
 * met during the work, where other SoftsegErrors (a missing cache entry, a wrong option) still stop the run.
 */
export class BadFileError extends SoftsegError {
  constructor(message: string, options: { file: string; hint?: string; cause?: unknown }) {
    super(message, options);
    this.name = 'BadFileError';
  }
}

/**
 * A usage error: a flag (or config-file key) with a bad value or a bad combination of flags. The CLI exits
 * with code 2 for it, as for flags it cannot parse; other problems (a bad file, a failed run) exit with 1.
 */
export function usageError(message: string, options: { file?: string; hint?: string } = {}): SoftsegError {
  return new SoftsegError(message, { ...options, exitCode: 2 });
}
