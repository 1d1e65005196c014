// Manifests of upstream-routed names (DESIGN.md "The pull-through path") against the real reference
// registry (Debian's docker-registry): by digest fetched once and then served from the cache; by tag
// fresh within tagTTL, then revalidated with a HEAD; a moved tag is followed; upstream 404s, an
// upstream that is down with and without a cached copy. Needs docker-registry and skopeo.
import { setTimeout as sleep } from 'node:timers/promises';
import t from 'tap';
import { pushTestImage, startDockerRegistry, type DockerRegistry } from '../helpers/docker-registry.js';
import { OCI_INDEX, OCI_MANIFEST } from '../helpers/oci-layout.js';
import { hubWharf, ociError, req, sha, UPSTREAM } from '../helpers/proxy-http.js';
import { startWharf } from '../helpers/server.js';

t.setTimeout(300_000);

/** Upstream requests for a manifest path (`remote` and reference), by method. */
const at = (reg: DockerRegistry, method: 'GET' | 'HEAD', remote: string, reference: string): Promise<number> =>
  reg.countRequests({ method, pathIncludes: new RegExp(`^/v2/${remote}/manifests/${reference.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}$`) });

// One upstream for the tests that do not stop or change it.
const reg = await startDockerRegistry(t);

t.test('by digest: the first GET fetches from the upstream, the second is served from the cache', async (t) => {
  const image = await pushTestImage(reg, 'library/bydigest', 'v1', { seed: 'manifests/bydigest' });
  const wharf = await hubWharf(t, reg);
  const url = `${wharf.url}/v2/bydigest/manifests/${image.manifestDigest}`;
  t.equal(await at(reg, 'GET', 'library/bydigest', image.manifestDigest), 0);

  const first = await req(url);
  t.equal(first.status, 200, first.text);
  t.ok(first.body.equals(image.manifest), 'exact upstream bytes');
  t.equal(first.headers.get('content-type'), image.mediaType, 'Content-Type is the upstream media type');
  t.equal(image.mediaType, OCI_MANIFEST);
  t.equal(first.headers.get('docker-content-digest'), image.manifestDigest);
  t.equal(first.headers.get('content-length'), String(image.manifest.length));
  t.equal(await at(reg, 'GET', 'library/bydigest', image.manifestDigest), 1, 'one upstream GET');

  const totalBefore = await reg.countRequests();
  const second = await req(url);
  t.equal(second.status, 200);
  t.ok(second.body.equals(image.manifest), 'same bytes from the cache');
  t.equal(second.headers.get('content-type'), image.mediaType);
  t.equal(second.headers.get('docker-content-digest'), image.manifestDigest);
  const head = await req(url, { method: 'HEAD' });
  t.equal(head.status, 200);
  t.equal(head.headers.get('docker-content-digest'), image.manifestDigest);
  t.equal(head.headers.get('content-length'), String(image.manifest.length));
  t.equal(head.headers.get('content-type'), image.mediaType);
  t.equal(head.body.length, 0);
  // Same content under another spelling of the same repository: still the cache.
  const other = await req(`${wharf.url}/v2/docker.io/library/bydigest/manifests/${image.manifestDigest}`);
  t.equal(other.status, 200);
  t.ok(other.body.equals(image.manifest));
  t.equal(await reg.countRequests(), totalBefore, 'no upstream request at all for cached content');
});

t.test('by digest: an index and each of its children are fetched when asked for, then cached', async (t) => {
  const index = await pushTestImage(reg, 'library/multi', 'v1', { seed: 'manifests/multi', index: true });
  t.equal(index.mediaType, OCI_INDEX);
  t.equal(index.children.length, 2);
  const wharf = await hubWharf(t, reg);

  const res = await req(`${wharf.url}/v2/multi/manifests/${index.manifestDigest}`);
  t.equal(res.status, 200, res.text);
  t.ok(res.body.equals(index.manifest), 'exact index bytes');
  t.equal(res.headers.get('content-type'), OCI_INDEX);
  t.equal(res.headers.get('docker-content-digest'), index.manifestDigest);
  t.equal(await at(reg, 'GET', 'library/multi', index.manifestDigest), 1);

  for (const child of index.children) {
    const c = await req(`${wharf.url}/v2/multi/manifests/${child.digest}`);
    t.equal(c.status, 200, `child ${child.platform?.architecture}: ${c.text.slice(0, 200)}`);
    t.ok(c.body.equals(child.manifest), 'exact child bytes');
    t.equal(c.headers.get('content-type'), child.mediaType);
    t.equal(c.headers.get('docker-content-digest'), child.digest);
    t.equal(await at(reg, 'GET', 'library/multi', child.digest), 1, 'the child was fetched once');
  }
  const totalBefore = await reg.countRequests();
  for (const digest of [index.manifestDigest, ...index.children.map((c) => c.digest)]) {
    const again = await req(`${wharf.url}/v2/multi/manifests/${digest}`);
    t.equal(again.status, 200);
    t.equal(sha(again.body), digest);
  }
  t.equal(await reg.countRequests(), totalBefore, 'index and children are served from the cache afterwards');
  // The index by tag is the same index.
  const wharf2 = await hubWharf(t, reg);
  const byTag = await req(`${wharf2.url}/v2/multi/manifests/v1`);
  t.equal(byTag.status, 200);
  t.equal(byTag.headers.get('content-type'), OCI_INDEX);
  t.ok(byTag.body.equals(index.manifest));
});

