// Access control over HTTP: the 401 challenge, Basic on /v2, the Docker token flow (GET and POST
// /auth/token), policies, the catalogue filter, cross-repository mounts, service tokens through
// the management API, hostile tokens and headers, and the failed-login limit.
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { generateKeyPairSync } from 'node:crypto';
import bcrypt from 'bcryptjs';
import t from 'tap';
import type { FastifyInstance } from 'fastify';
import { startWharf, tempDir } from '../helpers/server.js';
import { assertError, digestOf, inject, raw, type Res } from '../helpers/http.js';
import { loadOrCreateSigningKey, signJwt, type SigningKey } from '../../src/auth/jwt.js';

const hash = (pw: string) => bcrypt.hashSync(pw, 4);
const basic = (user: string, pw: string) => `Basic ${Buffer.from(`${user}:${pw}`).toString('base64')}`;
const bearer = (token: string) => `Bearer ${token}`;
const claimsOf = (jwt: string) => JSON.parse(Buffer.from(jwt.split('.')[1] as string, 'base64url').toString()) as Record<string, unknown>;

function authConfig(t: { teardown(fn: () => unknown): void }, extra: Record<string, unknown> = {}): Record<string, unknown> {
  const dir = tempDir('wharf-auth-');
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const htpasswd = join(dir, 'htpasswd');
  writeFileSync(htpasswd, `carol:${hash('carol-pw')}\n`);
  return {
    local: { namespaces: ['team', 'local', 'other'] },
    auth: {
      htpasswd,
      users: [
        { name: 'alice', password: hash('alice-pw'), groups: ['admin'] },
        { name: 'bob', password: hash('bob-pw'), groups: ['team'] },
      ],
      groups: { readers: ['carol'] },
      defaultPolicies: false,
      policies: [
        { repositories: ['team/**'], subjects: ['group:team'], actions: ['*'] },
        { repositories: ['team/**', 'other/*'], subjects: ['group:readers'], actions: ['pull'] },
        { repositories: ['other/public'], subjects: ['anonymous', 'authenticated'], actions: ['pull'] },
        { repositories: ['**'], subjects: ['alice'], actions: ['*'] },
      ],
      failedLogins: { perUser: 3, perAddress: 100, window: '1m' },
      ...extra,
    },
  };
}

async function pushImage(app: FastifyInstance, repo: string, auth: string, tag = 'v1'): Promise<{ manifest: string; digest: string; layer: string }> {
  const headers = { authorization: auth };
  const layer = `layer of ${repo}`;
  const config = '{"architecture":"amd64","os":"linux"}';
  for (const blob of [layer, config]) {
    const res = await inject(app, 'POST', `/v2/${repo}/blobs/uploads/?digest=${digestOf(blob)}`, {
      headers: { ...headers, 'content-type': 'application/octet-stream' },
      body: blob,
    });
    if (res.status !== 201) throw new Error(`push blob to ${repo}: ${res.status} ${res.text}`);
  }
  const manifest = JSON.stringify({
    schemaVersion: 2,
    mediaType: 'application/vnd.oci.image.manifest.v1+json',
    config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: digestOf(config), size: config.length },
    layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: digestOf(layer), size: layer.length }],
  });
  const res = await inject(app, 'PUT', `/v2/${repo}/manifests/${tag}`, {
    headers: { ...headers, 'content-type': 'application/vnd.oci.image.manifest.v1+json' },
    body: manifest,
  });
  if (res.status !== 201) throw new Error(`push manifest to ${repo}: ${res.status} ${res.text}`);
  return { manifest, digest: digestOf(manifest), layer: digestOf(layer) };
}

async function token(app: FastifyInstance, query: string, auth?: string): Promise<Res> {
  return inject(app, 'GET', `/auth/token?${query}`, { headers: auth ? { authorization: auth } : {} });
}

function challengeOf(res: Res): Record<string, string> {
  const value = res.header('www-authenticate') ?? '';
  const out: Record<string, string> = {};
  if (!value.startsWith('Bearer ')) return out;
  for (const m of value.slice(7).matchAll(/(\w+)="([^"]*)"/g)) out[m[1] as string] = m[2] as string;
  return out;
}

