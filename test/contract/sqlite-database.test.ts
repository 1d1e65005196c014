// The SQLite database the stores share, on a file: data survives close + reopen, WAL journal mode,
// schema version tracking, two connections (server and CLI) on one file, close.
import { existsSync } from 'node:fs';
import Database from 'better-sqlite3';
import t from 'tap';
import { SqliteDatabase } from '../../src/metadata/sqlite-database.js';
import { SqliteRegistryMetadata } from '../../src/metadata/sqlite-registry-metadata.js';
import { SqliteUploadSessions } from '../../src/metadata/sqlite-upload-sessions.js';
import { sqliteMigrations } from '../../src/metadata/migrations/sqlite.js';
import { dg } from './contract-helpers.js';
import { sqliteTargets } from './sqlite-fixture.js';

const { newFile } = sqliteTargets(t);

t.test('file store: data survives close and reopen', async (t) => {
  const file = newFile();
  const a = SqliteDatabase.open(file);
  t.ok(existsSync(file), 'parent directories and file created');
  const am = new SqliteRegistryMetadata(a);
  const au = new SqliteUploadSessions(a);
  await am.putBlob(dg(1), 42, { local: true });
  await am.linkBlob('r', dg(1));
  await am.putManifest({
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
  await au.createUpload({ id: 'u', repo: 'r', offset: 0, startedAt: 1, updatedAt: 1 });
  await au.advanceUpload('u', 0, 10);
  const manifestBefore = await am.getManifest('r', dg(2));
  await a.close();

  const b = SqliteDatabase.open(file);
  t.teardown(() => b.close());
  const bm = new SqliteRegistryMetadata(b);
  t.same(await bm.listRepositories(), ['r']);
  t.match(await bm.getBlob(dg(1)), { size: 42, local: true });
  t.equal(await bm.isBlobLinked('r', dg(1)), true);
  t.same(await bm.getManifest('r', dg(2)), manifestBefore);
  t.same(await bm.listManifestReferences('r', dg(2)), [{ digest: dg(1), kind: 'blob' }]);
  t.equal(await bm.getTag('r', 'latest'), dg(2));
  t.equal((await new SqliteUploadSessions(b).getUpload('u'))?.offset, 10);
});

t.test('file store: WAL journal mode and schema version', async (t) => {
  const file = newFile();
  const store = SqliteDatabase.open(file);
  await new SqliteRegistryMetadata(store).linkBlob('r', dg(1));
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
  const again = SqliteDatabase.open(file);
  await again.close();
  t.equal(raw.pragma('user_version', { simple: true }), sqliteMigrations.length);
});

t.test('refuses a database written by a newer Wharf', async (t) => {
  const file = newFile();
  const store = SqliteDatabase.open(file);
  await store.close();
  const raw = new Database(file);
  raw.pragma(`user_version = ${sqliteMigrations.length + 1}`);
  raw.close();
  t.throws(() => SqliteDatabase.open(file), /newer than this Wharf/);
});

t.test('two connections to one file see each other', async (t) => {
  const file = newFile();
  const first = SqliteDatabase.open(file);
  const second = SqliteDatabase.open(file);
  t.teardown(async () => {
    await first.close();
    await second.close();
  });
  const a = new SqliteUploadSessions(first);
  const b = new SqliteUploadSessions(second);
  await a.createUpload({ id: 'u', repo: 'r', offset: 0, startedAt: 1, updatedAt: 1 });
  t.equal(await b.advanceUpload('u', 0, 5), true);
  t.equal(await a.advanceUpload('u', 0, 9), false, 'the CAS holds across connections');
  t.equal((await a.getUpload('u'))?.offset, 5);
});

t.test('close resolves and may be called twice', async (t) => {
  for (const file of [':memory:', newFile()]) {
    const database = SqliteDatabase.open(file);
    await database.close();
    await t.resolves(database.close());
  }
});
