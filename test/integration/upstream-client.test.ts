// UpstreamClient against small node:http servers on real sockets: auth flows (Basic, Bearer with a token
// realm), the token cache, redirects to another host, network failures and rate-limit headers.
import { createServer, type IncomingHttpHeaders, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import Keyv, { KeyvHooks } from 'keyv';
import t, { type Test } from 'tap';
import type { UpstreamConfig } from '../../src/config/schema.js';
import { UpstreamClient, type UpstreamResponse } from '../../src/upstream/upstream-client.js';
import { UpstreamError } from '../../src/upstream/upstream-errors.js';
import { Upstreams } from '../../src/upstream/upstream-pool.js';
import { sharedKeyv } from '../../src/metadata/postgres-keyv.js';
import { PostgresDatabase, quoteIdent } from '../../src/metadata/postgres-database.js';
import { adminQuery, POSTGRES_URL, tempSchema } from '../helpers/postgres.js';

interface Seen {
  method: string;
  url: string;
  headers: IncomingHttpHeaders;
}

interface TestServer {
  port: number;
  /** http://127.0.0.1:PORT */
  url: string;
  seen: Seen[];
}

async function serve(t: Test, handler: (req: IncomingMessage, res: ServerResponse) => void): Promise<TestServer> {
  const seen: Seen[] = [];
  const server = createServer((req, res) => {
    seen.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers });
    handler(req, res);
  });
  await new Promise<void>((resolve) => server.listen({ port: 0, host: '127.0.0.1' }, resolve));
  t.teardown(
    () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  );
  const { port } = server.address() as AddressInfo;
  return { port, url: `http://127.0.0.1:${port}`, seen };
}

function config(url: string, over: Partial<UpstreamConfig> = {}): UpstreamConfig {
  return {
    name: 'test',
    url,
    registry: 'registry.test',
    default: false,
    allowedRealms: [],
    tls: { insecureSkipVerify: false },
    tagTTL: 300_000,
    listTTL: 30_000,
    timeouts: { connect: 2_000, headers: 2_000, bodyIdle: 2_000, minRate: 0, minRateWindow: 30_000 },
    ...over,
  };
}

interface Logged {
  level: string;
  obj: object;
  msg?: string;
}

function client(t: Test, cfg: UpstreamConfig, tokens = new Keyv()): { c: UpstreamClient; logs: Logged[] } {
  const logs: Logged[] = [];
  const at = (level: string) => (obj: object, msg?: string) => void logs.push({ level, obj, msg });
  const c = new UpstreamClient(cfg, { tokens, logger: { debug: at('debug'), info: at('info'), warn: at('warn') } });
  t.teardown(() => c.close());
  return { c, logs };
}

async function text(res: UpstreamResponse): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of res.body) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

const basic = (user: string, pass: string) => `Basic ${Buffer.from(`${user}:${pass}`).toString('base64')}`;
const pull = (repository: string) => ({ method: 'GET' as const, path: `/v2/${repository}/manifests/latest`, repository });

t.test('anonymous GET: status, headers, body and final URL; no Authorization sent', async (t) => {
  const up = await serve(t, (_req, res) => {
    res.writeHead(200, { 'content-type': 'application/json', 'docker-content-digest': 'sha256:abc' });
    res.end('{"ok":true}');
  });
  const { c } = client(t, config(up.url));
  const res = await c.request({ ...pull('library/alpine'), headers: { Accept: 'application/vnd.oci.image.index.v1+json', Authorization: 'Bearer smuggled' } });
  t.equal(res.status, 200);
  t.equal(res.headers['docker-content-digest'], 'sha256:abc');
  t.equal(res.url, `${up.url}/v2/library/alpine/manifests/latest`);
  t.equal(await text(res), '{"ok":true}');
  t.equal(up.seen.length, 1);
  t.equal(up.seen[0]!.headers.authorization, undefined, 'a caller Authorization is not forwarded');
  t.equal(up.seen[0]!.headers.accept, 'application/vnd.oci.image.index.v1+json');
  t.equal(await c.ping(), true);
});

