// Tag lists and referrers of upstream-routed names against the real reference registry (Debian's
// docker-registry 2.8): tags come from the upstream with n/last pagination and a Link at Wharf's own
// path, cached for listTTL, falling back to the cached tags (with a Warning) when the upstream is down;
// docker-registry 2.8 has no referrers API, so referrers are the index of what the cache holds.
// Needs docker-registry and skopeo.
import { setTimeout as sleep } from 'node:timers/promises';
import t, { type Test } from 'tap';
import { pushTestImage, startDockerRegistry, type DockerRegistry } from '../helpers/docker-registry.js';
import { OCI_INDEX, OCI_MANIFEST } from '../helpers/oci-layout.js';
import { hubWharf, ociError, req, sha, UPSTREAM, type Res } from '../helpers/proxy-http.js';
import type { TestServer } from '../helpers/server.js';

t.setTimeout(300_000);

const OCI_EMPTY = 'application/vnd.oci.empty.v1+json';

const tagsOf = (res: Res): string[] => (JSON.parse(res.text) as { tags: string[] }).tags;

/** The target of a `Link: <...>; rel="next"` header, undefined without one. */
function nextOf(res: Res): string | undefined {
  const link = res.headers.get('link');
  if (link === null) return undefined;
  return /<([^>]*)>\s*;\s*rel="?next"?/.exec(link)?.[1];
}

const tagListGets = (reg: DockerRegistry, remote: string): Promise<number> =>
  reg.countRequests({ method: 'GET', pathIncludes: `/v2/${remote}/tags/list` });

/** Follows Link headers from `first` (a path on Wharf) and collects every tag, at most 20 pages. */
async function allPages(t: Test, wharf: TestServer, first: string): Promise<{ tags: string[]; links: string[] }> {
  const tags: string[] = [];
  const links: string[] = [];
  let path: string | undefined = first;
  for (let page = 0; path !== undefined && page < 20; page++) {
    const res = await req(new URL(path, wharf.url).href);
    t.equal(res.status, 200, `GET ${path}: ${res.text.slice(0, 200)}`);
    if (res.status !== 200) break;
    tags.push(...tagsOf(res));
    path = nextOf(res);
    if (path !== undefined) links.push(path);
  }
  return { tags, links };
}

// One upstream with five tags for the tests that do not stop it.
const reg = await startDockerRegistry(t);
const TAGS = ['a', 'b', 'c', 'd', 'e'];
const images = new Map<string, Awaited<ReturnType<typeof pushTestImage>>>();
for (const tag of TAGS) images.set(tag, await pushTestImage(reg, 'library/lst', tag, { seed: 'listings/lst' }));

t.test('tags/list of an upstream name comes from the upstream', async (t) => {
  const wharf = await hubWharf(t, reg);
  const before = await tagListGets(reg, 'library/lst');
  // Nothing is cached: tags listed from the cache would be empty.
  const res = await req(`${wharf.url}/v2/lst/tags/list`);
  t.equal(res.status, 200, res.text);
  t.match(res.headers.get('content-type') ?? '', /^application\/json/);
  t.same([...tagsOf(res)].sort(), TAGS, 'every tag pushed upstream');
  t.same(tagsOf(res), TAGS, 'in lexical order (distribution-spec: "the tags MUST be in lexical order")');
  t.equal(await tagListGets(reg, 'library/lst'), before + 1, 'asked the upstream once');
  const other = await req(`${wharf.url}/v2/docker.io/library/lst/tags/list`);
  t.equal(other.status, 200);
  t.same([...tagsOf(other)].sort(), TAGS, 'same list under the registry-host spelling');
  const missing = await req(`${wharf.url}/v2/nobody-pushed-this/tags/list`);
  t.equal(missing.status, 404, `a repository the upstream does not know: ${missing.text}`);
  t.equal(ociError(t, missing).code, 'NAME_UNKNOWN');
});