t.test('with auth on, anonymous requests get the token challenge', async (t) => {
  const s = await startWharf(t, authConfig(t));
  const ping = await raw(s.url, 'GET', '/v2/');
  assertError(t, ping, 401, 'UNAUTHORIZED');
  const c = challengeOf(ping);
  t.equal(c['realm'], `${s.url}/auth/token`, 'realm is this server');
  t.equal(c['service'], 'wharf');
  t.notOk(c['scope'], 'the ping has no scope');

  const pull = await raw(s.url, 'GET', '/v2/team/app/manifests/v1');
  assertError(t, pull, 401, 'UNAUTHORIZED');
  t.equal(challengeOf(pull)['scope'], 'repository:team/app:pull');
  const push = await raw(s.url, 'POST', '/v2/team/app/blobs/uploads/');
  assertError(t, push, 401, 'UNAUTHORIZED');
  t.equal(challengeOf(push)['scope'], 'repository:team/app:pull,push');

  const cat = await raw(s.url, 'GET', '/v2/_catalog');
  assertError(t, cat, 401, 'UNAUTHORIZED');
  t.equal(challengeOf(cat)['scope'], 'registry:catalog:*');

  // publicUrl replaces the Host-derived realm.
  const p = await startWharf(t, { ...authConfig(t), publicUrl: 'https://registry.example.com/' });
  t.equal(challengeOf(await raw(p.url, 'GET', '/v2/'))['realm'], 'https://registry.example.com/auth/token');
});

t.test('Basic credentials on /v2 under the policies: allowed, 401 for bad ones, 403 when not granted', async (t) => {
  const s = await startWharf(t, authConfig(t));
  const bob = basic('bob', 'bob-pw');
  t.equal((await inject(s.app, 'GET', '/v2/', { headers: { authorization: bob } })).status, 200, 'a signed-in ping is 200');
  const img = await pushImage(s.app, 'team/app', bob);
  t.equal((await inject(s.app, 'GET', `/v2/team/app/manifests/v1`, { headers: { authorization: bob } })).status, 200, 'bob pulls');

  assertError(t, await inject(s.app, 'GET', '/v2/team/app/manifests/v1', { headers: { authorization: basic('bob', 'wrong') } }), 401, 'UNAUTHORIZED');
  assertError(t, await inject(s.app, 'GET', '/v2/team/app/manifests/v1', { headers: { authorization: basic('nobody', 'x') } }), 401, 'UNAUTHORIZED');

  // carol (htpasswd, group readers through auth.groups) may pull team/** but not push.
  const carol = basic('carol', 'carol-pw');
  t.equal((await inject(s.app, 'GET', '/v2/team/app/manifests/v1', { headers: { authorization: carol } })).status, 200, 'carol pulls');
  const denied = await inject(s.app, 'POST', '/v2/team/app/blobs/uploads/', { headers: { authorization: carol } });
  assertError(t, denied, 403, 'DENIED');
  t.match(denied.text, /user carol may not push repository team\/app/);
  assertError(t, await inject(s.app, 'DELETE', `/v2/team/app/manifests/${img.digest}`, { headers: { authorization: carol } }), 403, 'DENIED');
  // bob has nothing on local/*.
  assertError(t, await inject(s.app, 'GET', '/v2/local/x/tags/list', { headers: { authorization: bob } }), 403, 'DENIED');
  // Upload status is a push.
  const session = await inject(s.app, 'POST', '/v2/team/app/blobs/uploads/', { headers: { authorization: bob } });
  t.equal(session.status, 202);
  const location = session.header('location') as string;
  assertError(t, await inject(s.app, 'GET', location, { headers: { authorization: carol } }), 403, 'DENIED', 'upload status needs push');
  // Anonymous pull where a rule names anonymous.
  await pushImage(s.app, 'other/public', basic('alice', 'alice-pw'));
  t.equal((await raw(s.url, 'GET', '/v2/other/public/manifests/v1')).status, 200, 'anonymous pull allowed by a rule');
  assertError(t, await raw(s.url, 'DELETE', '/v2/other/public/manifests/v1'), 401, 'UNAUTHORIZED', 'anonymous delete');
});