t.test('Basic challenge: retried once with Basic credentials, then sent up front', async (t) => {
  const up = await serve(t, (req, res) => {
    if (req.headers.authorization !== basic('alice', 's3cret')) {
      res.writeHead(401, { 'www-authenticate': 'Basic realm="test registry"', 'content-type': 'application/json' });
      res.end('{"errors":[{"code":"UNAUTHORIZED"}]}');
      return;
    }
    res.end('manifest');
  });
  const { c, logs } = client(t, config(up.url, { username: 'alice', password: 's3cret' }));
  const res = await c.request(pull('team/app'));
  t.equal(res.status, 200);
  t.equal(await text(res), 'manifest');
  t.equal(up.seen.length, 2);
  t.equal(up.seen[0]!.headers.authorization, undefined);
  t.equal(up.seen[1]!.headers.authorization, basic('alice', 's3cret'));

  const again = await c.request({ ...pull('team/other'), method: 'HEAD' });
  t.equal(again.status, 200);
  await text(again);
  t.equal(up.seen.length, 3, 'the remembered scheme sends Basic without a 401 first');
  t.equal(up.seen[2]!.headers.authorization, basic('alice', 's3cret'));
  t.notMatch(JSON.stringify(logs), /s3cret|YWxpY2U6czNjcmV0/, 'no secret in logs');
});

t.test('Basic challenge without configured credentials: the 401 comes back with its body, no retry', async (t) => {
  const up = await serve(t, (_req, res) => {
    res.writeHead(401, { 'www-authenticate': 'Basic realm="x"' });
    res.end('denied');
  });
  const { c } = client(t, config(up.url));
  const res = await c.request(pull('a/b'));
  t.equal(res.status, 401);
  t.equal(await text(res), 'denied');
  t.equal(up.seen.length, 1);
});

interface TokenRealm extends TestServer {
  tokensIssued: number;
}

/** A token service and a registry that accepts its tokens. */
async function bearerPair(t: Test, opts: { realmHost: '127.0.0.1' | 'localhost'; expiresIn?: number; tokenField?: 'token' | 'access_token'; alwaysDeny?: boolean }) {
  const realm = (await serve(t, (req, res) => {
    realm.tokensIssued++;
    const body: Record<string, unknown> = { [opts.tokenField ?? 'token']: `tok-${realm.tokensIssued}` };
    if (opts.expiresIn !== undefined) body.expires_in = opts.expiresIn;
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify(body));
    void req;
  })) as TokenRealm;
  realm.tokensIssued = 0;
  const realmUrl = `http://${opts.realmHost}:${realm.port}/token`;
  const up = await serve(t, (req, res) => {
    const repo = /^\/v2\/(.+)\/manifests\//.exec(req.url ?? '')?.[1];
    const auth = req.headers.authorization ?? '';
    if (opts.alwaysDeny || !/^Bearer tok-\d+$/.test(auth)) {
      res.writeHead(401, {
        'www-authenticate': `Bearer realm="${realmUrl}",service="registry.test",scope="repository:${repo ?? 'x'}:pull"`,
      });
      res.end('{"errors":[{"code":"UNAUTHORIZED"}]}');
      return;
    }
    res.end(`ok ${auth}`);
  });
  return { realm, up };
}

t.test('Bearer challenge: token fetched from the realm with service and scope, then cached', async (t) => {
  const { realm, up } = await bearerPair(t, { realmHost: '127.0.0.1' });
  // Another port on the same IP is not the upstream's origin: the realm is named in allowedRealms.
  const { c, logs } = client(t, config(up.url, { username: 'bob', password: 'hunter2', allowedRealms: [`127.0.0.1:${realm.port}`] }));
  const res = await c.request(pull('library/alpine'));
  t.equal(res.status, 200);
  t.equal(await text(res), 'ok Bearer tok-1');
  t.equal(up.seen.length, 2, '401, then the retry');
  t.equal(realm.seen.length, 1);
  const q = new URL(realm.seen[0]!.url, realm.url).searchParams;
  t.equal(q.get('service'), 'registry.test');
  t.same(q.getAll('scope'), ['repository:library/alpine:pull']);
  t.equal(realm.seen[0]!.headers.authorization, basic('bob', 'hunter2'), 'an allowed realm gets the credentials');

  const cached = await c.request(pull('library/alpine'));
  t.equal(await text(cached), 'ok Bearer tok-1');
  t.equal(realm.seen.length, 1, 'the cached token is reused');
  t.equal(up.seen.length, 3, 'and sent without a 401 first');

  const other = await c.request(pull('library/busybox'));
  t.equal(await text(other), 'ok Bearer tok-2');
  t.equal(realm.seen.length, 2, 'another scope gets its own token');
  t.equal(up.seen.length, 4, 'fetched up front: the realm is known from the first challenge');
  t.same(new URL(realm.seen[1]!.url, realm.url).searchParams.getAll('scope'), ['repository:library/busybox:pull']);
  t.notMatch(JSON.stringify(logs), /hunter2|tok-\d|Ym9iOmh1bnRlcjI/, 'no secret in logs');
});