t.test('n/last pagination from the upstream, with a Link header pointing at our own path', async (t) => {
  const wharf = await hubWharf(t, reg);
  const page1 = await req(`${wharf.url}/v2/lst/tags/list?n=2`);
  t.equal(page1.status, 200, page1.text);
  t.same(tagsOf(page1), ['a', 'b'], 'n=2: the first two tags');
  const link = nextOf(page1);
  t.ok(link, `a Link rel="next" (got ${page1.headers.get('link')})`);
  const next = new URL(link ?? '/', wharf.url);
  t.equal(next.origin, new URL(wharf.url).origin, 'the Link stays on Wharf (relative or our origin)');
  t.notMatch(link ?? '', new RegExp(reg.host.replace(/\./g, '\\.')), 'never the upstream host');
  t.equal(next.pathname, '/v2/lst/tags/list', 'our path, as the client spelled the name');
  t.equal(next.searchParams.get('n'), '2', 'the Link keeps n');
  t.equal(next.searchParams.get('last'), 'b', 'the Link continues after the last tag shown');

  const page2 = await req(`${wharf.url}/v2/lst/tags/list?n=2&last=b`);
  t.same(tagsOf(page2), ['c', 'd'], 'n=2&last=b: the next two');
  const page3 = await req(`${wharf.url}/v2/lst/tags/list?n=2&last=d`);
  t.same(tagsOf(page3), ['e'], 'n=2&last=d: the rest');
  t.equal(page3.headers.get('link'), null, 'no Link on the last page');

  const all = await allPages(t, wharf, '/v2/lst/tags/list?n=2');
  t.same(all.tags, TAGS, 'following Link pages through every tag once');
  const hosted = await allPages(t, wharf, '/v2/docker.io/library/lst/tags/list?n=3');
  t.same(hosted.tags, TAGS, 'every tag once through the registry-host spelling');
  t.ok(hosted.links.length >= 1, 'at least one Link followed');
  for (const l of hosted.links) t.equal(new URL(l, wharf.url).pathname, '/v2/docker.io/library/lst/tags/list', `Link ${l} keeps the spelling`);
});

t.test('a Link on a name routed by ?ns= keeps ns, so following it stays on the upstream', async (t) => {
  // No default upstream: without ns the name is local (and empty).
  const wharf = await hubWharf(t, reg, {}, { default: false });
  const first = await req(`${wharf.url}/v2/library/lst/tags/list?ns=docker.io&n=2`);
  t.equal(first.status, 200, first.text);
  t.same(tagsOf(first), ['a', 'b'], 'n=2: the first two tags');
  const link = nextOf(first);
  t.ok(link, 'a Link rel="next"');
  t.equal(new URL(link ?? '/', wharf.url).searchParams.get('ns'), 'docker.io', `the Link keeps ns=docker.io (got ${link})`);
  const all = await allPages(t, wharf, '/v2/library/lst/tags/list?ns=docker.io&n=2');
  t.same(all.tags, TAGS, 'following the Links lists every upstream tag');
});

t.test('tag lists are cached briefly: no upstream request within listTTL, a fresh list after it', async (t) => {
  const wharf = await hubWharf(t, reg); // listTTL default 30s
  const before = await tagListGets(reg, 'library/lst');
  const one = await req(`${wharf.url}/v2/lst/tags/list`);
  const two = await req(`${wharf.url}/v2/lst/tags/list`);
  t.same([...tagsOf(one)].sort(), TAGS);
  t.same([...tagsOf(two)].sort(), TAGS);
  t.equal(await tagListGets(reg, 'library/lst'), before + 1, 'the second list within listTTL made no upstream request');

  const own = await startDockerRegistry(t);
  await pushTestImage(own, 'library/grow', 'v1', { seed: 'listings/grow' });
  const short = await hubWharf(t, own, { listTTL: '1s' });
  const first = await req(`${short.url}/v2/grow/tags/list`);
  const listedAt = Date.now();
  t.same(tagsOf(first), ['v1']);
  await pushTestImage(own, 'library/grow', 'v2', { seed: 'listings/grow' });
  await sleep(Math.max(0, listedAt + 1_500 - Date.now()));
  const after = await req(`${short.url}/v2/grow/tags/list`);
  t.same([...tagsOf(after)].sort(), ['v1', 'v2'], 'after listTTL the upstream is asked again and the new tag shows');
  t.equal(await tagListGets(own, 'library/grow'), 2);
});

t.test('upstream down: tags/list falls back to the cached tags with a Warning', async (t) => {
  const down = await startDockerRegistry(t);
  for (const tag of ['x', 'y', 'z']) await pushTestImage(down, 'library/down', tag, { seed: 'listings/down' });
  const wharf = await hubWharf(t, down, { listTTL: '1s' });
  for (const tag of ['x', 'y']) {
    const m = await req(`${wharf.url}/v2/down/manifests/${tag}`);
    t.equal(m.status, 200, `pull ${tag}`);
  }
  const live = await req(`${wharf.url}/v2/down/tags/list`);
  t.same([...tagsOf(live)].sort(), ['x', 'y', 'z']);
  t.equal(live.headers.get('warning'), null);

  await down.stop();
  await sleep(1_500); // past listTTL
  const stale = await req(`${wharf.url}/v2/down/tags/list`);
  t.equal(stale.status, 200, `cached tags with the upstream down: ${stale.text}`);
  const tags = tagsOf(stale);
  t.ok(tags.includes('x') && tags.includes('y'), `the cached tags are listed (got ${JSON.stringify(tags)})`);
  t.match(stale.headers.get('warning') ?? '', /^299 - ".+"$/, 'Warning: 299 - "..."');
  const paged = await req(`${wharf.url}/v2/down/tags/list?n=1`);
  t.equal(paged.status, 200);
  t.equal(tagsOf(paged).length, 1);

  const never = await req(`${wharf.url}/v2/never-pulled/tags/list`);
  t.equal(never.status, 503, `nothing cached and the upstream down: ${never.text}`);
  const err = ociError(t, never);
  t.equal(err.code, 'UNAVAILABLE');
  t.match(err.message, new RegExp(UPSTREAM), 'names the upstream');
});

