// The command line: thin. It loads configuration and hands it to the same code the tests use.
import { existsSync } from 'node:fs';
import type { FastifyInstance } from 'fastify';
import type { AddressInfo } from 'node:net';
import { parseArgs } from 'node:util';
import {
  ServiceTokens,
  formatScope,
  parseScope,
  publicView,
  validateTokenName,
} from './auth/service-tokens.js';
import type { TokenScope } from './auth/types.js';
import { parseDuration } from './config/duration.js';
import { formatHostPort, parseListen } from './config/listen.js';
import { ConfigError, loadConfig, type LoadOptions } from './config/load.js';
import { routingSummary } from './config/routing-summary.js';
import { ConfigSchema, type WharfConfig } from './config/schema.js';
import { healthcheck } from './healthcheck.js';
import { commandUsage, USAGE, version } from './cli-help.js';
import { checkConfig, globContext } from './preflight.js';
import { bindListenSocket } from './http/listen-socket.js';
import { ConfigKeyError } from './config/key-error.js';
import { globChecker } from './auth/repository-globs.js';
import type { MetadataStore, ServiceTokenRecord } from './metadata/metadata-store.js';
import type { GcReport } from './gc/collector.js';
import type { FsBlobStore } from './storage/fs-blob-store.js';
import { metadataPath } from './storage/paths.js';

export interface Output {
  write(chunk: string): unknown;
}

export interface CliIo {
  stdout: Output;
  stderr: Output;
  env: NodeJS.ProcessEnv;
}


/** Wrong invocation: reported with the usage and exit status 2. */
class UsageError extends Error {}

const isParseArgsError = (err: unknown): err is Error =>
  err instanceof Error && String((err as NodeJS.ErrnoException).code).startsWith('ERR_PARSE_ARGS');

/** How the entry point prints a failure: one `wharf:` line; a ConfigError lists every violation below it. */
export function formatError(err: unknown): string {
  // A problem with one key's value names the key once, as the violations do.
  if (err instanceof ConfigKeyError) return `wharf: ${err.key}: ${err.message}\n`;
  return `wharf: ${err instanceof Error ? err.message : String(err)}\n`;
}

export async function main(
  argv: string[],
  io: CliIo = { stdout: process.stdout, stderr: process.stderr, env: process.env },
): Promise<number> {
  const [command, ...args] = argv;
  try {
    switch (command) {
      case undefined:
        io.stderr.write(USAGE);
        return 2;
      case 'help':
      case '--help':
      case '-h':
        return help(args, io);
      case 'version':
      case '--version':
      case '-V':
        io.stdout.write(`wharf ${version()}\n`);
        return 0;
      case 'serve':
        return await serve(args, io);
      case 'token':
        return await token(args, io);
      case 'gc':
        return await gc(args, io);
      case 'fsck':
        return await fsckCommand(args, io);
      case 'verify-config':
        return await verifyConfig(args, io);
      case 'healthcheck':
        return await healthcheck(args, io, (flags) => loadCliConfig(io, flags));
      case 'print-schema':
        return printSchema(args, io);
      default:
        throw new UsageError(command.startsWith('-') ? `unknown option '${command}'` : `unknown command '${command}'`);
    }
  } catch (err) {
    if (err instanceof UsageError || isParseArgsError(err)) {
      // parseArgs' own messages are clear but long; its first sentence is the useful part.
      const message = err.message.replace(/\. To specify a positional argument.*$/s, '');
      io.stderr.write(`wharf: ${message}\nRun 'wharf --help' for usage.\n`);
      return 2;
    }
    io.stderr.write(formatError(err));
    return 1;
  }
}

const helpOption = { help: { type: 'boolean', short: 'h' } } as const;

/** `wharf help [COMMAND]`: everything, or one command's entry. */
function help(args: string[], io: CliIo): number {
  if (args.length === 0) {
    io.stdout.write(USAGE);
    return 0;
  }
  const text = commandUsage(args.join(' '));
  if (text === undefined) throw new UsageError(`no command '${args.join(' ')}'`);
  io.stdout.write(text);
  return 0;
}

/** Prints the help of `command` (for its --help flag). */
function printHelp(io: CliIo, command: string): number {
  io.stdout.write(commandUsage(command) ?? USAGE);
  return 0;
}