t.test('a realm on another registrable domain does not get the credentials unless allowed', async (t) => {
  const { realm, up } = await bearerPair(t, { realmHost: 'localhost', tokenField: 'access_token' });
  const { c, logs } = client(t, config(up.url, { username: 'bob', password: 'hunter2' }));
  const res = await c.request(pull('library/alpine'));
  t.equal(await text(res), 'ok Bearer tok-1', 'access_token is accepted');
  t.equal(realm.seen.length, 1);
  t.equal(realm.seen[0]!.headers.authorization, undefined, 'localhost is not 127.0.0.1: no credentials');
  t.ok(logs.some((l) => l.level === 'warn' && /allowedRealms/.test(l.msg ?? '')), 'the operator is told why');

  const allowed = client(t, config(up.url, { username: 'bob', password: 'hunter2', allowedRealms: ['localhost'] }));
  await text(await allowed.c.request(pull('library/alpine')));
  t.equal(realm.seen.length, 2);
  t.equal(realm.seen[1]!.headers.authorization, basic('bob', 'hunter2'), 'allowedRealms lets them through');
});

t.test('an expired token is fetched again', async (t) => {
  const { realm, up } = await bearerPair(t, { realmHost: '127.0.0.1', expiresIn: 1 });
  const { c } = client(t, config(up.url));
  await text(await c.request(pull('library/alpine')));
  await text(await c.request(pull('library/alpine')));
  t.equal(realm.seen.length, 1, 'cached while valid');
  t.equal(realm.seen[0]!.headers.authorization, undefined, 'anonymous: no credentials configured');
  await sleep(1100);
  const res = await c.request(pull('library/alpine'));
  t.equal(await text(res), 'ok Bearer tok-2');
  t.equal(realm.seen.length, 2, 'refetched after expiry');
});

t.test('tokens live in the Keyv store passed in (shared between clients)', async (t) => {
  const { realm, up } = await bearerPair(t, { realmHost: '127.0.0.1' });
  const tokens = new Keyv();
  const a = client(t, config(up.url), tokens);
  const b = client(t, config(up.url), tokens);
  await text(await a.c.request(pull('library/alpine')));
  const res = await b.c.request(pull('library/alpine'));
  t.equal(await text(res), 'ok Bearer tok-1');
  t.equal(realm.seen.length, 1);
  t.equal(up.seen.length, 3, 'the second client sent the shared token straight away');
});

t.test('a repeated 401 is retried exactly once and returned as is', async (t) => {
  const { realm, up } = await bearerPair(t, { realmHost: '127.0.0.1', alwaysDeny: true });
  const { c } = client(t, config(up.url));
  const res = await c.request(pull('private/thing'));
  t.equal(res.status, 401);
  t.match(await text(res), /UNAUTHORIZED/);
  t.equal(up.seen.length, 2);
  t.equal(realm.seen.length, 1);
  t.equal(up.seen[1]!.headers.authorization, 'Bearer tok-1');
});

t.test('a realm that refuses the credentials is a protocol UpstreamError saying what to check', async (t) => {
  const realm = await serve(t, (_req, res) => {
    res.writeHead(401);
    res.end();
  });
  const up = await serve(t, (_req, res) => {
    res.writeHead(401, { 'www-authenticate': `Bearer realm="${realm.url}/token",service="s"` });
    res.end();
  });
  const { c } = client(t, config(up.url, { username: 'bob', password: 'wrong', allowedRealms: [new URL(realm.url).host] }));
  const err = await c.request(pull('a/b')).then(
    () => undefined,
    (e: unknown) => e,
  );
  t.type(err, UpstreamError);
  t.equal((err as UpstreamError).kind, 'denied');
  t.match((err as UpstreamError).message, /upstream "test".*answered 401.*check the username and password/);
  t.notMatch((err as UpstreamError).message, /wrong/);
});

