// Upstreams behind TLS with a private CA, and upstream traffic through a forward proxy: the reference
// registry (docker-registry) serving HTTPS with a certificate of a test CA, reached through Wharf with
// upstreams[].tls.ca, refused without it (a message that says what to set), reached with
// tls.insecureSkipVerify; HTTPS_PROXY sends the traffic through a CONNECT proxy written here (which
// counts the tunnels it opens), NO_PROXY bypasses it.
import { createServer, connect, type Socket } from 'node:net';
import type { AddressInfo } from 'node:net';
import t, { type Test } from 'tap';
import { loadConfig } from '../../src/config/load.js';
import { ConfigError } from '../../src/config/load.js';
import { pushTestImage, startDockerRegistry, type DockerRegistry, type PushedImage } from '../helpers/docker-registry.js';
import { startWharf, tempDir } from '../helpers/server.js';
import { makeTestCa } from '../helpers/test-ca.js';
import { OCI_MANIFEST, DOCKER_MANIFEST, digestOf } from '../helpers/http.js';
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

const ACCEPT = [OCI_MANIFEST, DOCKER_MANIFEST].join(', ');

interface ConnectProxy {
  url: string;
  /** host:port of every CONNECT it tunnelled. */
  connects: string[];
}

/** An HTTP CONNECT proxy on 127.0.0.1:0 (node:net), counting the tunnels it opens. */
async function startConnectProxy(t: Test): Promise<ConnectProxy> {
  const connects: string[] = [];
  const sockets = new Set<Socket>();
  const server = createServer((client) => {
    sockets.add(client);
    client.once('close', () => sockets.delete(client));
    client.on('error', () => undefined);
    let head = Buffer.alloc(0);
    const onData = (chunk: Buffer) => {
      head = Buffer.concat([head, chunk]);
      const end = head.indexOf('\r\n\r\n');
      if (end < 0) return;
      client.off('data', onData);
      client.pause();
      const m = /^CONNECT ([^\s:]+|\[[^\]]+\]):(\d+) HTTP\/1\.[01]\r\n/.exec(head.toString('latin1'));
      if (!m) {
        client.end('HTTP/1.1 405 Method Not Allowed\r\nconnection: close\r\n\r\n');
        return;
      }
      connects.push(`${m[1]}:${m[2]}`);
      const target = connect(Number(m[2]), m[1]!.replace(/^\[|\]$/g, ''));
      sockets.add(target);
      target.once('close', () => sockets.delete(target));
      target.on('error', () => client.destroy());
      client.once('close', () => target.destroy());
      target.once('connect', () => {
        client.write('HTTP/1.1 200 Connection Established\r\n\r\n');
        const rest = head.subarray(end + 4);
        if (rest.length > 0) target.write(rest);
        client.pipe(target);
        target.pipe(client);
        client.resume();
      });
    };
    client.on('data', onData);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(
    () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  );
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, connects };
}

interface Upstream {
  registry: DockerRegistry;
  image: PushedImage;
  caCert: string;
}

/** docker-registry on HTTPS with a certificate of a fresh test CA, holding private/app:v1. */
async function tlsUpstream(t: Test): Promise<Upstream> {
  const ca = makeTestCa(t);
  const registry = await startDockerRegistry(t, { tls: ca.issue('registry') });
  const image = await pushTestImage(registry, 'private/app', 'v1');
  return { registry, image, caCert: ca.caCert };
}

const upstreamEntry = (u: Upstream, tls: Record<string, unknown>) => ({ name: 'private', url: u.registry.url, registry: 'registry.test', tls });

async function pullManifest(wharfUrl: string): Promise<{ status: number; body: Buffer; json: { errors?: Array<{ code: string; message: string }> } | undefined }> {
  const res = await fetch(`${wharfUrl}/v2/registry.test/private/app/manifests/v1`, { headers: { accept: ACCEPT } });
  const body = Buffer.from(await res.arrayBuffer());
  let json;
  try {
    json = JSON.parse(body.toString()) as { errors?: Array<{ code: string; message: string }> };
  } catch {
    json = undefined;
  }
  return { status: res.status, body, json };
}

async function pullsImage(t: Test, wharfUrl: string, image: PushedImage): Promise<void> {
  const m = await pullManifest(wharfUrl);
  t.equal(m.status, 200, 'manifest pulled through');
  t.equal(digestOf(m.body), image.manifestDigest);
  const blob = image.blobs.at(-1)!;
  const res = await fetch(`${wharfUrl}/v2/registry.test/private/app/blobs/${blob.digest}`);
  const bytes = Buffer.from(await res.arrayBuffer());
  t.equal(res.status, 200, 'blob pulled through');
  t.equal(digestOf(bytes), blob.digest);
}

