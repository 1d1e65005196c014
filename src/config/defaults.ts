// The schema's defaults, filled in where a value is absent and only there. TypeBox's Value.Default
// merges a default into whatever object is present, so `upstreams: {docker: ...}` (a mapping where a
// list belongs) became an empty array with a stray property, which then validated: a wrong shape
// silently read as "nothing configured". Here a present value is never touched, whatever its shape,
// so validation sees it and reports it.
import { Kind, type TSchema } from '@sinclair/typebox';
import { Value } from '@sinclair/typebox/value';
import { parseValues } from './parsed.js';
import { ConfigSchema, type WharfConfig } from './schema.js';
import { isPlain } from './plain.js';

/**
 * `value` with the defaults of `schema` filled in (in place, for objects and arrays it is given):
 * an absent value takes the default; a present object or list has its members' defaults filled in;
 * a value of any other shape is returned as it is.
 */
export function applyDefaults(schema: TSchema, value: unknown): unknown {
  const filled = value === undefined && 'default' in schema ? Value.Clone(schema.default) as unknown : value;
  if (schema[Kind] === 'Object' && isPlain(filled) && isPlain(schema.properties)) {
    for (const [key, child] of Object.entries(schema.properties as Record<string, TSchema>)) {
      const v = applyDefaults(child, filled[key]);
      if (v !== undefined) filled[key] = v;
    }
  } else if (schema[Kind] === 'Array' && Array.isArray(filled)) {
    filled.forEach((item, i) => (filled[i] = applyDefaults(schema.items as TSchema, item)));
  }
  return filled;
}

/**
 * A complete configuration from a partial one written as in the file (tests, embedding), in the
 * parsed form loadConfig returns (durations in ms, sizes in bytes); not validated.
 */
export function withDefaults(partial: unknown = {}): WharfConfig {
  return parseValues(ConfigSchema, applyDefaults(ConfigSchema, Value.Clone(partial ?? {}))) as WharfConfig;
}
