// UpstreamClient against the real reference registry (Debian's docker-registry, distribution 2.8) in each
// auth mode: none, htpasswd Basic, and token auth with a token server.
import { createHash } from 'node:crypto';
import Keyv from 'keyv';
import t, { type Test } from 'tap';
import { UpstreamClient, type UpstreamResponse } from '../../src/upstream/upstream-client.js';
import { upstreamConfig } from '../helpers/upstream-config.js';
import { pushTestImage, startDockerRegistry, type DockerRegistry, type PushedImage } from '../helpers/docker-registry.js';

const ACCEPT = ['application/vnd.oci.image.manifest.v1+json', 'application/vnd.oci.image.index.v1+json', 'application/vnd.docker.distribution.manifest.v2+json'].join(', ');

function client(t: Test, registry: DockerRegistry, credentials?: { username: string; password: string }, allowedRealms: string[] = []): UpstreamClient {
  const cfg = upstreamConfig(registry.url, { registry: registry.host, allowedRealms, ...(credentials ?? {}) });
  const c = new UpstreamClient(cfg, { tokens: new Keyv() });
  t.teardown(() => c.close());
  return c;
}

async function bytes(res: UpstreamResponse): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of res.body) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

const sha256 = (b: Buffer) => `sha256:${createHash('sha256').update(b).digest('hex')}`;

/** Manifest by tag (GET and HEAD) and one blob, checked by digest. */
async function pullsImage(t: Test, c: UpstreamClient, repo: string, image: PushedImage): Promise<void> {
  const head = await c.request({ method: 'HEAD', path: `/v2/${repo}/manifests/v1`, repository: repo, headers: { accept: ACCEPT } });
  await bytes(head);
  t.equal(head.status, 200, 'HEAD manifest');
  t.equal(head.headers['docker-content-digest'], image.manifestDigest);

  const get = await c.request({ method: 'GET', path: `/v2/${repo}/manifests/v1`, repository: repo, headers: { accept: ACCEPT } });
  t.equal(get.status, 200, 'GET manifest');
  t.equal(sha256(await bytes(get)), image.manifestDigest);

  const blob = image.blobs[0]!;
  const b = await c.request({ method: 'GET', path: `/v2/${repo}/blobs/${blob.digest}`, repository: repo });
  t.equal(b.status, 200, 'GET blob');
  const body = await bytes(b);
  t.equal(body.length, blob.size);
  t.equal(sha256(body), blob.digest);

  const missing = await c.request({ method: 'GET', path: `/v2/${repo}/manifests/nope`, repository: repo, headers: { accept: ACCEPT } });
  t.equal(missing.status, 404);
  await bytes(missing);
}

t.test('no auth', async (t) => {
  const registry = await startDockerRegistry(t, { auth: 'none' });
  const image = await pushTestImage(registry, 'team/app', 'v1');
  const c = client(t, registry);
  t.equal(await c.ping(), true);
  await pullsImage(t, c, 'team/app', image);
  t.equal(await registry.countRequests({ status: 401 }), 0, 'never challenged');
});

t.test('htpasswd Basic auth', async (t) => {
  const registry = await startDockerRegistry(t, { auth: 'basic' });
  const image = await pushTestImage(registry, 'team/app', 'v1');
  const before = await registry.countRequests({ status: 401 });
  const c = client(t, registry, registry.users[0]);
  await pullsImage(t, c, 'team/app', image);
  t.equal((await registry.countRequests({ status: 401 })) - before, 1, 'one challenge, then Basic sent up front');

  const anonymous = client(t, registry);
  const res = await anonymous.request({ method: 'GET', path: '/v2/team/app/manifests/v1', repository: 'team/app', headers: { accept: ACCEPT } });
  t.equal(res.status, 401, 'without credentials the 401 comes back');
  await bytes(res);

  const wrong = client(t, registry, { username: 'wharf', password: 'not-it' });
  const denied = await wrong.request({ method: 'GET', path: '/v2/team/app/manifests/v1', repository: 'team/app', headers: { accept: ACCEPT } });
  t.equal(denied.status, 401, 'wrong password: the second 401 is returned');
  await bytes(denied);
});

t.test('token auth', async (t) => {
  const registry = await startDockerRegistry(t, { auth: 'token' });
  const ts = registry.tokenServer!;
  const image = await pushTestImage(registry, 'team/app', 'v1');
  const before = ts.requests.length;
  // The token server listens on another port of 127.0.0.1: only allowedRealms lets it see the password.
  const c = client(t, registry, registry.users[0], [new URL(ts.url).host]);
  await pullsImage(t, c, 'team/app', image);
  const ours = ts.requests.slice(before);
  t.equal(ours.length, 1, 'one token for the whole pull: cached');
  t.equal(ours[0]!.status, 200);
  t.equal(ours[0]!.account, 'wharf', 'an allowed realm: credentials sent');
  t.same(ours[0]!.scopes, ['repository:team/app:pull']);
  t.match(ours[0]!.granted, [{ type: 'repository', name: 'team/app', actions: ['pull'] }]);

  const anonymous = client(t, registry);
  const res = await anonymous.request({ method: 'GET', path: '/v2/team/app/manifests/v1', repository: 'team/app', headers: { accept: ACCEPT } });
  t.equal(res.status, 401, 'anonymous gets a token without access: the retried 401 comes back');
  await bytes(res);
});

t.test('token auth with anonymous pull', async (t) => {
  const registry = await startDockerRegistry(t, { auth: 'token', anonymousPull: true });
  const image = await pushTestImage(registry, 'library/alpine', 'v1');
  const c = client(t, registry);
  await pullsImage(t, c, 'library/alpine', image);
  const last = registry.tokenServer!.requests.at(-1)!;
  t.equal(last.account, undefined, 'no credentials configured, none sent');
  t.equal(last.headers.authorization, undefined);
});
