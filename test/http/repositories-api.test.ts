// The management API's repositories over real HTTP (issue 13): pushed repositories with their sizes,
// counts and push/pull times, pages with Link headers, tags and manifests, deleting a tag and a
// repository (the collector then takes the blobs), bad input, admins only when auth is on, and a
// repository cached from a real upstream (docker-registry) named as cached from that upstream.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import bcrypt from 'bcryptjs';
import t from 'tap';
import { startWharf, type TestServer } from '../helpers/server.js';
import { blobFile, digestOf, imageManifest, OCI_INDEX, OCI_MANIFEST, pushManifest } from '../helpers/http.js';
import { pushTestImage, startDockerRegistry } from '../helpers/docker-registry.js';
import { SqliteDatabase } from '../../src/metadata/sqlite-database.js';
import { SqliteRegistryMetadata } from '../../src/metadata/sqlite-registry-metadata.js';
import type { RegistryMetadata } from '../../src/metadata/registry-metadata.js';

interface Reply {
  status: number;
  headers: Headers;
  body: unknown;
}

async function api(s: TestServer, method: string, path: string, headers: Record<string, string> = {}): Promise<Reply> {
  const res = await fetch(`${s.url}${path}`, { method, headers });
  const text = await res.text();
  return { status: res.status, headers: res.headers, body: text === '' ? undefined : (JSON.parse(text) as unknown) };
}

interface Repo {
  name: string;
  kind: string;
  upstream: string | null;
  sizeBytes: number;
  tagCount: number;
  manifestCount: number;
  lastPush: string | null;
  lastPull: string | null;
}

const errorCode = (r: Reply): string | undefined => (r.body as { errors?: Array<{ code: string }> } | undefined)?.errors?.[0]?.code;
const isIso = (v: unknown): boolean => typeof v === 'string' && new Date(v).toISOString() === v;
const GC_NOW = { gc: { grace: '0s', deleteUntagged: true, interval: '0s' } };