t.test('token flow: GET /auth/token grants requested ∩ allowed; the token works for exactly that', async (t) => {
  const s = await startWharf(t, authConfig(t));
  const bob = basic('bob', 'bob-pw');
  const res = await token(s.app, 'service=wharf&scope=repository:team/app:pull,push&scope=repository:local/x:pull repository:team/b:delete', bob);
  t.equal(res.status, 200, res.text);
  t.equal(res.header('cache-control'), 'no-store');
  const body = res.json() as Record<string, unknown>;
  t.type(body['token'], 'string');
  t.equal(body['access_token'], body['token']);
  t.equal(body['expires_in'], 300);
  t.match(body['issued_at'], /^\d{4}-\d\d-\d\dT/);
  t.notOk(body['refresh_token'], 'no refresh token unless asked');
  const claims = claimsOf(body['token'] as string);
  t.equal(claims['iss'], 'wharf');
  t.equal(claims['aud'], 'wharf');
  t.equal(claims['sub'], 'bob');
  t.strictSame(claims['access'], [
    { type: 'repository', name: 'team/app', actions: ['pull', 'push'] },
    { type: 'repository', name: 'team/b', actions: ['delete'] },
  ], 'local/x (not granted) is left out, not an error');
  const header = JSON.parse(Buffer.from((body['token'] as string).split('.')[0] as string, 'base64url').toString()) as Record<string, unknown>;
  t.equal(header['alg'], 'ES256');

  const jwt = bearer(body['token'] as string);
  await pushImage(s.app, 'team/app', jwt);
  t.equal((await inject(s.app, 'GET', '/v2/team/app/manifests/v1', { headers: { authorization: jwt } })).status, 200);
  // The same token on another repository: bob could get a token for it, so 401 insufficient_scope.
  const other = await inject(s.app, 'GET', '/v2/team/other/manifests/v1', { headers: { authorization: jwt } });
  assertError(t, other, 401, 'UNAUTHORIZED');
  t.equal(challengeOf(other)['error'], 'insufficient_scope');
  t.equal(challengeOf(other)['scope'], 'repository:team/other:pull');
  // On a repository bob may never use: 403.
  assertError(t, await inject(s.app, 'GET', '/v2/local/x/manifests/v1', { headers: { authorization: jwt } }), 403, 'DENIED');

  // A pull-only token used to push.
  const pullOnly = (await token(s.app, 'service=wharf&scope=repository:team/app:pull', bob)).json() as { token: string };
  const pushWithPull = await inject(s.app, 'POST', '/v2/team/app/blobs/uploads/', { headers: { authorization: bearer(pullOnly.token) } });
  assertError(t, pushWithPull, 401, 'UNAUTHORIZED');
  t.equal(challengeOf(pushWithPull)['scope'], 'repository:team/app:pull,push');
  // carol's token never carries push, and her push with it is 403.
  const carolTok = (await token(s.app, 'service=wharf&scope=repository:team/app:pull,push', basic('carol', 'carol-pw'))).json() as { token: string };
  t.strictSame(claimsOf(carolTok.token)['access'], [{ type: 'repository', name: 'team/app', actions: ['pull'] }]);
  assertError(t, await inject(s.app, 'POST', '/v2/team/app/blobs/uploads/', { headers: { authorization: bearer(carolTok.token) } }), 403, 'DENIED');

  // Anonymous token: only what anonymous may do.
  const anon = (await token(s.app, 'service=wharf&scope=repository:other/public:pull,push&scope=repository:team/app:pull')).json() as { token: string };
  t.strictSame(claimsOf(anon.token)['access'], [{ type: 'repository', name: 'other/public', actions: ['pull'] }]);
  // Wrong credentials at the token endpoint: 401; another service: 400.
  assertError(t, await token(s.app, 'service=wharf&scope=repository:team/app:pull', basic('bob', 'nope')), 401, 'UNAUTHORIZED');
  assertError(t, await token(s.app, 'service=elsewhere&scope=repository:team/app:pull', bob), 400, 'INVALID_REQUEST');
});

t.test('offline tokens and the OAuth2 POST form (grant_type=password and refresh_token)', async (t) => {
  const s = await startWharf(t, authConfig(t));
  const bob = basic('bob', 'bob-pw');
  const first = (await token(s.app, 'service=wharf&offline_token=true&client_id=docker&scope=repository:team/app:pull', bob)).json() as Record<string, string>;
  t.type(first['refresh_token'], 'string', 'offline_token=true returns a refresh token');
  t.equal(claimsOf(first['refresh_token'] as string)['use'], 'refresh');
  // A refresh token is not an access token.
  const misuse = await inject(s.app, 'GET', '/v2/team/app/tags/list', { headers: { authorization: bearer(first['refresh_token'] as string) } });
  assertError(t, misuse, 401, 'UNAUTHORIZED');

  const form = (fields: Record<string, string>) => ({
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams(fields).toString(),
  });
  const refreshed = await inject(
    s.app,
    'POST',
    '/auth/token',
    form({ grant_type: 'refresh_token', refresh_token: first['refresh_token'] as string, service: 'wharf', scope: 'repository:team/app:pull,push', client_id: 'docker' }),
  );
  t.equal(refreshed.status, 200, refreshed.text);
  const r = refreshed.json() as Record<string, string>;
  t.strictSame(claimsOf(r['access_token'] as string)['access'], [{ type: 'repository', name: 'team/app', actions: ['pull', 'push'] }]);
  t.equal(r['scope'], 'repository:team/app:pull,push');

  const pw = await inject(s.app, 'POST', '/auth/token', form({ grant_type: 'password', username: 'bob', password: 'bob-pw', service: 'wharf', access_type: 'offline', client_id: 'docker', scope: '' }));
  t.equal(pw.status, 200, pw.text);
  t.type((pw.json() as Record<string, unknown>)['refresh_token'], 'string', 'access_type=offline returns a refresh token');
  assertError(t, await inject(s.app, 'POST', '/auth/token', form({ grant_type: 'password', username: 'bob', password: 'bad', service: 'wharf' })), 401, 'UNAUTHORIZED');
  assertError(t, await inject(s.app, 'POST', '/auth/token', form({ grant_type: 'client_credentials' })), 400, 'INVALID_REQUEST');
  assertError(t, await inject(s.app, 'POST', '/auth/token', form({ grant_type: 'refresh_token', refresh_token: 'garbage' })), 401, 'UNAUTHORIZED');
  // An access token is not a refresh token.
  assertError(t, await inject(s.app, 'POST', '/auth/token', form({ grant_type: 'refresh_token', refresh_token: r['access_token'] as string })), 401, 'UNAUTHORIZED');
});