t.test('by tag within tagTTL: no upstream request at all', async (t) => {
  const image = await pushTestImage(reg, 'library/fresh', 'v1', { seed: 'manifests/fresh' });
  const wharf = await hubWharf(t, reg, { tagTTL: '1h' });
  const first = await req(`${wharf.url}/v2/fresh/manifests/v1`);
  t.equal(first.status, 200, first.text);
  t.equal(first.headers.get('docker-content-digest'), image.manifestDigest);
  t.ok(first.body.equals(image.manifest));
  t.equal(first.headers.get('content-type'), image.mediaType);
  t.ok((await at(reg, 'GET', 'library/fresh', 'v1')) + (await at(reg, 'GET', 'library/fresh', image.manifestDigest)) >= 1, 'the cold tag was fetched');

  const totalBefore = await reg.countRequests();
  await sleep(1_200); // longer than a 1s TTL would be: the 1h TTL is what keeps it fresh
  for (let i = 0; i < 3; i++) {
    const get = await req(`${wharf.url}/v2/fresh/manifests/v1`);
    t.equal(get.status, 200);
    t.ok(get.body.equals(image.manifest));
    t.equal(get.headers.get('warning'), null, 'fresh content carries no Warning');
    const head = await req(`${wharf.url}/v2/fresh/manifests/v1`, { method: 'HEAD' });
    t.equal(head.status, 200);
    t.equal(head.headers.get('docker-content-digest'), image.manifestDigest);
  }
  t.equal(await reg.countRequests(), totalBefore, 'within tagTTL the upstream is not asked (not even a HEAD)');
});

t.test('by tag after tagTTL: one HEAD revalidation and no GET while the tag is unchanged', async (t) => {
  const image = await pushTestImage(reg, 'library/reval', 'v1', { seed: 'manifests/reval' });
  const wharf = await hubWharf(t, reg, { tagTTL: '1s' });
  const first = await req(`${wharf.url}/v2/reval/manifests/v1`);
  t.equal(first.status, 200, first.text);
  t.equal(first.headers.get('docker-content-digest'), image.manifestDigest);
  const heads = await at(reg, 'HEAD', 'library/reval', 'v1');
  const gets = (await at(reg, 'GET', 'library/reval', 'v1')) + (await at(reg, 'GET', 'library/reval', image.manifestDigest));

  await sleep(1_500);
  const second = await req(`${wharf.url}/v2/reval/manifests/v1`);
  t.equal(second.status, 200);
  t.ok(second.body.equals(image.manifest), 'same bytes');
  t.equal(second.headers.get('docker-content-digest'), image.manifestDigest);
  t.equal(second.headers.get('warning'), null, 'a successful revalidation carries no Warning');
  t.equal(await at(reg, 'HEAD', 'library/reval', 'v1'), heads + 1, 'exactly one HEAD revalidation upstream');
  t.equal(
    (await at(reg, 'GET', 'library/reval', 'v1')) + (await at(reg, 'GET', 'library/reval', image.manifestDigest)),
    gets,
    'no GET for an unchanged tag',
  );

  // A HEAD by tag after the TTL revalidates the same way.
  await sleep(1_500);
  const head = await req(`${wharf.url}/v2/reval/manifests/v1`, { method: 'HEAD' });
  t.equal(head.status, 200);
  t.equal(head.headers.get('docker-content-digest'), image.manifestDigest);
  t.equal(await at(reg, 'HEAD', 'library/reval', 'v1'), heads + 2);
  t.equal((await at(reg, 'GET', 'library/reval', 'v1')) + (await at(reg, 'GET', 'library/reval', image.manifestDigest)), gets);
});

