// Blobs of upstream-routed names (DESIGN.md "The pull-through path") against the real reference
// registry (Debian's docker-registry): one upstream fetch per digest however many clients ask, HEAD
// on a miss without a download, Range on a cold blob, pulling with the upstream down, and upstreams
// that want Basic or token auth. Needs docker-registry, skopeo and openssl.
import { createHash } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import t, { type Test } from 'tap';
import { pushTestImage, startDockerRegistry, type DockerRegistry, type PushedImage } from '../helpers/docker-registry.js';
import { hubWharf, ociError, req, sha, UPSTREAM } from '../helpers/proxy-http.js';
import type { TestServer } from '../helpers/server.js';

t.setTimeout(600_000);

const BIG_TIMEOUT_MS = 180_000;
const MiB = 1024 * 1024;

/** GET that hashes the body as it streams (no 64 MiB buffers per client). */
async function hashedGet(url: string): Promise<{ status: number; contentLength: string | null; digest: string; size: number }> {
  const res = await fetch(url, { signal: AbortSignal.timeout(BIG_TIMEOUT_MS) });
  const hash = createHash('sha256');
  let size = 0;
  if (res.body) {
    for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
      hash.update(chunk);
      size += chunk.length;
    }
  }
  return { status: res.status, contentLength: res.headers.get('content-length'), digest: `sha256:${hash.digest('hex')}`, size };
}

const blobGets = (reg: DockerRegistry, digest: string): Promise<number> => reg.countRequests({ method: 'GET', pathIncludes: `/blobs/${digest}` });
const blobHeads = (reg: DockerRegistry, digest: string): Promise<number> => reg.countRequests({ method: 'HEAD', pathIncludes: `/blobs/${digest}` });

const largest = (image: PushedImage): { digest: string; size: number } => [...image.blobs].sort((a, b) => b.size - a.size)[0]!;

/** Waits (bounded) until the upstream has logged `n` GETs of a blob: its response has been sent. */
async function waitForGets(reg: DockerRegistry, digest: string, n: number, ms = 15_000): Promise<number> {
  const deadline = Date.now() + ms;
  let seen = await blobGets(reg, digest);
  while (seen < n && Date.now() < deadline) {
    await sleep(100);
    seen = await blobGets(reg, digest);
  }
  return seen;
}

/** Pulls a whole image through Wharf and checks every byte. */
async function pullAll(t: Test, wharf: TestServer, name: string, tag: string, image: PushedImage): Promise<void> {
  const m = await req(`${wharf.url}/v2/${name}/manifests/${tag}`);
  t.equal(m.status, 200, `manifest ${name}:${tag}: ${m.text.slice(0, 300)}`);
  t.equal(m.headers.get('docker-content-digest'), image.manifestDigest);
  t.ok(m.body.equals(image.manifest), 'exact manifest bytes');
  for (const blob of image.blobs) {
    const b = await req(`${wharf.url}/v2/${name}/blobs/${blob.digest}`);
    t.equal(b.status, 200, `blob ${blob.digest}: ${b.status === 200 ? '' : b.text.slice(0, 300)}`);
    t.equal(b.body.length, blob.size);
    t.equal(sha(b.body), blob.digest, `blob ${blob.digest} bytes`);
  }
}

t.test('herd: 16 clients on one cold 64 MiB blob make exactly one upstream GET and all get the right bytes', async (t) => {
  const reg = await startDockerRegistry(t);
  const image = await pushTestImage(reg, 'library/big', 'v1', { seed: 'blobs/herd', layerSize: 64 * MiB, timeoutMs: BIG_TIMEOUT_MS });
  const layer = largest(image);
  t.ok(layer.size >= 64 * MiB, `the layer is at least 64 MiB (${layer.size})`);
  const wharf = await hubWharf(t, reg);
  t.equal(await blobGets(reg, layer.digest), 0);

  const url = `${wharf.url}/v2/big/blobs/${layer.digest}`;
  const results = await Promise.all(Array.from({ length: 16 }, () => hashedGet(url)));
  results.forEach((r, i) => {
    t.equal(r.status, 200, `client ${i}: status`);
    t.equal(r.size, layer.size, `client ${i}: every byte`);
    t.equal(r.digest, layer.digest, `client ${i}: sha256 of what it received`);
    t.equal(r.contentLength, String(layer.size), `client ${i}: Content-Length`);
  });
  t.equal(await blobGets(reg, layer.digest), 1, 'exactly one upstream GET for the digest');

  // Afterwards: from the cache.
  const later = await hashedGet(url);
  t.equal(later.status, 200);
  t.equal(later.digest, layer.digest);
  t.equal(await blobGets(reg, layer.digest), 1, 'still one upstream GET');
});