t.test('pushed repositories: sizes, counts, times, pages, tags, manifests, deletions', async (t) => {
  const s = await startWharf(t, GC_NOW);
  // team/app: two images (v1 and latest on the first, v2 on the second); team/lib: one image.
  const one = await imageManifest(s.app, 'team/app', 'one');
  const d1 = await pushManifest(s.app, 'team/app', 'v1', one.body, OCI_MANIFEST);
  await pushManifest(s.app, 'team/app', 'latest', one.body, OCI_MANIFEST);
  const two = await imageManifest(s.app, 'team/app', 'two');
  const d2 = await pushManifest(s.app, 'team/app', 'v2', two.body, OCI_MANIFEST);
  const lib = await imageManifest(s.app, 'team/lib', 'lib');
  await pushManifest(s.app, 'team/lib', 'v1', lib.body, OCI_MANIFEST);
  const size = (m: typeof one) => Buffer.byteLength(m.body) + m.config.size + m.layer.size;

  const list = await api(s, 'GET', '/api/repositories');
  t.equal(list.status, 200);
  t.equal(list.headers.get('cache-control'), 'no-store');
  t.equal(list.headers.get('link'), null, 'everything on one page');
  const repos = (list.body as { repositories: Repo[] }).repositories;
  t.same(
    repos.map((r) => [r.name, r.kind, r.upstream, r.sizeBytes, r.tagCount, r.manifestCount, r.lastPull]),
    [
      ['team/app', 'local', null, size(one) + size(two), 3, 2, null],
      ['team/lib', 'local', null, size(lib), 1, 1, null],
    ],
  );
  t.ok(repos.every((r) => isIso(r.lastPush)), 'last push as an ISO-8601 time');

  // A pull shows as the last pull at once (the pull times this node holds are written first).
  const before = Date.now();
  t.equal((await fetch(`${s.url}/v2/team/app/manifests/v2`, { headers: { accept: OCI_MANIFEST } })).status, 200);
  const app = (await api(s, 'GET', '/api/repositories/team/app')).body as Repo;
  t.equal(app.name, 'team/app');
  t.ok(isIso(app.lastPull) && Date.parse(app.lastPull!) >= before - 1, `pulled at ${app.lastPull}`);

  // Pages of one, linked.
  const first = await api(s, 'GET', '/api/repositories?n=1');
  t.same((first.body as { repositories: Repo[] }).repositories.map((r) => r.name), ['team/app']);
  t.equal(first.headers.get('link'), '</api/repositories?n=1&last=team%2Fapp>; rel="next"');
  const second = await api(s, 'GET', '/api/repositories?n=1&last=team%2Fapp');
  t.same((second.body as { repositories: Repo[] }).repositories.map((r) => r.name), ['team/lib']);
  t.equal(second.headers.get('link'), null, 'the last page has no next');
  t.same((await api(s, 'GET', '/api/repositories?n=0')).body, { repositories: [] });

  // Tags, with the size of what each tag holds, paginated.
  const tags = (await api(s, 'GET', '/api/repositories/team/app/-/tags')).body as { tags: Array<Record<string, unknown>> };
  t.same(
    tags.tags.map((x) => [x['name'], x['digest'], x['mediaType'], x['sizeBytes']]),
    [
      ['latest', d1, OCI_MANIFEST, size(one)],
      ['v1', d1, OCI_MANIFEST, size(one)],
      ['v2', d2, OCI_MANIFEST, size(two)],
    ],
  );
  t.ok(tags.tags.every((x) => isIso(x['pushedAt'])));
  const tagPage = await api(s, 'GET', '/api/repositories/team/app/-/tags?n=2');
  t.equal(tagPage.headers.get('link'), '</api/repositories/team/app/-/tags?n=2&last=v1>; rel="next"');

  // Manifests with their tags.
  const manifests = (await api(s, 'GET', '/api/repositories/team/app/-/manifests')).body as { manifests: Array<Record<string, unknown>> };
  const byDigest = new Map(manifests.manifests.map((m) => [m['digest'], m]));
  t.same(byDigest.get(d1)?.['tags'], ['latest', 'v1']);
  t.equal(byDigest.get(d1)?.['sizeBytes'], size(one));
  t.equal(byDigest.get(d1)?.['lastPull'], null, 'never pulled');
  t.ok(isIso(byDigest.get(d2)?.['lastPull']), 'pulled');
  t.ok(isIso(byDigest.get(d2)?.['createdAt']));

  // Deleting a tag: the other tags and the manifest stay.
  const delTag = await api(s, 'DELETE', '/api/repositories/team/app/-/tags/latest');
  t.equal(delTag.status, 204);
  t.equal(delTag.body, undefined, 'no body');
  t.equal((await fetch(`${s.url}/v2/team/app/manifests/latest`, { headers: { accept: OCI_MANIFEST } })).status, 404, 'gone from /v2');
  t.equal((await fetch(`${s.url}/v2/team/app/manifests/v1`, { headers: { accept: OCI_MANIFEST } })).status, 200, 'v1 stays');
  t.equal(((await api(s, 'GET', '/api/repositories/team/app')).body as Repo).tagCount, 2);
  t.equal(errorCode(await api(s, 'DELETE', '/api/repositories/team/app/-/tags/latest')), 'MANIFEST_UNKNOWN', 'twice: unknown');

  // Deleting the repository: gone from the API and /v2; the collector takes its blobs.
  t.equal((await api(s, 'DELETE', '/api/repositories/team/app')).status, 204);
  t.same(((await api(s, 'GET', '/api/repositories')).body as { repositories: Repo[] }).repositories.map((r) => r.name), ['team/lib']);
  const gone = await api(s, 'GET', '/api/repositories/team/app');
  t.equal(gone.status, 404);
  t.equal(errorCode(gone), 'NAME_UNKNOWN');
  t.equal((await fetch(`${s.url}/v2/team/app/manifests/v1`, { headers: { accept: OCI_MANIFEST } })).status, 404);
  t.same(await (await fetch(`${s.url}/v2/_catalog`)).json(), { repositories: ['team/lib'] });
  t.ok(existsSync(blobFile(s.dataDir, one.layer.digest)), 'blobs wait for the collector');
  t.equal((await api(s, 'POST', '/api/gc')).status, 200);
  for (const digest of [d1, d2, one.layer.digest, two.config.digest]) t.notOk(existsSync(blobFile(s.dataDir, digest)), `${digest} collected`);
  t.ok(existsSync(blobFile(s.dataDir, lib.layer.digest)), 'the other repository keeps its blobs');
  t.equal(errorCode(await api(s, 'DELETE', '/api/repositories/team/app')), 'NAME_UNKNOWN', 'deleting twice');
});