t.test('hostile tokens are refused with invalid_token, never a 5xx', async (t) => {
  const s = await startWharf(t, authConfig(t));
  const bob = basic('bob', 'bob-pw');
  await pushImage(s.app, 'team/app', bob);
  const good = ((await token(s.app, 'service=wharf&scope=repository:team/app:pull', bob)).json() as { token: string }).token;
  t.equal((await inject(s.app, 'GET', '/v2/team/app/manifests/v1', { headers: { authorization: bearer(good) } })).status, 200, 'the real one works');

  // The server's own key, read from where it generated it on first start.
  const ours = await loadOrCreateSigningKey(join(s.dataDir, 'auth', 'token-key.pem'), 'ES256');
  const pair = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const stranger: SigningKey = { alg: 'ES256', kid: 'k', privateKey: pair.privateKey, publicKey: pair.publicKey };
  const now = Math.floor(Date.now() / 1000);
  const access = [{ type: 'repository', name: 'team/app', actions: ['pull', 'push', 'delete'] }];
  const claims = { iss: 'wharf', sub: 'bob', aud: 'wharf', iat: now, nbf: now, exp: now + 300, kind: 'user', access };
  const b64 = (o: unknown) => Buffer.from(JSON.stringify(o)).toString('base64url');
  const [h, , sig] = good.split('.');
  const cases: Record<string, string> = {
    'another key': await signJwt(stranger, claims),
    'expired': await signJwt(ours, { ...claims, iat: now - 4000, nbf: now - 4000, exp: now - 3600 }),
    'not yet valid': await signJwt(ours, { ...claims, nbf: now + 3600, exp: now + 7200 }),
    'wrong audience': await signJwt(ours, { ...claims, aud: 'other-service' }),
    'wrong issuer': await signJwt(ours, { ...claims, iss: 'someone-else' }),
    'alg none': `${b64({ alg: 'none', typ: 'JWT' })}.${b64(claims)}.`,
    'payload swapped under a real signature': `${h}.${b64(claims)}.${sig}`,
    'garbage': 'not-a-jwt',
  };
  for (const [what, jwt] of Object.entries(cases)) {
    const res = await inject(s.app, 'GET', '/v2/team/app/manifests/v1', { headers: { authorization: bearer(jwt) } });
    assertError(t, res, 401, 'UNAUTHORIZED', what);
    t.equal(challengeOf(res)['error'], 'invalid_token', `${what}: error="invalid_token"`);
  }
  // Within the clock skew is fine; our own key with our claims works (the check above is not vacuous).
  t.equal((await inject(s.app, 'GET', '/v2/team/app/manifests/v1', { headers: { authorization: bearer(await signJwt(ours, { ...claims, nbf: now + 20 })) } })).status, 200);

  // Malformed and oversized Authorization headers.
  const headers: Record<string, string> = {
    'oversized': `Bearer ${'a'.repeat(10_000)}`,
    'basic without colon': `Basic ${Buffer.from('bob').toString('base64')}`,
    'basic not base64': 'Basic %%%%',
    'unknown scheme': 'Digest username="bob"',
    'empty bearer': 'Bearer ',
    'scheme only': 'Basic',
  };
  for (const [what, value] of Object.entries(headers)) {
    const res = await raw(s.url, 'GET', '/v2/team/app/manifests/v1', { headers: { authorization: value } });
    assertError(t, res, 401, 'UNAUTHORIZED', what);
  }
  // Beyond the HTTP server's own header limit: 431, still no 5xx.
  t.equal((await raw(s.url, 'GET', '/v2/team/app/manifests/v1', { headers: { authorization: `Bearer ${'a'.repeat(20_000)}` } })).status, 431);
});

t.test('the catalogue lists only what the caller may pull', async (t) => {
  const s = await startWharf(t, authConfig(t));
  const alice = basic('alice', 'alice-pw');
  for (const repo of ['team/app', 'team/web', 'local/secret', 'other/public', 'other/x']) await pushImage(s.app, repo, alice);
  const list = async (auth: string, q = '') => (await inject(s.app, 'GET', `/v2/_catalog${q}`, { headers: { authorization: auth } })).json() as { repositories: string[] };
  t.strictSame((await list(alice)).repositories, ['local/secret', 'other/public', 'other/x', 'team/app', 'team/web']);
  t.strictSame((await list(basic('bob', 'bob-pw'))).repositories, ['other/public', 'team/app', 'team/web']);
  t.strictSame((await list(basic('carol', 'carol-pw'))).repositories, ['other/public', 'other/x', 'team/app', 'team/web']);
  // Pagination counts only visible names.
  const page = await inject(s.app, 'GET', '/v2/_catalog?n=2', { headers: { authorization: basic('bob', 'bob-pw') } });
  t.strictSame((page.json() as { repositories: string[] }).repositories, ['other/public', 'team/app']);
  t.match(page.header('link'), /last=team%2Fapp|last=team\/app/);
  // A Bearer caller sees what its holder may pull.
  const tok = ((await token(s.app, 'service=wharf&scope=registry:catalog:*', basic('bob', 'bob-pw'))).json() as { token: string }).token;
  t.strictSame((await list(bearer(tok))).repositories, ['other/public', 'team/app', 'team/web']);
});

