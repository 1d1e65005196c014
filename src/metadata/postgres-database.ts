// The one PostgreSQL pool every PostgreSQL store of a process shares (node-postgres, `pg`): opened once,
// its schema brought up to date under an advisory lock, then handed to PostgresRegistryMetadata,
// PostgresUploadSessions, PostgresGcState and the service token store of src/auth. Several nodes share
// one database, so unlike SQLite no write is serialised for us: stores that read then write do it in
// one statement with the checks in WHERE, or lock the rows they rely on (see each store).
//
// When the server cannot be reached, every call rejects with MetadataUnavailableError (answered
// 503 UNAVAILABLE) instead of a driver error; the pool drops broken connections and opens new ones on
// the next call, so nothing has to be restarted when the server is back.
import pg from 'pg';
import { MetadataUnavailableError } from './metadata-errors.js';
import { postgresLibraryTables, postgresMigrations } from './migrations/postgres.js';
import { PostgresChangeFeed } from './postgres-change-feed.js';

/**
 * Milliseconds since the epoch on the database's clock (clock_timestamp: not frozen at the
 * transaction start), for expiries that several nodes compare (fill leases, the collector lock).
 */
export const DB_NOW_MS = '(extract(epoch FROM clock_timestamp()) * 1000)::bigint';

export interface PostgresOptions {
  /** postgres://user@host:port/database (the password, when given apart, is not in it). */
  url: string;
  /** The password, read from a file or the environment by the caller; overrides one in the URL. */
  password?: string;
  /** Connections in the pool (default 10). */
  poolSize?: number;
  /** How long opening a connection may take before the call fails as unavailable (default 5 s). */
  connectTimeoutMs?: number;
  /** Longest statement, enforced by the server (default 30 s; 0 = none). */
  statementTimeoutMs?: number;
  /** An idle connection is closed after this long (default 30 s). */
  idleTimeoutMs?: number;
  /** The schema every connection works in (search_path); default the server's. Tests use one each. */
  schema?: string;
  /** false: a database without Wharf's schema is refused instead of created (the CLI's commands). Default true. */
  create?: boolean;
  /** Errors of idle connections (the server went away); they are dropped from the pool either way. */
  onIdleError?: (err: Error) => void;
}

/** What a statement runs on: the pool, or one connection inside a transaction. */
export interface Queryable {
  query<R extends pg.QueryResultRow = pg.QueryResultRow>(text: string, values?: unknown[]): Promise<pg.QueryResult<R>>;
}

/** One connection held by a caller until it calls release (the collector's mark keeps its temp tables there). */
export interface Session extends Queryable {
  /** Runs `fn` in a transaction on this connection (retried on serialisation failures and deadlocks). */
  transaction<T>(fn: (q: Queryable) => Promise<T>): Promise<T>;
  release(): void;
}

// BIGINT (int8) comes back as a string by default; every BIGINT here is milliseconds or bytes, far
// below 2^53. Per pool, not pg's global parsers, so other users of `pg` in the process are unaffected.
const INT8 = 20;
const parseInt8 = (v: string): number => Number(v);
const types = {
  getTypeParser: ((oid: number, format?: 'text' | 'binary'): unknown =>
    oid === INT8 && format !== 'binary' ? parseInt8 : (pg.types.getTypeParser(oid, format ?? 'text') as unknown)) as typeof pg.types.getTypeParser,
};

/** SQLSTATEs after which the same transaction, run again, may succeed. */
const RETRY = new Set(['40001', '40P01']);
const MAX_ATTEMPTS = 8;
/** The client-side limit of an unbounded session's statements: a day, to notice a dead network at all. */
const UNBOUNDED_MS = 86_400_000;

const NETWORK = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'ENOTFOUND', 'EHOSTUNREACH', 'ENETUNREACH', 'EAI_AGAIN', 'ECONNABORTED']);
// admin_shutdown, crash_shutdown, cannot_connect_now, too_many_connections, query_canceled (statement_timeout).
const SERVER_AWAY = new Set(['57P01', '57P02', '57P03', '53300', '57014']);
const DRIVER_AWAY = /Connection terminated|timeout exceeded when trying to connect|not queryable|Query read timeout/i;

/** Whether `err` says the server is out of reach (rather than that the statement is wrong). */
export function isUnavailable(err: unknown): boolean {
  if (err instanceof MetadataUnavailableError) return true;
  if (err instanceof AggregateError) return err.errors.some(isUnavailable);
  if (!(err instanceof Error)) return false;
  const code = (err as { code?: unknown }).code;
  if (typeof code === 'string' && (NETWORK.has(code) || SERVER_AWAY.has(code) || code.startsWith('08'))) return true;
  return DRIVER_AWAY.test(err.message);
}