t.test('redirects: another host gets no Authorization, the same host keeps it', async (t) => {
  const cdn = await serve(t, (_req, res) => {
    res.end('blob bytes');
  });
  const cdnUrl = `http://localhost:${cdn.port}/blobs/abc?X-Signature=topsecret`;
  const up = await serve(t, (req, res) => {
    if (req.headers.authorization !== basic('alice', 'pw')) {
      res.writeHead(401, { 'www-authenticate': 'Basic realm="r"' });
      res.end();
      return;
    }
    if (req.url === '/v2/a/b/blobs/sha256:1') {
      res.writeHead(307, { location: cdnUrl });
      res.end('redirect body');
    } else if (req.url === '/v2/a/b/blobs/sha256:2') {
      res.writeHead(302, { location: '/v2/a/b/blobs/sha256:3' });
      res.end();
    } else if (req.url === '/v2/a/b/blobs/sha256:3') {
      res.end('same host');
    } else if (req.url === '/v2/a/b/blobs/loop') {
      res.writeHead(301, { location: '/v2/a/b/blobs/loop' });
      res.end();
    } else {
      res.writeHead(404);
      res.end();
    }
  });
  const { c, logs } = client(t, config(up.url, { username: 'alice', password: 'pw' }));
  const res = await c.request({ method: 'GET', path: '/v2/a/b/blobs/sha256:1', repository: 'a/b', headers: { range: 'bytes=0-' } });
  t.equal(res.status, 200);
  t.equal(await text(res), 'blob bytes');
  t.equal(res.url, cdnUrl);
  t.equal(cdn.seen.length, 1);
  t.equal(cdn.seen[0]!.headers.authorization, undefined, 'no credentials to the CDN');
  t.equal(cdn.seen[0]!.headers.range, 'bytes=0-', 'caller headers follow the redirect');
  t.notMatch(JSON.stringify(logs), /topsecret/, 'signed query strings are not logged');

  const same = await c.request({ method: 'GET', path: '/v2/a/b/blobs/sha256:2', repository: 'a/b' });
  t.equal(await text(same), 'same host');
  t.equal(same.url, `${up.url}/v2/a/b/blobs/sha256:3`);
  const last = up.seen[up.seen.length - 1]!;
  t.equal(last.url, '/v2/a/b/blobs/sha256:3');
  t.equal(last.headers.authorization, basic('alice', 'pw'), 'same origin keeps auth');

  const before = up.seen.length;
  const err = await c.request({ method: 'GET', path: '/v2/a/b/blobs/loop', repository: 'a/b' }).catch((e: unknown) => e);
  t.type(err, UpstreamError);
  t.equal((err as UpstreamError).kind, 'protocol');
  t.match((err as UpstreamError).message, /more than 5 redirects/);
  t.equal(up.seen.length - before, 6, 'the first request and 5 redirects');
});

t.test('connection refused is an unreachable UpstreamError naming the upstream', async (t) => {
  const gone = await serve(t, () => {});
  const port = gone.port;
  // Take the port, then close it: nothing listens there any more.
  const probe = createServer();
  await new Promise<void>((r) => probe.listen({ port: 0, host: '127.0.0.1' }, r));
  const freePort = (probe.address() as AddressInfo).port;
  await new Promise<void>((r) => probe.close(() => r()));
  t.not(freePort, port);
  const { c } = client(t, config(`http://127.0.0.1:${freePort}`));
  const err = await c.request(pull('library/alpine')).catch((e: unknown) => e);
  t.type(err, UpstreamError);
  t.equal((err as UpstreamError).kind, 'unreachable');
  t.equal((err as UpstreamError).upstream, 'test');
  t.match((err as UpstreamError).message, new RegExp(`upstream "test" \\(http://127\\.0\\.0\\.1:${freePort}\\).*ECONNREFUSED`));
  t.equal(await c.ping(), false);
});

t.test('no response headers within timeouts.headers is a timeout UpstreamError', async (t) => {
  const up = await serve(t, () => {
    // never answers
  });
  const { c } = client(t, config(up.url, { timeouts: { connect: 2_000, headers: 200, bodyIdle: 2_000, minRate: 0, minRateWindow: 30_000 } }));
  const started = Date.now();
  const err = await c.request(pull('library/alpine')).catch((e: unknown) => e);
  t.type(err, UpstreamError);
  t.equal((err as UpstreamError).kind, 'timeout');
  t.match((err as UpstreamError).message, /timeouts\.headers/);
  t.ok(Date.now() - started < 1500, 'gave up after about 200ms');
});

t.test('an aborted request rejects with the abort, not an UpstreamError', async (t) => {
  const up = await serve(t, () => {});
  const { c } = client(t, config(up.url));
  const ac = new AbortController();
  setTimeout(() => ac.abort(), 50);
  const err = await c.request({ ...pull('a/b'), signal: ac.signal }).catch((e: unknown) => e);
  t.notOk(err instanceof UpstreamError);
  t.ok(err instanceof Error);
});

t.test('rate-limit headers are kept and logged; a low remainder warns', async (t) => {
  let remaining = 76;
  const up = await serve(t, (_req, res) => {
    res.writeHead(200, { 'ratelimit-limit': '100;w=21600', 'ratelimit-remaining': `${remaining};w=21600` });
    res.end();
  });
  const { c, logs } = client(t, config(up.url));
  t.equal(c.rateLimit, undefined);
  await text(await c.request({ ...pull('library/alpine'), method: 'HEAD' }));
  t.match(c.rateLimit, { limit: 100, remaining: 76 });
  t.ok(c.rateLimit!.at instanceof Date);
  t.ok(logs.some((l) => l.level === 'info' && (l.obj as { remaining?: number }).remaining === 76));
  remaining = 5;
  await text(await c.request(pull('library/alpine')));
  t.match(c.rateLimit, { limit: 100, remaining: 5 });
  t.ok(logs.some((l) => l.level === 'warn' && (l.obj as { remaining?: number }).remaining === 5));
});

