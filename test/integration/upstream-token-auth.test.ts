// Upstream auth: WWW-Authenticate parsing and which realms may receive credentials (the rule on its
// own, then against the reference registry and its token server).
import Keyv from 'keyv';
import t from 'tap';
import { bearerChallenge, mayReceiveCredentials, parseWwwAuthenticate, registrableDomain } from '../../src/upstream/token-auth.js';
import { UpstreamError, toUpstreamError } from '../../src/upstream/upstream-errors.js';
import { UpstreamClient } from '../../src/upstream/upstream-client.js';
import { upstreamConfig } from '../helpers/upstream-config.js';
import { pushTestImage, startDockerRegistry } from '../helpers/docker-registry.js';

t.test('parses a Docker Hub bearer challenge', async (t) => {
  const c = parseWwwAuthenticate('Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/alpine:pull"');
  t.same(c, [{ scheme: 'bearer', params: { realm: 'https://auth.docker.io/token', service: 'registry.docker.io', scope: 'repository:library/alpine:pull' } }]);
});

t.test('parses several challenges, quoted commas, escapes, unquoted values and several headers', async (t) => {
  const c = parseWwwAuthenticate([
    'Basic realm="a, \\"quoted\\" realm", charset=UTF-8, Bearer realm="https://r.example/t?x=1,2",scope="repository:a:pull repository:b:pull"',
    'Negotiate abc+/==, Foo',
  ]);
  t.same(
    c.map((x) => x.scheme),
    ['basic', 'bearer', 'negotiate', 'foo'],
  );
  t.equal(c[0]!.params.realm, 'a, "quoted" realm');
  t.equal(c[0]!.params.charset, 'UTF-8');
  t.equal(c[1]!.params.realm, 'https://r.example/t?x=1,2');
  t.equal(c[1]!.params.scope, 'repository:a:pull repository:b:pull');
  t.equal(c[2]!.token68, 'abc+/==');
  t.same(parseWwwAuthenticate(undefined), []);
  t.same(parseWwwAuthenticate(''), []);
});

t.test('picks the bearer challenge with an http(s) realm', async (t) => {
  t.same(bearerChallenge(parseWwwAuthenticate('Basic realm="x", Bearer realm="https://a.example/token",service="s"')), {
    realm: 'https://a.example/token',
    service: 's',
    scope: undefined,
  });
  t.equal(bearerChallenge(parseWwwAuthenticate('Bearer realm="file:///etc/passwd"')), undefined);
  t.equal(bearerChallenge(parseWwwAuthenticate('Basic realm="x"')), undefined);
});

t.test('registrable domain from the Public Suffix List: none for IPs, single labels and shared suffixes', async (t) => {
  t.equal(registrableDomain('registry-1.docker.io'), 'docker.io');
  t.equal(registrableDomain('auth.docker.io'), 'docker.io');
  t.equal(registrableDomain('ghcr.io'), 'ghcr.io');
  t.equal(registrableDomain('a.b.example.co.uk'), 'example.co.uk');
  t.equal(registrableDomain('registry.example.com.au'), 'example.com.au');
  t.equal(registrableDomain('Registry.Example.COM.'), 'example.com');
  t.equal(registrableDomain('one.herokuapp.com'), 'one.herokuapp.com', 'a private suffix: each app is its own domain');
  t.equal(registrableDomain('herokuapp.com'), undefined, 'a suffix itself is nobody\'s domain');
  t.equal(registrableDomain('127.0.0.1'), undefined);
  t.equal(registrableDomain('[::1]'), undefined);
  t.equal(registrableDomain('localhost'), undefined);
});