t.test('blob HEAD on a miss: 200 with Content-Length and Docker-Content-Digest, the upstream saw a HEAD and no GET', async (t) => {
  const reg = await startDockerRegistry(t);
  const image = await pushTestImage(reg, 'library/headmiss', 'v1', { seed: 'blobs/headmiss' });
  const wharf = await hubWharf(t, reg);
  for (const blob of image.blobs) {
    // skopeo's push HEADs blobs too: count from here.
    const headsBefore = await blobHeads(reg, blob.digest);
    const getsBefore = await blobGets(reg, blob.digest);
    const head = await req(`${wharf.url}/v2/headmiss/blobs/${blob.digest}`, { method: 'HEAD' });
    t.equal(head.status, 200, `HEAD ${blob.digest}`);
    t.equal(head.headers.get('content-length'), String(blob.size), 'Content-Length is the blob size');
    t.equal(head.headers.get('docker-content-digest'), blob.digest);
    t.equal(head.body.length, 0);
    t.equal(await blobHeads(reg, blob.digest), headsBefore + 1, 'the upstream saw one HEAD');
    t.equal(await blobGets(reg, blob.digest), getsBefore, 'and no GET (nothing downloaded for a HEAD)');
  }
  // A HEAD for a blob the upstream does not have: 404 BLOB_UNKNOWN.
  const missing = sha('no blob has these bytes');
  const head = await req(`${wharf.url}/v2/headmiss/blobs/${missing}`, { method: 'HEAD' });
  t.equal(head.status, 404);
  const get = await req(`${wharf.url}/v2/headmiss/blobs/${missing}`);
  t.equal(get.status, 404, get.text);
  t.equal(ociError(t, get).code, 'BLOB_UNKNOWN');
});

t.test('Range on a cold blob: 206 with the right bytes, and afterwards the blob is cached', async (t) => {
  const reg = await startDockerRegistry(t);
  const image = await pushTestImage(reg, 'library/ranged', 'v1', { seed: 'blobs/ranged', layerSize: MiB });
  const layer = largest(image);
  // The expected bytes, straight from the upstream (before Wharf asks, so the counts below are Wharf's).
  const direct = await req(`${reg.url}/v2/library/ranged/blobs/${layer.digest}`);
  t.equal(sha(direct.body), layer.digest);
  const baseline = await blobGets(reg, layer.digest);
  const wharf = await hubWharf(t, reg);

  const start = 1000;
  const end = 99_999;
  const ranged = await req(`${wharf.url}/v2/ranged/blobs/${layer.digest}`, { headers: { range: `bytes=${start}-${end}` } });
  t.equal(ranged.status, 206, ranged.text.slice(0, 200));
  t.equal(ranged.headers.get('content-range'), `bytes ${start}-${end}/${layer.size}`);
  t.equal(ranged.headers.get('content-length'), String(end - start + 1));
  t.equal(ranged.headers.get('docker-content-digest'), layer.digest);
  t.ok(ranged.body.equals(direct.body.subarray(start, end + 1)), 'the requested bytes');

  t.equal(await waitForGets(reg, layer.digest, baseline + 1), baseline + 1, 'one upstream GET, and it completed');
  await reg.stop();
  // Cached: served with the upstream down.
  const full = await req(`${wharf.url}/v2/ranged/blobs/${layer.digest}`);
  t.equal(full.status, 200, `after the Range request the blob is cached: ${full.status === 200 ? '' : full.text.slice(0, 300)}`);
  t.equal(sha(full.body), layer.digest);
  const tail = await req(`${wharf.url}/v2/ranged/blobs/${layer.digest}`, { headers: { range: `bytes=${layer.size - 100}-` } });
  t.equal(tail.status, 206);
  t.equal(tail.headers.get('content-range'), `bytes ${layer.size - 100}-${layer.size - 1}/${layer.size}`);
  t.ok(tail.body.equals(direct.body.subarray(layer.size - 100)));
});