async function serve(args: string[], io: CliIo): Promise<number> {
  const { values } = parseArgs({
    args,
    options: {
      ...helpOption,
      config: { type: 'string', short: 'c' },
      listen: { type: 'string', short: 'l' },
      data: { type: 'string', short: 'd' },
    },
    allowPositionals: false,
    strict: true,
  });
  if (values.help) return printHelp(io, 'serve');
  // Everything verify-config checks, before anything is created.
  const config = await checkConfig(loadOptions(io, values));
  const { host, port } = parseListen(config.listen);
  // Then the socket, still before anything is created: a port in use or not allowed is said at once,
  // and leaves no store behind. The server adopts this socket (no second bind that could fail).
  const socket = await bindListenSocket(host, port);

  let app: FastifyInstance;
  try {
    // Loaded here, not at the top: verify-config and print-schema need neither fastify nor the database.
    const { buildApp } = await import('./app.js');
    app = await buildApp(config);
  } catch (err) {
    await socket.close();
    throw err;
  }
  io.stdout.write(`${routingSummary(config)}\n`);

  // Listening for signals before the socket is open: a SIGTERM during start-up still closes cleanly.
  const firstSignal = onSignal();
  try {
    // `handle`: node's listen() takes over the bound socket; fastify passes its options through.
    const options = { host, handle: socket.handle };
    await app.listen(options);
  } catch (err) {
    firstSignal.dispose();
    await app.close();
    throw err;
  }
  const address = app.server.address() as AddressInfo;
  io.stdout.write(`listening on http://${formatHostPort(address.address, address.port)}\n`);

  const signal = await firstSignal.received;
  firstSignal.dispose();
  return shutDown(app, signal, config.shutdownTimeoutMs, io);
}

const configFile = (io: CliIo, flags: { config?: string }): string | undefined => flags.config ?? (io.env.WHARF_CONFIG || undefined);

/** Warnings go to stderr, each once per process (verify-config loads several files with one environment). */
function warner(io: CliIo): (message: string) => void {
  const said = new Set<string>();
  return (message) => {
    if (said.has(message)) return;
    said.add(message);
    io.stderr.write(`wharf: warning: ${message}\n`);
  };
}

/** How every command that runs against a data directory loads its configuration: file, WHARF_*, flags. */
function loadOptions(io: CliIo, flags: { config?: string; listen?: string; data?: string }): LoadOptions {
  return {
    file: configFile(io, flags),
    env: io.env,
    overrides: { listen: flags.listen, storage: { path: flags.data } },
    warn: warner(io),
  };
}

/** The configuration, loaded only (serve and verify-config run checkConfig, which checks further). */
function loadCliConfig(io: CliIo, flags: { config?: string; listen?: string; data?: string }): WharfConfig {
  return loadConfig(loadOptions(io, flags));
}

interface Closable {
  close(): Promise<unknown>;
  server: { closeAllConnections(): void };
}

async function shutDown(app: Closable, signal: string, timeoutMs: number, io: CliIo): Promise<number> {
  io.stdout.write(`${signal} received: closing, in-flight requests have ${timeoutMs} ms to finish\n`);
  const closing = app.close().then(
    () => ({ outcome: 'closed' as const }),
    (error: unknown) => ({ outcome: 'failed' as const, error }),
  );
  // A second signal means "now": the operator is not waiting for the timeout.
  const again = onSignal();
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<{ outcome: 'timeout' }>((resolve) => {
    timer = setTimeout(() => resolve({ outcome: 'timeout' }), timeoutMs);
  });
  const result = await Promise.race([
    closing,
    timedOut,
    again.received.then((s) => ({ outcome: 'signal' as const, signal: s })),
  ]);
  clearTimeout(timer);
  again.dispose();

  switch (result.outcome) {
    case 'closed':
      io.stdout.write('closed\n');
      return 0;
    case 'failed':
      io.stderr.write(formatError(result.error));
      return 1;
    case 'timeout':
    case 'signal': {
      const why = result.outcome === 'timeout' ? `still busy after ${timeoutMs} ms` : `${result.signal} received again`;
      io.stderr.write(`wharf: ${why}: dropping the remaining connections\n`);
      // Dropping the sockets lets close() run its onClose hooks (the database); bounded all the same.
      app.server.closeAllConnections();
      await Promise.race([closing, new Promise((resolve) => setTimeout(resolve, 1000).unref())]);
      return 1;
    }
  }
}