t.test('a cross-repository mount needs pull on the source', async (t) => {
  const s = await startWharf(t, authConfig(t));
  const img = await pushImage(s.app, 'local/secret', basic('alice', 'alice-pw'));
  const bob = basic('bob', 'bob-pw');
  const res = await inject(s.app, 'POST', `/v2/team/app/blobs/uploads/?mount=${img.layer}&from=local/secret`, { headers: { authorization: bob } });
  assertError(t, res, 403, 'DENIED');
  t.match(res.text, /pull repository local\/secret/);
  const ok = await inject(s.app, 'POST', `/v2/team/app/blobs/uploads/?mount=${img.layer}&from=local/secret`, { headers: { authorization: basic('alice', 'alice-pw') } });
  t.equal(ok.status, 201, 'alice may pull the source: mounted');
});

t.test('mount without from takes a blob only from a repository the caller may pull', async (t) => {
  const s = await startWharf(t, authConfig(t));
  const alice = basic('alice', 'alice-pw');
  const bob = basic('bob', 'bob-pw');
  const img = await pushImage(s.app, 'local/secret', alice);
  // bob may push team/** but may not pull local/secret: the blob stays there.
  const refused = await inject(s.app, 'POST', `/v2/team/app/blobs/uploads/?mount=${img.layer}`, { headers: { authorization: bob } });
  t.equal(refused.status, 202, `no source bob may pull: an ordinary session (${refused.text})`);
  assertError(t, await inject(s.app, 'GET', `/v2/team/app/blobs/${img.layer}`, { headers: { authorization: bob } }), 404, 'BLOB_UNKNOWN', 'nothing linked');
  // The same blob also in a repository bob may pull: mounted from there.
  const mounted = await inject(s.app, 'POST', `/v2/team/web/blobs/uploads/?mount=${img.layer}&from=local/secret`, { headers: { authorization: alice } });
  t.equal(mounted.status, 201, 'alice mounts it into team/web');
  const ok = await inject(s.app, 'POST', `/v2/team/app/blobs/uploads/?mount=${img.layer}`, { headers: { authorization: bob } });
  t.equal(ok.status, 201, 'bob may pull team/web: mounted');
  t.equal((await inject(s.app, 'GET', `/v2/team/app/blobs/${img.layer}`, { headers: { authorization: bob } })).status, 200);
  // A Bearer token counts only the repositories its access claim names.
  const scoped = await token(s.app, 'service=wharf&scope=repository:team/other:push,pull', bob);
  const tok = (scoped.json() as { token: string }).token;
  const viaToken = await inject(s.app, 'POST', `/v2/team/other/blobs/uploads/?mount=${img.layer}`, { headers: { authorization: bearer(tok) } });
  t.equal(viaToken.status, 202, 'the token names no repository holding the blob: a session');
});

