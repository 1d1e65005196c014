// Routing a repository name (DESIGN.md "Routing a repository name") against the real reference
// registry (Debian's docker-registry) as upstreams: local namespace first, then an upstream's registry
// host or prefix as the first path component, then ?ns=, then the default upstream (none → local);
// Docker Hub's library/ for single-component names; upstream-routed names are read-only.
// Needs docker-registry and skopeo (Debian packages).
import t, { type Test } from 'tap';
import { pushTestImage, startDockerRegistry, type DockerRegistry, type PushedImage } from '../helpers/docker-registry.js';
import { OCI_CONFIG, OCI_MANIFEST } from '../helpers/oci-layout.js';
import { ociError, req, sha } from '../helpers/proxy-http.js';
import { startWharf, type TestServer } from '../helpers/server.js';

t.setTimeout(300_000);

const OCI_LAYER = 'application/vnd.oci.image.layer.v1.tar';

/** Every request the registry logged (its readiness probes included). */
const total = (reg: DockerRegistry): Promise<number> => reg.countRequests();
/** Requests (any method) for manifests of `remote` at the upstream. */
const manifestHits = (reg: DockerRegistry, remote: string): Promise<number> => reg.countRequests({ pathIncludes: `/v2/${remote}/manifests/` });
const writes = async (reg: DockerRegistry): Promise<number> => {
  let n = 0;
  for (const method of ['POST', 'PUT', 'PATCH', 'DELETE']) n += await reg.countRequests({ method });
  return n;
};

/** Pushes a tiny image to a (local) Wharf name: monolithic blob uploads and a manifest PUT. */
async function pushLocal(t: Test, base: string, name: string, tag: string, seed: string): Promise<{ digest: string; manifest: Buffer; blobs: Buffer[] }> {
  const config = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', seed }));
  const layer = Buffer.from(`layer of ${seed}`);
  for (const b of [config, layer]) {
    const r = await req(`${base}/v2/${name}/blobs/uploads/?digest=${sha(b)}`, {
      method: 'POST',
      body: b,
      headers: { 'content-type': 'application/octet-stream' },
    });
    t.equal(r.status, 201, `monolithic upload to ${name}: ${r.text}`);
  }
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: OCI_MANIFEST,
      config: { mediaType: OCI_CONFIG, digest: sha(config), size: config.length },
      layers: [{ mediaType: OCI_LAYER, digest: sha(layer), size: layer.length }],
    }),
  );
  const put = await req(`${base}/v2/${name}/manifests/${tag}`, { method: 'PUT', body: manifest, headers: { 'content-type': OCI_MANIFEST } });
  t.equal(put.status, 201, `manifest PUT to ${name}: ${put.text}`);
  return { digest: sha(manifest), manifest, blobs: [config, layer] };
}

// Two upstreams, each its own docker-registry. The same repository name `owner/app` holds a different
// image at each, so a request routed to the wrong one is seen.
const hubReg = await startDockerRegistry(t);
const ghcrReg = await startDockerRegistry(t);
const hubImg = await pushTestImage(hubReg, 'library/img', 'v1', { seed: 'routing/hub/img' });
const hubOrgImg = await pushTestImage(hubReg, 'someorg/img', 'v1', { seed: 'routing/hub/someorg' });
const hubOwnerApp = await pushTestImage(hubReg, 'owner/app', 'v1', { seed: 'routing/hub/owner-app' });
const ghcrOwnerApp = await pushTestImage(ghcrReg, 'owner/app', 'v1', { seed: 'routing/ghcr/owner-app' });
const ghcrSolo = await pushTestImage(ghcrReg, 'solo', 'v1', { seed: 'routing/ghcr/solo' });

function upstreams(opts: { hubDefault: boolean }): Array<Record<string, unknown>> {
  return [
    { name: 'dockerhub', url: hubReg.url, registry: 'docker.io', prefix: 'hub', default: opts.hubDefault },
    { name: 'github', url: ghcrReg.url, registry: 'ghcr.io', prefix: 'gh' },
  ];
}

