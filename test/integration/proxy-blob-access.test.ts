// Blob access bound to the repository for upstream-routed names (src/ledger/blob-ledger.ts,
// src/proxy/proxy-blobs.ts): a blob stored for one repository is served under another only after
// that repository's upstream confirms it (a HEAD with Wharf's credentials for it), then linked with
// no second download; a refusal or an unreachable upstream serves nothing and links nothing. Against
// the reference registry (docker-registry; request counts from its access log) and, for fills in
// progress, the fault-injecting upstream.
import t from 'tap';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { pushTestImage, startDockerRegistry } from '../helpers/docker-registry.js';
import { hubWharf, ociError, req, sha } from '../helpers/proxy-http.js';
import { startWharf, type TestServer } from '../helpers/server.js';
import { contentEntry, startFaultUpstream } from '../helpers/fault-upstream.js';
import { bulkBytes } from '../helpers/oci-layout.js';

t.setTimeout(300_000);

const catalog = async (w: TestServer): Promise<string[]> => (JSON.parse((await req(`${w.url}/v2/_catalog`)).text) as { repositories: string[] }).repositories;

t.test('a blob pulled for one upstream repository is not served under another without the upstream confirming', async (t) => {
  const reg = await startDockerRegistry(t);
  const image = await pushTestImage(reg, 'library/a', 'v1', { seed: 'access/refused' });
  const wharf = await hubWharf(t, reg);
  const blob = image.blobs[0]!;
  const pulled = await req(`${wharf.url}/v2/a/blobs/${blob.digest}`);
  t.equal(pulled.status, 200, 'pulled for library/a');
  t.equal(sha(pulled.body), blob.digest);

  for (const [method, headers] of [['GET', {}], ['HEAD', {}], ['GET', { range: 'bytes=0-9' }]] as const) {
    const res = await req(`${wharf.url}/v2/b/blobs/${blob.digest}`, { method, headers });
    t.equal(res.status, 404, `${method} ${JSON.stringify(headers)} under library/b: the upstream does not have it there`);
    if (method === 'GET') {
      const err = ociError(t, res);
      t.equal(err.code, 'BLOB_UNKNOWN');
      t.match(err.message, /library\/b/, 'names the repository the upstream was asked about');
    }
  }
  t.equal(await reg.countRequests({ method: 'HEAD', pathIncludes: `/v2/library/b/blobs/${blob.digest}` }), 3, 'the upstream was asked about library/b, once per request');

  // The manifest too: by digest it is served only where the upstream has it, as a manifest or as a blob.
  t.equal((await req(`${wharf.url}/v2/a/manifests/${image.manifestDigest}`)).status, 200, 'manifest pulled for library/a');
  const byDigest = await req(`${wharf.url}/v2/b/manifests/${image.manifestDigest}`);
  t.equal(byDigest.status, 404, 'manifest by digest under library/b');
  t.equal(ociError(t, byDigest).code, 'MANIFEST_UNKNOWN');
  t.equal((await req(`${wharf.url}/v2/b/manifests/${image.manifestDigest}`, { method: 'HEAD' })).status, 404, 'HEAD too');
  t.equal((await req(`${wharf.url}/v2/b/blobs/${image.manifestDigest}`)).status, 404, 'its bytes as a blob under library/b');
  t.equal(await reg.countRequests({ method: 'GET', pathIncludes: `/blobs/${blob.digest}` }), 1, 'and nothing downloaded again');
  t.strictSame(await catalog(wharf), ['library/a'], 'nothing linked, no repository left behind');
});

t.test('an upstream-confirmed blob is linked without a second download', async (t) => {
  const reg = await startDockerRegistry(t);
  const image = await pushTestImage(reg, 'library/a', 'v1', { seed: 'access/confirmed' });
  await pushTestImage(reg, 'library/c', 'v1', { seed: 'access/confirmed' });
  const wharf = await hubWharf(t, reg);
  const blob = image.blobs[0]!;
  t.equal((await req(`${wharf.url}/v2/a/blobs/${blob.digest}`)).status, 200, 'pulled for library/a');
  // The push itself asked the registry about library/c's blobs: count from here.
  const headsC = () => reg.countRequests({ method: 'HEAD', pathIncludes: `/v2/library/c/blobs/${blob.digest}` });
  const before = await headsC();

  const res = await req(`${wharf.url}/v2/c/blobs/${blob.digest}`);
  t.equal(res.status, 200, 'served under library/c once its upstream confirms');
  t.equal(sha(res.body), blob.digest, 'the right bytes');
  t.equal((await headsC()) - before, 1, 'one HEAD about library/c');
  t.equal(await reg.countRequests({ method: 'GET', pathIncludes: `/blobs/${blob.digest}` }), 1, 'no second download');
  const again = await req(`${wharf.url}/v2/c/blobs/${blob.digest}`, { headers: { range: 'bytes=1-4' } });
  t.equal(again.status, 206);
  t.ok(again.body.equals(res.body.subarray(1, 5)));
  t.equal((await headsC()) - before, 1, 'linked: not asked again');
  t.ok((await catalog(wharf)).includes('library/c'), 'library/c is now in the catalogue');
});