t.test('service tokens: created by an admin, scoped, usable as the Basic password, revoked at once', async (t) => {
  const s = await startWharf(t, authConfig(t));
  const alice = basic('alice', 'alice-pw');
  const json = (body: unknown) => ({ headers: { 'content-type': 'application/json', authorization: alice }, body: JSON.stringify(body) });
  assertError(t, await raw(s.url, 'GET', '/api/tokens'), 401, 'UNAUTHORIZED', 'anonymous');
  assertError(t, await inject(s.app, 'GET', '/api/tokens', { headers: { authorization: basic('bob', 'bob-pw') } }), 403, 'DENIED', 'not an admin');
  assertError(t, await inject(s.app, 'POST', '/api/tokens', json({ name: 'ci' })), 400, 'INVALID_REQUEST', 'no scopes');

  const created = await inject(s.app, 'POST', '/api/tokens', json({ name: 'ci', scopes: [{ repositories: ['team/*'], actions: ['pull', 'push'] }], expiresIn: '1d' }));
  t.equal(created.status, 201, created.text);
  const { id, token: secret } = created.json() as { id: string; token: string };
  t.match(secret, /^wharf_/);
  const listed = await inject(s.app, 'GET', '/api/tokens', { headers: { authorization: alice } });
  t.notMatch(listed.text, secret, 'the list never shows the secret');
  t.match(listed.text, /"name":"ci"/);

  const ci = basic('ci', secret);
  await pushImage(s.app, 'team/app', ci);
  assertError(t, await inject(s.app, 'DELETE', '/v2/team/app/manifests/v1', { headers: { authorization: ci } }), 403, 'DENIED', 'delete is not in its scopes');
  assertError(t, await inject(s.app, 'GET', '/v2/local/x/tags/list', { headers: { authorization: ci } }), 403, 'DENIED', 'outside its repositories');
  assertError(t, await inject(s.app, 'GET', '/v2/team/app/tags/list', { headers: { authorization: basic('someone', secret) } }), 401, 'UNAUTHORIZED', 'another user name');
  // Through the token flow too.
  const jwt = ((await token(s.app, 'service=wharf&scope=repository:team/app:pull,push,delete', ci)).json() as { token: string }).token;
  t.strictSame(claimsOf(jwt)['access'], [{ type: 'repository', name: 'team/app', actions: ['pull', 'push'] }]);
  t.equal((await inject(s.app, 'GET', '/v2/team/app/tags/list', { headers: { authorization: bearer(jwt) } })).status, 200);

  const revoked = await inject(s.app, 'DELETE', `/api/tokens/${id}`, { headers: { authorization: alice } });
  t.equal(revoked.status, 200, revoked.text);
  assertError(t, await inject(s.app, 'GET', '/v2/team/app/tags/list', { headers: { authorization: ci } }), 401, 'UNAUTHORIZED', 'revoked: Basic');
  assertError(t, await inject(s.app, 'GET', '/v2/team/app/tags/list', { headers: { authorization: bearer(jwt) } }), 401, 'UNAUTHORIZED', 'revoked: its JWT too');
  assertError(t, await inject(s.app, 'DELETE', `/api/tokens/${id}`, { headers: { authorization: alice } }), 404, 'NOT_FOUND', 'revoking twice');
});

t.test('a service token whose scope can never match a canonical name is refused at creation (400), naming the spelling to write', async (t) => {
  const priv = { name: 'priv', url: 'https://registry.corp.example:5000', registry: 'registry.corp.example:5000', prefix: 'corp', username: 'ci', password: 'secret' };
  const s = await startWharf(t, { ...authConfig(t), upstreams: [priv] });
  const json = (body: unknown) => ({ headers: { 'content-type': 'application/json', authorization: basic('alice', 'alice-pw') }, body: JSON.stringify(body) });
  const dead = await inject(s.app, 'POST', '/api/tokens', json({ name: 'ci', scopes: [{ repositories: ['team/**'], actions: ['pull'] }, { repositories: ['corp/**'], actions: ['pull'] }] }));
  assertError(t, dead, 400, 'INVALID_REQUEST', 'the prefix spelling');
  t.match(dead.text, 'scope 2: \\"corp/**\\" names upstream priv by its prefix; policies and tokens match canonical names: write \\"registry.corp.example-5000/**\\"');
  const colon = await inject(s.app, 'POST', '/api/tokens', json({ name: 'ci', scopes: [{ repositories: ['registry.corp.example:5000/**'], actions: ['pull'] }] }));
  assertError(t, colon, 400, 'INVALID_REQUEST', 'the registry host with its colon');
  t.match(colon.text, 'write \\"registry.corp.example-5000/**\\"');
  t.same((await inject(s.app, 'GET', '/api/tokens', { headers: { authorization: basic('alice', 'alice-pw') } })).json(), { tokens: [] }, 'nothing stored');
  const ok = await inject(s.app, 'POST', '/api/tokens', json({ name: 'ci', scopes: [{ repositories: ['registry.corp.example-5000/**'], actions: ['pull'] }] }));
  t.equal(ok.status, 201, ok.text);
});

t.test('repeated failed logins are limited per user (429 + Retry-After) without locking out others', async (t) => {
  const s = await startWharf(t, authConfig(t));
  for (let i = 0; i < 3; i++) {
    assertError(t, await inject(s.app, 'GET', '/v2/team/app/tags/list', { headers: { authorization: basic('bob', `guess-${i}`) } }), 401, 'UNAUTHORIZED');
  }
  const limited = await inject(s.app, 'GET', '/v2/team/app/tags/list', { headers: { authorization: basic('bob', 'bob-pw') } });
  assertError(t, limited, 429, 'TOOMANYREQUESTS', 'even the right password waits');
  t.match(limited.header('retry-after'), /^\d+$/);
  t.ok(Number(limited.header('retry-after')) >= 1);
  assertError(t, await token(s.app, 'service=wharf', basic('bob', 'bob-pw')), 429, 'TOOMANYREQUESTS', 'the token endpoint too');
  const carol = await inject(s.app, 'GET', '/v2/team/app/tags/list', { headers: { authorization: basic('carol', 'carol-pw') } });
  t.not(carol.status, 429, 'another user from the same address is not locked out');
  t.not(carol.status, 401);
});