async function wharfWith(t: Test, opts: { hubDefault: boolean }): Promise<TestServer> {
  return startWharf(t, { upstreams: upstreams(opts), local: { namespaces: ['local'] } });
}

/** GET a manifest through Wharf and check it is `image` (digest and exact bytes). */
async function expectImage(t: Test, wharf: TestServer, path: string, image: PushedImage): Promise<void> {
  const res = await req(`${wharf.url}${path}`);
  t.equal(res.status, 200, `GET ${path}: ${res.text.slice(0, 300)}`);
  t.equal(res.headers.get('docker-content-digest'), image.manifestDigest, `GET ${path} → the expected upstream's image`);
  t.ok(res.body.equals(image.manifest), `GET ${path}: exact upstream bytes`);
}

t.test('a local-namespace name takes pushes and serves pulls without ever touching an upstream', async (t) => {
  const wharf = await wharfWith(t, { hubDefault: true });
  const hubBefore = await total(hubReg);
  const ghcrBefore = await total(ghcrReg);

  const pushed = await pushLocal(t, wharf.url, 'local/x', 'v1', 'routing/local-x');
  const byTag = await req(`${wharf.url}/v2/local/x/manifests/v1`);
  t.equal(byTag.status, 200);
  t.equal(byTag.headers.get('docker-content-digest'), pushed.digest);
  t.ok(byTag.body.equals(pushed.manifest));
  // A multi-component name under the namespace, and a miss: both stay local (a miss is a local 404).
  await pushLocal(t, wharf.url, 'local/team/tool', 'v1', 'routing/local-team-tool');
  const miss = await req(`${wharf.url}/v2/local/nothing-here/manifests/v1`);
  t.equal(miss.status, 404, 'a local miss is a 404, not a pull-through');
  // ?ns= does not take a local-namespace name away from local (rule 1 comes first).
  const withNs = await req(`${wharf.url}/v2/local/x/manifests/v1?ns=docker.io`);
  t.equal(withNs.status, 200);
  t.equal(withNs.headers.get('docker-content-digest'), pushed.digest);
  const tags = await req(`${wharf.url}/v2/local/x/tags/list`);
  t.equal(tags.status, 200);
  t.same((JSON.parse(tags.text) as { tags: string[] }).tags, ['v1']);

  t.equal(await reg0(hubReg, 'local'), 0, 'docker.io upstream never saw a local name');
  t.equal(await reg0(ghcrReg, 'local'), 0, 'ghcr.io upstream never saw a local name');
  t.equal(await total(hubReg), hubBefore, 'no request at all reached the default upstream');
  t.equal(await total(ghcrReg), ghcrBefore, 'no request at all reached the second upstream');
});

async function reg0(reg: DockerRegistry, part: string): Promise<number> {
  return reg.countRequests({ pathIncludes: part });
}

t.test('the registry host as first path component routes to that upstream (podman mirror style)', async (t) => {
  const wharf = await wharfWith(t, { hubDefault: false });
  const before = await manifestHits(hubReg, 'library/img');
  const ghcrBefore = await total(ghcrReg);
  await expectImage(t, wharf, '/v2/docker.io/library/img/manifests/v1', hubImg);
  t.ok((await manifestHits(hubReg, 'library/img')) > before, 'the docker.io upstream was asked for library/img');
  // Blobs by the same spelling.
  for (const blob of hubImg.blobs) {
    const b = await req(`${wharf.url}/v2/docker.io/library/img/blobs/${blob.digest}`);
    t.equal(b.status, 200);
    t.equal(sha(b.body), blob.digest);
  }
  // Single-component name after the Docker Hub host: library/ is added.
  const wharf2 = await wharfWith(t, { hubDefault: false });
  const before2 = await manifestHits(hubReg, 'library/img');
  await expectImage(t, wharf2, '/v2/docker.io/img/manifests/v1', hubImg);
  t.ok((await manifestHits(hubReg, 'library/img')) > before2, 'docker.io/img → library/img at the upstream');
  t.equal(await total(ghcrReg), ghcrBefore, 'the other upstream was not asked');
});

