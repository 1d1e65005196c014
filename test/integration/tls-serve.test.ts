// Wharf serving HTTPS itself (tls.cert / tls.key), with HTTP/2 where the client offers it: curl
// negotiates h2 (and HTTP/1.1 when it asks for it) trusting a test CA; uploads (monolithic, chunked),
// streamed blobs and manifests (from memory too) over HTTP/2 with node's client; a body that stalls on
// one stream is cut with 408 while the connection serves on; a renewed certificate is served to new
// connections while open ones keep theirs, and a broken one is logged and the previous kept.
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { copyFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { connect, type ClientHttp2Session, type OutgoingHttpHeaders } from 'node:http2';
import type { TLSSocket } from 'node:tls';
import { join } from 'node:path';
import { promisify } from 'node:util';
import t, { type Test } from 'tap';
import { startWharf, tempDir } from '../helpers/server.js';
import { makeTestCa, type ServerCert, type TestCa } from '../helpers/test-ca.js';
import { LogCapture, LEVEL } from '../helpers/log-capture.js';
import { OCI_CONFIG, OCI_LAYER, OCI_MANIFEST, digestOf } from '../helpers/http.js';

const run = promisify(execFile);

interface H2Res {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
}

/** One request on an HTTP/2 session; `body` chunks are written one by one (a streamed body). */
function h2(session: ClientHttp2Session, method: string, path: string, headers: OutgoingHttpHeaders = {}, body?: Buffer[] | ((stream: NodeJS.WritableStream) => void)): Promise<H2Res> {
  return new Promise((resolve, reject) => {
    const stream = session.request({ ':method': method, ':path': path, ...headers }, { endStream: body === undefined });
    const chunks: Buffer[] = [];
    let status = 0;
    let resHeaders: H2Res['headers'] = {};
    stream.on('response', (h) => {
      status = Number(h[':status']);
      resHeaders = h;
    });
    stream.on('data', (c: Buffer) => chunks.push(c));
    stream.on('end', () => resolve({ status, headers: resHeaders, body: Buffer.concat(chunks) }));
    stream.on('error', reject);
    if (typeof body === 'function') body(stream);
    else if (body !== undefined) {
      for (const c of body) stream.write(c);
      stream.end();
    }
  });
}

function session(t: Test, url: string, ca: TestCa): Promise<ClientHttp2Session> {
  return new Promise((resolve, reject) => {
    const s = connect(url, { ca: ca.caPem });
    t.teardown(() => s.destroy());
    s.once('connect', () => resolve(s));
    s.once('error', reject);
  });
}

const peerFingerprint = (s: ClientHttp2Session): string => (s.socket as TLSSocket).getPeerCertificate().fingerprint256;

/** The key pair at fixed paths Wharf is configured with, replaced as a deployment would (write aside, rename). */
function installPair(dir: string, pair: ServerCert): { cert: string; key: string } {
  const cert = join(dir, 'tls.crt');
  const key = join(dir, 'tls.key');
  copyFileSync(pair.key, `${key}.new`);
  copyFileSync(pair.cert, `${cert}.new`);
  renameSync(`${key}.new`, key);
  renameSync(`${cert}.new`, cert);
  return { cert, key };
}

t.test('curl negotiates HTTP/2 over TLS trusting the test CA, and HTTP/1.1 when it asks for it', async (t) => {
  const ca = makeTestCa(t);
  const pair = ca.issue('wharf');
  const wharf = await startWharf(t, { tls: { cert: pair.cert, key: pair.key } });
  t.match(wharf.url, /^https:/);
  const curl = async (...args: string[]) => (await run('curl', ['-sS', '--cacert', ca.caCert, '-o', '/dev/null', '-w', '%{http_version} %{http_code}', ...args])).stdout;
  t.equal(await curl('--http2', `${wharf.url}/v2/`), '2 200', 'h2 negotiated by ALPN');
  t.equal(await curl('--http1.1', `${wharf.url}/v2/`), '1.1 200', 'HTTP/1.1 still served');
  t.equal(await curl('--http2', wharf.url.replace('127.0.0.1', 'localhost') + '/healthz'), '2 200', 'the name localhost verifies too');
  // Without the CA, curl refuses the certificate: nothing here is trusted by accident.
  await t.rejects(run('curl', ['-sS', '-o', '/dev/null', `${wharf.url}/v2/`]), /certificate/);
});

t.test('over HTTP/2: monolithic and chunked uploads, a streamed blob, manifests (from memory too)', async (t) => {
  const ca = makeTestCa(t);
  const pair = ca.issue('wharf');
  const wharf = await startWharf(t, { tls: { cert: pair.cert, key: pair.key }, http: { bodyIdleTimeout: '300ms' } });
  const s = await session(t, wharf.url, ca);
  t.equal(s.alpnProtocol, 'h2');

  // Chunked: POST, PATCH (streamed in 64 KiB writes), PUT with the last chunk.
  const layer = randomBytes(3 * 1024 * 1024 + 17);
  const layerDigest = digestOf(layer);
  const started = await h2(s, 'POST', '/v2/local/app/blobs/uploads/');
  t.equal(started.status, 202, 'upload started');
  const location = String(started.headers.location);
  const first = layer.subarray(0, 2 * 1024 * 1024);
  const parts: Buffer[] = [];
  for (let i = 0; i < first.length; i += 65536) parts.push(first.subarray(i, i + 65536));
  const patched = await h2(s, 'PATCH', location, { 'content-type': 'application/octet-stream', 'content-length': String(first.length) }, parts);
  t.equal(patched.status, 202, 'chunk accepted');
  t.equal(patched.headers.range, `0-${first.length - 1}`);
  const rest = layer.subarray(first.length);
  const sep = String(patched.headers.location).includes('?') ? '&' : '?';
  const put = await h2(s, 'PUT', `${String(patched.headers.location)}${sep}digest=${layerDigest}`, { 'content-type': 'application/octet-stream', 'content-length': String(rest.length) }, [rest]);
  t.equal(put.status, 201, 'chunked upload committed');

  // Monolithic: POST ?digest= with the bytes.
  const config = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [] } }));
  const configDigest = digestOf(config);
  const mono = await h2(s, 'POST', `/v2/local/app/blobs/uploads/?digest=${configDigest}`, { 'content-type': 'application/octet-stream', 'content-length': String(config.length) }, [config]);
  t.equal(mono.status, 201, 'monolithic upload committed');

  // The blob streamed back.
  const blob = await h2(s, 'GET', `/v2/local/app/blobs/${layerDigest}`);
  t.equal(blob.status, 200);
  t.equal(blob.body.length, layer.length, 'every byte');
  t.equal(digestOf(blob.body), layerDigest, 'the bytes pushed');
  const ranged = await h2(s, 'GET', `/v2/local/app/blobs/${layerDigest}`, { range: 'bytes=10-19' });
  t.equal(ranged.status, 206);
  t.strictSame(ranged.body, layer.subarray(10, 20));

  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: OCI_MANIFEST,
      config: { mediaType: OCI_CONFIG, digest: configDigest, size: config.length },
      layers: [{ mediaType: OCI_LAYER, digest: layerDigest, size: layer.length }],
    }),
  );
  const pushed = await h2(s, 'PUT', '/v2/local/app/manifests/v1', { 'content-type': OCI_MANIFEST }, [manifest]);
  t.equal(pushed.status, 201, 'manifest pushed');
  // The first GET goes through the routes, the next ones are answered from memory (hot-manifests.ts).
  for (const round of [1, 2, 3]) {
    const got = await h2(s, 'GET', '/v2/local/app/manifests/v1', { accept: OCI_MANIFEST });
    t.equal(got.status, 200, `GET ${round}`);
    t.equal(got.headers['docker-content-digest'], digestOf(manifest));
    t.equal(got.headers['content-type'], OCI_MANIFEST);
    t.strictSame(got.body, manifest);
  }
  const head = await h2(s, 'HEAD', '/v2/local/app/manifests/v1', { accept: OCI_MANIFEST });
  t.equal(head.status, 200);
  t.equal(head.headers['content-length'], String(manifest.length));
  t.equal(head.body.length, 0);

  // A body that stops arriving on one stream: 408 on that stream, the connection serves on.
  const upload = await h2(s, 'POST', '/v2/local/app/blobs/uploads/');
  const stalled = await h2(s, 'PATCH', String(upload.headers.location), { 'content-type': 'application/octet-stream', 'content-length': '1000' }, (stream) => stream.write(Buffer.alloc(10)));
  t.equal(stalled.status, 408, 'stalled body: 408');
  t.match(JSON.parse(stalled.body.toString()), { errors: [{ code: 'REQUEST_TIMEOUT' }] });
  t.equal((await h2(s, 'GET', '/v2/')).status, 200, 'the same connection still serves');
  t.notOk(s.destroyed, 'session open');
});