/** The next SIGTERM or SIGINT; while listening, neither kills the process. */
function onSignal(): { received: Promise<NodeJS.Signals>; dispose(): void } {
  const signals: NodeJS.Signals[] = ['SIGTERM', 'SIGINT'];
  let handler: (s: NodeJS.Signals) => void = () => {};
  const received = new Promise<NodeJS.Signals>((resolve) => {
    handler = resolve;
  });
  for (const s of signals) process.on(s, handler);
  return { received, dispose: () => signals.forEach((s) => process.off(s, handler)) };
}

const storeOptions = {
  ...helpOption,
  config: { type: 'string', short: 'c' },
  data: { type: 'string', short: 'd' },
} as const;

/** The stores of the configured data directory, as `serve` opens them; closed after `fn`. */
async function withStores<T>(
  io: CliIo,
  flags: { config?: string; data?: string },
  fn: (stores: { config: WharfConfig; metadata: MetadataStore; blobs: FsBlobStore }) => Promise<T>,
): Promise<T> {
  return withMetadata(io, flags, async (config, metadata) => {
    const { FsBlobStore } = await import('./storage/fs-blob-store.js');
    return fn({ config, metadata, blobs: await FsBlobStore.open(config.storage.path) });
  });
}

/**
 * Runs `fn` against the metadata database of the configured data directory, the one `serve` opens.
 * The store waits on a server's write lock (busy_timeout) instead of failing.
 */
async function withMetadata<T>(io: CliIo, flags: { config?: string; data?: string }, fn: (config: WharfConfig, metadata: MetadataStore) => Promise<T>): Promise<T> {
  const config = loadCliConfig(io, flags);
  // These commands work on a store that serve created; opening a path that holds none would create
  // an empty one there and report on it as if all were well (a mistyped --data, a wrong config).
  const db = metadataPath(config.storage.path);
  if (!existsSync(db)) {
    throw new Error(`${config.storage.path} holds no Wharf store (no ${db}): check --data, --config or storage.path; wharf serve creates the store`);
  }
  // Loaded here, not at the top: verify-config and print-schema do not need the database driver.
  const { SqliteMetadataStore } = await import('./metadata/sqlite-metadata-store.js');
  const metadata = SqliteMetadataStore.open(db);
  try {
    return await fn(config, metadata);
  } finally {
    await metadata.close();
  }
}

/** `wharf gc`: one collection on the configured store, also while a server runs on it. */
async function gc(args: string[], io: CliIo): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    options: { ...storeOptions, 'dry-run': { type: 'boolean' }, json: { type: 'boolean' } },
    allowPositionals: true,
    strict: true,
  });
  if (values.help) return printHelp(io, 'gc');
  if (positionals.length > 0) throw new UsageError(`gc takes no arguments, got '${positionals[0]}'`);
  const { GarbageCollector, GcBusyError } = await import('./gc/collector.js');
  const { gcOptionsFrom } = await import('./config/gc-options.js');
  return withStores(io, values, async ({ config, metadata, blobs }) => {
    const collector = new GarbageCollector(metadata, blobs);
    let report: GcReport;
    try {
      report = await collector.run(gcOptionsFrom(config, values['dry-run'] === true));
    } catch (err) {
      if (err instanceof GcBusyError) {
        io.stderr.write(`wharf: ${err.message}; try again when it has finished\n`);
        return 1;
      }
      throw err;
    }
    io.stdout.write(values.json ? `${JSON.stringify(report)}\n` : formatGcReport(report));
    return 0;
  });
}

export function formatGcReport(r: GcReport): string {
  const mib = (n: number) => `${(n / 1024 / 1024).toFixed(1)} MiB`;
  const verb = r.dryRun ? 'would delete' : 'deleted';
  return [
    `${r.dryRun ? 'dry run: nothing was deleted' : 'collection finished'} in ${r.durationMs} ms`,
    `  manifests ${verb}: ${r.manifestsDeleted} (evicted by age ${r.evictedByAge}, by size ${r.evictedBySize})`,
    `  tags ${verb}:      ${r.tagsDeleted}`,
    `  blobs ${verb}:     ${r.blobsDeleted}`,
    `  uploads ${verb}:   ${r.uploadsDeleted}`,
    `  orphan files:       ${r.orphanFilesRemoved}`,
    `  bytes reclaimed:    ${r.bytesReclaimed} (${mib(r.bytesReclaimed)})`,
    `  bytes kept:         ${r.bytesKept} (${mib(r.bytesKept)})`,
    '',
  ].join('\n');
}