t.test("an upstream's prefix as first path component routes to that upstream", async (t) => {
  const wharf = await wharfWith(t, { hubDefault: false });
  const before = await manifestHits(hubReg, 'library/img');
  await expectImage(t, wharf, '/v2/hub/library/img/manifests/v1', hubImg);
  t.ok((await manifestHits(hubReg, 'library/img')) > before, 'hub/library/img → library/img at docker.io');
  const wharf2 = await wharfWith(t, { hubDefault: false });
  const before2 = await manifestHits(hubReg, 'library/img');
  await expectImage(t, wharf2, '/v2/hub/img/manifests/v1', hubImg);
  t.ok((await manifestHits(hubReg, 'library/img')) > before2, 'hub/img → library/img at docker.io');
  const wharf3 = await wharfWith(t, { hubDefault: false });
  await expectImage(t, wharf3, '/v2/gh/owner/app/manifests/v1', ghcrOwnerApp);
});

t.test('?ns=<registry> routes every /v2 endpoint to that upstream and is never a 400', async (t) => {
  const wharf = await wharfWith(t, { hubDefault: false });
  for (const path of ['/v2/?ns=docker.io', '/v2?ns=docker.io', '/v2/?ns=ghcr.io', '/v2/?ns=unknown.example']) {
    const r = await req(`${wharf.url}${path}`);
    t.equal(r.status, 200, `GET ${path}: ${r.text}`);
    const h = await req(`${wharf.url}${path}`, { method: 'HEAD' });
    t.equal(h.status, 200, `HEAD ${path}`);
  }
  const catalog = await req(`${wharf.url}/v2/_catalog?ns=docker.io`);
  t.equal(catalog.status, 200, `catalog with ns: ${catalog.text}`);

  const before = await manifestHits(hubReg, 'library/img');
  await expectImage(t, wharf, '/v2/library/img/manifests/v1?ns=docker.io', hubImg);
  t.ok((await manifestHits(hubReg, 'library/img')) > before, 'library/img?ns=docker.io reached docker.io');
  const head = await req(`${wharf.url}/v2/library/img/manifests/v1?ns=docker.io`, { method: 'HEAD' });
  t.equal(head.status, 200);
  t.equal(head.headers.get('docker-content-digest'), hubImg.manifestDigest);
  const byDigest = await req(`${wharf.url}/v2/library/img/manifests/${hubImg.manifestDigest}?ns=docker.io`);
  t.equal(byDigest.status, 200);
  t.ok(byDigest.body.equals(hubImg.manifest));
  for (const blob of hubImg.blobs) {
    const b = await req(`${wharf.url}/v2/library/img/blobs/${blob.digest}?ns=docker.io`);
    t.equal(b.status, 200, `blob GET with ns: ${b.text.slice(0, 200)}`);
    t.equal(sha(b.body), blob.digest);
    const bh = await req(`${wharf.url}/v2/library/img/blobs/${blob.digest}?ns=docker.io`, { method: 'HEAD' });
    t.equal(bh.status, 200);
    t.equal(bh.headers.get('content-length'), String(blob.size));
  }
  const tags = await req(`${wharf.url}/v2/library/img/tags/list?ns=docker.io`);
  t.equal(tags.status, 200, `tags with ns: ${tags.text}`);
  t.same((JSON.parse(tags.text) as { tags: string[] }).tags, ['v1']);
  const referrers = await req(`${wharf.url}/v2/library/img/referrers/${hubImg.manifestDigest}?ns=docker.io`);
  t.equal(referrers.status, 200, `referrers with ns: ${referrers.text}`);
  // The host is matched case-insensitively, and Docker Hub's library/ is added to a single component.
  const wharf2 = await wharfWith(t, { hubDefault: false });
  await expectImage(t, wharf2, '/v2/img/manifests/v1?ns=docker.io', hubImg);
  await expectImage(t, wharf2, '/v2/library/img/manifests/v1?ns=DOCKER.IO', hubImg);
  // Another upstream's host in ns picks that one.
  await expectImage(t, wharf2, '/v2/owner/app/manifests/v1?ns=ghcr.io', ghcrOwnerApp);
  await expectImage(t, wharf2, '/v2/owner/app/manifests/v1?ns=docker.io', hubOwnerApp);
});