t.test('a renewed certificate is served to new connections, open ones keep theirs; a broken one is logged and the previous kept', async (t) => {
  const ca = makeTestCa(t);
  const one = ca.issue('one');
  const two = ca.issue('two');
  const dir = tempDir('wharf-tls-files-');
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const files = installPair(dir, one);
  const logs = new LogCapture();
  const wharf = await startWharf(t, { tls: { ...files, reloadCheck: '50ms' } }, { logs });

  const a = await session(t, wharf.url, ca);
  t.equal(peerFingerprint(a), one.fingerprint256, 'the first certificate');
  t.equal((await h2(a, 'GET', '/v2/')).status, 200);

  installPair(dir, two);
  await logs.waitFor((l) => l.msg.startsWith('TLS certificate reloaded') && l.fingerprint256 === two.fingerprint256);
  const b = await session(t, wharf.url, ca);
  t.equal(peerFingerprint(b), two.fingerprint256, 'a new connection gets the new certificate');
  t.equal((await h2(b, 'GET', '/v2/')).status, 200);
  t.equal((await h2(a, 'GET', '/v2/')).status, 200, 'the open connection still serves');
  t.equal(peerFingerprint(a), one.fingerprint256, '... with its certificate');

  const mark = logs.lines.length;
  writeFileSync(join(dir, 'tls.crt.new'), 'not a certificate\n');
  renameSync(join(dir, 'tls.crt.new'), files.cert);
  const error = await logs.waitFor((l) => logs.lines.indexOf(l) >= mark && l.level === LEVEL.error);
  t.match(error.msg, /^TLS certificate not reloaded \(.*tls\.crt holds no PEM certificate.*\): still serving the previous one$/);
  const c = await session(t, wharf.url, ca);
  t.equal(peerFingerprint(c), two.fingerprint256, 'the previous certificate is kept');
  t.equal((await h2(c, 'GET', '/v2/')).status, 200);
});

t.test('over TLS a connection past http.maxConnectionsPerAddress is closed before any handshake, the others serve on', async (t) => {
  const ca = makeTestCa(t);
  const pair = ca.issue('wharf');
  const logs = new LogCapture();
  const wharf = await startWharf(t, { tls: { cert: pair.cert, key: pair.key }, http: { maxConnectionsPerAddress: 2 }, log: { level: 'warn' } }, { logs });
  const a = await session(t, wharf.url, ca);
  const b = await session(t, wharf.url, ca);
  await t.rejects(session(t, wharf.url, ca), /socket disconnected|ECONNRESET|closed/, 'the third connection is closed');
  await logs.waitFor((l) => l.level === LEVEL.warn && /too many open connections/.test(l.msg));
  t.equal((await h2(a, 'GET', '/v2/')).status, 200);
  t.equal((await h2(b, 'GET', '/v2/')).status, 200);
});
