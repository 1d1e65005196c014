// Configuration is assembled once, in layers, each overriding the one before:
//   defaults (schema) < YAML file < WHARF_* environment < explicit overrides (command-line flags)
// then validated as a whole. Every violation is collected so that one run shows every mistake,
// unknown keys and the rules between keys included, and the result is frozen: nothing downstream
// can change it. Defaults fill only what is absent: a value of the wrong shape is reported, never
// replaced. The configuration returned carries durations as milliseconds and sizes as bytes
// (parsed.ts); the schema, print-schema and the messages speak of the strings as written.
//
// WHARF_* variables that no key maps to are ignored with one warning: the environment is shared with
// others (Kubernetes sets WHARF_PORT, WHARF_SERVICE_HOST, ... for a Service named wharf).
//
// The environment is passed in, never read here: only the entry point touches process.env.
import { readFileSync } from 'node:fs';
import { Kind, type TSchema } from '@sinclair/typebox';
import { Value, ValueErrorType, type ValueError } from '@sinclair/typebox/value';
import { applyDefaults } from './defaults.js';
import { parseValues } from './parsed.js';
import { LineCounter, parseDocument, type Document } from 'yaml';
import { parseListen } from './listen.js';
import { crossFieldViolations, resolveSecrets, upstreamProxyFrom } from './checks.js';
import { A_DURATION, DURATION_PATTERN } from './duration.js';
import { A_SIZE, SIZE_PATTERN } from './size.js';
import { ConfigSchema, type WharfConfig } from './schema.js';
import { isPlain, type Plain } from './plain.js';

export const ENV_PREFIX = 'WHARF_';

/** WHARF_* variables that are not configuration keys, so not warned about. */
export const NON_CONFIG_ENV: ReadonlySet<string> = new Set([
  'WHARF_CONFIG', // the config file `wharf serve` reads when --config is not given
  'WHARF_USER', // `wharf warm`: the admin it signs in as
  'WHARF_PASSWORD', // and the password
  'WHARF_TOKEN', // or the access token it sends as Bearer
]);

export interface LoadOptions {
  /** YAML file; relative paths are resolved against the current directory. */
  file?: string;
  /** The environment to read WHARF_* overrides from (pass process.env from the entry point). */
  env?: NodeJS.ProcessEnv;
  /** Highest-precedence values, e.g. from command-line flags; undefined leaves are ignored. */
  overrides?: object;
  /** Told about what is ignored but worth knowing (WHARF_* variables that are no key); default: nothing. */
  warn?: (message: string) => void;
  /**
   * Rules that need another layer's knowledge (the policy globs need the router), given by the caller
   * so config/ imports nothing above it. Like the cross-field rules they see the configuration as
   * loaded, whatever its shape, and return violations `key.path: message`.
   */
  checks?: (config: unknown) => string[];
}

export class ConfigError extends Error {
  override name = 'ConfigError';
  readonly violations: readonly string[];

  constructor(violations: string[], file?: string) {
    const where = file === undefined ? '' : ` in ${file}`;
    const count = violations.length === 1 ? '1 problem' : `${violations.length} problems`;
    // The message carries every violation too, so whoever prints only .message still shows them all.
    super(`invalid configuration${where} (${count}):\n${violations.map((v) => `  ${v}`).join('\n')}`);
    this.violations = Object.freeze([...violations]);
  }
}

/** `chunkMinLength` → `CHUNK_MIN_LENGTH`. */
const upperSnake = (key: string): string =>
  key
    .replace(/([a-z0-9])([A-Z])/g, '$1_$2')
    .replace(/([A-Z]+)([A-Z][a-z])/g, '$1_$2')
    .toUpperCase();

export const envVarName = (path: readonly string[]): string => ENV_PREFIX + path.map(upperSnake).join('_');

interface EnvKey {
  path: string[];
  schema: TSchema;
}

/** Every leaf of the schema under its WHARF_* name, derived so a new key gets its variable for free. */
export function collectEnvKeys(schema: TSchema, path: string[] = [], out = new Map<string, EnvKey>()): Map<string, EnvKey> {
  if (schema[Kind] === 'Object' && isPlain(schema.properties)) {
    for (const [key, child] of Object.entries(schema.properties as Record<string, TSchema>)) {
      collectEnvKeys(child, [...path, key], out);
    }
    return out;
  }
  const name = envVarName(path);
  const clash = out.get(name);
  if (clash) throw new Error(`config keys ${clash.path.join('.')} and ${path.join('.')} both map to ${name}`);
  out.set(name, { path, schema });
  return out;
}

