// `wharf token create|list|revoke`: manage service tokens in the metadata database `serve` uses.
import { parseArgs } from 'node:util';
import { ServiceTokens, formatScope, parseScope, publicView, validateTokenName } from '../auth/service-tokens.js';
import { globChecker } from '../auth/repository-globs.js';
import type { TokenScope } from '../auth/types.js';
import { decodeDuration } from '../config/schema.js';
import type { ServiceTokenRecord } from '../auth/service-token-store.js';
import { printHelp, UsageError, type CliIo, type Command, type CommandHelp } from './command.js';
import { globContext } from './preflight.js';
import { storeOptions, withMetadata, type StoreFlags } from './stores.js';

const help: CommandHelp[] = [
  {
    name: 'token create',
    synopsis: `--name NAME --scope GLOB[,GLOB...]:ACTION[,ACTION...] [--scope ...]
               [--expires DURATION] [--config FILE] [--data DIR] [--json]`,
    text: `Create a service token for automation and print it once: only a hash is kept,
it cannot be shown again. Use it as the password with NAME as the user name
(skopeo --creds NAME:TOKEN). ACTION is pull, push, delete or * (all three);
in a GLOB, * matches within one path component and ** across components.
DURATION is e.g. 12h or 90d; without --expires the token does not expire.`,
  },
  {
    name: 'token list',
    synopsis: '[--config FILE] [--data DIR] [--json]',
    text: 'List the service tokens (never their secrets), revoked and expired ones too.',
  },
  {
    name: 'token revoke',
    synopsis: 'ID|NAME [--config FILE] [--data DIR]',
    text: `Revoke a token by id, or by the name of a token not yet revoked; it stops
working at once. The token commands read the configuration as serve does and
may run while it serves the same data directory.`,
  },
];

async function token(args: string[], io: CliIo): Promise<number> {
  const [sub, ...rest] = args;
  switch (sub) {
    case 'help':
    case '--help':
    case '-h':
      return printHelp(io, help, 'token');
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
function withTokens<T>(io: CliIo, flags: StoreFlags, fn: (tokens: ServiceTokens) => Promise<T>): Promise<T> {
  return withMetadata(io, flags, (config, { tokens }) => {
    // Scopes are checked against the configuration's routing, as the management API checks them.
    return fn(new ServiceTokens(tokens, Date.now, globChecker(globContext(config.upstreams, config.local.namespaces))));
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
  if (values.help) return printHelp(io, help, 'token create');
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
    expiresInMs = usageCheck('--expires: ', () => decodeDuration(values.expires!));
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
  if (values.help) return printHelp(io, help, 'token list');
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
  if (values.help) return printHelp(io, help, 'token revoke');
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

export const tokenCommand: Command = { name: 'token', help, run: token };
