/**
 * A recipe's options, declared once: each key's type, range or choices, default and help text. From one
 * schema come the defaults, the checks of a configuration (a library caller's object, a config file, a
 * flag's value — the same words for each), and the command-line flags (`src/cli/option-flags.ts`). Keys are
 * camelCase (the config-file and library names); the flag is the kebab-case form (`batchSize` → `--batch-size`).
 */
import { usageError } from '../errors.js';

/** Which ends of a number range are included: `[lo, hi]`, with `(` / `)` for an open end. */
export type Ends = '[]' | '(]' | '[)' | '()';

interface Common {
  /** One line for --help. */
  description: string;
  helpGroup?: string;
  /** What --help shows as the default when the default is decided later (e.g. from the data). */
  defaultHelp?: string;
  /** Former flag names (kebab-case) still accepted for one release, with a deprecation warning; as config keys too. */
  deprecated?: string[];
  /** A config-file / library key without a flag. */
  noFlag?: boolean;
}

export type OptionSpec =
  | (Common & { type: 'number'; default?: number; min?: number; max?: number; ends?: Ends })
  | (Common & { type: 'integer'; default?: number; min?: number; max?: number })
  | (Common & { type: 'choice'; options: readonly string[]; default?: string })
  | (Common & { type: 'string'; default?: string })
  /** A string flag whose config-file value may also be a number or a list (e.g. `mean: [0.5, 0.5, 0.5]`), checked where it is used. */
  | (Common & { type: 'text' })
  | (Common & { type: 'boolean'; default: boolean; exclusive?: string[] })
  /** A repeatable flag (a list of strings in a config file). */
  | (Common & { type: 'list' });

/** A schema for a configuration type: one spec for every key, no key without one. */
export type OptionSchema<T> = { [K in keyof Required<T>]: OptionSpec };

/** `batchSize` → `batch-size`. */
export const flagName = (key: string): string => key.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);
/** `batch-size` → `batchSize`. */
export const keyName = (flag: string): string => flag.replace(/-([a-z])/g, (_, c: string) => c.toUpperCase());

/** The schema's defaults (keys without one are left out). */
export function defaultsOf<T>(schema: OptionSchema<T>): T {
  const out: Record<string, unknown> = {};
  for (const [key, spec] of Object.entries(schema) as [string, OptionSpec][]) {
    if ('default' in spec && spec.default !== undefined) out[key] = spec.default;
    else if (spec.type === 'list') out[key] = [];
  }
  return out as T;
}

/** The range a number spec allows, as a message says it (`in (0, 1]`, `≥ 1`), or '' when unbounded. */
function rangeText(spec: { min?: number; max?: number; ends?: Ends }): string {
  const ends = spec.ends ?? '[]';
  const lo = spec.min ?? -Infinity, hi = spec.max ?? Infinity;
  if (lo === -Infinity && hi === Infinity) return '';
  if (hi === Infinity) return ` ${ends[0] === '(' ? '>' : '≥'} ${lo}`;
  if (lo === -Infinity) return ` ${ends[1] === ')' ? '<' : '≤'} ${hi}`;
  return ` in ${ends[0]}${lo}, ${hi}${ends[1]}`;
}

/**
 * Checks one value against its spec and returns it (numbers given as strings, as flags and YAML may give
 * them, are converted). `name` is what the message calls it: `--lr` for a flag, `lr` for a config-file key.
 * A bad value is a usage error (exit 2): `--lr must be a number in (0, 1], got -1`.
 */
