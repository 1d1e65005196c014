// Proves the upstream helpers work: the real reference registry (docker-registry) in each auth mode
// and in proxy mode, the token server, and every fault of the fault upstream, observed with fetch.
// Needs docker-registry, skopeo and openssl installed (Debian: docker-registry skopeo openssl).
import { createHash } from 'node:crypto';
import { request as httpRequest } from 'node:http';
import t from 'tap';
import { htpasswdLine, pushTestImage, startDockerRegistry } from '../helpers/docker-registry.js';
import { contentEntry, startFaultUpstream, type FaultUpstream } from '../helpers/fault-upstream.js';
import { OCI_INDEX, OCI_MANIFEST } from '../helpers/oci-layout.js';

t.setTimeout(300_000);

const sha = (b: Buffer | Uint8Array): string => 'sha256:' + createHash('sha256').update(b).digest('hex');
const basic = (creds: string): string => `Basic ${Buffer.from(creds).toString('base64')}`;
const ACCEPT = [OCI_MANIFEST, OCI_INDEX].join(', ');

/** Parses `Bearer realm="..",service="..",scope=".."`. */
function parseChallenge(h: string | null): Record<string, string> {
  const out: Record<string, string> = {};
  if (!h) return out;
  out.scheme = h.split(' ')[0]!;
  for (const m of h.matchAll(/(\w+)="([^"]*)"/g)) out[m[1]!] = m[2]!;
  return out;
}

t.test('docker-registry without auth: push, anonymous pull, access-log counting, restart', async (t) => {
  const reg = await startDockerRegistry(t);
  t.match(reg.url, /^http:\/\/127\.0\.0\.1:\d+$/);
  t.equal(reg.host, reg.url.slice('http://'.length));
  const img = await pushTestImage(reg, 'library/app', 'v1', { seed: 1 });
  t.equal(img.mediaType, OCI_MANIFEST);
  t.equal(img.blobs.length, 4, 'config + 3 layers');

  const before = await reg.countRequests({ method: 'GET', pathIncludes: '/v2/library/app/manifests/v1' });
  const res = await fetch(`${reg.url}/v2/library/app/manifests/v1`, { headers: { accept: ACCEPT } });
  const body = Buffer.from(await res.arrayBuffer());
  t.equal(res.status, 200);
  t.equal(res.headers.get('docker-content-digest'), img.manifestDigest);
  t.equal(res.headers.get('content-type'), OCI_MANIFEST);
  t.ok(body.equals(img.manifest), 'manifest bytes as built');
  t.equal(sha(body), img.manifestDigest);
  t.equal(
    await reg.countRequests({ method: 'GET', pathIncludes: '/v2/library/app/manifests/v1' }),
    before + 1,
    'countRequests sees the GET',
  );
  t.equal(await reg.countRequests({ method: 'GET', pathIncludes: /\/manifests\/v1$/, status: 200 }), before + 1);

  for (const b of img.blobs) {
    const r = await fetch(`${reg.url}/v2/library/app/blobs/${b.digest}`);
    const bytes = Buffer.from(await r.arrayBuffer());
    t.equal(r.status, 200);
    t.equal(bytes.length, b.size);
    t.equal(sha(bytes), b.digest, `blob ${b.digest}`);
  }
  t.equal(await reg.countRequests({ method: 'GET', pathIncludes: '/blobs/sha256:' }), img.blobs.length);

  // Offline and back, same port and data.
  await reg.stop();
  await t.rejects(fetch(`${reg.url}/v2/`), 'stopped registry refuses connections');
  await reg.start();
  const again = await fetch(`${reg.url}/v2/library/app/manifests/${img.manifestDigest}`, { headers: { accept: ACCEPT } });
  t.equal(again.status, 200, 'serves the same data after restart');
  t.ok(Buffer.from(await again.arrayBuffer()).equals(img.manifest));

  const idx = await pushTestImage(reg, 'library/multi', 'v1', { index: true, seed: 2 });
  t.equal(idx.mediaType, OCI_INDEX);
  t.equal(idx.children.length, 2);
  for (const c of idx.children) {
    const r = await fetch(`${reg.url}/v2/library/multi/manifests/${c.digest}`, { headers: { accept: ACCEPT } });
    t.ok(Buffer.from(await r.arrayBuffer()).equals(c.manifest), `child ${c.platform?.architecture}`);
  }
  for (const b of idx.blobs) {
    const r = await fetch(`${reg.url}/v2/library/multi/blobs/${b.digest}`, { method: 'HEAD' });
    t.equal(r.headers.get('content-length'), String(b.size), `index blob ${b.digest} present`);
  }
});

