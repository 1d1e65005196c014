// Policies judge the repository actually served, under one canonical name however the client spelled it
// (prefix, registry host, `?ns=`, the default upstream); tokens name the same; the catalogue lists those
// names, filtered by what the caller may pull; repository ownership (`owner`, `{user}`).
import { rmSync } from 'node:fs';
import bcrypt from 'bcryptjs';
import t from 'tap';
import type { FastifyInstance } from 'fastify';
import { startWharf, tempDir } from '../helpers/server.js';
import { assertError, digestOf, inject, OCI_CONFIG, OCI_LAYER, OCI_MANIFEST, type Res } from '../helpers/http.js';
import { contentEntry, startFaultUpstream, type FaultContent, type FaultUpstream } from '../helpers/fault-upstream.js';

const hash = (pw: string) => bcrypt.hashSync(pw, 4);
const basic = (user: string, pw: string) => `Basic ${Buffer.from(`${user}:${pw}`).toString('base64')}`;
const bearer = (token: string) => `Bearer ${token}`;
const claimsOf = (jwt: string) => JSON.parse(Buffer.from(jwt.split('.')[1] as string, 'base64url').toString()) as Record<string, unknown>;
const ALICE = basic('alice', 'alice-pw');
const BOB = basic('bob', 'bob-pw');

/** Upstream content: one image per repository, tagged v1. */
function images(...repos: string[]): FaultContent {
  const content: FaultContent = { manifests: [], blobs: [] };
  for (const repo of repos) {
    const config = contentEntry(Buffer.from(`{"architecture":"amd64","os":"linux","repo":"${repo}"}`));
    const layer = contentEntry(Buffer.from(`layer of ${repo}`));
    const body = Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: OCI_MANIFEST,
        config: { mediaType: OCI_CONFIG, digest: config.digest, size: config.body.length },
        layers: [{ mediaType: OCI_LAYER, digest: layer.digest, size: layer.body.length }],
      }),
    );
    content.manifests.push({ repo, tag: 'v1', digest: digestOf(body), mediaType: OCI_MANIFEST, body });
    content.blobs.push(config, layer);
  }
  return content;
}

interface Setup {
  app: FastifyInstance;
  hub: FaultUpstream;
  priv: FaultUpstream;
}

/** A default Docker Hub upstream, a private one (`priv.test`, Wharf signs in), local `team` and `apps`. */
async function setup(t: { teardown(fn: () => unknown): void }, auth: Record<string, unknown>): Promise<Setup> {
  const hub = await startFaultUpstream(t, images('library/alpine', 'library/secret', 'team/app'));
  const priv = await startFaultUpstream(t, images('library/secret', 'tools/build'));
  const dir = tempDir('wharf-names-');
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const s = await startWharf(t, {
    upstreams: [
      { name: 'hub', url: hub.url, registry: 'docker.io', default: true },
      { name: 'priv', url: priv.url, registry: 'priv.test', username: 'mirror-bot', password: 'upstream-secret' },
    ],
    local: { namespaces: ['team', 'apps', 'users'] },
    auth: {
      users: [
        { name: 'alice', password: hash('alice-pw') },
        { name: 'bob', password: hash('bob-pw') },
      ],
      ...auth,
    },
  });
  return { app: s.app, hub, priv };
}
function challengeOf(res: Res): Record<string, string> {
  const out: Record<string, string> = {};
  for (const m of (res.header('www-authenticate') ?? '').matchAll(/(\w+)="([^"]*)"/g)) out[m[1] as string] = m[2] as string;
  return out;
}

async function tokenFor(app: FastifyInstance, scope: string, auth?: string): Promise<string> {
  const res = await inject(app, 'GET', `/auth/token?service=wharf&scope=${encodeURIComponent(scope)}`, { headers: auth ? { authorization: auth } : {} });
  return (res.json() as { token: string }).token;
}

const get = (app: FastifyInstance, path: string, auth?: string) => inject(app, 'GET', path, { headers: auth ? { authorization: auth } : {} });

