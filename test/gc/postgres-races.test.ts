// What SQLite's single writer gave the collector for free, shown on PostgreSQL with two connections:
// a write holding a row the sweep wants (a transaction left open on a plain connection, as another
// node's would be) makes the sweep wait and then see that write; a sweep holding a row makes the write
// wait and then find the row gone. Each case fails if the sweep or the write checked on a snapshot
// taken before it waited.
import t from 'tap';
import { PostgresGcState } from '../../src/metadata/postgres-gc-state.js';
import { PostgresRegistryMetadata } from '../../src/metadata/postgres-registry-metadata.js';
import { MissingContentError } from '../../src/metadata/registry-metadata.js';
import { dg, manifest, type TestObject } from '../contract/contract-helpers.js';
import { blockedBy, rawClient, testDatabase } from '../helpers/postgres.js';

const HOUR = 3_600_000;

async function stores(t: TestObject) {
  const { database, schema } = await testDatabase(t);
  const gc = new PostgresGcState(database);
  t.teardown(() => gc.endMark());
  const other = await rawClient(t, schema);
  return { metadata: new PostgresRegistryMetadata(database), gc, other };
}

/** Tracks whether a promise has settled, without letting a rejection go unhandled. */
function watch<T>(p: Promise<T>): { settled: () => boolean; result: Promise<T> } {
  let done = false;
  const result = p.finally(() => (done = true));
  result.catch(() => undefined);
  return { settled: () => done, result };
}

t.test('a blob sweep waits for a manifest put that holds the blob row, then keeps the blob it references', async (t) => {
  const { metadata, gc, other } = await stores(t);
  await metadata.putBlob(dg(1), 10, { local: true });
  const cutoff = Date.now() + HOUR; // every row is old
  // Another node's putManifest, between its verification (the row locked) and its commit.
  await other.query('BEGIN');
  await other.query('SELECT 1 FROM blobs WHERE digest = $1 FOR KEY SHARE', [dg(1)]);
  await other.query("INSERT INTO repositories (name, created_at) VALUES ('r', 0)");
  await other.query(
    "INSERT INTO manifests (repo, digest, media_type, size, created_at, last_access_at) VALUES ('r', $1, 'x', 1, 0, 0)",
    [dg(2)],
  );
  await other.query("INSERT INTO manifest_refs (repo, manifest_digest, ref_digest, kind) VALUES ('r', $1, $2, 'blob')", [dg(2), dg(1)]);
  const sweep = watch(gc.sweepBlobs([dg(1)], cutoff));
  await blockedBy(other, sweep.settled);
  t.notOk(sweep.settled(), 'the sweep waits for the row');
  await other.query('COMMIT');
  t.same([...(await sweep.result)], [], 'nothing swept: the references committed meanwhile are seen');
  t.ok(await metadata.getBlob(dg(1)), 'the blob row stays');
});

t.test('a manifest put verifying a blob that a sweep is deleting waits, then is refused', async (t) => {
  const { metadata, other } = await stores(t);
  await metadata.putBlob(dg(1), 10, { local: true });
  await metadata.putBlob(dg(2), 10, { local: true });
  // Another node's sweepBlobs, between its DELETE and its commit.
  await other.query('BEGIN');
  await other.query('SELECT 1 FROM blobs WHERE digest = $1 FOR UPDATE', [dg(1)]);
  await other.query('DELETE FROM blobs WHERE digest = $1', [dg(1)]);
  const put = watch(metadata.putManifest(manifest('r', dg(2), { references: [{ digest: dg(1), kind: 'blob' }], verify: 'references' })));
  await blockedBy(other, put.settled);
  t.notOk(put.settled(), 'the put waits for the row');
  await other.query('COMMIT');
  const err = await put.result.then(() => undefined, (e: unknown) => e);
  t.ok(err instanceof MissingContentError, 'refused: the blob is gone', { err });
  t.same((err as MissingContentError).missing, [dg(1)]);
  t.equal(await metadata.getManifest('r', dg(2)), undefined, 'nothing recorded');
});

t.test('a manifest sweep waits for a tag being put on it, then keeps the manifest', async (t) => {
  const { metadata, gc, other } = await stores(t);
  await metadata.putBlob(dg(2), 10, { local: true });
  await metadata.putManifest(manifest('r', dg(2)));
  const cutoff = Date.now() + HOUR;
  await gc.mark({ cutoff, deleteUntagged: true, activeBlobs: [] });
  const [dead] = await gc.deadManifests(undefined, 10);
  t.equal(dead?.digest, dg(2), 'untagged and old: dead at the mark');
  // Another node tagging it (the tag's foreign key locks the manifest row until commit).
  await other.query('BEGIN');
  await other.query("INSERT INTO tags (repo, tag, digest, updated_at) VALUES ('r', 'v1', $1, 0)", [dg(2)]);
  const sweep = watch(gc.sweepManifest(dead!, cutoff));
  await blockedBy(other, sweep.settled);
  t.notOk(sweep.settled(), 'the sweep waits for the row');
  await other.query('COMMIT');
  t.equal(await sweep.result, undefined, 'kept: tagged meanwhile');
  t.equal(await metadata.getTag('r', 'v1'), dg(2));
  t.ok(await metadata.getManifest('r', dg(2)));
});

t.test('manifest puts racing blob sweeps on other connections: a recorded manifest never lacks its blob', async (t) => {
  const { metadata, gc } = await stores(t);
  const cutoff = Date.now() + HOUR;
  let recorded = 0;
  let refused = 0;
  for (let i = 0; i < 60; i++) {
    const blob = dg(1000 + i);
    const m = dg(5000 + i);
    await metadata.putBlob(blob, 10, { local: true });
    await metadata.putBlob(m, 10, { local: true });
    const [put] = await Promise.allSettled([
      metadata.putManifest(manifest('r', m, { references: [{ digest: blob, kind: 'blob' }], verify: 'references' })),
      gc.sweepBlobs([blob], cutoff),
    ]);
    const stored = (await metadata.getBlob(blob)) !== undefined;
    if (put.status === 'fulfilled') {
      recorded++;
      t.ok(stored, `${i}: the manifest was recorded and its blob is still there`);
    } else {
      refused++;
      t.ok(put.reason instanceof MissingContentError, `${i}: refused only for missing content`);
      t.notOk(stored);
      t.equal(await metadata.getManifest('r', m), undefined);
    }
  }
  t.comment(`${recorded} recorded, ${refused} refused`);
});
