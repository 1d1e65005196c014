// The UploadSessions contract: every driver (SQLite now, PostgreSQL next) must pass this suite.
// Run it from a driver's test file: uploadSessionsContract(t, 'sqlite', (t) => fresh, empty sessions and
// the RegistryMetadata of the same database, closed when t ends); the metadata shows that sessions
// create no repository.
import type { RegistryMetadata } from '../../src/metadata/registry-metadata.js';
import type { UploadSessions } from '../../src/metadata/upload-sessions.js';
import type { TestObject } from './contract-helpers.js';

/** Upload sessions and the registry metadata kept in the same database. */
export interface UploadSessionsFixture {
  uploads: UploadSessions;
  metadata: RegistryMetadata;
}

export function uploadSessionsContract(
  tap: TestObject,
  name: string,
  factory: (t: TestObject) => Promise<UploadSessionsFixture>,
): Promise<unknown> {
  return tap.test(`UploadSessions contract: ${name}`, async (t) => {
    /** A fresh, empty store, closed when `tt` ends. */
    const fresh = (tt: TestObject): Promise<UploadSessionsFixture> => factory(tt);

    t.test('failures reject instead of throwing', async (t) => {
      const { uploads: store } = await fresh(t);
      const up = { id: 'u1', repo: 'r', offset: 0, startedAt: 1, updatedAt: 1 };
      await store.createUpload(up);
      // A duplicate upload id is a bug, never a silent overwrite.
      await t.rejects(store.createUpload({ ...up, offset: 99 }));
      t.equal((await store.getUpload('u1'))?.offset, 0);
    });

    t.test('an upload in progress creates no repository', async (t) => {
      const { uploads: store, metadata } = await fresh(t);
      await store.createUpload({ id: 'u', repo: 'pending', offset: 0, startedAt: 1, updatedAt: 1 });
      t.same(await metadata.listRepositories(), [], 'createUpload creates no repository');
      t.equal(await metadata.repositoryExists('pending'), false, 'an upload in progress does not make a repo visible');
    });

    t.test('uploads: create, get, compare-and-set advance, delete', async (t) => {
      const { uploads: store, metadata } = await fresh(t);
      t.equal(await store.getUpload('u1'), undefined);
      const up = { id: 'u1', repo: 'r', offset: 0, startedAt: 1_700_000_000_000, updatedAt: 1_700_000_000_000 };
      await store.createUpload(up);
      t.same(await store.getUpload('u1'), up, 'round-trips exactly');

      const before = Date.now();
      t.equal(await store.advanceUpload('u1', 0, 100), true);
      const a = await store.getUpload('u1');
      t.equal(a?.offset, 100);
      t.equal(a?.startedAt, up.startedAt, 'startedAt is kept');
      t.ok((a?.updatedAt ?? 0) >= before, 'updatedAt is refreshed');

      t.equal(await store.advanceUpload('u1', 0, 50), false, 'stale expected offset loses');
      t.equal((await store.getUpload('u1'))?.offset, 100, 'offset unchanged after a lost CAS');
      t.equal(await store.advanceUpload('u1', 100, 250), true);
      t.equal((await store.getUpload('u1'))?.offset, 250);
      t.equal(await store.advanceUpload('missing', 0, 10), false, 'unknown upload');

      await store.createUpload({ ...up, id: 'u2', offset: 7 });
      t.equal((await store.getUpload('u2'))?.offset, 7);

      t.equal(await store.deleteUpload('u1'), true);
      t.equal(await store.getUpload('u1'), undefined);
      t.equal(await store.deleteUpload('u1'), false, 'deleting twice returns false');
      t.equal(await store.advanceUpload('u1', 250, 300), false, 'a deleted upload cannot advance');
      t.equal((await store.getUpload('u2'))?.offset, 7, 'other uploads untouched');
      t.same(await metadata.listRepositories(), [], 'uploads never create repositories');
    });

    t.test('stale sessions: listed by id after a cursor, swept only while still not updated', async (t) => {
      const { uploads: store } = await fresh(t);
      for (const [id, at] of [['c', 300], ['a', 100], ['b', 200], ['d', 1000]] as const) {
        await store.createUpload({ id, repo: 'r', offset: 0, startedAt: at, updatedAt: at });
      }
      t.same(await store.staleUploads(250, undefined, 10), ['a', 'b'], 'not updated since `before`, in id order');
      t.same(await store.staleUploads(250, undefined, 1), ['a'], 'at most limit');
      t.same(await store.staleUploads(250, 'a', 10), ['b'], 'after the cursor');
      t.same(await store.staleUploads(100, undefined, 10), [], 'updated at `before` is not stale');

      t.equal(await store.sweepUpload('c', 250), false, 'updated since: kept');
      t.ok(await store.getUpload('c'));
      t.equal(await store.sweepUpload('a', 250), true);
      t.equal(await store.getUpload('a'), undefined, 'swept');
      t.equal(await store.sweepUpload('a', 250), false, 'sweeping twice returns false');

      // A chunk written after the listing makes the session fresh: the sweep re-checks and keeps it.
      t.equal(await store.advanceUpload('b', 0, 10), true);
      t.equal(await store.sweepUpload('b', 250), false, 'advanced since the listing: kept');
      t.equal((await store.getUpload('b'))?.offset, 10);
      t.same(await store.staleUploads(250, undefined, 10), [], 'nothing stale left');
    });
  });
}