t.test('default policies: anonymous pull of upstream names, signed-in push to local names; off = nothing', async (t) => {
  const base = authConfig(t, { defaultPolicies: true, policies: [] });
  const s = await startWharf(t, base);
  const bob = basic('bob', 'bob-pw');
  await pushImage(s.app, 'local/app', bob);
  assertError(t, await raw(s.url, 'GET', '/v2/local/app/manifests/v1'), 401, 'UNAUTHORIZED', 'anonymous pull of a local name');
  t.equal((await inject(s.app, 'GET', '/v2/local/app/manifests/v1', { headers: { authorization: basic('carol', 'carol-pw') } })).status, 200, 'any signed-in user pulls local');
  const none = await startWharf(t, authConfig(t, { defaultPolicies: false, policies: [] }));
  assertError(t, await inject(none.app, 'POST', '/v2/local/app/blobs/uploads/', { headers: { authorization: bob } }), 403, 'DENIED', 'no rules: nothing');
});

t.test('tokens of a trusted external issuer (auth.token.trust) are accepted; its other tokens are not', async (t) => {
  const pair = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const dir = tempDir('wharf-trust-');
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const jwks = join(dir, 'jwks.json');
  writeFileSync(jwks, JSON.stringify({ keys: [{ ...pair.publicKey.export({ format: 'jwk' }), kid: 'sso-1', use: 'sig', alg: 'ES256' }] }));
  const cfg = authConfig(t, { token: { trust: { issuer: 'https://sso.example.com', keys: jwks } } });
  const s = await startWharf(t, cfg);
  await pushImage(s.app, 'team/app', basic('bob', 'bob-pw'));
  const sso: SigningKey = { alg: 'ES256', kid: 'sso-1', privateKey: pair.privateKey, publicKey: pair.publicKey };
  const now = Math.floor(Date.now() / 1000);
  const claims = { iss: 'https://sso.example.com', sub: 'dave', aud: 'wharf', iat: now, exp: now + 60, access: [{ type: 'repository', name: 'team/app', actions: ['pull'] }] };
  const get = (jwt: string) => inject(s.app, 'GET', '/v2/team/app/manifests/v1', { headers: { authorization: bearer(jwt) } });
  t.equal((await get(await signJwt(sso, claims))).status, 200, 'the external token grants what its access claim says');
  assertError(t, await get(await signJwt(sso, { ...claims, iss: 'wharf' })), 401, 'UNAUTHORIZED', 'its key is not trusted for our own issuer name');
  assertError(t, await get(await signJwt(sso, { ...claims, aud: 'another' })), 401, 'UNAUTHORIZED', 'another audience');
  assertError(t, await inject(s.app, 'DELETE', '/v2/team/app/manifests/v1', { headers: { authorization: bearer(await signJwt(sso, claims)) } }), 403, 'DENIED', 'no more than its access claim');
});

t.test('RS256 signing when auth.token.algorithm says so', async (t) => {
  const s = await startWharf(t, authConfig(t, { token: { algorithm: 'RS256', lifetime: '90s' } }));
  const bob = basic('bob', 'bob-pw');
  await pushImage(s.app, 'team/app', bob);
  const res = (await token(s.app, 'service=wharf&scope=repository:team/app:pull', bob)).json() as { token: string; expires_in: number };
  const header = JSON.parse(Buffer.from(res.token.split('.')[0] as string, 'base64url').toString()) as Record<string, unknown>;
  t.equal(header['alg'], 'RS256');
  t.equal(res.expires_in, 90, 'auth.token.lifetime');
  t.equal((await inject(s.app, 'GET', '/v2/team/app/manifests/v1', { headers: { authorization: bearer(res.token) } })).status, 200);
});