t.test('a tag moved upstream: after tagTTL the new digest is served, the old one stays pullable by digest', async (t) => {
  const old = await pushTestImage(reg, 'library/moving', 'v1', { seed: 'manifests/moving/1' });
  const wharf = await hubWharf(t, reg, { tagTTL: '1s' });
  const first = await req(`${wharf.url}/v2/moving/manifests/v1`);
  t.equal(first.headers.get('docker-content-digest'), old.manifestDigest);
  const pulledAt = Date.now();

  const moved = await pushTestImage(reg, 'library/moving', 'v1', { seed: 'manifests/moving/2' });
  t.not(moved.manifestDigest, old.manifestDigest);
  const fetchesOf = async (): Promise<number> =>
    (await at(reg, 'GET', 'library/moving', 'v1')) + (await at(reg, 'GET', 'library/moving', moved.manifestDigest));
  const fetchesBefore = await fetchesOf();
  await sleep(Math.max(0, pulledAt + 1_500 - Date.now()));

  const now = await req(`${wharf.url}/v2/moving/manifests/v1`);
  t.equal(now.status, 200, now.text);
  t.equal(now.headers.get('docker-content-digest'), moved.manifestDigest, 'the new digest');
  t.ok(now.body.equals(moved.manifest), 'the new bytes');
  t.equal(await fetchesOf(), fetchesBefore + 1, 'the moved tag was fetched again, once');
  const head = await req(`${wharf.url}/v2/moving/manifests/v1`, { method: 'HEAD' });
  t.equal(head.headers.get('docker-content-digest'), moved.manifestDigest);
  const oldByDigest = await req(`${wharf.url}/v2/moving/manifests/${old.manifestDigest}`);
  t.equal(oldByDigest.status, 200);
  t.ok(oldByDigest.body.equals(old.manifest));
});

t.test('HEAD by tag on a cold cache answers with digest, type and length', async (t) => {
  const image = await pushTestImage(reg, 'library/coldhead', 'v1', { seed: 'manifests/coldhead' });
  const wharf = await hubWharf(t, reg);
  const head = await req(`${wharf.url}/v2/coldhead/manifests/v1`, { method: 'HEAD' });
  t.equal(head.status, 200);
  t.equal(head.headers.get('docker-content-digest'), image.manifestDigest);
  t.equal(head.headers.get('content-type'), image.mediaType);
  t.equal(head.headers.get('content-length'), String(image.manifest.length));
  t.equal(head.body.length, 0, 'no body');
  const get = await req(`${wharf.url}/v2/coldhead/manifests/v1`);
  t.equal(get.status, 200);
  t.ok(get.body.equals(image.manifest));
  // A HEAD by digest on a cold cache too.
  const wharf2 = await hubWharf(t, reg);
  const headDigest = await req(`${wharf2.url}/v2/coldhead/manifests/${image.manifestDigest}`, { method: 'HEAD' });
  t.equal(headDigest.status, 200);
  t.equal(headDigest.headers.get('docker-content-digest'), image.manifestDigest);
  t.equal(headDigest.headers.get('content-length'), String(image.manifest.length));
});

t.test('a manifest pulled through with more descriptors than manifests.maxDescriptors: 400 MANIFEST_INVALID naming the limit, nothing stored', async (t) => {
  // Config and three layers: four descriptors; config and two layers: three.
  const over = await pushTestImage(reg, 'library/manylayers', 'v1', { seed: 'manifests/manylayers', layerCount: 3 });
  const under = await pushTestImage(reg, 'library/fewlayers', 'v1', { seed: 'manifests/fewlayers', layerCount: 2 });
  const wharf = await startWharf(t, {
    manifests: { maxDescriptors: 3 },
    upstreams: [{ name: UPSTREAM, url: reg.url, registry: 'docker.io', default: true }],
  });
  for (const reference of ['v1', over.manifestDigest]) {
    const res = await req(`${wharf.url}/v2/manylayers/manifests/${reference}`);
    t.equal(res.status, 400, `${reference}: ${res.text}`);
    const err = ociError(t, res);
    t.equal(err.code, 'MANIFEST_INVALID');
    t.match(err.message, new RegExp(`upstream ${UPSTREAM} .*4 descriptors, more than the 3 .*manifests\\.maxDescriptors`), 'names the upstream, the limit and the setting');
  }
  const gets = await at(reg, 'GET', 'library/manylayers', over.manifestDigest) + (await at(reg, 'GET', 'library/manylayers', 'v1'));
  const again = await req(`${wharf.url}/v2/manylayers/manifests/${over.manifestDigest}`);
  t.equal(again.status, 400, 'still refused');
  t.equal(
    (await at(reg, 'GET', 'library/manylayers', over.manifestDigest)) + (await at(reg, 'GET', 'library/manylayers', 'v1')),
    gets + 1,
    'nothing was stored: the upstream is asked again',
  );
  const catalog = (await req(`${wharf.url}/v2/_catalog`)).text;
  t.notMatch(catalog, /manylayers/, 'no repository left behind');

  const ok = await req(`${wharf.url}/v2/fewlayers/manifests/v1`);
  t.equal(ok.status, 200, 'a manifest at the limit is served');
  t.equal(ok.headers.get('docker-content-digest'), under.manifestDigest);
});

