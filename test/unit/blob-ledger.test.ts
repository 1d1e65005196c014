// The BlobLedger (src/ledger/blob-ledger.ts) on its own, over a real SQLite store and blob store:
// the one place that decides whether a blob is served under a repository.
import t, { type Test } from 'tap';
import { rmSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { BlobLedger } from '../../src/ledger/blob-ledger.js';
import { SqliteDatabase } from '../../src/metadata/sqlite-database.js';
import { SqliteRegistryMetadata } from '../../src/metadata/sqlite-registry-metadata.js';
import { SqliteGcState } from '../../src/metadata/sqlite-gc-state.js';
import { FsBlobStore } from '../../src/storage/fs-blob-store.js';
import type { BlobStore } from '../../src/storage/blob-store.js';
import { DigestMismatchError } from '../../src/storage/storage-errors.js';
import { tempDir } from '../helpers/server.js';
import { wrapWriter } from '../helpers/wrap-writer.js';

const BYTES = Buffer.from('ledger test blob');
const DIGEST = `sha256:${createHash('sha256').update(BYTES).digest('hex')}`;

async function setup(t: Test) {
  const root = tempDir('wharf-ledger-');
  const database = SqliteDatabase.open(':memory:');
  const metadata = new SqliteRegistryMetadata(database);
  t.teardown(async () => {
    await database.close();
    rmSync(root, { recursive: true, force: true });
  });
  const store = await FsBlobStore.open(root);
  const ledger = new BlobLedger(metadata, store, new SqliteGcState(database));
  const writer = await store.writer();
  await writer.write([BYTES]);
  await ledger.commit(writer, DIGEST, { local: true, repo: 'team/source' });
  return { metadata, ledger, store };
}

/** A writer of `bytes` whose commits are counted, and whose cancel is seen. */
async function countedWriter(store: BlobStore, bytes: Buffer) {
  const inner = await store.writer();
  await inner.write([bytes]);
  const seen = { commits: 0, cancelled: false };
  const writer = wrapWriter(inner, {
    commit: (digest, opts) => {
      seen.commits++;
      return inner.commit(digest, opts);
    },
    cancel: () => {
      seen.cancelled = true;
      return inner.cancel();
    },
  });
  return { writer, seen };
}

t.test('commit places, records and links, commits again (puts back what was set aside) and cancels the writer', async (t) => {
  const { metadata, ledger, store } = await setup(t);
  const bytes = Buffer.from('another blob');
  const digest = `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
  const { writer, seen } = await countedWriter(store, bytes);
  t.match(await ledger.commit(writer, digest, { local: false, repo: 'cache/app' }), { size: bytes.length });
  t.equal(seen.commits, 2, 'committed before and after the row was recorded');
  t.ok(seen.cancelled, 'the writer is cancelled');
  t.match(await metadata.getBlob(digest), { size: bytes.length, local: false });
  t.equal(await metadata.isBlobLinked('cache/app', digest), true);
  t.equal(await ledger.isLinked('cache/app', digest), true);
});

t.test('commit with a wrong digest records nothing and still cancels the writer', async (t) => {
  const { metadata, ledger, store } = await setup(t);
  const bytes = Buffer.from('not what was declared');
  const declared = `sha256:${createHash('sha256').update('something else').digest('hex')}`;
  const { writer, seen } = await countedWriter(store, bytes);
  await t.rejects(ledger.commit(writer, declared, { local: true, repo: 'team/app' }), DigestMismatchError);
  t.ok(seen.cancelled, 'the writer is cancelled');
  t.equal(await metadata.getBlob(declared), undefined, 'no row');
  t.equal(await metadata.isBlobLinked('team/app', declared), false, 'no link');
  t.equal(await store.stat(declared), undefined, 'no bytes');
});

t.test('a blob is served under a repository only when linked there', async (t) => {
  const { ledger } = await setup(t);
  t.match(await ledger.access('team/source', DIGEST), { size: BYTES.length }, 'linked where it was committed');
  t.equal(await ledger.access('team/other', DIGEST), undefined, 'stored, but not linked and nobody to vouch for it');
});

t.test('a stored blob is adopted only after the confirmation; a refusal links nothing', async (t) => {
  const { metadata, ledger } = await setup(t);
  await t.rejects(ledger.access('cache/other', DIGEST, async () => {
    throw new Error('refused');
  }), /refused/);
  t.equal(await metadata.isBlobLinked('cache/other', DIGEST), false, 'not linked');
  t.strictSame(await metadata.listRepositories(), ['team/source'], 'no repository row left behind');
  let asked = 0;
  t.match(await ledger.access('cache/other', DIGEST, async () => void asked++), { size: BYTES.length }, 'confirmed: served');
  t.equal(await metadata.isBlobLinked('cache/other', DIGEST), true, 'and linked');
  await ledger.access('cache/other', DIGEST, async () => void asked++);
  t.equal(asked, 1, 'a linked blob is not confirmed again');
});

t.test('mount without from takes the blob only from a repository mayPull accepts', async (t) => {
  const { ledger, metadata } = await setup(t);
  t.equal(await ledger.mount('team/target', DIGEST, undefined, async () => false), false, 'no source may be pulled');
  t.equal(await metadata.isBlobLinked('team/target', DIGEST), false);
  const asked: string[] = [];
  t.equal(await ledger.mount('team/target', DIGEST, undefined, async (repo) => (asked.push(repo), true)), true);
  t.strictSame(asked, ['team/source'], 'the access check saw the source');
  t.equal(await metadata.isBlobLinked('team/target', DIGEST), true);
  t.equal(await ledger.mount('team/third', DIGEST, 'team/nosuch', async () => true), false, 'a named source that does not hold it');
});