export const ENV_KEYS: ReadonlyMap<string, EnvKey> = collectEnvKeys(ConfigSchema);

/**
 * Environment values are strings: pick the first reading the schema accepts, else keep the string
 * for the error (or the JSON list or mapping it holds, so that the error names its shape).
 */
function coerce(raw: string, schema: TSchema): unknown {
  const candidates: unknown[] = [raw]; // then a number, then JSON (which reads true and false too)
  if (raw.trim() !== '' && Number.isFinite(Number(raw))) candidates.push(Number(raw));
  let json: unknown;
  try {
    json = JSON.parse(raw);
    candidates.push(json);
  } catch {
    // not JSON: the string itself is the only reading left
  }
  return candidates.find((c) => Value.Check(schema, c)) ?? (typeof json === 'object' && json !== null ? json : raw);
}

/** Where a value came from, by dotted path, for the violations: a WHARF_* name or the command line. */
type Sources = Map<string, string>;

function record(sources: Sources, path: string, label: string): void {
  for (const p of [...sources.keys()]) if (p.startsWith(`${path}.`)) sources.delete(p);
  sources.set(path, label);
}

function setPath(target: Plain, path: readonly string[], value: unknown): void {
  let node = target;
  for (const key of path.slice(0, -1)) {
    if (!isPlain(node[key])) node[key] = {};
    node = node[key] as Plain;
  }
  node[path[path.length - 1]!] = value;
}

/** Drops undefined leaves (flags not given), and objects left empty by that; undefined if nothing is left. */
function defined(value: unknown): unknown {
  if (!isPlain(value)) return value;
  const kept = Object.entries(value)
    .map(([k, v]) => [k, defined(v)] as const)
    .filter(([, v]) => v !== undefined);
  return kept.length > 0 || Object.keys(value).length === 0 ? Object.fromEntries(kept) : undefined;
}

function mergeInto(target: Plain, source: Plain, path: string[], label: string, sources: Sources): void {
  for (const [key, value] of Object.entries(source)) {
    const here = [...path, key];
    const given = defined(value);
    if (given === undefined) continue;
    if (isPlain(given) && isPlain(target[key])) {
      mergeInto(target[key], given, here, label, sources);
    } else {
      target[key] = Value.Clone(given);
      record(sources, here.join('.'), label);
    }
  }
}

function readYaml(file: string): { data: Plain; doc: Document; lines: LineCounter } {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const reason = code === 'ENOENT' ? 'no such file' : (err as Error).message;
    throw new ConfigError([`cannot read the file: ${reason}`], file);
  }
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, prettyErrors: true });
  if (doc.errors.length > 0) {
    throw new ConfigError(
      doc.errors.map((e) => {
        const pos = e.linePos?.[0];
        const what = e.message.split('\n')[0]!.replace(/ at line \d+, column \d+:?$/, '');
        return pos ? `line ${pos.line}, column ${pos.col}: ${what}` : what;
      }),
      file,
    );
  }
  const data: unknown = doc.toJS();
  if (data === null || data === undefined) return { data: {}, doc, lines }; // empty file: all defaults
  if (!isPlain(data)) throw new ConfigError([`(root): expected a mapping of keys, got ${kindOf(data)}`], file);
  return { data, doc, lines };
}

const kindOf = (v: unknown): string => {
  if (v === null) return 'nothing (null)';
  if (Array.isArray(v)) return 'a list';
  if (isPlain(v)) return 'a mapping';
  return typeof v === 'number' && Number.isInteger(v) ? 'an integer' : `a ${typeof v}`;
};

