// The PostgreSQL database the stores share: migrations applied once under the advisory lock, however
// many nodes start at once; versions recorded; a newer schema refused; data kept across pools; numbers
// come back as numbers; an unreachable server is said as such.
import t from 'tap';
import { MetadataUnavailableError } from '../../src/metadata/metadata-errors.js';
import { postgresMigrations } from '../../src/metadata/migrations/postgres.js';
import { PostgresDatabase, quoteIdent } from '../../src/metadata/postgres-database.js';
import { PostgresRegistryMetadata } from '../../src/metadata/postgres-registry-metadata.js';
import { adminQuery, POSTGRES_URL, tempSchema } from '../helpers/postgres.js';
import { dg } from './contract-helpers.js';

/** Opens pools on `schema`, all closed when `t` ends (before the schema is dropped). */
function opener(t: { teardown(fn: () => unknown): void }) {
  const open: PostgresDatabase[] = [];
  t.teardown(() => Promise.all(open.map((d) => d.close())));
  return async (schema: string, migrations?: readonly string[]): Promise<PostgresDatabase> => {
    const database = await PostgresDatabase.open({ url: POSTGRES_URL, poolSize: 2, schema }, migrations);
    open.push(database);
    return database;
  };
}

const versions = async (schema: string): Promise<number[]> =>
  (await adminQuery(`SELECT version FROM ${quoteIdent(schema)}.schema_migrations ORDER BY version`)).rows.map((r: { version: number }) => r.version);

t.test('nodes starting at once on a fresh schema: all start, each version is applied once', async (t) => {
  const schema = await tempSchema(t);
  const open = opener(t);
  // Migrations that fail or double their effect if run twice: the lock is what keeps them once.
  const migrations = ['CREATE TABLE applied (n INTEGER)', 'INSERT INTO applied VALUES (1)', 'INSERT INTO applied VALUES (2)'];
  const nodes = 8;
  const results = await Promise.allSettled(Array.from({ length: nodes }, () => open(schema, migrations)));
  t.same(results.map((r) => r.status), Array(nodes).fill('fulfilled'), 'every node started');
  t.same(await versions(schema), [1, 2, 3], 'each version recorded once');
  const { rows } = await adminQuery(`SELECT n FROM ${quoteIdent(schema)}.applied ORDER BY n`);
  t.same(rows, [{ n: 1 }, { n: 2 }], 'each migration ran once');
});

t.test('the real migrations, concurrently, then again: nothing applied twice', async (t) => {
  const schema = await tempSchema(t);
  const open = opener(t);
  await Promise.all(Array.from({ length: 4 }, () => open(schema)));
  const expected = postgresMigrations.map((_, i) => i + 1);
  t.same(await versions(schema), expected);
  const before = (await adminQuery(`SELECT applied_at FROM ${quoteIdent(schema)}.schema_migrations ORDER BY version`)).rows;
  await open(schema);
  t.same((await adminQuery(`SELECT applied_at FROM ${quoteIdent(schema)}.schema_migrations ORDER BY version`)).rows, before, 'a later start applies nothing');
});

t.test('a later version is applied on the next start, the earlier ones kept', async (t) => {
  const schema = await tempSchema(t);
  const open = opener(t);
  await open(schema, ['CREATE TABLE a (n INTEGER)']);
  await open(schema, ['CREATE TABLE a (n INTEGER)', 'CREATE TABLE b (n INTEGER)']);
  t.same(await versions(schema), [1, 2]);
});

t.test('refuses a schema written by a newer Wharf', async (t) => {
  const schema = await tempSchema(t);
  const open = opener(t);
  await open(schema);
  await adminQuery(`INSERT INTO ${quoteIdent(schema)}.schema_migrations (version, applied_at) VALUES ($1, 0)`, [postgresMigrations.length + 1]);
  await t.rejects(open(schema), /newer than this Wharf/);
});

t.test('data survives closing the pool and opening another; sizes and times are numbers', async (t) => {
  const schema = await tempSchema(t);
  const open = opener(t);
  const a = await open(schema);
  await new PostgresRegistryMetadata(a).putBlob(dg(1), 2 ** 40, { local: true });
  await a.close();
  await t.resolves(a.close(), 'close may be called twice');
  const blob = await new PostgresRegistryMetadata(await open(schema)).getBlob(dg(1));
  t.equal(blob?.size, 2 ** 40, 'a size beyond 32 bits, as a number');
  t.equal(typeof blob?.createdAt, 'number');
});

t.test('a server that does not answer: MetadataUnavailableError naming where, never the password', async (t) => {
  // Port 1 on loopback: nothing listens, the connection is refused.
  const err = await PostgresDatabase.open({ url: 'postgres://wharf@127.0.0.1:1/meta', password: 'hunter2', connectTimeoutMs: 2000 }).then(
    () => undefined,
    (e: unknown) => e,
  );
  t.ok(err instanceof MetadataUnavailableError, 'unavailable', { err });
  t.match((err as Error).message, /\(PostgreSQL at 127\.0\.0\.1:1\/meta\) is unavailable/);
  t.notMatch((err as Error).message, /hunter2/);
});

t.test('a statement longer than statementTimeout fails as unavailable, and the pool goes on', async (t) => {
  const schema = await tempSchema(t);
  const database = await PostgresDatabase.open({ url: POSTGRES_URL, poolSize: 1, schema, statementTimeoutMs: 100 });
  t.teardown(() => database.close());
  await t.rejects(database.query('SELECT pg_sleep(5)'), MetadataUnavailableError);
  t.same((await database.query('SELECT 1 AS one')).rows, [{ one: 1 }]);
});
