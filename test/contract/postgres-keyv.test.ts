// The shared TTL caches on PostgreSQL (@keyv/postgres through the store's pool, memory in front): what
// one node sets another reads; a key read once is answered from memory; the database out of reach is
// a miss, never an error.
import t from 'tap';
import { PostgresDatabase, quoteIdent } from '../../src/metadata/postgres-database.js';
import { sharedKeyv } from '../../src/metadata/postgres-keyv.js';
import { startPgProxy } from '../helpers/pg-proxy.js';
import { adminQuery, POSTGRES_URL, tempSchema } from '../helpers/postgres.js';
import type { TestObject } from './contract-helpers.js';

async function twoNodes(t: TestObject) {
  const proxy = await startPgProxy(t);
  const open: PostgresDatabase[] = [];
  const schema = await tempSchema(t, () => Promise.all(open.map((d) => d.close())));
  // Node b reaches the database through a proxy the test can cut.
  const a = await PostgresDatabase.open({ url: POSTGRES_URL, schema, poolSize: 2 });
  const b = await PostgresDatabase.open({ url: proxy.url('postgres', 'test', `-c search_path=${schema}`), poolSize: 2, connectTimeoutMs: 500 });
  open.push(a, b);
  const errors: unknown[] = [];
  return { schema, proxy, errors, a: sharedKeyv<string>(a, 'proxy', (e) => errors.push(e)), b: sharedKeyv<string>(b, 'proxy', (e) => errors.push(e)) };
}

t.test('what one node sets, another reads; then from memory', async (t) => {
  const { schema, a, b, errors } = await twoNodes(t);
  t.equal(await b.get('docker:library/alpine:latest'), undefined);
  t.equal(await a.set('docker:library/alpine:latest', 'sha256:aa', 60_000), true);
  t.equal(await b.get('docker:library/alpine:latest'), 'sha256:aa', 'read through the database');
  const raw = await adminQuery(`SELECT key FROM ${quoteIdent(schema)}.keyv`);
  t.same(raw.rows, [{ key: 'proxy:docker:library/alpine:latest' }], 'one row, under the namespace');
  await adminQuery(`DELETE FROM ${quoteIdent(schema)}.keyv`);
  t.equal(await b.get('docker:library/alpine:latest'), 'sha256:aa', 'held in memory: no query');
  t.same(errors, []);
});

t.test('an expired entry is a miss everywhere', async (t) => {
  const { a, b } = await twoNodes(t);
  // Written already expired: keyv checks the expiry each entry carries on every read.
  await a.set('k', 'v', 60_000);
  t.equal(await b.get('k'), 'v');
  await a.set('gone', 'v', -1);
  t.equal(await b.get('gone'), undefined);
  t.equal(await a.get('gone'), undefined);
});

t.test('the database out of reach: misses and memory, no error thrown; back: shared again', async (t) => {
  const { proxy, a, b, errors } = await twoNodes(t);
  await a.set('held', 'x', 60_000);
  t.equal(await b.get('held'), 'x');
  proxy.cut();
  t.equal(await b.get('held'), 'x', 'what b holds is still answered');
  await a.set('new', 'y', 60_000);
  t.equal(await b.get('new'), undefined, 'what b cannot read is a miss');
  t.equal(await b.set('mine', 'z', 60_000), false, 'a write that did not reach the database says so');
  t.equal(await b.get('mine'), 'z', 'and is kept in memory');
  t.ok(errors.length > 0, 'the failures were heard');
  proxy.restore();
  t.equal(await b.get('new'), 'y', 'shared again once the database answers');
});