t.test('the management API takes an admin user’s token with scope wharf:api:manage, and no other token', async (t) => {
  const pair = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const dir = tempDir('wharf-manage-');
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const jwks = join(dir, 'jwks.json');
  writeFileSync(jwks, JSON.stringify({ keys: [{ ...pair.publicKey.export({ format: 'jwk' }), kid: 'sso-1', use: 'sig', alg: 'ES256' }] }));
  const cfg = authConfig(t, { groups: { readers: ['carol'], admin: ['carol'] }, token: { trust: { issuer: 'https://sso.example.com', keys: jwks } } });
  let now = Date.now();
  const s = await startWharf(t, cfg, { authNow: () => now });
  const alice = basic('alice', 'alice-pw');
  const api = (auth: string, path = '/api/tokens') => inject(s.app, 'GET', path, { headers: { authorization: auth } });
  const manage = 'service=wharf&scope=wharf:api:manage';

  t.equal((await api(alice)).status, 200, 'an admin with Basic credentials, as before');
  const aliceTok = (await token(s.app, manage, alice)).json() as { token: string };
  t.strictSame(claimsOf(aliceTok.token)['access'], [{ type: 'wharf', name: 'api', actions: ['manage'] }], 'the scope is granted to an admin');
  t.equal((await api(bearer(aliceTok.token))).status, 200, 'the admin’s token with the scope opens /api/tokens');
  t.equal((await api(bearer(aliceTok.token), '/api/repositories')).status, 200, 'and the rest of /api');
  t.strictSame((await api(bearer(aliceTok.token), '/api/whoami')).json(), { user: 'alice', admin: true, authEnabled: true });

  // Asked by others, the scope is left out of the token, and the token does not open /api.
  const bobTok = (await token(s.app, manage, basic('bob', 'bob-pw'))).json() as { token: string };
  t.strictSame(claimsOf(bobTok.token)['access'], [], 'not granted to a user outside the admin group');
  assertError(t, await api(bearer(bobTok.token)), 403, 'DENIED', 'a non-admin’s token');
  const anonTok = (await token(s.app, manage)).json() as { token: string };
  t.strictSame(claimsOf(anonTok.token)['access'], [], 'nor to anonymous');
  assertError(t, await api(bearer(anonTok.token)), 403, 'DENIED', 'an anonymous token');

  // An admin's registry token (no api scope): 401 asking for the scope.
  const pullTok = (await token(s.app, 'service=wharf&scope=repository:team/app:pull', alice)).json() as { token: string };
  const pull = await api(bearer(pullTok.token));
  assertError(t, pull, 401, 'UNAUTHORIZED', 'a registry pull token');
  t.equal(challengeOf(pull)['error'], 'insufficient_scope');
  t.equal(challengeOf(pull)['scope'], 'wharf:api:manage');

  // A service token: neither as the Basic password nor through the token flow.
  const created = await inject(s.app, 'POST', '/api/tokens', {
    headers: { 'content-type': 'application/json', authorization: bearer(aliceTok.token) },
    body: JSON.stringify({ name: 'ci', scopes: [{ repositories: ['**'], actions: ['*'] }] }),
  });
  t.equal(created.status, 201, 'created with the admin’s token');
  const ci = basic('ci', (created.json() as { token: string }).token);
  assertError(t, await api(ci), 403, 'DENIED', 'a service token as Basic password');
  const ciTok = (await token(s.app, manage, ci)).json() as { token: string };
  t.strictSame(claimsOf(ciTok.token)['access'], [], 'a service token never gets the scope');
  assertError(t, await api(bearer(ciTok.token)), 403, 'DENIED', 'a service token’s JWT');
  const forged = await signJwt((await loadOrCreateSigningKey(join(s.dataDir, 'auth', 'token-key.pem'), 'ES256')), {
    ...claimsOf(ciTok.token),
    access: [{ type: 'wharf', name: 'api', actions: ['manage'] }],
  });
  assertError(t, await api(bearer(forged)), 403, 'DENIED', 'a service token’s JWT, even with the scope in its claims');

  // A trusted external issuer's token naming an admin, with the scope: never.
  const nowS = Math.floor(now / 1000);
  const sso: SigningKey = { alg: 'ES256', kid: 'sso-1', privateKey: pair.privateKey, publicKey: pair.publicKey };
  const external = await signJwt(sso, { iss: 'https://sso.example.com', sub: 'alice', aud: 'wharf', iat: nowS, exp: nowS + 60, kind: 'user', access: [{ type: 'wharf', name: 'api', actions: ['manage'] }] });
  assertError(t, await api(bearer(external)), 403, 'DENIED', 'an external issuer’s token');

  // A refresh keeps the scope for an admin.
  const offline = (await token(s.app, `${manage}&offline_token=true`, alice)).json() as { refresh_token: string };
  const refreshed = await inject(s.app, 'POST', '/auth/token', {
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ grant_type: 'refresh_token', refresh_token: offline.refresh_token, service: 'wharf', scope: 'wharf:api:manage' }).toString(),
  });
  t.equal(refreshed.status, 200, refreshed.text);
  t.equal((await api(bearer((refreshed.json() as { access_token: string }).access_token))).status, 200, 'the refreshed token opens /api');

  // An htpasswd user in the admin group, then taken out of the file: the token stops opening /api at once.
  const carolTok = (await token(s.app, manage, basic('carol', 'carol-pw'))).json() as { token: string };
  t.equal((await api(bearer(carolTok.token))).status, 200, 'carol is an admin through auth.groups');
  writeFileSync((cfg['auth'] as { htpasswd: string }).htpasswd, `dave:${hash('dave-pw')}\n`);
  now += 2000;
  assertError(t, await api(bearer(carolTok.token)), 403, 'DENIED', 'removed from the htpasswd file: no longer an admin');

  // Expired: past its lifetime (5 min) and the clock skew allowed (60 s).
  now += 6 * 60_000;
  const expired = await api(bearer(aliceTok.token));
  assertError(t, expired, 401, 'UNAUTHORIZED', 'an expired token');
  t.equal(challengeOf(expired)['error'], 'invalid_token');
});