t.test('the default upstream takes bare names, adding library/ to single-component Docker Hub names', async (t) => {
  const wharf = await wharfWith(t, { hubDefault: true });
  const before = await hubReg.countRequests({ pathIncludes: '/v2/library/img/manifests/v1' });
  await expectImage(t, wharf, '/v2/img/manifests/v1', hubImg);
  t.ok((await hubReg.countRequests({ pathIncludes: '/v2/library/img/manifests/v1' })) > before, '/v2/img/manifests/v1 → upstream library/img');
  t.equal(await hubReg.countRequests({ pathIncludes: '/v2/img/' }), 0, 'the upstream never saw the bare name img');
  const wharf2 = await wharfWith(t, { hubDefault: true });
  await expectImage(t, wharf2, '/v2/library/img/manifests/v1', hubImg);
  t.equal(await hubReg.countRequests({ pathIncludes: '/library/library/' }), 0, 'library/ is not added twice');
  await expectImage(t, wharf2, '/v2/someorg/img/manifests/v1', hubOrgImg);
  t.equal(await hubReg.countRequests({ pathIncludes: '/library/someorg/' }), 0, 'library/ only for single-component names');
});

t.test('two upstreams: each is reached by its host prefix and by ns, and their caches never mix', async (t) => {
  const wharf = await wharfWith(t, { hubDefault: true });
  const ghcrBefore = await manifestHits(ghcrReg, 'owner/app');
  const hubBefore = await manifestHits(hubReg, 'owner/app');
  // Interleaved so that a shared cache entry would answer the second spelling with the first image.
  await expectImage(t, wharf, '/v2/ghcr.io/owner/app/manifests/v1', ghcrOwnerApp);
  await expectImage(t, wharf, '/v2/docker.io/owner/app/manifests/v1', hubOwnerApp);
  await expectImage(t, wharf, '/v2/owner/app/manifests/v1?ns=ghcr.io', ghcrOwnerApp);
  await expectImage(t, wharf, '/v2/owner/app/manifests/v1?ns=docker.io', hubOwnerApp);
  await expectImage(t, wharf, '/v2/owner/app/manifests/v1', hubOwnerApp); // the default
  await expectImage(t, wharf, '/v2/gh/owner/app/manifests/v1', ghcrOwnerApp);
  t.ok((await manifestHits(ghcrReg, 'owner/app')) > ghcrBefore, 'ghcr.io upstream was asked');
  t.ok((await manifestHits(hubReg, 'owner/app')) > hubBefore, 'docker.io upstream was asked');
  // Blobs of each image come from its own upstream.
  for (const blob of ghcrOwnerApp.blobs) {
    const b = await req(`${wharf.url}/v2/ghcr.io/owner/app/blobs/${blob.digest}`);
    t.equal(b.status, 200);
    t.equal(sha(b.body), blob.digest);
  }
  // A blob of the other upstream's image is not served under this upstream's name.
  const foreign = hubOwnerApp.blobs.at(-1)!;
  const cross = await req(`${wharf.url}/v2/ghcr.io/owner/app/blobs/${foreign.digest}`);
  t.equal(cross.status, 404, 'a docker.io blob is unknown under ghcr.io/owner/app');
  // No library/ for a single-component name at a registry that is not Docker Hub.
  await expectImage(t, wharf, '/v2/ghcr.io/solo/manifests/v1', ghcrSolo);
  await expectImage(t, wharf, '/v2/solo/manifests/v1?ns=ghcr.io', ghcrSolo);
  t.equal(await ghcrReg.countRequests({ pathIncludes: '/library/' }), 0, 'ghcr.io never asked for library/...');
});