t.test('?ns= does not open a private upstream under a name the policy allows on another', async (t) => {
  const s = await setup(t, { defaultPolicies: false, policies: [{ repositories: ['library/**'], subjects: ['anonymous'], actions: ['pull'] }] });
  t.equal((await get(s.app, '/v2/library/alpine/manifests/v1')).status, 200, 'the Docker Hub image the rule names');
  t.equal((await get(s.app, '/v2/library/alpine/manifests/v1?ns=docker.io')).status, 200, 'the same image through ?ns=docker.io');
  for (const path of [
    '/v2/library/secret/manifests/v1?ns=priv.test',
    '/v2/library/secret/tags/list?ns=priv.test',
    `/v2/library/secret/blobs/${images('library/secret').blobs[1]!.digest}?ns=priv.test`,
    '/v2/priv.test/library/secret/manifests/v1',
  ]) {
    const res = await get(s.app, path);
    assertError(t, res, 401, 'UNAUTHORIZED', path);
    t.equal(challengeOf(res)['scope'], 'repository:priv.test/library/secret:pull', 'the challenge names the canonical name');
  }
  // An anonymous Bearer token for the allowed spelling opens that repository and no other.
  const tok = await tokenFor(s.app, 'repository:library/secret:pull');
  t.strictSame(claimsOf(tok)['access'], [{ type: 'repository', name: 'library/secret', actions: ['pull'] }]);
  const viaNs = await get(s.app, '/v2/library/secret/manifests/v1?ns=priv.test', bearer(tok));
  t.equal(viaNs.status, 401, 'a token for library/secret does not open priv.test/library/secret');
  t.equal((await get(s.app, '/v2/library/secret/manifests/v1', bearer(tok))).status, 200, 'it opens the Docker Hub image it names');
  t.equal(s.priv.count('', '/v2/library/secret'), 0, 'the private upstream was never asked');
});

t.test('token scopes are canonicalised: any spelling asks for the one canonical name', async (t) => {
  const s = await setup(t, { defaultPolicies: true, policies: [] });
  const tok = await tokenFor(s.app, 'repository:docker.io/library/alpine:pull');
  t.strictSame(claimsOf(tok)['access'], [{ type: 'repository', name: 'library/alpine', actions: ['pull'] }]);
  for (const path of ['/v2/library/alpine/manifests/v1', '/v2/alpine/manifests/v1', '/v2/docker.io/library/alpine/manifests/v1', '/v2/library/alpine/manifests/v1?ns=docker.io']) {
    t.equal((await get(s.app, path, bearer(tok))).status, 200, path);
  }
  const priv = await tokenFor(s.app, 'repository:priv.test/tools/build:pull', ALICE);
  t.strictSame(claimsOf(priv)['access'], [{ type: 'repository', name: 'priv.test/tools/build', actions: ['pull'] }]);
  t.equal((await get(s.app, '/v2/tools/build/manifests/v1?ns=priv.test', bearer(priv))).status, 200, 'the same repository through ?ns=');
  t.equal((await get(s.app, '/v2/tools/build/manifests/v1', bearer(priv))).status, 401, 'not the Docker Hub repository of that name');
});

t.test('an upstream Wharf signs in to is not pulled anonymously through the built-in rules', async (t) => {
  const s = await setup(t, { defaultPolicies: true, policies: [] });
  const res = await get(s.app, '/v2/priv.test/tools/build/manifests/v1');
  assertError(t, res, 401, 'UNAUTHORIZED');
  t.equal(s.priv.count('', '/v2/tools/build'), 0, 'the private upstream was never asked');
  t.equal((await get(s.app, '/v2/tools/build/manifests/v1?ns=priv.test', ALICE)).status, 200, 'signed-in users may pull it');
  t.equal((await get(s.app, '/v2/library/alpine/manifests/v1')).status, 200, 'a public upstream stays open to anonymous pulls');
  // The anonymous token endpoint grants nothing on it either.
  t.strictSame(claimsOf(await tokenFor(s.app, 'repository:priv.test/tools/build:pull'))['access'], []);
});

t.test('the catalogue lists canonical names, only what the caller may pull, paginated on those names', async (t) => {
  const s = await setup(t, {
    defaultPolicies: false,
    policies: [
      { repositories: ['library/**'], subjects: ['authenticated'], actions: ['pull'] },
      { repositories: ['**'], subjects: ['alice'], actions: ['*'] },
    ],
  });
  for (const path of ['/v2/alpine/manifests/v1', '/v2/library/secret/manifests/v1', '/v2/docker.io/team/app/manifests/v1', '/v2/tools/build/manifests/v1?ns=priv.test']) {
    t.equal((await get(s.app, path, ALICE)).status, 200, path);
  }
  const list = async (auth: string, q = '') => {
    const res = await get(s.app, `/v2/_catalog${q}`, auth);
    return { repositories: (res.json() as { repositories: string[] }).repositories, link: res.header('link') };
  };
  const all = ['docker.io/team/app', 'library/alpine', 'library/secret', 'priv.test/tools/build'];
  t.strictSame((await list(ALICE)).repositories, all);
  t.strictSame((await list(BOB)).repositories, ['library/alpine', 'library/secret'], 'a user who may pull library/** sees those');
  // Walking the pages one name at a time gives the same list, in the same order.
  const walked: string[] = [];
  let q = '?n=1';
  for (let i = 0; i < 10; i++) {
    const page = await list(ALICE, q);
    walked.push(...page.repositories);
    if (!page.link) break;
    q = `?${new URL(page.link.slice(1, page.link.indexOf('>')), 'http://x').searchParams.toString()}`;
  }
  t.strictSame(walked, all);
  const bobPage = await list(BOB, '?n=1&last=library%2Falpine');
  t.strictSame(bobPage.repositories, ['library/secret']);
  t.notOk(bobPage.link, 'no next page when no further name is visible');
});