t.test('credentials go only to the same origin, a realm on the same registrable domain or an allowed host, never downgraded to http', async (t) => {
  const hub = new URL('https://registry-1.docker.io');
  t.ok(mayReceiveCredentials(new URL('https://auth.docker.io/token'), hub, []));
  t.notOk(mayReceiveCredentials(new URL('https://evil.example/token'), hub, []));
  t.ok(mayReceiveCredentials(new URL('https://evil.example/token'), hub, ['evil.example']));
  t.ok(mayReceiveCredentials(new URL('https://auth.example:8443/token'), hub, ['auth.example:8443']));
  t.notOk(mayReceiveCredentials(new URL('https://auth.example:8443/token'), hub, ['auth.example:9443']), 'an allowed host:port is that port only');
  t.notOk(mayReceiveCredentials(new URL('http://auth.docker.io/token'), hub, []), 'https upstream, http realm');
  t.notOk(mayReceiveCredentials(new URL('https://docker.io.evil.example/t'), hub, []));
  t.notOk(mayReceiveCredentials(new URL('https://two.herokuapp.com/t'), new URL('https://one.herokuapp.com'), []), 'two apps under a shared suffix');
  t.ok(mayReceiveCredentials(new URL('https://auth.example.com/t'), new URL('https://registry.example.com:5000'), []), 'the default port on the same domain');
  t.ok(mayReceiveCredentials(new URL('https://auth.example.com:5000/t'), new URL('https://registry.example.com:5000'), []), "the upstream's own port on the same domain");
  t.notOk(mayReceiveCredentials(new URL('https://auth.example.com:9999/t'), new URL('https://registry.example.com'), []), 'another port on the same domain');
  t.ok(mayReceiveCredentials(new URL('http://127.0.0.1:2/t'), new URL('http://127.0.0.1:2'), []), 'the same origin');
});

t.test('a token realm on the same IP but another port does not receive the upstream password', async (t) => {
  t.notOk(mayReceiveCredentials(new URL('http://127.0.0.1:1/t'), new URL('http://127.0.0.1:2'), []));
  t.notOk(mayReceiveCredentials(new URL('http://[::1]:1/t'), new URL('http://[::1]:2'), []));
  t.notOk(mayReceiveCredentials(new URL('http://localhost:1/t'), new URL('http://localhost:2'), []), 'no registrable domain: exact origin only');
  t.notOk(mayReceiveCredentials(new URL('https://registry.example.com:8443/t'), new URL('https://registry.example.com'), []), 'same host, another port');
  t.ok(mayReceiveCredentials(new URL('http://127.0.0.1:1/t'), new URL('http://127.0.0.1:2'), ['127.0.0.1:1']), 'unless allowed');

  // The real thing: the reference registry on 127.0.0.1 sends Wharf to a token server on another port.
  const registry = await startDockerRegistry(t, { auth: 'token' });
  const ts = registry.tokenServer!;
  await pushTestImage(registry, 'team/app', 'v1');
  const pull = async (allowedRealms: string[]): Promise<number> => {
    const c = new UpstreamClient(upstreamConfig(registry.url, { allowedRealms, ...registry.users[0]! }), { tokens: new Keyv() });
    t.teardown(() => c.close());
    const res = await c.request({ method: 'GET', path: '/v2/team/app/manifests/v1', repository: 'team/app', headers: { accept: 'application/vnd.oci.image.manifest.v1+json' } });
    for await (const _ of res.body) void _;
    return res.status;
  };
  const before = ts.requests.length;
  t.equal(await pull([]), 401, 'asked anonymously, the token grants nothing');
  const asked = ts.requests.slice(before);
  t.ok(asked.length > 0, 'the realm was asked');
  t.ok(asked.every((r) => r.headers.authorization === undefined && r.account === undefined), 'without the password');
  t.equal(await pull([new URL(ts.url).host]), 200, 'allowedRealms names it: credentials sent, pull works');
  t.equal(ts.requests.at(-1)!.account, registry.users[0]!.username);
});

t.test('undici errors map to UpstreamError kinds naming the upstream and its URL, never user info', async (t) => {
  const ref = { name: 'hub', url: 'https://user:secret@registry.example' };
  const timeout = toUpstreamError(Object.assign(new Error('x'), { code: 'UND_ERR_HEADERS_TIMEOUT' }), ref) as UpstreamError;
  t.equal(timeout.kind, 'timeout');
  t.match(timeout.message, /upstream "hub" \(https:\/\/registry\.example\).*timeouts\.headers/);
  t.notMatch(timeout.message, /secret/);
  t.equal(timeout.upstream, 'hub');
  const refused = toUpstreamError(Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' }), ref) as UpstreamError;
  t.equal(refused.kind, 'unreachable');
  t.match(refused.message, /ECONNREFUSED/);
  const abort = Object.assign(new Error('aborted'), { name: 'AbortError' });
  t.equal(toUpstreamError(abort, ref), abort, 'aborts pass through');
});
