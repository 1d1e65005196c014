// The pure parts of upstream auth: WWW-Authenticate parsing and which realms may receive credentials.
import t from 'tap';
import { bearerChallenge, mayReceiveCredentials, parseWwwAuthenticate, registrableDomain } from '../../src/upstream/token-auth.js';
import { UpstreamError, toUpstreamError } from '../../src/upstream/upstream-errors.js';

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

t.test('registrable domain: last two labels, three under co.uk-like suffixes, exact for IPs and single labels', async (t) => {
  t.equal(registrableDomain('registry-1.docker.io'), 'docker.io');
  t.equal(registrableDomain('auth.docker.io'), 'docker.io');
  t.equal(registrableDomain('ghcr.io'), 'ghcr.io');
  t.equal(registrableDomain('a.b.example.co.uk'), 'example.co.uk');
  t.equal(registrableDomain('registry.example.com.au'), 'example.com.au');
  t.equal(registrableDomain('Registry.Example.COM.'), 'example.com');
  t.equal(registrableDomain('127.0.0.1'), '127.0.0.1');
  t.equal(registrableDomain('[::1]'), '::1');
  t.equal(registrableDomain('localhost'), 'localhost');
});

t.test('credentials go only to a realm on the same registrable domain or an allowed host, never downgraded to http', async (t) => {
  const hub = new URL('https://registry-1.docker.io');
  t.ok(mayReceiveCredentials(new URL('https://auth.docker.io/token'), hub, []));
  t.notOk(mayReceiveCredentials(new URL('https://evil.example/token'), hub, []));
  t.ok(mayReceiveCredentials(new URL('https://evil.example/token'), hub, ['evil.example']));
  t.ok(mayReceiveCredentials(new URL('https://auth.example:8443/token'), hub, ['auth.example:8443']));
  t.notOk(mayReceiveCredentials(new URL('http://auth.docker.io/token'), hub, []), 'https upstream, http realm');
  t.notOk(mayReceiveCredentials(new URL('http://localhost:1/t'), new URL('http://127.0.0.1:2'), []));
  t.ok(mayReceiveCredentials(new URL('http://127.0.0.1:1/t'), new URL('http://127.0.0.1:2'), []));
  t.notOk(mayReceiveCredentials(new URL('https://docker.io.evil.example/t'), hub, []));
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
