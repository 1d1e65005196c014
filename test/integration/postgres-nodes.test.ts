// Two nodes on one PostgreSQL schema and one data directory: what one pushes or deletes, the other
// serves, even when it held the tag or the manifest in memory (the change feed drops it there); and
// a node whose listening connection was cut drops everything it holds once it listens again, since
// what was said meanwhile never reached it.
import { rmSync } from 'node:fs';
import t from 'tap';
import { OCI_MANIFEST, digestOf, imageManifest, inject, pushManifest, raw, type Res } from '../helpers/http.js';
import { startPgProxy } from '../helpers/pg-proxy.js';
import { contentEntry, startFaultUpstream } from '../helpers/fault-upstream.js';
import { POSTGRES_URL, tempSchema } from '../helpers/postgres.js';
import { startWharf, tempDir, type TestServer } from '../helpers/server.js';
import type { TestObject } from '../contract/contract-helpers.js';

/** Asks `server` until `ok` holds for its answer (the change reaches it asynchronously); gives up after 10 s. */
async function until(server: TestServer, path: string, ok: (res: Res) => boolean): Promise<Res> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    const res = await raw(server.url, 'GET', path, { headers: { accept: OCI_MANIFEST } });
    if (ok(res) || Date.now() > deadline) return res;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/** Two servers on one schema and data directory; b starts once `before` (given a) has run. */
async function nodes(t: TestObject, opts: { bUrl?: (schema: string) => string; before?: (a: TestServer) => Promise<void> } = {}) {
  const schema = await tempSchema(t);
  const dataDir = tempDir('wharf-nodes-');
  t.teardown(() => rmSync(dataDir, { recursive: true, force: true }));
  const url = `${POSTGRES_URL}?options=${encodeURIComponent(`-c search_path=${schema}`)}`;
  const a = await startWharf(t, { metadata: { postgres: { url } } }, { dataDir });
  await opts.before?.(a);
  const b = await startWharf(t, { metadata: { postgres: { url: opts.bUrl?.(schema) ?? url, connectTimeout: '500ms' } } }, { dataDir });
  return { a, b };
}

t.test('a tag moved, a tag deleted, a manifest deleted on one node: the other serves the change', async (t) => {
  const { a, b } = await nodes(t);
  const one = await imageManifest(a.app, 'team/app', 'one');
  await pushManifest(a.app, 'team/app', 'v1', one.body, OCI_MANIFEST);
  const first = await raw(b.url, 'GET', '/v2/team/app/manifests/v1', { headers: { accept: OCI_MANIFEST } });
  t.equal(first.status, 200, 'pushed through a, pulled through b');
  t.equal(digestOf(first.body), one.digest);

  const two = await imageManifest(a.app, 'team/app', 'two');
  await pushManifest(a.app, 'team/app', 'v1', two.body, OCI_MANIFEST);
  const moved = await until(b, '/v2/team/app/manifests/v1', (r) => r.status === 200 && digestOf(r.body) === two.digest);
  t.equal(digestOf(moved.body), two.digest, 'b follows the tag to its new manifest');

  t.equal((await inject(a.app, 'DELETE', '/v2/team/app/manifests/v1')).status, 202);
  t.equal((await until(b, '/v2/team/app/manifests/v1', (r) => r.status === 404)).status, 404, 'b forgets the deleted tag');

  t.equal((await raw(b.url, 'GET', `/v2/team/app/manifests/${one.digest}`, { headers: { accept: OCI_MANIFEST } })).status, 200, 'b holds manifest one');
  t.equal((await inject(a.app, 'DELETE', `/v2/team/app/manifests/${one.digest}`)).status, 202);
  t.equal((await until(b, `/v2/team/app/manifests/${one.digest}`, (r) => r.status === 404)).status, 404, 'b forgets the deleted manifest');
});

t.test('changes said while a node was not listening: it drops what it holds once it listens again', async (t) => {
  const proxy = await startPgProxy(t);
  let one = { body: '', digest: '' };
  // b starts after a's push, so no message of it is still on its way to b.
  const { a, b } = await nodes(t, {
    bUrl: (schema) => proxy.url('postgres', 'test', `-c search_path=${schema}`),
    before: async (a) => {
      one = await imageManifest(a.app, 'team/app', 'one');
      await pushManifest(a.app, 'team/app', 'v1', one.body, OCI_MANIFEST);
    },
  });
  // Pulled until b answers from memory (no statement through its proxy).
  for (let i = 0; ; i++) {
    const before = proxy.statements();
    const res = await raw(b.url, 'GET', '/v2/team/app/manifests/v1', { headers: { accept: OCI_MANIFEST } });
    t.equal(digestOf(res.body), one.digest);
    if (proxy.statements() === before) break;
    if (i > 100) throw new Error('b never served v1 from memory');
  }

  // b loses the database; a, which reaches it directly, moves the tag meanwhile.
  proxy.cut();
  const two = await imageManifest(a.app, 'team/app', 'two');
  await pushManifest(a.app, 'team/app', 'v1', two.body, OCI_MANIFEST);
  const held = await raw(b.url, 'GET', '/v2/team/app/manifests/v1', { headers: { accept: OCI_MANIFEST } });
  t.equal(digestOf(held.body), one.digest, 'b, cut off, still serves what it held');

  proxy.restore();
  const after = await until(b, '/v2/team/app/manifests/v1', (r) => r.status === 200 && digestOf(r.body) === two.digest);
  t.equal(digestOf(after.body), two.digest, 'listening again, b dropped what it held and reads the moved tag');
});

t.test('a tag confirmed with the upstream by one node is fresh for the others: one revalidation per tag TTL in the cluster', async (t) => {
  const body = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: OCI_MANIFEST, config: { mediaType: 'application/vnd.oci.empty.v1+json', digest: digestOf('{}'), size: 2 }, layers: [] }));
  const up = await startFaultUpstream(t, { manifests: [{ repo: 'library/app', tag: 'v1', mediaType: OCI_MANIFEST, ...contentEntry(body) }], blobs: [] });
  const upstreams = [{ name: 'hub', url: up.url, registry: 'hub.test', default: true, tagTTL: '5m' }];
  const schema = await tempSchema(t);
  const dataDir = tempDir('wharf-nodes-');
  t.teardown(() => rmSync(dataDir, { recursive: true, force: true }));
  const url = `${POSTGRES_URL}?options=${encodeURIComponent(`-c search_path=${schema}`)}`;
  const a = await startWharf(t, { upstreams, metadata: { postgres: { url } } }, { dataDir });
  const b = await startWharf(t, { upstreams, metadata: { postgres: { url } } }, { dataDir });
  const manifestRequests = () => up.count('', '/manifests/');

  const first = await raw(a.url, 'GET', '/v2/library/app/manifests/v1', { headers: { accept: OCI_MANIFEST } });
  t.equal(first.status, 200);
  const afterA = manifestRequests();
  t.ok(afterA >= 1, 'a asked the upstream');
  for (const node of [b, a, b]) {
    const res = await raw(node.url, 'GET', '/v2/library/app/manifests/v1', { headers: { accept: OCI_MANIFEST } });
    t.equal(res.status, 200);
    t.equal(digestOf(res.body), digestOf(body));
  }
  t.equal(manifestRequests(), afterA, 'b found the confirmation a shared: no request to the upstream');
});