t.test('with no default upstream, names that match nothing are local', async (t) => {
  const wharf = await wharfWith(t, { hubDefault: false });
  const hubBefore = await total(hubReg);
  const ghcrBefore = await total(ghcrReg);
  // library/img exists at docker.io, but without a default upstream the bare name is local: a 404.
  const miss = await req(`${wharf.url}/v2/library/img/manifests/v1`);
  t.equal(miss.status, 404, `bare name is local: ${miss.text}`);
  const missBlob = await req(`${wharf.url}/v2/library/img/blobs/${hubImg.blobs[0]!.digest}`);
  t.equal(missBlob.status, 404);
  // And it takes pushes, outside any configured local namespace.
  const pushed = await pushLocal(t, wharf.url, 'library/img', 'v1', 'routing/no-default/library-img');
  const got = await req(`${wharf.url}/v2/library/img/manifests/v1`);
  t.equal(got.status, 200);
  t.equal(got.headers.get('docker-content-digest'), pushed.digest);
  await pushLocal(t, wharf.url, 'team/app', 'v1', 'routing/no-default/team-app');
  t.equal(await total(hubReg), hubBefore, 'docker.io upstream untouched');
  t.equal(await total(ghcrReg), ghcrBefore, 'ghcr.io upstream untouched');
  // The same name with ns= is still the upstream's (and its cache is not the local repository).
  await expectImage(t, wharf, '/v2/library/img/manifests/v1?ns=docker.io', hubImg);
  const again = await req(`${wharf.url}/v2/library/img/manifests/v1`);
  t.equal(again.headers.get('docker-content-digest'), pushed.digest, 'the local repository still holds the local image');
});

t.test('upstream-routed names are read-only: every write is 403 DENIED naming the upstream', async (t) => {
  const wharf = await wharfWith(t, { hubDefault: true });
  const writesBefore = { hub: await writes(hubReg), ghcr: await writes(ghcrReg) };
  // Pull through once so that a DELETE would have something cached to remove.
  await expectImage(t, wharf, '/v2/img/manifests/v1', hubImg);
  await expectImage(t, wharf, '/v2/ghcr.io/owner/app/manifests/v1', ghcrOwnerApp);

  const spellings: Array<{ name: string; query: string; upstream: string; image: PushedImage }> = [
    { name: 'img', query: '', upstream: 'dockerhub', image: hubImg },
    { name: 'library/img', query: '', upstream: 'dockerhub', image: hubImg },
    { name: 'docker.io/library/img', query: '', upstream: 'dockerhub', image: hubImg },
    { name: 'hub/library/img', query: '', upstream: 'dockerhub', image: hubImg },
    { name: 'library/img', query: 'ns=docker.io', upstream: 'dockerhub', image: hubImg },
    { name: 'ghcr.io/owner/app', query: '', upstream: 'github', image: ghcrOwnerApp },
    { name: 'gh/owner/app', query: '', upstream: 'github', image: ghcrOwnerApp },
    { name: 'owner/app', query: 'ns=ghcr.io', upstream: 'github', image: ghcrOwnerApp },
  ];
  const blob = Buffer.from('a blob nobody may push to a mirror');
  const manifest = Buffer.from(
    JSON.stringify({ schemaVersion: 2, mediaType: OCI_MANIFEST, config: { mediaType: OCI_CONFIG, digest: sha(blob), size: blob.length }, layers: [] }),
  );
  for (const s of spellings) {
    const q = (extra = ''): string => {
      const parts = [s.query, extra].filter((x) => x !== '');
      return parts.length > 0 ? `?${parts.join('&')}` : '';
    };
    const layer = s.image.blobs.at(-1)!.digest;
    const attempts: Array<[string, string, RequestInit]> = [
      ['POST upload', `/v2/${s.name}/blobs/uploads/${q()}`, { method: 'POST' }],
      ['POST monolithic upload', `/v2/${s.name}/blobs/uploads/${q(`digest=${sha(blob)}`)}`, { method: 'POST', body: blob, headers: { 'content-type': 'application/octet-stream' } }],
      ['POST mount', `/v2/${s.name}/blobs/uploads/${q(`mount=${layer}&from=local/x`)}`, { method: 'POST' }],
      ['PATCH upload', `/v2/${s.name}/blobs/uploads/00000000-0000-4000-8000-000000000000${q()}`, { method: 'PATCH', body: blob, headers: { 'content-type': 'application/octet-stream' } }],
      ['PUT upload', `/v2/${s.name}/blobs/uploads/00000000-0000-4000-8000-000000000000${q(`digest=${sha(blob)}`)}`, { method: 'PUT' }],
      ['DELETE upload', `/v2/${s.name}/blobs/uploads/00000000-0000-4000-8000-000000000000${q()}`, { method: 'DELETE' }],
      ['PUT manifest', `/v2/${s.name}/manifests/pushed${q()}`, { method: 'PUT', body: manifest, headers: { 'content-type': OCI_MANIFEST } }],
      ['DELETE manifest by tag', `/v2/${s.name}/manifests/v1${q()}`, { method: 'DELETE' }],
      ['DELETE manifest by digest', `/v2/${s.name}/manifests/${s.image.manifestDigest}${q()}`, { method: 'DELETE' }],
      ['DELETE blob', `/v2/${s.name}/blobs/${layer}${q()}`, { method: 'DELETE' }],
    ];
    for (const [what, path, init] of attempts) {
      const r = await req(`${wharf.url}${path}`, init);
      t.equal(r.status, 403, `${what} ${path}: ${r.text.slice(0, 300)}`);
      const err = ociError(t, r);
      t.equal(err.code, 'DENIED', `${what} ${path}: code`);
      t.match(err.message, new RegExp(`\\b${s.upstream}\\b`), `${what} ${path}: the message names upstream ${s.upstream}`);
    }
    // Nothing was removed from the cache.
    const still = await req(`${wharf.url}/v2/${s.name}/manifests/${s.image.manifestDigest}${q()}`);
    t.equal(still.status, 200, `${s.name}${q()} still pulls after the refused writes`);
  }
  t.equal(await writes(hubReg), writesBefore.hub, 'no write reached docker.io');
  t.equal(await writes(ghcrReg), writesBefore.ghcr, 'no write reached ghcr.io');
});