/** `wharf fsck`: checks that metadata and blob files agree; exit 1 when they do not. */
async function fsckCommand(args: string[], io: CliIo): Promise<number> {
  const { values, positionals } = parseArgs({ args, options: { ...storeOptions, json: { type: 'boolean' } }, allowPositionals: true, strict: true });
  if (values.help) return printHelp(io, 'fsck');
  if (positionals.length > 0) throw new UsageError(`fsck takes no arguments, got '${positionals[0]}'`);
  const { fsck } = await import('./gc/fsck.js');
  return withStores(io, values, async ({ config, metadata }) => {
    const result = await fsck(metadata, config.storage.path);
    if (values.json) io.stdout.write(`${JSON.stringify(result)}\n`);
    else if (result.ok) io.stdout.write('ok: metadata and blob files agree\n');
    else {
      const lines = [
        ...result.missingFiles.map((d) => `missing file: ${d}`),
        ...result.orphanFiles.map((d) => `orphan file: ${d}`),
        ...result.danglingReferences.map((d) => `dangling reference: ${d}`),
        ...result.badTags.map((d) => `bad tag: ${d}`),
      ];
      io.stdout.write(`${lines.join('\n')}\n`);
    }
    return result.ok ? 0 : 1;
  });
}

/** `wharf token create|list|revoke`: manage service tokens in the metadata store `serve` uses. */
async function token(args: string[], io: CliIo): Promise<number> {
  const [sub, ...rest] = args;
  switch (sub) {
    case 'help':
    case '--help':
    case '-h':
      return printHelp(io, 'token');
    case 'create':
      return tokenCreate(rest, io);
    case 'list':
      return tokenList(rest, io);
    case 'revoke':
      return tokenRevoke(rest, io);
    default:
      if (sub === undefined || sub.startsWith('-')) throw new UsageError('token needs a command: create, list or revoke');
      throw new UsageError(`unknown token command '${sub}' (create, list or revoke)`);
  }
}

/** Runs `fn` with the service tokens of the configured data directory. */
function withTokens<T>(io: CliIo, flags: { config?: string; data?: string }, fn: (tokens: ServiceTokens) => Promise<T>): Promise<T> {
  return withMetadata(io, flags, (config, metadata) => {
    // Scopes are checked against the configuration's routing, as the management API checks them.
    return fn(new ServiceTokens(metadata, Date.now, globChecker(globContext(config.upstreams, config.local.namespaces))));
  });
}

/** Command-line arguments are checked before the store is opened, and are usage errors (status 2). */
function usageCheck<T>(what: string, check: () => T): T {
  try {
    return check();
  } catch (err) {
    throw new UsageError(`${what}${(err as Error).message}`);
  }
}

async function tokenCreate(args: string[], io: CliIo): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    options: {
      ...storeOptions,
      name: { type: 'string', short: 'n' },
      scope: { type: 'string', short: 's', multiple: true },
      expires: { type: 'string', short: 'e' },
      json: { type: 'boolean' },
    },
    allowPositionals: true,
    strict: true,
  });
  if (values.help) return printHelp(io, 'token create');
  if (positionals.length > 0) throw new UsageError(`token create takes no arguments, got '${positionals[0]}'`);
  const name = values.name;
  if (name === undefined) throw new UsageError('token create needs --name NAME');
  usageCheck('', () => validateTokenName(name));
  if (values.scope === undefined) {
    throw new UsageError('token create needs at least one --scope GLOB[,GLOB...]:ACTION[,ACTION...]');
  }
  const scopes: TokenScope[] = values.scope.map((text) => usageCheck('', () => parseScope(text)));
  let expiresInMs: number | undefined;
  if (values.expires !== undefined) {
    expiresInMs = usageCheck('--expires: ', () => parseDuration(values.expires!));
    if (expiresInMs <= 0) throw new UsageError('--expires: the lifetime must be longer than 0');
  }

  const { token, record } = await withTokens(io, values, (tokens) => tokens.create({ name, scopes, expiresInMs }));
  if (values.json) {
    const { id, expiresAt } = record;
    io.stdout.write(`${JSON.stringify({ id, name, token, scopes, expiresAt })}\n`);
  } else {
    io.stdout.write(`${token}\n`);
  }
  io.stderr.write(
    `Created service token ${record.id} (${name}). Save it now: it will not be shown again.\n` +
      `Use it as the password of user name ${name}, e.g. skopeo copy --dest-creds ${name}:TOKEN ...\n`,
  );
  return 0;
}

