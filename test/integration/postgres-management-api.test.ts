// The management API on two nodes sharing one PostgreSQL schema and data directory (issue 13): both
// list the same repositories and figures, a pull made through one shows as the last pull on the
// other, and a repository deleted through one is no longer served by the other, even from memory.
import { rmSync } from 'node:fs';
import t from 'tap';
import { OCI_MANIFEST, digestOf, imageManifest, pushManifest, raw, type Res } from '../helpers/http.js';
import { POSTGRES_URL, tempSchema } from '../helpers/postgres.js';
import { startWharf, tempDir, type TestServer } from '../helpers/server.js';

/** Asks `server` until `ok` holds for its answer (the change reaches it asynchronously); gives up after 10 s. */
async function until(server: TestServer, path: string, ok: (res: Res) => boolean): Promise<Res> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    const res = await raw(server.url, 'GET', path, { headers: { accept: OCI_MANIFEST } });
    if (ok(res) || Date.now() > deadline) return res;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

const json = async (s: TestServer, path: string) => (await raw(s.url, 'GET', path)).json() as Record<string, unknown>;

t.test('two nodes on one PostgreSQL: the same repositories, pulls seen across nodes, a deletion served by both', async (t) => {
  const schema = await tempSchema(t);
  const dataDir = tempDir('wharf-mgmt-nodes-');
  t.teardown(() => rmSync(dataDir, { recursive: true, force: true }));
  const url = `${POSTGRES_URL}?options=${encodeURIComponent(`-c search_path=${schema}`)}`;
  const a = await startWharf(t, { metadata: { postgres: { url } } }, { dataDir });
  const b = await startWharf(t, { metadata: { postgres: { url } } }, { dataDir });

  const one = await imageManifest(a.app, 'team/app', 'one');
  await pushManifest(a.app, 'team/app', 'v1', one.body, OCI_MANIFEST);
  const lib = await imageManifest(a.app, 'team/lib', 'lib');
  await pushManifest(a.app, 'team/lib', 'v1', lib.body, OCI_MANIFEST);
  const size = Buffer.byteLength(one.body) + one.config.size + one.layer.size;

  const listA = await json(a, '/api/repositories');
  t.same(listA, await json(b, '/api/repositories'), 'both nodes list the same');
  const repos = listA['repositories'] as Array<Record<string, unknown>>;
  t.same(repos.map((r) => [r['name'], r['kind'], r['sizeBytes'], r['tagCount'], r['manifestCount'], r['lastPull']]), [
    ['team/app', 'local', size, 1, 1, null],
    ['team/lib', 'local', Buffer.byteLength(lib.body) + lib.config.size + lib.layer.size, 1, 1, null],
  ]);

  // Pulled through b, held in its memory; b's answer writes its pull times, a reads them.
  t.equal(digestOf((await raw(b.url, 'GET', '/v2/team/app/manifests/v1', { headers: { accept: OCI_MANIFEST } })).body), one.digest);
  const pulled = (await json(b, '/api/repositories/team/app'))['lastPull'];
  t.type(pulled, 'string', 'the pull through b');
  t.equal((await json(a, '/api/repositories/team/app'))['lastPull'], pulled, 'a sees it');
  t.same(((await json(a, '/api/repositories/team/app/-/manifests'))['manifests'] as Array<Record<string, unknown>>).map((m) => [m['digest'], m['tags'], m['lastPull']]), [
    [one.digest, ['v1'], pulled],
  ]);

  // Deleted through a: b stops serving it, by tag and by digest.
  t.equal((await raw(a.url, 'DELETE', '/api/repositories/team/app')).status, 204);
  t.equal((await until(b, '/v2/team/app/manifests/v1', (r) => r.status === 404)).status, 404, 'b forgets the tag');
  t.equal((await until(b, `/v2/team/app/manifests/${one.digest}`, (r) => r.status === 404)).status, 404, 'b forgets the manifest');
  t.same(((await json(b, '/api/repositories'))['repositories'] as Array<{ name: string }>).map((r) => r.name), ['team/lib']);
  t.equal((await raw(b.url, 'GET', '/api/repositories/team/app')).status, 404);
});
