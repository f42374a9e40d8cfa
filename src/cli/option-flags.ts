/**
 * oclif flags from an option schema (src/recipes/options.ts): parsing a flag is checking it (the same check and
 * message as a config-file value), and no flag carries a default — the schema's defaults apply after the config
 * file is merged, so an undefined flag is one the user did not type. --help shows the schema's default.
 */
import { Flags } from '@oclif/core';
import { checkValue, flagName, type OptionSchema, type OptionSpec } from '../recipes/options.js';

type AnyFlag = any;

/** One flag from a spec (also for commands without a recipe schema: `models --width`). */
export function optionFlag(spec: OptionSpec): AnyFlag {
  const shown = spec.defaultHelp ?? ('default' in spec && spec.default !== undefined && spec.type !== 'boolean' ? String(spec.default) : undefined);
  const common = {
    description: spec.description,
    helpGroup: spec.helpGroup,
    ...(spec.deprecated ? { aliases: spec.deprecated, deprecateAliases: true } : {}),
    ...(shown !== undefined ? { defaultHelp: async () => shown } : {}),
  };
  switch (spec.type) {
    case 'boolean':
      // on by default: --no-<flag> turns it off
      return Flags.boolean({ ...common, exclusive: spec.exclusive, ...(spec.default === true ? { allowNo: true } : {}) });
    case 'choice':
      return Flags.string({ ...common, options: [...spec.options] });
    case 'list':
      return Flags.string({ ...common, multiple: true });
    case 'number':
    case 'integer':
      return Flags.custom<number>({ ...common, parse: async (input: string, _ctx: unknown, flag: { name: string }) => checkValue(spec, input, `--${flag.name}`) as number })();
    default:
      return Flags.string(common);
  }
}

/** The flags of a schema (keys marked noFlag have none). */
export function flagsFromSchema<T>(schema: OptionSchema<T>): Record<string, AnyFlag> {
  const out: Record<string, AnyFlag> = {};
  for (const [key, spec] of Object.entries(schema) as [string, OptionSpec][]) {
    if (!spec.noFlag) out[flagName(key)] = optionFlag(spec);
  }
  return out;
}