/** Where the database is, for messages: host, port and database name, never the credentials. */
function describe(url: string): string {
  try {
    const u = new URL(url);
    return `${u.hostname}${u.port ? `:${u.port}` : ''}${u.pathname || ''}`;
  } catch {
    return 'the configured server';
  }
}

export class PostgresDatabase {
  /**
   * Connects and brings the schema up to date (applying the migrations not yet recorded, under an
   * advisory lock, so nodes starting together apply each version once). Rejects when the server
   * cannot be reached: a node does not start without its metadata.
   */
  static async open(opts: PostgresOptions, migrations: readonly string[] = postgresMigrations): Promise<PostgresDatabase> {
    const statementTimeout = opts.statementTimeoutMs ?? 30_000;
    const connection: pg.ClientConfig = {
      connectionString: opts.url,
      ...(opts.password !== undefined ? { password: opts.password } : {}),
      connectionTimeoutMillis: opts.connectTimeoutMs ?? 5000,
      // The server ends a statement that runs too long; the client gives up a little later when the
      // server does not answer at all (a network that drops packets instead of refusing them).
      ...(statementTimeout > 0 ? { statement_timeout: statementTimeout, query_timeout: statementTimeout + 2000 } : {}),
      keepAlive: true,
      application_name: 'wharf',
      ...(opts.schema !== undefined ? { options: `-c search_path=${quoteIdent(opts.schema)}` } : {}),
      types,
    };
    const pool = new pg.Pool({ ...connection, max: opts.poolSize ?? 10, idleTimeoutMillis: opts.idleTimeoutMs ?? 30_000 });
    // An idle connection whose server went away emits an error; without a listener the process dies.
    pool.on('error', (err) => opts.onIdleError?.(err));
    const database = new PostgresDatabase(pool, describe(opts.url));
    try {
      database.schema = await database.migrate(migrations, opts.create ?? true);
      // One channel per schema: nodes of another store in the same database are not told.
      // The feed opens its listening connection as the pool opens its own.
      database.changes = new PostgresChangeFeed(connection, `wharf.changes.${database.schema}`.slice(0, 63));
      return database;
    } catch (err) {
      await pool.end();
      throw err;
    }
  }

  private closed = false;
  /** Tag and manifest changes, told to and heard from the other nodes on this database and schema. */
  changes!: PostgresChangeFeed;
  /** The schema the store's tables are in (the first of the connections' search_path). */
  schema = 'public';

  private constructor(
    private readonly pool: pg.Pool,
    /** host:port/database, for messages. */
    readonly where: string,
  ) {}

  /** One statement on any connection of the pool. */
  async query<R extends pg.QueryResultRow = pg.QueryResultRow>(text: string, values?: unknown[]): Promise<pg.QueryResult<R>> {
    try {
      return await this.pool.query<R>(text, values);
    } catch (err) {
      throw this.mapError(err);
    }
  }

  /**
   * Runs `fn` in a transaction (READ COMMITTED unless `fn` says otherwise) on one connection, and
   * runs it again when the server aborts it for a serialisation failure or a deadlock: `fn` must
   * have no effect outside the database before it resolves.
   */
  async transaction<T>(fn: (q: Queryable) => Promise<T>): Promise<T> {
    const session = await this.session();
    try {
      return await session.transaction(fn);
    } finally {
      session.release();
    }
  }

  /**
   * A connection of its own until release (temp tables, session state). `unbounded`: its statements
   * have no time limit (the collector's mark reads whole tables; statementTimeout is meant for the
   * requests), and the connection is closed on release rather than going back to the pool with it.
   */
  async session(opts: { unbounded?: boolean } = {}): Promise<Session> {
    let client: pg.PoolClient;
    try {
      client = await this.pool.connect();
    } catch (err) {
      throw this.mapError(err);
    }
    // A checked-out connection whose socket dies emits 'error' besides failing its query: noted so
    // the connection is destroyed on release instead of going back to the pool.
    let broken: Error | undefined;
    const onError = (err: Error): void => {
      broken = err;
    };
    client.on('error', onError);
    const query = async <R extends pg.QueryResultRow>(text: string, values?: unknown[]): Promise<pg.QueryResult<R>> => {
      try {
        // The client-side limit follows: pg takes a per-query query_timeout over the pool's.
        return opts.unbounded ? await client.query<R>({ text, values, query_timeout: UNBOUNDED_MS } as pg.QueryConfig) : await client.query<R>(text, values);
      } catch (err) {
        if (isUnavailable(err)) broken ??= err as Error;
        throw this.mapError(err);
      }
    };
    let released = false;
    if (opts.unbounded) {
      try {
        await query('SET statement_timeout = 0');
      } catch (err) {
        client.removeListener('error', onError);
        client.release(true);
        throw err;
      }
    }
    return {
      query,
      transaction: async <T>(fn: (q: Queryable) => Promise<T>): Promise<T> => {
        for (let attempt = 1; ; attempt++) {
          await query('BEGIN');
          try {
            const result = await fn({ query });
            await query('COMMIT');
            return result;
          } catch (err) {
            if (!broken) await query('ROLLBACK').catch(() => undefined);
            const code = (err as { code?: unknown }).code;
            if (broken || typeof code !== 'string' || !RETRY.has(code) || attempt >= MAX_ATTEMPTS) throw err;
            // Two transactions that collided: the one aborted waits a little, differently each
            // time, so they do not collide again in step.
            await new Promise((resolve) => setTimeout(resolve, Math.random() * 5 * attempt));
          }
        }
      },
      release: () => {
        if (released) return;
        released = true;
        client.removeListener('error', onError);
        client.release(broken ?? opts.unbounded);
      },
    };
  }