async function tokenList(args: string[], io: CliIo): Promise<number> {
  const { values } = parseArgs({
    args,
    options: { ...storeOptions, json: { type: 'boolean' } },
    allowPositionals: false,
    strict: true,
  });
  if (values.help) return printHelp(io, 'token list');
  const records = await withTokens(io, values, (tokens) => tokens.list());
  if (values.json) {
    io.stdout.write(`${JSON.stringify(records.map(publicView), null, 2)}\n`);
  } else {
    io.stdout.write(tokenTable(records, Date.now()));
  }
  return 0;
}

async function tokenRevoke(args: string[], io: CliIo): Promise<number> {
  const { values, positionals } = parseArgs({ args, options: storeOptions, allowPositionals: true, strict: true });
  if (values.help) return printHelp(io, 'token revoke');
  if (positionals.length !== 1) throw new UsageError('token revoke needs one ID or NAME');
  const idOrName = positionals[0]!;
  const revoked = await withTokens(io, values, (tokens) => tokens.revoke(idOrName));
  if (revoked === undefined) throw new Error(`no token with id or name "${idOrName}" to revoke (unknown, or already revoked)`);
  io.stdout.write(`revoked ${revoked.id} (${revoked.name})\n`);
  return 0;
}

/** Milliseconds since the epoch → `2024-05-01T12:00:00Z`; '-' for never. */
const formatTime = (ms: number | null): string => (ms === null ? '-' : new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z'));

/** An aligned table, one token per line; the scopes column uses the --scope syntax. */
function tokenTable(records: readonly ServiceTokenRecord[], now: number): string {
  const rows = records.map((r) => [
    r.id,
    r.name,
    r.scopes.map(formatScope).join(' '),
    formatTime(r.createdAt),
    r.expiresAt !== null && r.expiresAt <= now ? `${formatTime(r.expiresAt)} (expired)` : formatTime(r.expiresAt),
    formatTime(r.lastUsedAt),
    formatTime(r.revokedAt),
  ]);
  const table = [['ID', 'NAME', 'SCOPES', 'CREATED', 'EXPIRES', 'LAST USED', 'REVOKED'], ...rows];
  const widths = table[0]!.map((_, col) => Math.max(...table.map((row) => row[col]!.length)));
  return table.map((row) => `${row.map((cell, col) => cell.padEnd(widths[col]!)).join('  ').trimEnd()}\n`).join('');
}

/** Checks each file as `serve --config FILE` would before starting: the same load, the same preflight. */
async function verifyConfig(args: string[], io: CliIo): Promise<number> {
  const { values, positionals } = parseArgs({ args, options: helpOption, allowPositionals: true, strict: true });
  if (values.help) return printHelp(io, 'verify-config');
  const files = positionals.length > 0 ? positionals : [io.env.WHARF_CONFIG].filter((f): f is string => Boolean(f));
  if (files.length === 0) throw new UsageError('verify-config needs a FILE (or WHARF_CONFIG)');
  const warn = warner(io);
  let failed = false;
  for (const file of files) {
    let violations: readonly string[] = [];
    try {
      await checkConfig({ file, env: io.env, warn });
    } catch (err) {
      if (!(err instanceof ConfigError)) throw err;
      violations = err.violations;
    }
    if (violations.length === 0) io.stdout.write(`${file}: ok\n`);
    failed ||= violations.length > 0;
    for (const v of violations) io.stderr.write(`${file}: ${v}\n`);
  }
  return failed ? 1 : 0;
}

function printSchema(args: string[], io: CliIo): number {
  const { values } = parseArgs({ args, options: helpOption, allowPositionals: false, strict: true });
  if (values.help) return printHelp(io, 'print-schema');
  io.stdout.write(`${JSON.stringify(ConfigSchema, null, 2)}\n`);
  return 0;
}