t.test('a written rule is the whole truth: pull on local/** does not leave push to the built-in rules', async (t) => {
  const s = await setup(t, { defaultPolicies: true, policies: [{ repositories: ['team/**'], subjects: ['bob'], actions: ['pull'] }] });
  assertError(t, await inject(s.app, 'POST', '/v2/team/app/blobs/uploads/', { headers: { authorization: BOB } }), 403, 'DENIED');
  assertError(t, await inject(s.app, 'POST', '/v2/team/app/blobs/uploads/', { headers: { authorization: ALICE } }), 403, 'DENIED', 'the rule covers team/** for alice too');
  t.equal((await inject(s.app, 'POST', '/v2/apps/web/blobs/uploads/', { headers: { authorization: BOB } })).status, 202, 'apps/** is left to the built-in rules');
});

async function pushBlob(app: FastifyInstance, repo: string, auth: string): Promise<Res> {
  const blob = `blob of ${repo}`;
  return inject(app, 'POST', `/v2/${repo}/blobs/uploads/?digest=${digestOf(blob)}`, {
    headers: { authorization: auth, 'content-type': 'application/octet-stream' },
    body: blob,
  });
}

t.test('the first user to push a repository owns it; owner and {user} rules', async (t) => {
  const s = await setup(t, {
    defaultPolicies: true,
    policies: [
      { repositories: ['apps/**'], subjects: ['owner'], actions: ['*'] },
      { repositories: ['users/{user}/**'], subjects: ['authenticated'], actions: ['*'] },
    ],
  });
  t.equal((await pushBlob(s.app, 'apps/web', ALICE)).status, 201, 'a new repository: alice pushes first');
  t.equal((await pushBlob(s.app, 'apps/web', ALICE)).status, 201, 'and keeps pushing as its owner');
  assertError(t, await pushBlob(s.app, 'apps/web', BOB), 403, 'DENIED', 'bob is not the owner');
  const layer = digestOf('blob of apps/web');
  assertError(t, await get(s.app, `/v2/apps/web/blobs/${layer}`, BOB), 403, 'DENIED', 'nor may he pull it');
  t.equal((await get(s.app, `/v2/apps/web/blobs/${layer}`, ALICE)).status, 200);
  t.equal((await pushBlob(s.app, 'apps/api', BOB)).status, 201, 'bob owns the repository he pushed first');
  t.strictSame((await get(s.app, '/v2/_catalog', BOB)).json(), { repositories: ['apps/api'] }, "bob's catalogue shows only what he may pull");

  t.equal((await pushBlob(s.app, 'users/bob/tool', BOB)).status, 201, 'bob pushes into his own namespace');
  assertError(t, await pushBlob(s.app, 'users/bob/other', ALICE), 403, 'DENIED', "alice may not push into bob's");
  assertError(t, await get(s.app, `/v2/users/bob/tool/blobs/${digestOf('blob of users/bob/tool')}`, ALICE), 403, 'DENIED');
  assertError(t, await get(s.app, `/v2/users/bob/tool/blobs/${digestOf('blob of users/bob/tool')}`), 401, 'UNAUTHORIZED');
  t.strictSame((await get(s.app, '/v2/_catalog', ALICE)).json(), { repositories: ['apps/web'] });

  // A token alice got for a repository nobody owned yet does not outlast bob's claim on it.
  const tok = await tokenFor(s.app, 'repository:apps/race:pull,push', ALICE);
  t.strictSame(claimsOf(tok)['access'], [{ type: 'repository', name: 'apps/race', actions: ['pull', 'push'] }]);
  t.equal((await pushBlob(s.app, 'apps/race', BOB)).status, 201);
  assertError(t, await pushBlob(s.app, 'apps/race', bearer(tok)), 403, 'DENIED');
});