/** Edit distance, for "did you mean": two names this close are more likely a typo than unrelated. */
function distance(a: string, b: string): number {
  let row = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const next = [i];
    for (let j = 1; j <= b.length; j++) next[j] = Math.min(row[j]! + 1, next[j - 1]! + 1, row[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    row = next;
  }
  return row[b.length]!;
}

/** The values of every key whose name ends in Env (passwordEnv...): environment variables the configuration reads. */
function variablesNamed(value: unknown, out = new Set<string>()): Set<string> {
  if (Array.isArray(value)) for (const item of value) variablesNamed(item, out);
  else if (isPlain(value)) {
    for (const [key, v] of Object.entries(value)) {
      if (key.endsWith('Env') && typeof v === 'string') out.add(v);
      else variablesNamed(v, out);
    }
  }
  return out;
}

function unknownVariablesWarning(names: string[]): string {
  const named = names.map((name) => {
    const near = [...ENV_KEYS.keys()].find((known) => distance(name, known) <= 2);
    return near === undefined ? name : `${name} (did you mean ${near}?)`;
  });
  return `ignoring ${named.join(', ')}: no configuration key has ${names.length === 1 ? 'this name' : 'these names'} (wharf print-schema lists the keys; WHARF_<KEY_PATH> sets one)`;
}

function show(v: unknown): string {
  const s = JSON.stringify(v);
  if (s === undefined) return String(v);
  return s.length > 60 ? `${s.slice(0, 57)}...` : s;
}

/** Strings whose pattern is a kind of value with a name: a message says "a duration such as 30s", not "a string". */
const NAMED_PATTERNS: ReadonlyMap<unknown, string> = new Map([
  [DURATION_PATTERN, A_DURATION],
  [SIZE_PATTERN, A_SIZE],
]);

/** The named kind of value a schema (or a member of its union) stands for, if any. */
function namedKind(schema: TSchema): string | undefined {
  if (schema[Kind] === 'String') return NAMED_PATTERNS.get(schema.pattern);
  if (schema[Kind] === 'Union') return (schema.anyOf as TSchema[]).map(namedKind).find((k) => k !== undefined);
  return undefined;
}

/** What a schema accepts, in words: `an integer >= 0`, `a string`, `a list`, `a duration such as 30s ...`. */
function accepted(schema: TSchema): string {
  const named = namedKind(schema);
  if (named !== undefined) return named;
  switch (schema[Kind]) {
    case 'Integer':
    case 'Number':
      return `${schema[Kind] === 'Integer' ? 'an integer' : 'a number'}${typeof schema.minimum === 'number' ? ` >= ${schema.minimum}` : ''}`;
    case 'String':
      return 'a string';
    case 'Boolean':
      return 'true or false';
    case 'Array':
      return 'a list';
    case 'Object':
    case 'Record':
      return 'a mapping';
    case 'Literal':
      return show(schema.const);
    default:
      return String(schema[Kind]).toLowerCase();
  }
}

function describe(e: ValueError): string {
  switch (e.type) {
    case ValueErrorType.ObjectAdditionalProperties:
      return 'unknown key';
    case ValueErrorType.ObjectRequiredProperty:
      return 'required key missing';
    case ValueErrorType.StringPattern: {
      const named = namedKind(e.schema);
      if (named !== undefined) return `invalid value ${show(e.value)}: expected ${named}`;
      return `invalid value ${show(e.value)}: ${e.schema.description ?? `must match ${e.schema.pattern}`}`;
    }
    case ValueErrorType.Union: {
      const members = e.schema.anyOf as TSchema[];
      // An enum of literals: name the choices.
      if (members.every((s) => s[Kind] === 'Literal')) return `must be one of ${members.map((s) => String(s.const)).join(', ')}, got ${show(e.value)}`;
      // A size (bytes or a string with a unit): its name says all that is accepted.
      const named = namedKind(e.schema);
      if (named !== undefined) return `expected ${named}, got ${kindOf(e.value)} ${show(e.value)}`;
      const what = `expected ${members.map(accepted).join(' or ')}, got ${show(e.value)}`;
      return typeof e.schema.description === 'string' ? `${what}: ${e.schema.description}` : what;
    }
    case ValueErrorType.Object:
    case ValueErrorType.Array:
    case ValueErrorType.Boolean:
    case ValueErrorType.Integer:
    case ValueErrorType.Number:
    case ValueErrorType.String:
      return `expected ${accepted(e.schema)}, got ${kindOf(e.value)}${e.value === null || isPlain(e.value) || Array.isArray(e.value) ? '' : ` ${show(e.value)}`}`;
    default:
      return `${e.message.charAt(0).toLowerCase()}${e.message.slice(1)}, got ${show(e.value)}`;
  }
}

/** JSON pointer `/storage/path` → `storage.path` (keys here never contain `/` or `~`). */
const dotted = (pointer: string): string => pointer.split('/').slice(1).join('.');

export function loadConfig(opts: LoadOptions = {}): WharfConfig {
  return loadConfigWithOrigin(opts).config;
}

export interface LoadedConfig {
  config: WharfConfig;
  /**
   * Where the value of a dotted key came from, as violations say it: ` (line 7)`, ` (from WHARF_X)`,
   * ` (from command line)`, or '' when it is a default. For problems found after loading (preflight:
   * files the configuration names, the data directory), so they say where to look like the rest.
   */
  origin: (key: string) => string;
}

/** loadConfig, and where each value came from. */
export function loadConfigWithOrigin(opts: LoadOptions = {}): LoadedConfig {
  const merged: Plain = {};
  const sources: Sources = new Map();
  const violations: string[] = [];

  let yaml: ReturnType<typeof readYaml> | undefined;
  if (opts.file !== undefined) {
    yaml = readYaml(opts.file);
    Object.assign(merged, yaml.data);
  }

  const unknownVariables: string[] = [];
  for (const [name, raw] of Object.entries(opts.env ?? {})) {
    if (!name.startsWith(ENV_PREFIX) || raw === undefined || NON_CONFIG_ENV.has(name)) continue;
    const key = ENV_KEYS.get(name);
    if (!key) {
      unknownVariables.push(name);
      continue;
    }
    setPath(merged, key.path, coerce(raw, key.schema));
    record(sources, key.path.join('.'), name);
  }
  if (opts.overrides !== undefined) mergeInto(merged, opts.overrides as Plain, [], 'command line', sources);

  // A variable that a *Env key names (passwordEnv: WHARF_DB_PASSWORD) is read by that key: not unknown.
  const named = variablesNamed(merged);
  const unknown = unknownVariables.filter((name) => !named.has(name));
  if (unknown.length > 0) opts.warn?.(unknownVariablesWarning(unknown.sort()));

  const config = applyDefaults(ConfigSchema, merged);

  // Where a bad value came from: the layer that set it (or a parent), else the line in the file
  // (of the nearest enclosing key, for a key that is missing).
  const origin = (path: string): string => {
    const parents = (p: string) => p.slice(0, Math.max(p.lastIndexOf('.'), 0));
    for (let p = path; ; p = parents(p)) {
      const label = sources.get(p);
      if (label !== undefined) return ` (from ${label})`;
      if (p === '') break;
    }
    for (let p = path; yaml && p !== ''; p = parents(p)) {
      const node = yaml.doc.getIn(p.split('.'), true) as { range?: [number, number, number] } | undefined;
      if (node?.range) return ` (line ${yaml.lines.linePos(node.range[0]).line})`;
    }
    return '';
  };

  // One violation per key: TypeBox reports a missing key twice (required, then of the wrong type),
  // and a value that breaks two constraints twice; the first says enough.
  const reported = new Set<string>();
  for (const e of Value.Errors(ConfigSchema, config)) {
    const path = dotted(e.path);
    if (reported.has(path)) continue;
    reported.add(path);
    violations.push(`${path || '(root)'}: ${describe(e)}${origin(path)}`);
  }

  // Checks the schema cannot express.
  if (isPlain(config) && typeof config.listen === 'string' && !violations.some((v) => v.startsWith('listen:'))) {
    try {
      parseListen(config.listen);
    } catch (err) {
      violations.push(`listen: ${(err as Error).message}${origin('listen')}`);
    }
  }

  // The rules between keys run whatever the schema found, so one run lists both kinds of mistake.
  for (const v of [...crossFieldViolations(config), ...resolveSecrets(config, opts.env ?? {}), ...(opts.checks?.(config) ?? [])]) {
    violations.push(`${v}${origin(v.slice(0, v.indexOf(':')))}`);
  }
  // Forward proxies for upstream traffic come from the usual variables, not from a key.
  const proxy = upstreamProxyFrom(opts.env ?? {});
  violations.push(...proxy.violations);
  if (violations.length > 0) throw new ConfigError(violations, opts.file);
  // Valid as written: durations and sizes become numbers (ms, bytes) here, once.
  const loaded = parseValues(ConfigSchema, config) as WharfConfig;
  if (proxy.proxy) loaded.upstreamProxy = proxy.proxy;
  return { config: deepFreeze(loaded), origin };
}

function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null) {
    for (const child of Object.values(value)) deepFreeze(child);
    Object.freeze(value);
  }
  return value;
}
