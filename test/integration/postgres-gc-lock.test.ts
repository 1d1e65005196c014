// One collector at a time across nodes on one PostgreSQL schema: two nodes asked to collect at once,
// exactly one runs and the other answers 409; and the collector lock's expiry is computed on the
// database's clock, so a node whose clock runs behind or ahead neither takes a live lock nor keeps
// an expired one.
import { rmSync } from 'node:fs';
import t from 'tap';
import { DB_NOW_MS } from '../../src/metadata/postgres-database.js';
import { PostgresGcState } from '../../src/metadata/postgres-gc-state.js';
import { raw, type Res } from '../helpers/http.js';
import { POSTGRES_URL, rawClient, tempSchema, testDatabase } from '../helpers/postgres.js';
import { startWharf, tempDir } from '../helpers/server.js';

const GC = { gc: { grace: '0s', deleteUntagged: true, interval: '0s' } };

t.test('two nodes asked to collect at once: exactly one runs, the other answers 409', async (t) => {
  const schema = await tempSchema(t);
  const dataDir = tempDir('wharf-gc-lock-');
  t.teardown(() => rmSync(dataDir, { recursive: true, force: true }));
  const url = `${POSTGRES_URL}?options=${encodeURIComponent(`-c search_path=${schema}`)}`;
  const a = await startWharf(t, { ...GC, metadata: { postgres: { url } } }, { dataDir });
  const b = await startWharf(t, { ...GC, metadata: { postgres: { url } } }, { dataDir });

  // Holds the run that takes the lock inside its mark (which reads manifests) until released, so
  // the two requests overlap whatever the scheduling.
  const blocker = await rawClient(t, schema);
  await blocker.query('BEGIN');
  await blocker.query('LOCK TABLE manifests IN ACCESS EXCLUSIVE MODE');

  const answers: Array<{ node: string; res: Res }> = [];
  const ask = (node: string, base: string) =>
    raw(base, 'POST', '/api/gc').then((res) => {
      answers.push({ node, res });
      return res;
    });
  const runs = [ask('a', a.url), ask('b', b.url)];
  // The first answer is the refused one: the other run waits on the table lock.
  const refused = await Promise.race(runs);
  t.equal(refused.status, 409, refused.text);
  t.match(refused.json(), { errors: [{ code: 'TOOMANYREQUESTS', message: /another process is collecting garbage/ }] });
  t.equal(refused.headers['retry-after'], '10');
  const holders = await blocker.query<{ holder: string }>('SELECT holder FROM gc_lock');
  t.equal(holders.rowCount, 1, 'one node holds the collector lock while it runs');

  await blocker.query('COMMIT');
  const [ra, rb] = await Promise.all(runs);
  t.same([ra!.status, rb!.status].sort(), [200, 409], 'exactly one ran');
  t.equal(answers[1]!.res.status, 200, 'the run that held the lock finished once released');
  t.equal((await blocker.query('SELECT holder FROM gc_lock')).rowCount, 0, 'the lock is released after the run');

  // The refused node runs next time.
  const other = answers[0]!.node === 'a' ? a : b;
  const again = await raw(other.url, 'POST', '/api/gc');
  t.equal(again.status, 200, again.text);
  const listed = (await raw(a.url, 'GET', '/api/gc')).json() as { runs: unknown[] };
  t.equal(listed.runs.length, 2, 'both runs reported in the shared schema, the refused attempt not');
});

t.test("the collector lock's expiry is on the database's clock, not the node's", async (t) => {
  const { database } = await testDatabase(t);
  const behind = new PostgresGcState(database);
  const ahead = new PostgresGcState(database);
  const realNow = Date.now;
  t.teardown(() => {
    Date.now = realNow;
  });
  const skewed = async <T>(offsetMs: number, fn: () => Promise<T>): Promise<T> => {
    Date.now = () => realNow() + offsetMs;
    try {
      return await fn();
    } finally {
      Date.now = realNow;
    }
  };
  const HOUR = 3_600_000;

  // A node an hour behind takes the lock for a minute: a node an hour ahead still sees it held.
  t.equal(await skewed(-HOUR, () => behind.acquireLock('slow', 60_000)), true);
  const left = await database.query<{ ms: string }>(`SELECT expires_at - ${DB_NOW_MS} AS ms FROM gc_lock`);
  const ms = Number(left.rows[0]!.ms);
  t.ok(ms > 55_000 && ms <= 60_000, `expires a minute from the database's now (${ms} ms)`);
  t.equal(await skewed(HOUR, () => ahead.acquireLock('fast', 60_000)), false, 'a live lock is not taken for expired');
  t.equal(await skewed(HOUR, () => ahead.takeOverLock('other', 'fast', 60_000)), false, 'nor taken over from another holder');
  t.equal(await skewed(-HOUR, () => behind.renewLock('slow', 60_000)), true, 'the holder renews it');
  t.equal(await behind.lockHolder(), 'slow');

  // Expired on the database's clock: taken whatever the taker's clock says.
  await database.query('UPDATE gc_lock SET expires_at = expires_at - 120000');
  t.equal(await skewed(-HOUR, () => ahead.acquireLock('fast', 60_000)), true, 'an expired lock is taken by a node whose clock is behind');
  t.equal(await skewed(HOUR, () => behind.renewLock('slow', 60_000)), false, 'the previous holder cannot renew it');
  await ahead.releaseLock('fast');
  t.equal(await ahead.lockHolder(), undefined);
});