export function checkValue(spec: OptionSpec, value: unknown, name: string): unknown {
  const got = typeof value === 'string' ? value : JSON.stringify(value);
  switch (spec.type) {
    case 'number':
    case 'integer': {
      const integer = spec.type === 'integer';
      const n = typeof value === 'string' && value.trim() !== '' ? Number(value) : value;
      const what = integer ? 'an integer' : 'a number';
      if (typeof n !== 'number' || !Number.isFinite(n)) throw usageError(`${name} must be ${what}${rangeText(spec)}, got ${got}`);
      if (n === spec.default) return n; // a default may be a marker (crop 0: decided from the data)
      const ends = spec.type === 'number' ? spec.ends ?? '[]' : '[]';
      const lo = spec.min ?? -Infinity, hi = spec.max ?? Infinity;
      const ok = (ends[0] === '(' ? n > lo : n >= lo) && (ends[1] === ')' ? n < hi : n <= hi) && (!integer || Number.isInteger(n));
      if (!ok) throw usageError(`${name} must be ${what}${rangeText(spec)}, got ${got}`);
      return n;
    }
    case 'choice':
      if (!spec.options.includes(value as string)) throw usageError(`${name} must be one of ${spec.options.join(', ')}, got ${JSON.stringify(value)}`);
      return value;
    case 'string':
      if (typeof value !== 'string') throw usageError(`${name} must be a string, got ${got}`);
      return value;
    case 'text':
      if (!(['string', 'number'].includes(typeof value) || (Array.isArray(value) && value.every((v) => ['string', 'number'].includes(typeof v))))) {
        throw usageError(`${name} must be a string, a number or a list of them, got ${got}`);
      }
      return value;
    case 'boolean':
      if (typeof value !== 'boolean') throw usageError(`${name} must be true or false, got ${got}`);
      return value;
    case 'list': {
      const list = typeof value === 'string' ? [value] : value;
      if (!Array.isArray(list) || !list.every((v) => typeof v === 'string')) throw usageError(`${name} must be a list of strings, got ${got}`);
      return list;
    }
  }
}

/**
 * Checks every value of a configuration against the schema, naming each by its flag (`--lr must be …`);
 * undefined values are "not given". Used on a library caller's configuration before any work.
 */
export function checkOptions<T extends object>(schema: OptionSchema<T>, config: T): void {
  for (const [key, spec] of Object.entries(schema) as [string, OptionSpec][]) {
    const v = (config as Record<string, unknown>)[key];
    if (v !== undefined && v !== null) checkValue(spec, v, spec.noFlag ? key : `--${flagName(key)}`);
  }
}

/** Former key names (camelCase) → the schema's key. */
export function deprecatedKeys<T>(schema: OptionSchema<T>): Map<string, string> {
  const renamed = new Map<string, string>();
  for (const [key, spec] of Object.entries(schema) as [string, OptionSpec][]) for (const old of spec.deprecated ?? []) renamed.set(keyName(old), key);
  return renamed;
}

/**
 * A config file's values (camelCase keys) checked against the schema: an unknown key or a bad value is a
 * usage error naming the file and the key; a deprecated key is renamed, with a warning.
 */
export function checkConfigFile<T>(schema: OptionSchema<T>, file: Record<string, unknown>, path: string): { values: Partial<T>; warnings: string[] } {
  const specs = schema as Record<string, OptionSpec>;
  const renamed = deprecatedKeys(schema);
  const values: Record<string, unknown> = {};
  const warnings: string[] = [];
  for (const [given, v] of Object.entries(file)) {
    let key = given;
    if (!(key in specs) && renamed.has(key)) {
      key = renamed.get(key)!;
      warnings.push(`${path}: "${given}" is deprecated and will be removed in the next release; use "${key}"`);
    }
    const spec = specs[key];
    if (!spec) throw usageError(`unknown option "${given}"`, { file: path, hint: `known options: ${Object.keys(specs).join(', ')}` });
    if (v === null || v === undefined) continue;
    try {
      values[key] = checkValue(spec, v, key);
    } catch (e) {
      throw usageError((e as Error).message, { file: path });
    }
  }
  return { values: values as Partial<T>, warnings };
}

/** Defaults < config-file values < flags given (an undefined flag was not given). */
export function mergeOptions<T>(schema: OptionSchema<T>, file: Partial<T>, flags: Record<string, unknown>): T {
  const out: Record<string, unknown> = { ...defaultsOf(schema), ...file };
  for (const key of Object.keys(schema)) {
    const v = flags[flagName(key)];
    if (v !== undefined) out[key] = v;
  }
  return out as T;
}
