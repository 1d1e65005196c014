// The configuration's parsed form: each duration becomes milliseconds and each size bytes, once,
// when it is loaded (loadConfig) or completed (withDefaults), by the decoders the schema attaches to
// those keys. A value that is not of its key's input form is left as it is: the loader has reported
// it already, and a number given in memory (tests, embedding) is taken as already parsed.
import { Kind, TransformKind, type TSchema, type TransformOptions } from '@sinclair/typebox';
import { Value } from '@sinclair/typebox/value';
import { isPlain } from './plain.js';

/** `value` (in place, for objects and lists) with every leaf that has a decoder in `schema` decoded. */
export function parseValues(schema: TSchema, value: unknown): unknown {
  const transform = (schema as { [TransformKind]?: TransformOptions })[TransformKind];
  if (transform !== undefined) return Value.Check(schema, value) ? transform.Decode(value) : value;
  if (schema[Kind] === 'Object' && isPlain(value) && isPlain(schema.properties)) {
    for (const [key, child] of Object.entries(schema.properties as Record<string, TSchema>)) {
      if (key in value) value[key] = parseValues(child, value[key]);
    }
  } else if (schema[Kind] === 'Array' && Array.isArray(value)) {
    value.forEach((item, i) => (value[i] = parseValues(schema.items as TSchema, item)));
  }
  return value;
}