t.test('an upstream on a private CA: reached with tls.ca, refused without it, reached with insecureSkipVerify', async (t) => {
  const u = await tlsUpstream(t);

  // The loader reads the CA file (caPem), as serve does.
  const config = loadConfig({ overrides: { upstreams: [upstreamEntry(u, { ca: u.caCert })] } });
  t.match(config.upstreams[0]!.tls.caPem, /BEGIN CERTIFICATE/);
  const trusting = await startWharf(t, { upstreams: config.upstreams });
  await pullsImage(t, trusting.url, u.image);

  const plain = await startWharf(t, { upstreams: [upstreamEntry(u, {})] });
  const refused = await pullManifest(plain.url);
  t.equal(refused.status, 503, 'untrusted upstream: 503');
  t.equal(refused.json?.errors?.[0]?.code, 'UNAVAILABLE');
  t.match(refused.json?.errors?.[0]?.message, /not trusted \((UNABLE_TO_VERIFY_LEAF_SIGNATURE|SELF_SIGNED_CERT_IN_CHAIN|UNABLE_TO_GET_ISSUER_CERT_LOCALLY)\).*tls\.ca/, 'the message names the setting');

  const skipping = await startWharf(t, { upstreams: [upstreamEntry(u, { insecureSkipVerify: true })] });
  await pullsImage(t, skipping.url, u.image);
});

t.test('upstreams[].tls is checked when the configuration loads', async (t) => {
  const dir = tempDir();
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const notPem = join(dir, 'not-a-cert.pem');
  writeFileSync(notPem, 'hello\n');
  const violations = (upstream: Record<string, unknown>): readonly string[] => {
    try {
      loadConfig({ overrides: { upstreams: [{ name: 'p', registry: 'p.test', ...upstream }] } });
      return [];
    } catch (err) {
      if (err instanceof ConfigError) return err.violations;
      throw err;
    }
  };
  t.match(violations({ url: 'https://p.test', tls: { ca: join(dir, 'missing.pem') } }), [/^upstreams\.0\.tls\.ca: cannot read .*missing\.pem: ENOENT/]);
  t.match(violations({ url: 'https://p.test', tls: { ca: notPem } }), [/^upstreams\.0\.tls\.ca: .*not-a-cert\.pem holds no PEM certificate/]);
  t.match(violations({ url: 'http://p.test', tls: { insecureSkipVerify: true } }), [/^upstreams\.0\.tls: the url http:\/\/p\.test is plain http/]);
  t.match(violations({ url: 'https://p.test', tls: { insecureSkipVerify: 'yes' } }), [/^upstreams\.0\.tls\.insecureSkipVerify: expected true or false/]);
  t.match(configErrors({ HTTPS_PROXY: 'proxy.internal:3128' }), [/^HTTPS_PROXY: "proxy\.internal:3128" is not a proxy URL/]);
  t.strictSame(loadConfig({ env: { https_proxy: 'http://a:1', HTTPS_PROXY: 'http://b:2', NO_PROXY: 'x.test' } }).upstreamProxy, { httpsProxy: 'http://a:1', noProxy: 'x.test' }, 'lower case first');
  t.equal(loadConfig({ env: { NO_PROXY: 'x.test' } }).upstreamProxy, undefined, 'NO_PROXY alone: no proxy');
});

function configErrors(env: NodeJS.ProcessEnv): readonly string[] {
  try {
    loadConfig({ env });
    return [];
  } catch (err) {
    if (err instanceof ConfigError) return err.violations;
    throw err;
  }
}

t.test('HTTPS_PROXY carries upstream traffic through a CONNECT tunnel; NO_PROXY bypasses it', async (t) => {
  const u = await tlsUpstream(t);
  const proxy = await startConnectProxy(t);
  const upstreams = [upstreamEntry(u, { ca: u.caCert })];

  const proxied = loadConfig({ env: { HTTPS_PROXY: proxy.url }, overrides: { upstreams } });
  t.strictSame(proxied.upstreamProxy, { httpsProxy: proxy.url });
  const viaProxy = await startWharf(t, { upstreams: proxied.upstreams, upstreamProxy: proxied.upstreamProxy });
  await pullsImage(t, viaProxy.url, u.image);
  t.ok(proxy.connects.length >= 1, `tunnels opened: ${proxy.connects.length}`);
  t.ok(proxy.connects.every((c) => c === u.registry.host), `each to the upstream (${u.registry.host})`);
  const pulls = await u.registry.countRequests({ method: 'GET', pathIncludes: '/manifests/v1' });
  t.ok(pulls >= 1, 'the upstream answered through the tunnel');

  const before = proxy.connects.length;
  const bypassed = loadConfig({ env: { HTTPS_PROXY: proxy.url, NO_PROXY: 'localhost,127.0.0.1' }, overrides: { upstreams } });
  const direct = await startWharf(t, { upstreams: bypassed.upstreams, upstreamProxy: bypassed.upstreamProxy });
  await pullsImage(t, direct.url, u.image);
  t.equal(proxy.connects.length, before, 'NO_PROXY: no tunnel opened');
});