t.test('pushTestImage layerSize makes a layer of that size', async (t) => {
  const reg = await startDockerRegistry(t);
  const img = await pushTestImage(reg, 'big/one', 'v1', { layerSize: 4 * 1024 * 1024 });
  t.equal(img.blobs.length, 2, 'config + 1 layer');
  const layer = img.blobs[1]!;
  t.ok(layer.size > 4 * 1024 * 1024 && layer.size < 4 * 1024 * 1024 + 64 * 1024, `layer size ${layer.size}`);
  const r = await fetch(`${reg.url}/v2/big/one/blobs/${layer.digest}`);
  t.equal(sha(Buffer.from(await r.arrayBuffer())), layer.digest);
});

t.test('docker-registry with basic auth', async (t) => {
  t.test('htpasswdLine: cost 5, requested prefix', async (t) => {
    t.match(htpasswdLine({ username: 'u', password: 'p' }), /^u:\$2y\$05\$/);
    t.match(htpasswdLine({ username: 'u', password: 'p' }, '$2a$'), /^u:\$2a\$05\$/);
  });
  const reg = await startDockerRegistry(t, { auth: 'basic', users: [{ username: 'alice', password: 's3cret' }] });
  t.equal(reg.creds, 'alice:s3cret');
  const img = await pushTestImage(reg, 'team/app', 'v1');
  const url = `${reg.url}/v2/team/app/manifests/v1`;

  const anon = await fetch(url, { headers: { accept: ACCEPT } });
  await anon.arrayBuffer();
  t.equal(anon.status, 401, '401 without credentials');
  t.match(anon.headers.get('www-authenticate') ?? '', /^Basic realm="wharf-test-registry"/);

  const wrong = await fetch(url, { headers: { accept: ACCEPT, authorization: basic('alice:nope') } });
  await wrong.arrayBuffer();
  t.equal(wrong.status, 401, '401 with a wrong password');

  const ok = await fetch(url, { headers: { accept: ACCEPT, authorization: basic('alice:s3cret') } });
  t.equal(ok.status, 200, '200 with credentials');
  t.ok(Buffer.from(await ok.arrayBuffer()).equals(img.manifest));
  t.equal(await reg.countRequests({ method: 'GET', pathIncludes: '/v2/team/app/manifests/v1', status: 401 }), 2);
  t.equal(await reg.countRequests({ method: 'GET', pathIncludes: '/v2/team/app/manifests/v1', status: 200 }), 1);
});