t.test('local names keep the full push API next to upstreams (chunked upload, deletes)', async (t) => {
  const wharf = await wharfWith(t, { hubDefault: true });
  const hubBefore = await total(hubReg);
  const ghcrBefore = await total(ghcrReg);
  const pushed = await pushLocal(t, wharf.url, 'local/app', 'v1', 'routing/local-app');

  // Chunked upload: POST, PATCH, PUT.
  const chunk = Buffer.from('chunked bytes for a local name');
  const start = await req(`${wharf.url}/v2/local/app/blobs/uploads/`, { method: 'POST' });
  t.equal(start.status, 202, start.text);
  const location = start.headers.get('location') ?? '';
  t.match(location, /\/v2\/local\/app\/blobs\/uploads\//);
  const abs = (l: string): string => new URL(l, wharf.url).href;
  const patch = await req(abs(location), {
    method: 'PATCH',
    body: chunk,
    headers: { 'content-type': 'application/octet-stream', 'content-range': `0-${chunk.length - 1}` },
  });
  t.equal(patch.status, 202, patch.text);
  const next = patch.headers.get('location') ?? location;
  const sep = next.includes('?') ? '&' : '?';
  const done = await req(`${abs(next)}${sep}digest=${sha(chunk)}`, { method: 'PUT' });
  t.equal(done.status, 201, done.text);
  t.equal(done.headers.get('docker-content-digest'), sha(chunk));

  const del = await req(`${wharf.url}/v2/local/app/manifests/${pushed.digest}`, { method: 'DELETE' });
  t.equal(del.status, 202, `DELETE local manifest: ${del.text}`);
  const gone = await req(`${wharf.url}/v2/local/app/manifests/${pushed.digest}`);
  t.equal(gone.status, 404);
  const delBlob = await req(`${wharf.url}/v2/local/app/blobs/${sha(chunk)}`, { method: 'DELETE' });
  t.equal(delBlob.status, 202, `DELETE local blob: ${delBlob.text}`);
  t.equal(await total(hubReg), hubBefore, 'docker.io untouched by local writes');
  t.equal(await total(ghcrReg), ghcrBefore, 'ghcr.io untouched by local writes');
});
