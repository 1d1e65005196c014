// The GcState contract: every driver (SQLite now, PostgreSQL next) must pass this suite. The mark and
// sweep queries are exercised with real content by test/gc/ (collector, interleavings).
// Run it from a driver's test file: gcStateContract(t, 'sqlite', (t) => a fresh, empty store closed when t ends).
import type { GcState } from '../../src/metadata/gc-state.js';
import type { TestObject } from './contract-helpers.js';

export function gcStateContract(
  tap: TestObject,
  name: string,
  factory: (t: TestObject) => Promise<GcState>,
): Promise<unknown> {
  return tap.test(`GcState contract: ${name}`, async (t) => {
    /** A fresh, empty store, closed when `tt` ends. */
    const fresh = (tt: TestObject): Promise<GcState> => factory(tt);

    t.test('gc lock: one holder at a time, renewable, taken over once expired', async (t) => {
      const store = await fresh(t);
      t.equal(await store.acquireLock('a', 60_000), true);
      t.equal(await store.acquireLock('b', 60_000), false, 'held by a');
      t.equal(await store.renewLock('a', 60_000), true);
      t.equal(await store.renewLock('b', 60_000), false);
      await store.releaseLock('b');
      t.equal(await store.acquireLock('b', 60_000), false, 'release by another holder does nothing');
      await store.releaseLock('a');
      t.equal(await store.acquireLock('b', -1), true, 'free after release');
      t.equal(await store.acquireLock('c', 60_000), true, 'an expired lock is taken over');
      t.equal(await store.renewLock('b', 60_000), false, 'the expired holder lost it');
    });

    t.test('gc reports: newest first, only the last `keep` kept', async (t) => {
      const store = await fresh(t);
      for (let i = 0; i < 5; i++) await store.saveReport({ i }, 3);
      t.same(await store.listReports(10), [{ i: 4 }, { i: 3 }, { i: 2 }]);
    });
  });
}
