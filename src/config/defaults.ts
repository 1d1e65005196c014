import { Value } from '@sinclair/typebox/value';
import { ConfigSchema, type WharfConfig } from './schema.js';

/** A complete configuration from a partial one (tests, embedding); not validated. */
export function withDefaults(partial: unknown = {}): WharfConfig {
  return Value.Default(ConfigSchema, Value.Clone(partial ?? {})) as WharfConfig;
}
