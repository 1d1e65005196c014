// `wharf serve` with metadata.postgres and the filesystem blob store: a push and a pull over real
// sockets, the rows in PostgreSQL (no SQLite file), and what a burst of pulls costs in statements:
// hot manifests are answered from memory and pull times are written in batches.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { quoteIdent } from '../../src/metadata/postgres-database.js';
import { OCI_MANIFEST, digestOf, imageManifest, pushManifest, raw } from '../helpers/http.js';
import { startPgProxy } from '../helpers/pg-proxy.js';
import { adminQuery, tempSchema } from '../helpers/postgres.js';
import { startWharf } from '../helpers/server.js';

t.test('push and pull through a server whose metadata is in PostgreSQL', async (t) => {
  const proxy = await startPgProxy(t);
  const schema = await tempSchema(t);
  const server = await startWharf(t, { metadata: { postgres: { url: proxy.url('postgres', 'test', `-c search_path=${schema}`), poolSize: 2 } } });

  const img = await imageManifest(server.app, 'team/app', 'on-postgres');
  const digest = await pushManifest(server.app, 'team/app', 'v1', img.body, OCI_MANIFEST);
  t.equal(digest, img.digest);

  const manifest = await raw(server.url, 'GET', '/v2/team/app/manifests/v1', { headers: { accept: OCI_MANIFEST } });
  t.equal(manifest.status, 200);
  t.equal(digestOf(manifest.body), img.digest, 'manifest bytes verify');
  for (const d of [img.config, img.layer]) {
    const blob = await raw(server.url, 'GET', `/v2/team/app/blobs/${d.digest}`);
    t.equal(blob.status, 200);
    t.equal(digestOf(blob.body), d.digest, `blob ${d.digest} verifies`);
  }
  const tags = await raw(server.url, 'GET', '/v2/team/app/tags/list');
  t.same(JSON.parse(tags.text), { name: 'team/app', tags: ['v1'] });

  const rows = await adminQuery(`SELECT repo, digest FROM ${quoteIdent(schema)}.manifests`);
  t.same(rows.rows, [{ repo: 'team/app', digest: img.digest }], 'the manifest row is in PostgreSQL');
  t.notOk(existsSync(join(server.dataDir, 'metadata.db')), 'no SQLite file in the data directory');

  // A hot manifest, pulled again and again by tag and by digest: answered from memory. Pull times
  // go in one batch every few seconds, so at most one flush (two statements) may land meanwhile.
  const before = proxy.statements();
  for (let i = 0; i < 50; i++) {
    const byTag = await raw(server.url, 'GET', '/v2/team/app/manifests/v1', { headers: { accept: OCI_MANIFEST } });
    const byDigest = await raw(server.url, 'HEAD', `/v2/team/app/manifests/${img.digest}`, { headers: { accept: OCI_MANIFEST } });
    if (byTag.status !== 200 || byDigest.status !== 200) throw new Error(`pull ${i}: ${byTag.status} ${byDigest.status}`);
  }
  const spent = proxy.statements() - before;
  t.ok(spent <= 2, `100 hot manifest pulls cost ${spent} statements (at most one batch of pull times)`);

  // A blob pull asks whether the blob is linked in the repository (one statement), whatever its size.
  const blobBefore = proxy.statements();
  await raw(server.url, 'GET', `/v2/team/app/blobs/${img.layer.digest}`);
  t.ok(proxy.statements() - blobBefore <= 3, `a blob pull cost ${proxy.statements() - blobBefore} statements`);
});