t.test('offline: after a pull, the manifest by tag and by digest and every blob still pull with the upstream down', async (t) => {
  const reg = await startDockerRegistry(t);
  const image = await pushTestImage(reg, 'library/offline', 'v1', { seed: 'blobs/offline' });
  const wharf = await hubWharf(t, reg, { tagTTL: '1s' });
  await pullAll(t, wharf, 'offline', 'v1', image);
  const byDigest0 = await req(`${wharf.url}/v2/offline/manifests/${image.manifestDigest}`);
  t.equal(byDigest0.status, 200);

  await reg.stop();
  await sleep(1_500); // past tagTTL

  const byTag = await req(`${wharf.url}/v2/offline/manifests/v1`);
  t.equal(byTag.status, 200, `by tag, upstream down: ${byTag.text.slice(0, 300)}`);
  t.ok(byTag.body.equals(image.manifest));
  t.match(byTag.headers.get('warning') ?? '', /^299 - ".+"$/, 'by tag: Warning 299');
  const byDigest = await req(`${wharf.url}/v2/offline/manifests/${image.manifestDigest}`);
  t.equal(byDigest.status, 200, 'by digest, upstream down');
  t.ok(byDigest.body.equals(image.manifest));
  t.equal(byDigest.headers.get('warning'), null, 'immutable content from the cache is not stale');
  for (const name of ['offline', 'docker.io/library/offline', 'library/offline']) {
    for (const blob of image.blobs) {
      const b = await req(`${wharf.url}/v2/${name}/blobs/${blob.digest}`);
      t.equal(b.status, 200, `${name} blob ${blob.digest}, upstream down: ${b.status === 200 ? '' : b.text.slice(0, 300)}`);
      t.equal(sha(b.body), blob.digest);
      const h = await req(`${wharf.url}/v2/${name}/blobs/${blob.digest}`, { method: 'HEAD' });
      t.equal(h.status, 200);
      t.equal(h.headers.get('content-length'), String(blob.size));
    }
  }
});

for (const mode of ['basic', 'token'] as const) {
  // The token server listens on another port of 127.0.0.1: named in allowedRealms to get the credentials.
  const realms = (reg: DockerRegistry) => (reg.tokenServer ? { allowedRealms: [new URL(reg.tokenServer.url).host] } : {});
  t.test(`an upstream with ${mode} auth: the pull works with the configured credentials`, async (t) => {
    const reg = await startDockerRegistry(t, { auth: mode });
    const user = reg.users[0]!;
    const image = await pushTestImage(reg, 'library/secret', 'v1', { seed: `blobs/auth/${mode}` });
    const anonymous = await req(`${reg.url}/v2/library/secret/manifests/v1`);
    t.equal(anonymous.status, 401, 'the upstream really refuses anonymous pulls');
    const wharf = await hubWharf(t, reg, { username: user.username, password: user.password, ...realms(reg) });
    await pullAll(t, wharf, 'secret', 'v1', image);
    const byDigest = await req(`${wharf.url}/v2/secret/manifests/${image.manifestDigest}`);
    t.equal(byDigest.status, 200);
    if (mode === 'token') {
      const issued = reg.tokenServer!.requests.filter((r) => r.status === 200 && r.account === user.username);
      t.ok(issued.length >= 1, 'the token server issued a token to the configured user');
      t.ok(
        issued.some((r) => r.scopes.some((s) => s.includes('repository:library/secret:pull'))),
        'for the pull scope of the remote name',
      );
    }
  });

  t.test(`an upstream with ${mode} auth and wrong credentials: 404 with an OCI error naming the upstream and the credentials`, async (t) => {
    // src/proxy/upstream-failure.ts: a 401/403 from the upstream is the upstream saying "no", not a
    // failure: MANIFEST_UNKNOWN / BLOB_UNKNOWN (404) whose message names the upstream and says it
    // needs credentials. A token service refusing the credentials is the same refusal.
    const reg = await startDockerRegistry(t, { auth: mode });
    const user = reg.users[0]!;
    const image = await pushTestImage(reg, 'library/locked', 'v1', { seed: `blobs/auth-wrong/${mode}` });
    const wharf = await hubWharf(t, reg, { username: user.username, password: `${user.password}-wrong`, ...realms(reg) });
    const m = await req(`${wharf.url}/v2/locked/manifests/v1`);
    t.equal(m.status, 404, `manifest with wrong credentials: ${m.text}`);
    const merr = ociError(t, m);
    t.equal(merr.code, 'MANIFEST_UNKNOWN', 'manifest: code MANIFEST_UNKNOWN (the upstream refused, it did not fail)');
    t.match(merr.message, new RegExp(UPSTREAM), 'names the upstream');
    t.match(merr.message, /credentials|password/, 'says it is about credentials');
    const blob = image.blobs[0]!;
    const b = await req(`${wharf.url}/v2/locked/blobs/${blob.digest}`);
    t.equal(b.status, 404, `blob with wrong credentials: ${b.text}`);
    const berr = ociError(t, b);
    t.equal(berr.code, 'BLOB_UNKNOWN', 'blob: code BLOB_UNKNOWN (the upstream refused, it did not fail)');
    t.match(berr.message, new RegExp(UPSTREAM));
    t.match(berr.message, /credentials|password/, 'says it is about credentials');
    t.notMatch(m.text + b.text, new RegExp(`${user.password}-wrong`), 'the password never appears in an error');
  });
}