t.test('upstream 404 → 404 MANIFEST_UNKNOWN with an OCI error body', async (t) => {
  const image = await pushTestImage(reg, 'library/known', 'v1', { seed: 'manifests/known' });
  const wharf = await hubWharf(t, reg);
  const unknownDigest = sha('no manifest has these bytes');
  for (const path of ['/v2/known/manifests/no-such-tag', `/v2/known/manifests/${unknownDigest}`, '/v2/docker.io/library/known/manifests/no-such-tag']) {
    const res = await req(`${wharf.url}${path}`);
    t.equal(res.status, 404, `${path}: ${res.text}`);
    t.match(res.headers.get('content-type') ?? '', /^application\/json/);
    const err = ociError(t, res);
    t.equal(err.code, 'MANIFEST_UNKNOWN', path);
    t.match(err.message, new RegExp(UPSTREAM), `${path}: the message names the upstream`);
    const head = await req(`${wharf.url}${path}`, { method: 'HEAD' });
    t.equal(head.status, 404, `HEAD ${path}`);
    t.equal(head.body.length, 0);
  }
  t.ok((await at(reg, 'GET', 'library/known', unknownDigest)) + (await at(reg, 'HEAD', 'library/known', unknownDigest)) >= 1, 'the upstream was asked');
  // A repository the upstream does not have at all.
  const repo = await req(`${wharf.url}/v2/nobody-pushed-this/manifests/v1`);
  t.equal(repo.status, 404, repo.text);
  t.match(ociError(t, repo).code, /^(MANIFEST_UNKNOWN|NAME_UNKNOWN)$/);
  // The known tag still works.
  const ok = await req(`${wharf.url}/v2/known/manifests/v1`);
  t.equal(ok.headers.get('docker-content-digest'), image.manifestDigest);
});

t.test('upstream down: a cached tag is served stale with a Warning; without a cached copy 503 UNAVAILABLE naming the upstream', async (t) => {
  const down = await startDockerRegistry(t);
  const image = await pushTestImage(down, 'library/stale', 'v1', { seed: 'manifests/stale' });
  await pushTestImage(down, 'library/stale', 'never-pulled', { seed: 'manifests/stale/other' });
  const wharf = await hubWharf(t, down, { tagTTL: '1s' });
  const first = await req(`${wharf.url}/v2/stale/manifests/v1`);
  t.equal(first.status, 200, first.text);
  t.equal(first.headers.get('warning'), null);

  await down.stop();
  await sleep(1_500); // past tagTTL: Wharf must try to revalidate

  const stale = await req(`${wharf.url}/v2/stale/manifests/v1`);
  t.equal(stale.status, 200, `stale tag: ${stale.text.slice(0, 300)}`);
  t.ok(stale.body.equals(image.manifest), 'the cached bytes');
  t.equal(stale.headers.get('docker-content-digest'), image.manifestDigest);
  t.equal(stale.headers.get('content-type'), image.mediaType);
  t.match(stale.headers.get('warning') ?? '', /^299 - ".+"$/, 'Warning: 299 - "..."');
  const staleHead = await req(`${wharf.url}/v2/stale/manifests/v1`, { method: 'HEAD' });
  t.equal(staleHead.status, 200);
  t.match(staleHead.headers.get('warning') ?? '', /^299 - ".+"$/, 'HEAD carries the Warning too');
  const byDigest = await req(`${wharf.url}/v2/stale/manifests/${image.manifestDigest}`);
  t.equal(byDigest.status, 200, 'by digest from the cache while the upstream is down');
  t.ok(byDigest.body.equals(image.manifest));

  for (const path of ['/v2/stale/manifests/never-pulled', `/v2/stale/manifests/${sha('uncached')}`, '/v2/not-cached-at-all/manifests/v1']) {
    const res = await req(`${wharf.url}${path}`);
    t.equal(res.status, 503, `${path}: ${res.text}`);
    const err = ociError(t, res);
    t.equal(err.code, 'UNAVAILABLE', path);
    t.match(err.message, new RegExp(UPSTREAM), `${path}: the message names the upstream`);
  }
  // Back up: the tag revalidates again without a Warning.
  await down.start();
  await sleep(1_100);
  const back = await req(`${wharf.url}/v2/stale/manifests/v1`);
  t.equal(back.status, 200);
  t.equal(back.headers.get('warning'), null, 'no Warning once the upstream answers again');
});