/** Resolves once `store` has finished its next write (the client does not await it). */
function nextWrite(store: Keyv): Promise<void> {
  return new Promise((resolve) => store.hooks.addHandler(KeyvHooks.POST_SET, () => resolve()));
}

/** An upstream that sends the given rate-limit headers, and two nodes' Upstreams over it sharing `store`. */
async function twoNodes(t: Test, storeA: Keyv, storeB: Keyv, headers: { remaining: number }) {
  const up = await serve(t, (_req, res) => {
    res.writeHead(200, { 'ratelimit-limit': '100;w=21600', 'ratelimit-remaining': `${headers.remaining};w=21600` });
    res.end();
  });
  const a = new Upstreams({ upstreams: [config(up.url)] }, { rateLimits: storeA });
  const b = new Upstreams({ upstreams: [config(up.url)] }, { rateLimits: storeB });
  t.teardown(() => Promise.all([a.close(), b.close()]));
  return { a: a.get('test'), b: b.get('test') };
}

t.test('rate-limit values seen by one node are read by another through the shared cache', async (t) => {
  const store = new Keyv();
  const headers = { remaining: 76 };
  const { a, b } = await twoNodes(t, store, store, headers);
  t.equal(await b.sharedRateLimit(), undefined, 'nothing seen anywhere yet');
  const written = nextWrite(store);
  await text(await a.request(pull('library/alpine')));
  await written;
  const seen = await b.sharedRateLimit();
  t.match(seen, { limit: 100, remaining: 76 });
  t.ok(seen!.at instanceof Date);
  t.equal(b.rateLimit, undefined, "b's own value is still unknown");
  t.same(await a.sharedRateLimit(), a.rateLimit, "a's own value is the newest");
  // b now sees a newer value itself and shares it: a reads it, newer than its own.
  headers.remaining = 40;
  const again = nextWrite(store);
  await text(await b.request(pull('library/alpine')));
  await again;
  t.match(await a.sharedRateLimit(), { limit: 100, remaining: 40 }, 'the newest value, from the other node');
  t.match(await b.sharedRateLimit(), { remaining: 40 });
});

t.test('rate-limit values shared between two nodes through PostgreSQL', async (t) => {
  // Two database handles on one schema: two nodes, each with its own LRU in front of the shared table.
  const open: PostgresDatabase[] = [];
  const schema = await tempSchema(t, () => Promise.all(open.map((d) => d.close())));
  for (let i = 0; i < 2; i++) open.push(await PostgresDatabase.open({ url: POSTGRES_URL, schema, poolSize: 2 }));
  const errors: unknown[] = [];
  const storeA = sharedKeyv(open[0]!, 'ratelimits', (e) => errors.push(e));
  const storeB = sharedKeyv(open[1]!, 'ratelimits', (e) => errors.push(e));
  const { a, b } = await twoNodes(t, storeA, storeB, { remaining: 76 });
  t.equal(await b.sharedRateLimit(), undefined);
  const written = nextWrite(storeA);
  await text(await a.request(pull('library/alpine')));
  await written;
  t.match(await b.sharedRateLimit(), { limit: 100, remaining: 76 }, 'read through the database');
  const raw = await adminQuery(`SELECT key FROM ${quoteIdent(schema)}.keyv`);
  t.same(raw.rows, [{ key: 'ratelimits:test' }], 'one row, under the upstream name');
  t.same(errors, []);
});

t.test('Upstreams holds one client per configured upstream sharing one token store', async (t) => {
  const up = await serve(t, (_req, res) => res.end('x'));
  const ups = new Upstreams({ upstreams: [config(up.url, { name: 'one' }), config(up.url, { name: 'two' })] });
  t.teardown(() => ups.close());
  t.same(ups.names, ['one', 'two']);
  t.equal(ups.get('one').name, 'one');
  t.ok(ups.has('two'));
  t.throws(() => ups.get('three'), /no upstream named "three"/);
  t.equal(await ups.get('two').ping(), true);
  const store = new Keyv();
  const own = new Upstreams({ upstreams: [config(up.url)] }, { tokens: store });
  t.equal(own.tokens, store);
  await own.close();
});
