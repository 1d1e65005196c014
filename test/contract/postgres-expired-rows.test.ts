// Expired rows of the shared database purged on the database's clock: cache entries written by keyv
// once expired for longer than the slack, fill leases once expired for longer than they are kept (a
// lease expired a moment ago is still taken over with its writer); a bounded number per pass; nodes
// purging at once; the timer's passes.
import t from 'tap';
import { quoteIdent } from '../../src/metadata/postgres-database.js';
import { PostgresExpiredRows, type PurgedRows } from '../../src/metadata/postgres-expired-rows.js';
import { PostgresFillLeases } from '../../src/metadata/postgres-fill-leases.js';
import { sharedKeyv } from '../../src/metadata/postgres-keyv.js';
import { adminQuery, testDatabase } from '../helpers/postgres.js';

const MIN = 60_000;
const digest = (c: string) => `sha256:${c.repeat(64)}`;
const holder = { node: 'node-1', url: 'http://10.0.0.1:5000', repo: 'hub/library/app' };

t.test('cache entries: those expired for longer than the slack go; fresh, recent and lasting ones stay', async (t) => {
  const { database, schema } = await testDatabase(t);
  const keyv = sharedKeyv<unknown>(database, 'proxy', (err) => t.error(err));
  // Written by keyv itself, so the purge reads the entries as keyv writes them.
  await keyv.set('fresh', 'v', 10 * MIN);
  await keyv.set('forever', 'v');
  await keyv.set('stale', 'v', -10 * MIN);
  await keyv.set('recent', 'v', -1 * MIN);
  await keyv.set('looks-like-expiry', { expires: 1 });
  await keyv.set('stale-object', { expires: 1, nested: { value: 'x' } }, -10 * MIN);
  const rows = new PostgresExpiredRows(database);
  t.same(await rows.purge(), { cacheEntries: 2, fillLeases: 0 });
  const left = await adminQuery(`SELECT key FROM ${quoteIdent(schema)}.keyv ORDER BY key`);
  t.same(
    left.rows.map((r: { key: string }) => r.key),
    ['proxy:forever', 'proxy:fresh', 'proxy:looks-like-expiry', 'proxy:recent'],
    'the entries expired 10 minutes ago are gone; one expired a minute ago (within the 5-minute slack) stays',
  );
  t.same(await rows.purge(), { cacheEntries: 0, fillLeases: 0 }, 'nothing more to purge');
  t.equal(await keyv.get('looks-like-expiry').then((v) => JSON.stringify(v)), '{"expires":1}', 'a value with an expires field of its own is not an expiry');
});

t.test('fill leases: those expired for longer than an hour go; a lease expired a moment ago is still taken over with its writer', async (t) => {
  const { database, schema } = await testDatabase(t);
  const leases = new PostgresFillLeases(database);
  await leases.claim(digest('a'), holder, MIN, 'w-live');
  // A negative time to live: expired that long ago, on the database's clock.
  await leases.claim(digest('b'), holder, -10 * MIN, 'w-recent');
  await leases.claim(digest('c'), holder, -2 * 60 * MIN, 'w-old');
  const rows = new PostgresExpiredRows(database);
  t.same(await rows.purge(), { cacheEntries: 0, fillLeases: 1 });
  const left = await adminQuery(`SELECT digest FROM ${quoteIdent(schema)}.fill_leases ORDER BY digest`);
  t.same(left.rows.map((r: { digest: string }) => r.digest), [digest('a'), digest('b')]);
  t.same(await leases.claim(digest('b'), { ...holder, node: 'node-2' }, MIN, 'w-new'), { owned: true, writer: 'w-recent' }, 'taken over in the dead holder\'s writer');
  t.same(await leases.claim(digest('c'), { ...holder, node: 'node-2' }, MIN, 'w-new'), { owned: true, writer: 'w-new' }, 'a purged lease: a new one, a new writer');
});

t.test('a bounded number of rows per pass; two nodes purging at once delete each row once', async (t) => {
  const { database } = await testDatabase(t, { poolSize: 8 });
  const leases = new PostgresFillLeases(database);
  const keyv = sharedKeyv<string>(database, 'tokens', (err) => t.error(err));
  for (const c of ['1', '2', '3', '4', '5']) {
    await leases.claim(digest(c), holder, -2 * 60 * MIN, `w${c}`);
    await keyv.set(`k${c}`, 'v', -10 * MIN);
  }
  const rows = new PostgresExpiredRows(database, { limit: 2 });
  t.same(await rows.purge(), { cacheEntries: 2, fillLeases: 2 });
  t.same(await rows.purge(), { cacheEntries: 2, fillLeases: 2 });
  t.same(await rows.purge(), { cacheEntries: 1, fillLeases: 1 });
  t.same(await rows.purge(), { cacheEntries: 0, fillLeases: 0 });

  for (let i = 0; i < 40; i++) {
    await leases.claim(digest(i.toString(16).padStart(2, '0')), holder, -2 * 60 * MIN, 'w');
    await keyv.set(`many${i}`, 'v', -10 * MIN);
  }
  const nodes = [new PostgresExpiredRows(database, { limit: 7 }), new PostgresExpiredRows(database, { limit: 7 })];
  const total = { cacheEntries: 0, fillLeases: 0 };
  for (;;) {
    const passes = await Promise.all(nodes.map((n) => n.purge()));
    if (passes.every((p) => p.cacheEntries === 0 && p.fillLeases === 0)) break;
    for (const p of passes) {
      total.cacheEntries += p.cacheEntries;
      total.fillLeases += p.fillLeases;
    }
  }
  t.same(total, { cacheEntries: 40, fillLeases: 40 }, 'every expired row deleted once');
});

t.test('started: passes on the timer, told to the caller; a pass that hits the limit is followed by another at once, not after the interval', async (t) => {
  const { database, schema } = await testDatabase(t);
  const keyv = sharedKeyv<string>(database, 'proxy', (err) => t.error(err));
  for (const k of ['a', 'b', 'c']) await keyv.set(k, 'v', -10 * MIN);
  const rows = new PostgresExpiredRows(database, { limit: 2 });
  const passes: PurgedRows[] = [];
  let emptied!: () => void;
  const done = new Promise<void>((resolve) => (emptied = resolve));
  // The first pass at once; the interval is long: the pass after a full one comes a second later, not an hour.
  rows.start(
    60 * MIN,
    (purged, err) => {
      t.error(err);
      if (purged) passes.push(purged);
      if (purged && purged.cacheEntries < 2) emptied();
    },
    0,
  );
  t.teardown(() => rows.close());
  await done;
  t.same(passes, [{ cacheEntries: 2, fillLeases: 0 }, { cacheEntries: 1, fillLeases: 0 }]);
  await rows.close();
  t.equal((await adminQuery(`SELECT 1 FROM ${quoteIdent(schema)}.keyv`)).rowCount, 0);
});