t.test('docker-registry with token auth', async (t) => {
  const reg = await startDockerRegistry(t, { auth: 'token', users: [{ username: 'bob', password: 'hunter2' }] });
  const ts = reg.tokenServer!;
  t.ok(ts, 'token server started');
  const img = await pushTestImage(reg, 'team/app', 'v1');
  t.ok(ts.count({ issuedOnly: true }) >= 1, 'skopeo got tokens for the push');

  const url = `${reg.url}/v2/team/app/manifests/v1`;
  const anon = await fetch(url, { headers: { accept: ACCEPT } });
  await anon.arrayBuffer();
  t.equal(anon.status, 401);
  const ch = parseChallenge(anon.headers.get('www-authenticate'));
  t.equal(ch.scheme, 'Bearer');
  t.equal(ch.realm, ts.realm);
  t.equal(ch.service, ts.service);
  t.equal(ch.scope, 'repository:team/app:pull');

  const n = ts.count();
  const tokenUrl = `${ch.realm}?service=${encodeURIComponent(ch.service!)}&scope=${encodeURIComponent(ch.scope!)}`;
  const bad = await fetch(tokenUrl, { headers: { authorization: basic('bob:wrong') } });
  await bad.arrayBuffer();
  t.equal(bad.status, 401, 'token server rejects wrong credentials');

  // Anonymous token: no access granted, so the registry still says 401.
  const anonTok = (await (await fetch(tokenUrl)).json()) as { token: string };
  const denied = await fetch(url, { headers: { accept: ACCEPT, authorization: `Bearer ${anonTok.token}` } });
  await denied.arrayBuffer();
  t.equal(denied.status, 401, 'an anonymous token grants nothing');

  const tokRes = await fetch(tokenUrl, { headers: { authorization: basic('bob:hunter2') } });
  t.equal(tokRes.status, 200);
  const tok = (await tokRes.json()) as { token: string; access_token: string; expires_in: number };
  t.equal(tok.token, tok.access_token);
  const claims = JSON.parse(Buffer.from(tok.token.split('.')[1]!, 'base64url').toString()) as Record<string, unknown>;
  t.same(claims.access, [{ type: 'repository', name: 'team/app', actions: ['pull'] }]);
  t.equal(claims.aud, ts.service);
  t.equal(claims.sub, 'bob');
  t.equal(ts.count(), n + 3, 'token server counted its requests');

  const ok = await fetch(url, { headers: { accept: ACCEPT, authorization: `Bearer ${tok.token}` } });
  t.equal(ok.status, 200, '200 with the token');
  t.ok(Buffer.from(await ok.arrayBuffer()).equals(img.manifest));

  // A token for another repository does not open this one.
  const other = ts.issue([{ type: 'repository', name: 'team/other', actions: ['pull'] }], { sub: 'bob' });
  const wrongScope = await fetch(url, { headers: { accept: ACCEPT, authorization: `Bearer ${other}` } });
  await wrongScope.arrayBuffer();
  t.equal(wrongScope.status, 401, 'token scoped to another repository is refused');

  t.test('anonymousPull', async (t) => {
    const reg2 = await startDockerRegistry(t, { auth: 'token', anonymousPull: true });
    await pushTestImage(reg2, 'pub/app', 'v1');
    const scope = 'repository:pub/app:pull,push';
    const r = await fetch(`${reg2.tokenServer!.realm}?service=${reg2.tokenServer!.service}&scope=${encodeURIComponent(scope)}`);
    const { token } = (await r.json()) as { token: string };
    const res = await fetch(`${reg2.url}/v2/pub/app/manifests/v1`, { headers: { accept: ACCEPT, authorization: `Bearer ${token}` } });
    await res.arrayBuffer();
    t.equal(res.status, 200, 'anonymous pull allowed');
    const claims = JSON.parse(Buffer.from(token.split('.')[1]!, 'base64url').toString()) as { access: unknown };
    t.same(claims.access, [{ type: 'repository', name: 'pub/app', actions: ['pull'] }], 'push not granted');
  });
});

