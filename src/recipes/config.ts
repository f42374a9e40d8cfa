/**
 * Run configuration: the keys of the training flags, read from `--config FILE` (JSON or YAML, kebab-case or
 * camelCase keys), overridden by flags given on the command line, and saved in the run as config.json.
 */
import { readFile } from 'node:fs/promises';
import { extname } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { SoftsegError, usageError } from '../errors.js';

const camel = (key: string): string => key.replace(/-([a-z])/g, (_, c: string) => c.toUpperCase());

/** Reads a config file into camelCase keys. */
export async function readConfigFile(path: string): Promise<Record<string, unknown>> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (e) {
    throw new SoftsegError(`cannot read config file: ${(e as Error).message}`, { file: path });
  }
  let raw: unknown;
  try {
    raw = ['.yaml', '.yml'].includes(extname(path).toLowerCase()) ? parseYaml(text) : JSON.parse(text);
  } catch (e) {
    throw new SoftsegError(`config file is not valid ${extname(path).toLowerCase() === '.json' ? 'JSON' : 'YAML'}: ${(e as Error).message.split('\n')[0]}`, { file: path });
  }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw new SoftsegError('config file must hold a mapping of option names to values', { file: path });
  return Object.fromEntries(Object.entries(raw).map(([k, v]) => [camel(k), v]));
}

/**
 * Merges defaults < config file < flags the user typed. `given` lists the flag names present on the command
 * line (oclif fills defaults in, so presence is what says "the user chose this").
 */
export function mergeConfig<T extends object>(defaults: T, file: Record<string, unknown>, flags: Record<string, unknown>, given: Set<string>, known: readonly string[], source = 'config file'): T {
  for (const key of Object.keys(file)) {
    if (!known.includes(key)) throw usageError(`unknown option "${key}" in ${source}`, { hint: `known options: ${known.join(', ')}` });
  }
  const out: Record<string, unknown> = { ...defaults, ...file };
  for (const [k, v] of Object.entries(flags)) {
    const key = camel(k);
    if (given.has(k) || given.has(key) || !(key in out)) if (v !== undefined) out[key] = v;
  }
  return out as T;
}
