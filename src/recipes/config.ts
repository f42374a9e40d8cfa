/**
 * Reading `--config FILE` (JSON or YAML, kebab-case or camelCase keys); its keys and values are checked against
 * the recipe's option schema (options.ts), flags given on the command line override them, and the run saves
 * the result as config.json.
 */
import { readFile } from 'node:fs/promises';
import { extname } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { SoftsegError } from '../errors.js';

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