t.test('an unreachable upstream does not let an unlinked blob be served', async (t) => {
  const reg = await startDockerRegistry(t);
  const image = await pushTestImage(reg, 'library/a', 'v1', { seed: 'access/offline' });
  await pushTestImage(reg, 'library/d', 'v1', { seed: 'access/offline' });
  const wharf = await hubWharf(t, reg);
  const blob = image.blobs[0]!;
  t.equal((await req(`${wharf.url}/v2/a/blobs/${blob.digest}`)).status, 200);
  await reg.stop();
  const res = await req(`${wharf.url}/v2/d/blobs/${blob.digest}`);
  t.equal(res.status, 503, `unavailable, not served: ${res.text.slice(0, 200)}`);
  t.equal(ociError(t, res).code, 'UNAVAILABLE');
  t.equal((await req(`${wharf.url}/v2/d/blobs/${blob.digest}`, { method: 'HEAD' })).status, 503, 'HEAD too');
  t.equal((await req(`${wharf.url}/v2/a/blobs/${blob.digest}`)).status, 200, 'still served where it is linked');
  t.strictSame(await catalog(wharf), ['library/a'], 'nothing linked');
});

t.test('a private upstream image pulled with credentials is not served anonymously under a public upstream name', async (t) => {
  const corp = await startDockerRegistry(t, { auth: 'basic' });
  const hub = await startDockerRegistry(t);
  const user = corp.users[0]!;
  const image = await pushTestImage(corp, 'someorg/tool', 'v1', { seed: 'access/private' });
  const wharf = await startWharf(t, {
    local: { namespaces: ['local'] },
    upstreams: [
      { name: 'corp', url: corp.url, registry: 'corp.test', prefix: 'corp', username: user.username, password: user.password },
      { name: 'hub', url: hub.url, registry: 'docker.io', default: true },
    ],
  });
  const blob = image.blobs[0]!;
  t.equal((await req(`${wharf.url}/v2/corp/someorg/tool/blobs/${blob.digest}`)).status, 200, 'pulled through the private upstream');
  const res = await req(`${wharf.url}/v2/library/whatever/blobs/${blob.digest}`);
  t.equal(res.status, 404, 'not served under a Docker Hub name');
  t.equal(ociError(t, res).code, 'BLOB_UNKNOWN');
  t.equal(await hub.countRequests({ method: 'HEAD', pathIncludes: `/v2/library/whatever/blobs/${blob.digest}` }), 1, 'the public upstream was asked');
  t.equal(await hub.countRequests({ method: 'GET', pathIncludes: '/blobs/' }), 0, 'and nothing fetched from it');

  // A private local push: not reachable through any upstream name either.
  const secret = Buffer.from('a private local layer');
  const digest = sha(secret);
  const pushed = await req(`${wharf.url}/v2/local/secret/blobs/uploads/?digest=${digest}`, { method: 'POST', body: secret, headers: { 'content-type': 'application/octet-stream' } });
  t.equal(pushed.status, 201);
  t.equal((await req(`${wharf.url}/v2/library/whatever/blobs/${digest}`)).status, 404, 'a local blob under a Docker Hub name');
  t.equal((await req(`${wharf.url}/v2/corp/someorg/tool/blobs/${digest}`)).status, 404, 'a local blob under the private upstream name');
  t.strictSame((await catalog(wharf)).sort(), ['corp.test/someorg/tool', 'local/secret'], 'no repository left behind by the refusals');
});