/** Pushes an artifact whose subject is `subject` straight to the docker-registry (it stores it, but has no referrers API). */
async function pushReferrer(t: Test, r: DockerRegistry, repo: string, subject: { digest: string; size: number }, artifactType: string): Promise<{ digest: string; size: number }> {
  const empty = Buffer.from('{}');
  const start = await req(`${r.url}/v2/${repo}/blobs/uploads/`, { method: 'POST' });
  t.equal(start.status, 202, `upload start at the upstream: ${start.text}`);
  const loc = new URL(start.headers.get('location') ?? '', r.url);
  loc.searchParams.set('digest', sha(empty));
  const put = await req(loc.href, { method: 'PUT', body: empty, headers: { 'content-type': 'application/octet-stream' } });
  t.equal(put.status, 201, `upload at the upstream: ${put.text}`);
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: OCI_MANIFEST,
      artifactType,
      config: { mediaType: OCI_EMPTY, digest: sha(empty), size: empty.length },
      layers: [{ mediaType: OCI_EMPTY, digest: sha(empty), size: empty.length }],
      subject: { mediaType: OCI_MANIFEST, digest: subject.digest, size: subject.size },
    }),
  );
  const digest = sha(manifest);
  const pm = await req(`${r.url}/v2/${repo}/manifests/${digest}`, { method: 'PUT', body: manifest, headers: { 'content-type': OCI_MANIFEST } });
  t.equal(pm.status, 201, `referrer manifest at the upstream: ${pm.text}`);
  return { digest, size: manifest.length };
}

t.test('referrers of an upstream name: docker-registry has no referrers API, so the index of what the cache holds', async (t) => {
  const own = await startDockerRegistry(t);
  const subject = await pushTestImage(own, 'library/signed', 'v1', { seed: 'listings/signed' });
  const wharf = await hubWharf(t, own);
  const url = `${wharf.url}/v2/signed/referrers/${subject.manifestDigest}`;

  const empty = await req(url);
  t.equal(empty.status, 200, empty.text);
  t.equal(empty.headers.get('content-type'), OCI_INDEX, 'Content-Type application/vnd.oci.image.index.v1+json');
  t.same(JSON.parse(empty.text), { schemaVersion: 2, mediaType: OCI_INDEX, manifests: [] }, 'an empty index');
  t.equal(empty.headers.get('warning'), null, 'an upstream without the API is not a failure: no Warning');
  t.ok((await own.countRequests({ method: 'GET', pathIncludes: '/referrers/', status: 404 })) >= 1, 'the upstream was asked and answered 404');
  const filtered = await req(`${url}?artifactType=${encodeURIComponent('application/vnd.example.sig')}`);
  t.equal(filtered.status, 200);
  t.equal(filtered.headers.get('content-type'), OCI_INDEX);
  t.same((JSON.parse(filtered.text) as { manifests: unknown[] }).manifests, []);

  // An artifact referring to the subject, pulled through the cache, is listed.
  const artifactType = 'application/vnd.example.sig';
  const subjectSize = subject.manifest.length;
  const ref = await pushReferrer(t, own, 'library/signed', { digest: subject.manifestDigest, size: subjectSize }, artifactType);
  const pulled = await req(`${wharf.url}/v2/signed/manifests/${ref.digest}`);
  t.equal(pulled.status, 200, `the referrer pulls through: ${pulled.text.slice(0, 200)}`);
  const listed = await req(url);
  t.equal(listed.status, 200);
  t.equal(listed.headers.get('content-type'), OCI_INDEX);
  const index = JSON.parse(listed.text) as { schemaVersion: number; mediaType: string; manifests: Array<{ digest: string; artifactType?: string; size: number; mediaType: string }> };
  t.equal(index.schemaVersion, 2);
  t.equal(index.mediaType, OCI_INDEX);
  t.same(index.manifests.map((m) => m.digest), [ref.digest], 'the cached referrer');
  t.equal(index.manifests[0]?.artifactType, artifactType);
  t.equal(index.manifests[0]?.size, ref.size);
  t.equal(index.manifests[0]?.mediaType, OCI_MANIFEST);
  const other = await req(`${url}?artifactType=${encodeURIComponent('application/vnd.example.other')}`);
  t.same((JSON.parse(other.text) as { manifests: unknown[] }).manifests, [], 'filtered by artifactType');
  t.equal(other.headers.get('oci-filters-applied'), 'artifactType');
});
