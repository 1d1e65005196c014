// Runs the MetadataStore contract against SQLite, in memory and on a file, plus what only a file can show:
// data survives close + reopen, WAL journal mode, schema version tracking.
import { mkdtempSync, rmSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import t from 'tap';
import { SqliteMetadataStore } from '../../src/metadata/sqlite-metadata-store.js';
import { sqliteMigrations } from '../../src/metadata/migrations/sqlite.js';
import { dg, metadataStoreContract } from './metadata-store.contract.js';

const dir = mkdtempSync(join(tmpdir(), 'wharf-sqlite-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));
let seq = 0;
// A nested path, so open() has to create the parent directories.
const newFile = (): string => join(dir, `db-${++seq}`, 'nested', 'metadata.db');

void metadataStoreContract(t, 'sqlite :memory:', async () => SqliteMetadataStore.open(':memory:'));
void metadataStoreContract(t, 'sqlite file', async () => SqliteMetadataStore.open(newFile()));

t.test('file store: data survives close and reopen', async (t) => {
  const file = newFile();
  const a = SqliteMetadataStore.open(file);
  t.ok(existsSync(file), 'parent directories and file created');
  await a.putBlob(dg(1), 42, { local: true });
  await a.linkBlob('r', dg(1));
  await a.putManifest({
    repo: 'r',
    digest: dg(2),
    mediaType: 'application/vnd.oci.image.manifest.v1+json',
    size: 300,
    subject: null,
    artifactType: 'application/vnd.oci.image.config.v1+json',
    annotations: { a: 'b' },
    references: [{ digest: dg(1), kind: 'blob' }],
    tags: ['latest'],
  });
  await a.createUpload({ id: 'u', repo: 'r', offset: 0, startedAt: 1, updatedAt: 1 });
  await a.advanceUpload('u', 0, 10);
  const manifestBefore = await a.getManifest('r', dg(2));
  await a.close();

  const b = SqliteMetadataStore.open(file);
  t.teardown(() => b.close());
  t.same(await b.listRepositories(), ['r']);
  t.match(await b.getBlob(dg(1)), { size: 42, local: true });
  t.equal(await b.isBlobLinked('r', dg(1)), true);
  t.same(await b.getManifest('r', dg(2)), manifestBefore);
  t.same(await b.listManifestReferences('r', dg(2)), [{ digest: dg(1), kind: 'blob' }]);
  t.equal(await b.getTag('r', 'latest'), dg(2));
  t.equal((await b.getUpload('u'))?.offset, 10);
});

t.test('file store: WAL journal mode and schema version', async (t) => {
  const file = newFile();
  const store = SqliteMetadataStore.open(file);
  await store.linkBlob('r', dg(1));
  // A second connection, as `wharf gc` would open: WAL is a property of the file.
  const raw = new Database(file, { readonly: true });
  t.teardown(() => raw.close());
  t.equal(raw.pragma('journal_mode', { simple: true }), 'wal');
  t.equal(raw.pragma('user_version', { simple: true }), sqliteMigrations.length);
  t.same(
    raw.prepare<[], { name: string }>("SELECT name FROM repositories").all(),
    [{ name: 'r' }],
    'a second connection sees committed writes',
  );
  await store.close();

  // Reopening applies nothing new and keeps the version.
  const again = SqliteMetadataStore.open(file);
  await again.close();
  t.equal(raw.pragma('user_version', { simple: true }), sqliteMigrations.length);
});

t.test('refuses a database written by a newer Wharf', async (t) => {
  const file = newFile();
  const store = SqliteMetadataStore.open(file);
  await store.close();
  const raw = new Database(file);
  raw.pragma(`user_version = ${sqliteMigrations.length + 1}`);
  raw.close();
  t.throws(() => SqliteMetadataStore.open(file), /newer than this Wharf/);
});

t.test('two stores on one file see each other', async (t) => {
  const file = newFile();
  const a = SqliteMetadataStore.open(file);
  const b = SqliteMetadataStore.open(file);
  t.teardown(async () => {
    await a.close();
    await b.close();
  });
  await a.createUpload({ id: 'u', repo: 'r', offset: 0, startedAt: 1, updatedAt: 1 });
  t.equal(await b.advanceUpload('u', 0, 5), true);
  t.equal(await a.advanceUpload('u', 0, 9), false, 'the CAS holds across connections');
  t.equal((await a.getUpload('u'))?.offset, 5);
});

t.test('rejects a negative or fractional page size', async (t) => {
  const store = SqliteMetadataStore.open(':memory:');
  t.teardown(() => store.close());
  await t.rejects(store.listRepositories({ n: -1 }), RangeError);
  await t.rejects(store.listTags('r', { n: 1.5 }), RangeError);
});