t.test('bad input gets a 400 or 404 in the OCI error format', async (t) => {
  const s = await startWharf(t);
  const img = await imageManifest(s.app, 'team/app', 'bad');
  await pushManifest(s.app, 'team/app', 'v1', img.body, OCI_MANIFEST);
  const cases: Array<[string, string, number, string]> = [
    ['GET', '/api/repositories/Team/App', 400, 'NAME_INVALID'],
    ['GET', '/api/repositories/team//app', 400, 'NAME_INVALID'],
    ['GET', `/api/repositories/${'a'.repeat(300)}`, 400, 'NAME_INVALID'],
    ['GET', '/api/repositories/', 400, 'NAME_INVALID'],
    ['GET', '/api/repositories/team/%2e%2e/-/tags', 400, 'NAME_INVALID'],
    ['DELETE', '/api/repositories/team/app%00', 400, 'NAME_INVALID'],
    ['GET', '/api/repositories/team%ZZ/app', 400, 'NAME_INVALID'],
    ['GET', '/api/repositories/team%2F..%2Fapp', 400, 'NAME_INVALID'],
    ['GET', '/api/repositories/team/nope', 404, 'NAME_UNKNOWN'],
    ['GET', '/api/repositories/team/nope/-/tags', 404, 'NAME_UNKNOWN'],
    ['GET', '/api/repositories/team/nope/-/manifests', 404, 'NAME_UNKNOWN'],
    ['DELETE', '/api/repositories/team/nope', 404, 'NAME_UNKNOWN'],
    ['DELETE', '/api/repositories/team/app/-/tags/v9', 404, 'MANIFEST_UNKNOWN'],
    ['DELETE', '/api/repositories/team/app/-/tags/bad:tag', 400, 'INVALID_REQUEST'],
    ['DELETE', `/api/repositories/team/app/-/tags/${'t'.repeat(129)}`, 400, 'INVALID_REQUEST'],
    ['GET', '/api/repositories?n=abc', 400, 'PAGINATION_NUMBER_INVALID'],
    ['GET', '/api/repositories?n=-1', 400, 'PAGINATION_NUMBER_INVALID'],
    ['GET', '/api/repositories/team/app/-/tags?n=1.5', 400, 'PAGINATION_NUMBER_INVALID'],
    ['GET', '/api/repositories/team/app/-/manifests?n=99999999999', 400, 'PAGINATION_NUMBER_INVALID'],
    ['GET', '/api/repositories/team/app/-/blobs', 404, 'NOT_FOUND'],
    ['GET', '/api/repositories/team/app/-/tags/v1', 405, 'UNSUPPORTED'],
    ['DELETE', '/api/repositories/team/app/-/manifests', 405, 'UNSUPPORTED'],
    ['PUT', '/api/repositories/team/app', 404, 'NOT_FOUND'],
  ];
  for (const [method, path, status, code] of cases) {
    const r = await api(s, method, path);
    t.equal(r.status, status, `${method} ${path.slice(0, 80)}: ${status}`);
    t.equal(errorCode(r), code, `${method} ${path.slice(0, 80)}: ${code}`);
  }
  // A page larger than the ceiling is cut to it, not refused.
  const big = await api(s, 'GET', '/api/repositories?n=100000');
  t.equal(big.status, 200);
  t.equal((await api(s, 'GET', '/api/repositories/team/app')).status, 200, 'nothing was changed by the bad requests');
  t.equal(((await api(s, 'GET', '/api/repositories/team%2Fapp/-/tags')).body as { tags: unknown[] }).tags.length, 1, 'slashes sent as %2F');
});