// distribution 2.8's proxy sends credentials only to a token realm (proxy/proxyauth.go keys them by
// the challenge's realm URL), so an htpasswd origin cannot be proxied with credentials; anonymous and
// token-auth origins can.
for (const originAuth of ['none', 'token'] as const) {
  t.test(`docker-registry in proxy mode pulls through from a docker-registry (${originAuth} auth)`, async (t) => {
    const origin = await startDockerRegistry(t, { auth: originAuth });
    const img = await pushTestImage(origin, 'library/app', 'v1');
    const proxy = await startDockerRegistry(t, {
      proxy: {
        remoteurl: origin.url,
        ...(originAuth === 'token' ? { username: origin.users[0]!.username, password: origin.users[0]!.password } : {}),
      },
    });
    const res = await fetch(`${proxy.url}/v2/library/app/manifests/v1`, { headers: { accept: ACCEPT } });
    t.equal(res.status, 200);
    t.ok(Buffer.from(await res.arrayBuffer()).equals(img.manifest), 'manifest through the proxy');
    const layer = img.blobs[1]!;
    const b = await fetch(`${proxy.url}/v2/library/app/blobs/${layer.digest}`);
    t.equal(sha(Buffer.from(await b.arrayBuffer())), layer.digest, 'blob through the proxy');
    // 2.8's proxy streams the blob to the client and, separately, fetches it again to store it.
    const fetched = await origin.countRequests({ method: 'GET', pathIncludes: `/blobs/${layer.digest}`, status: 200 });
    t.ok(fetched >= 1 && fetched <= 2, `origin served the blob ${fetched} time(s)`);
    const again = await fetch(`${proxy.url}/v2/library/app/blobs/${layer.digest}`);
    t.equal(sha(Buffer.from(await again.arrayBuffer())), layer.digest, 'blob again, from the proxy cache');
    t.equal(
      await origin.countRequests({ method: 'GET', pathIncludes: `/blobs/${layer.digest}`, status: 200 }),
      fetched,
      'second pull served from the proxy cache',
    );
    if (originAuth === 'token') t.ok(origin.tokenServer!.count({ issuedOnly: true }) >= 2, 'proxy used the token server');
  });
}

/** A raw GET that reports what actually arrived (fetch hides short bodies behind an error). */
function rawGet(
  url: string,
  headers: Record<string, string> = {},
): Promise<{ status: number; headers: Record<string, string | string[] | undefined>; body: Buffer; error?: string; ms: number }> {
  const t0 = Date.now();
  return new Promise((resolve, reject) => {
    let finish: ((error?: string) => void) | undefined;
    const req = httpRequest(url, { headers, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      let settled = false;
      finish = (error?: string): void => {
        if (settled) return;
        settled = true;
        resolve({
          status: res.statusCode ?? 0,
          headers: res.headers,
          body: Buffer.concat(chunks),
          ms: Date.now() - t0,
          ...(error ? { error } : {}),
        });
      };
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => finish?.());
      res.on('error', (e: NodeJS.ErrnoException) => finish?.(e.code ?? e.message));
      res.on('aborted', () => finish?.('aborted'));
    });
    req.setTimeout(10_000, () => req.destroy(new Error('timeout')));
    // An error after the response began ends that response; before, it fails the request.
    req.on('error', (e: NodeJS.ErrnoException) => (finish ? finish(e.code ?? e.message) : reject(e)));
    req.end();
  });
}

