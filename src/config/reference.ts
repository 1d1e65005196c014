// The configuration reference of the README, generated from the schema: one row per key (items of lists
// under `key[].item`), with its type, its default, the WHARF_* variable that sets it and the schema's
// description. `npm run docs:config` writes it between the README's markers; a test keeps it in step.
import { Kind, OptionalKind, type TSchema } from '@sinclair/typebox';
import { envVarName } from './load.js';
import { ConfigSchema } from './schema.js';

export const REFERENCE_START = '<!-- config-reference:start (npm run docs:config writes this table from the schema) -->';
export const REFERENCE_END = '<!-- config-reference:end -->';

interface Row {
  key: string;
  type: string;
  def: string;
  env: string;
  description: string;
}

const isRecord = (v: unknown): v is Record<string, TSchema> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** A short name of a leaf's type: string, integer, boolean, duration, size, list of X, one of a|b. */
function typeName(schema: TSchema): string {
  if (typeof schema.pattern === 'string' && /ms\|s\|m\|h/.test(schema.pattern)) return 'duration';
  if (schema[Kind] === 'Union') {
    const kinds = (schema.anyOf as TSchema[]).map(typeName);
    // Sizes are the one union of a byte count and a string with a unit.
    if (kinds.length === 2 && kinds.includes('integer') && kinds.includes('string')) return 'size';
    return [...new Set(kinds)].join(' or ');
  }
  if (schema.const !== undefined) return JSON.stringify(schema.const);
  if (Array.isArray(schema.enum)) return (schema.enum as unknown[]).map((v) => JSON.stringify(v)).join(' or ');
  if (schema[Kind] === 'Array') return `list of ${typeName(schema.items as TSchema)}`;
  if (schema[Kind] === 'Record') return 'mapping';
  return typeof schema.type === 'string' ? schema.type : String(schema[Kind] ?? 'value').toLowerCase();
}

const DURATION_HINT = / \(a duration: [^)]*\)$/;

const cell = (text: string): string => text.replace(/\|/g, '\\|').replace(/\n/g, ' ');
/** A description: URLs in it set as code (examples of values, not links to follow). */
const prose = (text: string): string => cell(text).replace(/\b(?:https?|postgres):\/\/[^\s,;)]+/g, (url) => `\`${url}\``);
const code = (text: string): string => (text === '' ? '' : `\`${text.replace(/`/g, "'")}\``);

function formatDefault(schema: TSchema): string {
  if (schema.default === undefined) return schema[OptionalKind] === 'Optional' ? 'none' : 'required';
  const d: unknown = schema.default;
  if (typeof d === 'string') return d === '' ? '`""`' : code(d);
  return code(JSON.stringify(d));
}

function walk(schema: TSchema, path: string[], envPath: string[] | undefined, out: Row[]): void {
  const isObject = schema[Kind] === 'Object' && isRecord(schema.properties);
  if (isObject && path.length > 0 && typeof schema.description === 'string') {
    // An optional section (storage.s3, metadata.postgres): one row saying what it is.
    out.push({ key: path.join('.'), type: 'mapping', def: formatDefault(schema), env: envPath ? `${envVarName(envPath)}_*` : '', description: schema.description });
  }
  if (isObject) {
    for (const [key, child] of Object.entries(schema.properties as Record<string, TSchema>)) walk(child, [...path, key], envPath && [...envPath, key], out);
    return;
  }
  const items = schema[Kind] === 'Array' ? (schema.items as TSchema) : undefined;
  const env = envPath ? envVarName(envPath) : '';
  const listOfObjects = items !== undefined && items[Kind] === 'Object' && isRecord(items.properties);
  out.push({
    key: path.join('.'),
    type: listOfObjects ? 'list of mappings' : typeName(schema),
    def: formatDefault(schema),
    env: env && (schema[Kind] === 'Array' || schema[Kind] === 'Record' ? `${env} (JSON)` : env),
    // The type column says "duration": the schema's reminder of the syntax is said once, above the table.
    description: typeof schema.description === 'string' ? schema.description.replace(DURATION_HINT, '') : '',
  });
  if (listOfObjects) walk({ ...items, description: undefined }, [...path.slice(0, -1), `${path.at(-1)}[]`], undefined, out);
}

/** The reference as a Markdown table, markers included. */
export function configReference(schema: TSchema = ConfigSchema): string {
  const rows: Row[] = [];
  walk(schema, [], [], rows);
  const lines = [
    REFERENCE_START,
    '',
    '| key | type | default | environment | meaning |',
    '| --- | --- | --- | --- | --- |',
    ...rows.map((r) => `| \`${r.key}\` | ${cell(r.type)} | ${cell(r.def)} | ${r.env ? code(r.env) : ''} | ${prose(r.description)} |`),
    '',
    REFERENCE_END,
  ];
  return lines.join('\n');
}

/** `text` with the part between the markers replaced by the reference; throws when the markers are missing. */
export function withReference(text: string, reference = configReference()): string {
  const start = text.indexOf(REFERENCE_START);
  const end = text.indexOf(REFERENCE_END);
  if (start < 0 || end < start) throw new Error(`the markers ${REFERENCE_START} and ${REFERENCE_END} are missing`);
  return text.slice(0, start) + reference + text.slice(end + REFERENCE_END.length);
}