t.test('with auth on: anonymous 401, a non-admin 403, an admin may list and delete', async (t) => {
  const s = await startWharf(t, {
    auth: {
      users: [
        { name: 'root', password: bcrypt.hashSync('root-pw', 4), groups: ['admin'] },
        { name: 'dev', password: bcrypt.hashSync('dev-pw', 4), groups: [] },
      ],
    },
  });
  const basic = (user: string, pw: string) => ({ authorization: `Basic ${Buffer.from(`${user}:${pw}`).toString('base64')}` });
  const root = basic('root', 'root-pw');
  const dev = basic('dev', 'dev-pw');
  // dev pushes (signed-in users may push local names), root administers.
  const img = await imageManifest(s.app, 'team/app', 'auth').catch(() => undefined);
  t.equal(img, undefined, 'an anonymous push is refused');
  const configBytes = '{"auth":1}';
  const put = (path: string, body: string, type: string) => fetch(`${s.url}${path}`, { method: 'PUT', headers: { ...dev, 'content-type': type }, body });
  const post = await fetch(`${s.url}/v2/team/app/blobs/uploads/?digest=${digestOf(configBytes)}`, { method: 'POST', headers: { ...dev, 'content-type': 'application/octet-stream' }, body: configBytes });
  t.equal(post.status, 201);
  const manifest = JSON.stringify({ schemaVersion: 2, mediaType: OCI_MANIFEST, config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: digestOf(configBytes), size: configBytes.length }, layers: [] });
  t.equal((await put('/v2/team/app/manifests/v1', manifest, OCI_MANIFEST)).status, 201);

  for (const [method, path] of [
    ['GET', '/api/repositories'],
    ['GET', '/api/repositories/team/app'],
    ['GET', '/api/repositories/team/app/-/tags'],
    ['GET', '/api/repositories/team/app/-/manifests'],
    ['DELETE', '/api/repositories/team/app/-/tags/v1'],
    ['DELETE', '/api/repositories/team/app'],
  ] as const) {
    const anonymous = await api(s, method, path);
    t.equal(anonymous.status, 401, `${method} ${path}: anonymous`);
    t.equal(errorCode(anonymous), 'UNAUTHORIZED');
    t.match(anonymous.headers.get('www-authenticate') ?? '', /^Bearer realm=/);
    const denied = await api(s, method, path, dev);
    t.equal(denied.status, 403, `${method} ${path}: not an admin`);
    t.equal(errorCode(denied), 'DENIED');
    // An unknown name is not revealed to callers who may not look.
    t.equal((await api(s, method, path.replace('team/app', 'team/nope'))).status, 401);
  }
  const list = await api(s, 'GET', '/api/repositories', root);
  t.equal(list.status, 200);
  t.same((list.body as { repositories: Repo[] }).repositories.map((r) => [r.name, r.tagCount]), [['team/app', 1]]);
  t.equal((await api(s, 'DELETE', '/api/repositories/team/app/-/tags/v1', root)).status, 204);
  t.equal((await api(s, 'DELETE', '/api/repositories/team/app', root)).status, 204);
  t.same((await api(s, 'GET', '/api/repositories', root)).body, { repositories: [] });
});