t.test('fault upstream', async (t) => {
  const blob = contentEntry(Buffer.from(createHash('sha512').update('x').digest().toString('hex').repeat(200))); // 25600 bytes
  const manifestBody = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: OCI_MANIFEST, layers: [{ digest: blob.digest }] }));
  const manifest = { repo: 'library/app', tag: 'v1', mediaType: OCI_MANIFEST, ...contentEntry(manifestBody) };
  const up: FaultUpstream = await startFaultUpstream(t, { manifests: [manifest], blobs: [blob] }, { supportsRange: true });
  const blobUrl = `${up.url}/v2/library/app/blobs/${blob.digest}`;
  const len = blob.body.length;

  t.test('serves the API', async (t) => {
    const ping = await fetch(`${up.url}/v2/`);
    t.equal(ping.status, 200);
    t.same(await ping.json(), {});
    for (const ref of ['v1', manifest.digest]) {
      const m = await fetch(`${up.url}/v2/library/app/manifests/${ref}`);
      t.equal(m.status, 200);
      t.equal(m.headers.get('content-type'), OCI_MANIFEST);
      t.equal(m.headers.get('docker-content-digest'), manifest.digest);
      t.ok(Buffer.from(await m.arrayBuffer()).equals(manifestBody));
    }
    const h = await fetch(`${up.url}/v2/library/app/manifests/v1`, { method: 'HEAD' });
    t.equal(h.status, 200);
    t.equal(h.headers.get('content-length'), String(manifestBody.length));
    const b = await fetch(blobUrl);
    t.equal(b.headers.get('content-length'), String(len));
    t.equal(b.headers.get('docker-content-digest'), blob.digest);
    t.equal(sha(Buffer.from(await b.arrayBuffer())), blob.digest);
    const tags = await fetch(`${up.url}/v2/library/app/tags/list`);
    t.same(await tags.json(), { name: 'library/app', tags: ['v1'] });
    const nf = await fetch(`${up.url}/v2/library/app/manifests/nope`);
    t.equal(nf.status, 404);
    t.match(await nf.json(), { errors: [{ code: 'MANIFEST_UNKNOWN' }] });
    const nb = await fetch(`${up.url}/v2/library/app/blobs/sha256:${'0'.repeat(64)}`);
    t.equal(nb.status, 404);
    t.match(await nb.json(), { errors: [{ code: 'BLOB_UNKNOWN' }] });
    t.equal(up.count('GET', '/manifests/'), 3);
    t.equal(up.count('HEAD', '/manifests/v1'), 1);
  });

  t.test('Range gives 206 with Content-Range', async (t) => {
    const r = await fetch(blobUrl, { headers: { range: 'bytes=1000-' } });
    t.equal(r.status, 206);
    t.equal(r.headers.get('content-range'), `bytes 1000-${len - 1}/${len}`);
    t.ok(Buffer.from(await r.arrayBuffer()).equals(blob.body.subarray(1000)));
    const bad = await fetch(blobUrl, { headers: { range: `bytes=${len}-` } });
    await bad.arrayBuffer();
    t.equal(bad.status, 416);
    up.supportsRange = false;
    const ignored = await fetch(blobUrl, { headers: { range: 'bytes=1000-' } });
    t.equal(ignored.status, 200, 'Range ignored without supportsRange');
    t.equal((await ignored.arrayBuffer()).byteLength, len);
    up.supportsRange = true;
  });

  t.test('drop: fewer bytes than Content-Length, then a reset; times limits it', async (t) => {
    up.setFault({ kind: 'drop', afterBytes: 5000, times: 1 });
    const r = await rawGet(blobUrl);
    t.equal(r.status, 200);
    t.equal(r.headers['content-length'], String(len));
    t.ok(r.body.length <= 5000 && r.body.length < len, `got ${r.body.length} of ${len}`);
    t.ok(r.error, `error: ${r.error}`);
    const ok = await fetch(blobUrl);
    t.equal(sha(Buffer.from(await ok.arrayBuffer())), blob.digest, 'after `times` the fault is spent');
    up.setFault({ kind: 'drop', afterBytes: 5000 });
    await t.rejects(fetch(blobUrl).then((x) => x.arrayBuffer()), 'fetch rejects the dropped body');
    up.setFault(undefined);
  });

  t.test('truncate: fewer bytes than Content-Length, clean close', async (t) => {
    up.setFault({ kind: 'truncate', bytes: 100 });
    const r = await rawGet(blobUrl);
    t.equal(r.headers['content-length'], String(len));
    t.equal(r.body.length, 100);
    t.ok(r.error, `error: ${r.error}`);
    await t.rejects(fetch(blobUrl).then((x) => x.arrayBuffer()), 'fetch rejects the short body');
    up.setFault(undefined);
  });

  t.test('corrupt: same length, different sha256', async (t) => {
    up.setFault({ kind: 'corrupt', match: '/blobs/' });
    const r = await fetch(blobUrl);
    const body = Buffer.from(await r.arrayBuffer());
    t.equal(body.length, len);
    t.equal(r.headers.get('docker-content-digest'), blob.digest, 'header still claims the true digest');
    t.not(sha(body), blob.digest);
    t.equal(body.compare(blob.body), body[len / 2]! > blob.body[len / 2]! ? 1 : -1);
    const m = await fetch(`${up.url}/v2/library/app/manifests/v1`);
    t.ok(Buffer.from(await m.arrayBuffer()).equals(manifestBody), 'match limits it to blobs');
    up.setFault(undefined);
  });

  t.test('status: 429 with Retry-After, 503, 401, 500, times', async (t) => {
    up.setFault({ kind: 'status', status: 429, retryAfter: '2', times: 2 });
    for (let i = 0; i < 2; i++) {
      const r = await fetch(blobUrl);
      t.equal(r.status, 429);
      t.equal(r.headers.get('retry-after'), '2');
      t.match(await r.json(), { errors: [{ code: 'TOOMANYREQUESTS' }] });
    }
    const third = await fetch(blobUrl);
    await third.arrayBuffer();
    t.equal(third.status, 200, 'third request unaffected');
    for (const status of [503, 401, 500] as const) {
      up.setFault({ kind: 'status', status, match: '/manifests/' });
      const r = await fetch(`${up.url}/v2/library/app/manifests/v1`, { method: 'HEAD' });
      t.equal(r.status, status);
      const ping = await fetch(`${up.url}/v2/`);
      await ping.arrayBuffer();
      t.equal(ping.status, 200, 'match leaves /v2/ alone');
    }
    up.setFault(undefined);
  });

  t.test('stall: before headers and mid-body', async (t) => {
    up.setFault({ kind: 'stall', ms: 400 });
    let r = await rawGet(blobUrl);
    t.ok(r.ms >= 350, `headers after ${r.ms} ms`);
    t.equal(sha(r.body), blob.digest);
    up.setFault({ kind: 'stall', afterBytes: 1000, ms: 400 });
    const ac = new AbortController();
    const res = await fetch(blobUrl, { signal: ac.signal });
    const reader = res.body!.getReader();
    let got = 0;
    const t0 = Date.now();
    const timer = setTimeout(() => ac.abort(), 200);
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        got += value.length;
      }
    } catch {
      // aborted mid-stall
    }
    clearTimeout(timer);
    t.equal(got, 1000, 'only afterBytes arrive before the stall');
    t.ok(Date.now() - t0 >= 150);
    r = await rawGet(blobUrl);
    t.ok(r.ms >= 350);
    t.equal(sha(r.body), blob.digest, 'stall then the rest');
    up.setFault(undefined);
  });

  t.test('slow: chunks spaced by delayMs', async (t) => {
    up.setFault({ kind: 'slow', bytesPerChunk: 5000, delayMs: 100 });
    const r = await rawGet(blobUrl);
    t.ok(r.ms >= 450, `6 chunks took ${r.ms} ms`);
    t.equal(sha(r.body), blob.digest);
    up.setFault(undefined);
  });

  t.test('offline: open sockets destroyed, new ones refused until cleared', async (t) => {
    up.setFault({ kind: 'slow', bytesPerChunk: 1000, delayMs: 100 });
    const pending = rawGet(blobUrl);
    await new Promise((r) => setTimeout(r, 250));
    up.setFault({ kind: 'offline' });
    const cut = await pending;
    t.ok(cut.body.length < len && cut.error, `in-flight response cut after ${cut.body.length} bytes`);
    await t.rejects(fetch(`${up.url}/v2/`), 'new connections fail');
    up.setFault(undefined);
    const back = await fetch(`${up.url}/v2/`);
    t.equal(back.status, 200, 'back online');
  });
});