  /** Ends every connection; a second call does nothing. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.changes?.close();
    await this.pool.end();
  }

  /** A driver error as the metadata layer says it: unreachable server → MetadataUnavailableError. */
  private mapError(err: unknown): unknown {
    if (err instanceof MetadataUnavailableError || !isUnavailable(err)) return err;
    const reason = err instanceof Error ? err.message : String(err);
    return new MetadataUnavailableError(
      `the metadata database (PostgreSQL at ${this.where}) is unavailable: ${reason}; nothing was changed, retry once it answers again (check that it runs and that metadata.postgres.url reaches it)`,
      { cause: err },
    );
  }

  /** Applies the migrations not yet recorded in schema_migrations, in one transaction under an advisory lock; the schema they are in. */
  private async migrate(migrations: readonly string[], create: boolean): Promise<string> {
    // Unbounded: a migration may rewrite a whole table, and the nodes starting meanwhile wait on
    // the lock for as long as it takes; statementTimeout is meant for requests.
    const session = await this.session({ unbounded: true });
    try {
      await session.transaction((q) => this.applyMigrations(q, migrations, create));
      return (await session.query<{ schema: string }>('SELECT current_schema() AS schema')).rows[0]?.schema ?? 'public';
    } finally {
      session.release();
    }
  }

  private async applyMigrations(q: Queryable, migrations: readonly string[], create: boolean): Promise<void> {
    if (!create) {
      const { rows } = await q.query<{ present: boolean; schema: string }>(
        "SELECT to_regclass('schema_migrations') IS NOT NULL AS present, current_schema() AS schema",
      );
      if (!rows[0]?.present) {
        throw new Error(
          `PostgreSQL at ${this.where} holds no Wharf store (no schema_migrations table in schema ${rows[0]?.schema ?? '(none)'}): check metadata.postgres.url; wharf serve creates the store`,
        );
      }
    }
    // The lock is per database and schema: nodes starting at once wait for each other here, and
    // the next one finds the versions recorded. A transaction-scoped lock ends with the
    // transaction, whatever happens to the connection.
    await q.query("SELECT pg_advisory_xact_lock(hashtext('wharf.migrations'), hashtext(current_schema()))");
    await q.query('CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at BIGINT NOT NULL)');
    const { rows } = await q.query<{ v: number | null }>('SELECT MAX(version) AS v FROM schema_migrations');
    const current = rows[0]?.v ?? 0;
    if (current > migrations.length) {
      throw new Error(`metadata database schema version ${current} is newer than this Wharf (${migrations.length}); upgrade Wharf`);
    }
    for (let v = current; v < migrations.length; v++) {
      await q.query(migrations[v]!);
      await q.query('INSERT INTO schema_migrations (version, applied_at) VALUES ($1, $2)', [v + 1, Date.now()]);
    }
    for (const table of postgresLibraryTables) await q.query(table);
  }
}

/** An identifier quoted for SQL ("a""b"). */
export function quoteIdent(name: string): string {
  return `"${name.replaceAll('"', '""')}"`;
}

/**
 * A statement written with @name parameters (as the SQLite stores write theirs) turned into pg's
 * positional $n, with the values in order.
 */
export function named(text: string, params: Record<string, unknown>): [string, unknown[]] {
  const order: string[] = [];
  const sql = text.replace(/@(\w+)/g, (_, name: string) => {
    if (!(name in params)) throw new Error(`no value for @${name}`);
    let i = order.indexOf(name);
    if (i < 0) i = order.push(name) - 1;
    return `$${i + 1}`;
  });
  return [sql, order.map((n) => params[n])];
}