t.test('a blob GET on an unknown upstream name leaves no repository in the catalogue', async (t) => {
  const reg = await startDockerRegistry(t);
  const image = await pushTestImage(reg, 'library/a', 'v1', { seed: 'access/unknown-name' });
  const wharf = await hubWharf(t, reg);
  const stored = image.blobs[0]!.digest;
  t.equal((await req(`${wharf.url}/v2/a/blobs/${stored}`)).status, 200, 'stored for library/a');
  const digest = sha('made up');
  t.equal((await req(`${wharf.url}/v2/nosuch/repo/blobs/${stored}`)).status, 404, 'a stored digest under a made-up name');
  t.equal((await req(`${wharf.url}/v2/nosuch/repo/blobs/${digest}`)).status, 404);
  t.equal((await req(`${wharf.url}/v2/nosuch/repo/blobs/${digest}`, { method: 'HEAD' })).status, 404);
  t.equal((await req(`${wharf.url}/v2/nosuch/repo/manifests/latest`)).status, 404);
  t.equal((await req(`${wharf.url}/v2/nosuch/repo/manifests/${digest}`)).status, 404);
  t.equal((await req(`${wharf.url}/v2/nosuch/repo/tags/list`)).status, 404);
  // Pushes to an upstream-routed name are refused, and leave nothing either.
  t.equal((await req(`${wharf.url}/v2/nosuch/push/blobs/uploads/?digest=${digest}`, { method: 'POST', body: 'made up' })).status, 403);
  t.equal((await req(`${wharf.url}/v2/nosuch/push/blobs/uploads/?mount=${stored}&from=library/a`, { method: 'POST' })).status, 403);
  t.equal((await req(`${wharf.url}/v2/nosuch/push/manifests/v1`, { method: 'PUT', body: '{}', headers: { 'content-type': 'application/vnd.oci.image.manifest.v1+json' } })).status, 403);
  t.strictSame(await catalog(wharf), ['library/a'], 'only the repository something was pulled for');
});

t.test('a client of another repository follows a running fill only once its own upstream confirms', async (t) => {
  const layer = contentEntry(bulkBytes('access/fill', 512 * 1024));
  const up = await startFaultUpstream(t, { manifests: [], blobs: [layer] });
  const w = await startWharf(t, {
    local: { namespaces: ['local'] },
    upstreams: [{ name: 'faulty', url: up.url, registry: 'faults.test', default: true, timeouts: { connect: '2s', headers: '2s', bodyIdle: '5s' } }],
  });
  up.setFault({ kind: 'slow', bytesPerChunk: 16 * 1024, delayMs: 20, match: '/team/app/blobs/' });
  const first = await fetch(`${w.url}/v2/team/app/blobs/${layer.digest}`);
  const reader = first.body!.getReader();
  const chunks: Buffer[] = [Buffer.from((await reader.read()).value ?? [])];
  const rest = (async () => {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) return Buffer.concat(chunks);
      chunks.push(Buffer.from(value));
    }
  })();
  const blobFile = join(w.dataDir, 'blobs', 'sha256', layer.digest.slice(7, 9), layer.digest.slice(7));
  t.notOk(existsSync(blobFile), 'the fill is running');

  // The upstream refuses team/denied: its client gets nothing from the fill.
  up.setFault({ kind: 'status', status: 401, match: '/team/denied/' });
  const denied = await req(`${w.url}/v2/team/denied/blobs/${layer.digest}`);
  t.equal(denied.status, 404, 'refused by its upstream');
  t.equal(ociError(t, denied).code, 'BLOB_UNKNOWN');
  t.equal((await req(`${w.url}/v2/team/denied/blobs/${layer.digest}`, { method: 'HEAD' })).status, 404, 'HEAD refused too');
  up.setFault(undefined);

  // team/other is confirmed by a HEAD and follows the same fill.
  const other = await req(`${w.url}/v2/team/other/blobs/${layer.digest}`);
  const firstBytes = await rest;
  t.equal(other.status, 200);
  t.equal(sha(other.body), layer.digest, 'the follower gets the right bytes');
  t.equal(sha(firstBytes), layer.digest, 'the first client too');
  t.equal(up.count('HEAD', `/team/other/blobs/${layer.digest}`), 1, 'team/other was confirmed with one HEAD');
  t.equal(up.count('GET', `/blobs/${layer.digest}`), 1, 'one upstream GET in all');

  // After the commit team/other is linked (no more HEADs) and team/denied is not.
  const deadline = Date.now() + 5000;
  while (!(await catalog(w)).includes('team/other') && Date.now() < deadline) await sleep(20);
  t.ok((await catalog(w)).includes('team/other'), 'team/other linked once the fill committed');
  t.equal((await req(`${w.url}/v2/team/other/blobs/${layer.digest}`)).status, 200);
  t.equal(up.count('HEAD', `/team/other/blobs/${layer.digest}`), 1, 'served as linked: not asked again');
  t.strictSame(await catalog(w), ['team/app', 'team/other'], 'team/denied was not linked');
});