t.test('a repository cached from a real upstream: cached, from that upstream, sized as pulled', async (t) => {
  const reg = await startDockerRegistry(t);
  const image = await pushTestImage(reg, 'library/multi', 'v1', { index: true, seed: 'mgmt-api' });
  const s = await startWharf(t, {
    upstreams: [{ name: 'hub', url: reg.url, registry: 'docker.io', default: true }],
    local: { namespaces: ['team'] },
  });
  const local = await imageManifest(s.app, 'team/app', 'beside the cache');
  await pushManifest(s.app, 'team/app', 'v1', local.body, OCI_MANIFEST);

  // A client pulls the index by tag, one child and that child's blobs, as `library/multi` (the default upstream).
  const index = await fetch(`${s.url}/v2/library/multi/manifests/v1`, { headers: { accept: `${OCI_INDEX}, ${OCI_MANIFEST}` } });
  t.equal(index.status, 200);
  const indexBytes = Buffer.from(await index.arrayBuffer());
  const child = image.children[0]!;
  const childRes = await fetch(`${s.url}/v2/library/multi/manifests/${child.digest}`, { headers: { accept: child.mediaType } });
  t.equal(childRes.status, 200);
  const childDoc = JSON.parse(child.manifest.toString('utf8')) as { config: { digest: string; size: number }; layers: Array<{ digest: string; size: number }> };
  const blobs = [childDoc.config, ...childDoc.layers];
  for (const b of blobs) {
    const r = await fetch(`${s.url}/v2/library/multi/blobs/${b.digest}`);
    t.equal(r.status, 200);
    await r.arrayBuffer();
  }
  const expectedSize = indexBytes.length + child.size + blobs.reduce((a, b) => a + b.size, 0);

  const repos = ((await api(s, 'GET', '/api/repositories')).body as { repositories: Repo[] }).repositories;
  t.same(
    repos.map((r) => [r.name, r.kind, r.upstream]),
    [
      ['docker.io/library/multi', 'cached', 'hub'],
      ['team/app', 'local', null],
    ],
  );
  const cached = repos[0]!;
  t.equal(cached.sizeBytes, expectedSize, 'the index, the child pulled and its blobs (the other child was never fetched)');
  t.equal(cached.manifestCount, 2);
  t.equal(cached.tagCount, 1);
  t.ok(isIso(cached.lastPull), 'the pull through is a pull');
  t.ok(isIso(cached.lastPush), 'the fill is when content arrived');

  // Named as the client pulls it, or as stored: the same repository.
  const byClientName = (await api(s, 'GET', '/api/repositories/library/multi')).body as Repo;
  t.same(byClientName, cached);
  const tags = (await api(s, 'GET', '/api/repositories/library/multi/-/tags')).body as { tags: Array<Record<string, unknown>> };
  t.same(tags.tags.map((x) => [x['name'], x['digest'], x['mediaType'], x['sizeBytes']]), [['v1', image.manifestDigest, image.mediaType, expectedSize]]);

  // Deleting the cached tag: the next pull fetches it from the upstream again.
  const indexGets = () => reg.countRequests({ method: 'GET', pathIncludes: '/v2/library/multi/manifests/v1' });
  const before = await indexGets();
  t.equal((await api(s, 'DELETE', '/api/repositories/docker.io/library/multi/-/tags/v1')).status, 204);
  const again = await fetch(`${s.url}/v2/library/multi/manifests/v1`, { headers: { accept: `${OCI_INDEX}, ${OCI_MANIFEST}` } });
  t.equal(again.status, 200);
  t.equal(Buffer.from(await again.arrayBuffer()).equals(indexBytes), true);
  t.equal(await indexGets(), before + 1, 'fetched from the upstream again');

  // Deleting the cached repository (an eviction): listed no more; a pull fills it again.
  t.equal((await api(s, 'DELETE', '/api/repositories/library/multi')).status, 204);
  t.same(((await api(s, 'GET', '/api/repositories')).body as { repositories: Repo[] }).repositories.map((r) => r.name), ['team/app']);
  t.equal((await fetch(`${s.url}/v2/library/multi/manifests/v1`, { headers: { accept: `${OCI_INDEX}, ${OCI_MANIFEST}` } })).status, 200);
  t.equal(((await api(s, 'GET', '/api/repositories/docker.io/library/multi')).body as Repo).manifestCount, 1, 'filled again: the index alone');
});

t.test('one metadata statement per page, whatever the number of repositories or tags on it', async (t) => {
  const calls: string[] = [];
  // The SQLite metadata, recording every call the API makes.
  const stores = (dataDir: string) => {
    const database = SqliteDatabase.open(join(dataDir, 'metadata.db'));
    const real = new SqliteRegistryMetadata(database);
    const metadata = new Proxy(real, {
      get(target, prop, receiver) {
        const value = Reflect.get(target, prop, receiver) as unknown;
        if (typeof value !== 'function') return value;
        return (...args: unknown[]) => {
          calls.push(String(prop));
          return (value as (...a: unknown[]) => unknown).apply(target, args);
        };
      },
    }) as RegistryMetadata;
    return { database, metadata };
  };
  const s = await startWharf(t, {}, { stores });
  for (let i = 0; i < 12; i++) {
    const img = await imageManifest(s.app, `team/app${i}`, `img${i}`);
    for (const tag of ['a', 'b', 'c']) await pushManifest(s.app, `team/app${i}`, tag, img.body, OCI_MANIFEST);
  }
  const counted = async (path: string) => {
    calls.length = 0;
    const r = await api(s, 'GET', path);
    t.equal(r.status, 200, path);
    return [...calls];
  };
  t.same(await counted('/api/repositories'), ['listRepositoryStats'], 'twelve repositories: one statement');
  t.same(await counted('/api/repositories?n=5&last=team%2Fapp1'), ['listRepositoryStats']);
  t.same(await counted('/api/repositories/team/app3'), ['repositoryExists', 'repositoryStats']);
  t.same(await counted('/api/repositories/team/app3/-/tags'), ['repositoryExists', 'listTagDetails'], 'three tags: one statement');
  t.same(await counted('/api/repositories/team/app3/-/manifests'), ['repositoryExists', 'listManifestDetails']);
});
