// PostgreSQL for tests: the server on 127.0.0.1:5432 (trust auth; .ci/run starts it), database `test`
// (WHARF_TEST_POSTGRES_URL overrides). Each store a test opens lives in a schema of its own, created
// for it and dropped with everything in it when the test ends, so tests never touch what they did not
// create and may run in parallel.
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { PostgresDatabase, quoteIdent, type PostgresOptions } from '../../src/metadata/postgres-database.js';

export const POSTGRES_URL = process.env.WHARF_TEST_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/test';

interface Teardownable {
  teardown(fn: () => unknown): void;
}

/** Runs `sql` on a connection of its own (no schema set), closed after. */
export async function adminQuery(sql: string, values?: unknown[], url = POSTGRES_URL): Promise<pg.QueryResult> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return await client.query(sql, values);
  } finally {
    await client.end();
  }
}

/**
 * A fresh, empty schema (wharf_t_<random>); when `t` ends, `before` runs (closing what uses the
 * schema) and the schema is dropped with its content.
 */
export async function tempSchema(t: Teardownable, before?: () => Promise<unknown>): Promise<string> {
  const schema = `wharf_t_${randomBytes(6).toString('hex')}`;
  await adminQuery(`CREATE SCHEMA ${quoteIdent(schema)}`);
  t.teardown(async () => {
    await before?.();
    await adminQuery(`DROP SCHEMA IF EXISTS ${quoteIdent(schema)} CASCADE`);
  });
  return schema;
}

/** A PostgresDatabase over a fresh schema, closed and its schema dropped when `t` ends. */
export async function openTestDatabase(t: Teardownable, opts: Partial<PostgresOptions> = {}): Promise<PostgresDatabase> {
  return (await testDatabase(t, opts)).database;
}

/** openTestDatabase, with the name of its schema. */
export async function testDatabase(t: Teardownable, opts: Partial<PostgresOptions> = {}): Promise<{ database: PostgresDatabase; schema: string }> {
  const opened: { database?: PostgresDatabase } = {};
  const schema = await tempSchema(t, async () => opened.database?.close());
  const database = (opened.database = await PostgresDatabase.open({ url: POSTGRES_URL, poolSize: 4, ...opts, schema }));
  return { database, schema };
}

/** A plain connection working in `schema`, ended when `t` ends (a second node, or a transaction held open). */
export async function rawClient(t: Teardownable, schema: string): Promise<pg.Client> {
  const client = new pg.Client({ connectionString: POSTGRES_URL, options: `-c search_path=${quoteIdent(schema)}` });
  await client.connect();
  t.teardown(() => client.end());
  return client;
}

/**
 * Resolves once some other backend waits on a lock that the backend of `holder` holds, or once
 * `settled` has settled (the statement that should have waited did not). Polled: PostgreSQL gives no
 * event for it.
 */
export async function blockedBy(holder: pg.Client, settled: () => boolean): Promise<void> {
  const pid = (await holder.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]!.pid;
  for (;;) {
    if (settled()) return;
    const r = await adminQuery('SELECT 1 FROM pg_stat_activity WHERE $1 = ANY(pg_blocking_pids(pid))', [pid]);
    if (r.rowCount! > 0) return;
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}
