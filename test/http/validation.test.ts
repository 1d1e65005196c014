// Input validation on every endpoint: repository names, digests, tags, unknown endpoints, wrong
// methods, and a sweep of hostile requests that must never produce a 5xx or a non-OCI error body.
// Paths that must reach the server unnormalised (`..`, `%2e%2e`, `//`) go over a raw socket.
import t from 'tap';
import { startWharf } from '../helpers/server.js';
import { OCI_INDEX, OCI_MANIFEST, assertError, assertHeadError, describe, digestOf, inject, ociErrors, pushBlob, raw, sessionOf } from '../helpers/http.js';

const D = digestOf('validation');
const D512 = digestOf('validation', 'sha512');

// --- names -------------------------------------------------------------------------------------

const BAD_NAMES: Record<string, string> = {
  uppercase: 'Upper/case',
  'dot-dot segment': 'a/../b',
  'encoded dot-dot': 'a/%2e%2e/b',
  'encoded dot-dot, upper hex': '%2E%2E',
  'bare dot-dot': '..',
  'leading slash': '/leading',
  'empty component': 'a//b',
  'trailing slash': 'trailing/',
  'leading separator': '-a',
  'trailing separator': 'a-',
  'triple underscore': 'a___b',
  'encoded slash': 'a%2Fb',
  'encoded space': 'a%20b',
  'NUL byte': 'a%00b',
  '256 characters': 'a'.repeat(256),
  'a component of 256 characters under an org': `org/${'b'.repeat(252)}`,
};

const ENDPOINTS: Array<[string, (name: string) => string]> = [
  ['GET', (n) => `/v2/${n}/tags/list`],
  ['GET', (n) => `/v2/${n}/manifests/latest`],
  ['HEAD', (n) => `/v2/${n}/manifests/latest`],
  ['PUT', (n) => `/v2/${n}/manifests/latest`],
  ['DELETE', (n) => `/v2/${n}/manifests/${D}`],
  ['GET', (n) => `/v2/${n}/blobs/${D}`],
  ['DELETE', (n) => `/v2/${n}/blobs/${D}`],
  ['POST', (n) => `/v2/${n}/blobs/uploads/`],
  ['POST', (n) => `/v2/${n}/blobs/uploads/?digest=${D}`],
  ['GET', (n) => `/v2/${n}/blobs/uploads/123e4567-e89b-42d3-a456-426614174000`],
  ['GET', (n) => `/v2/${n}/referrers/${D}`],
];

t.test('invalid repository names answer 400 NAME_INVALID on every endpoint', async (t) => {
  const { url } = await startWharf(t);
  for (const [what, name] of Object.entries(BAD_NAMES)) {
    for (const [method, path] of ENDPOINTS) {
      const res = await raw(url, method, path(name), method === 'PUT' || method === 'POST' ? { body: '{}' } : {});
      if (method === 'HEAD') assertHeadError(t, res, 400, `${what}: ${method} ${path('<name>')}`);
      else assertError(t, res, 400, 'NAME_INVALID', `${what}: ${method} ${path('<name>')}`);
    }
  }
  const res = await raw(url, 'GET', '/v2/_catalog');
  t.same(res.json(), { repositories: [] }, 'no repository was created by any of them');
});

t.test('a 255-character name is valid: it can be pushed to and listed', async (t) => {
  const { app } = await startWharf(t);
  const name = `${'a'.repeat(100)}/${'b'.repeat(154)}`;
  t.equal(name.length, 255);
  assertError(t, await inject(app, 'GET', `/v2/${name}/tags/list`), 404, 'NAME_UNKNOWN', 'unknown, but not invalid');
  const digest = await pushBlob(app, name, 'long name blob');
  t.equal((await inject(app, 'GET', `/v2/${name}/blobs/${digest}`)).status, 200);
  t.same((await inject(app, 'GET', '/v2/_catalog')).json(), { repositories: [name] });
});

t.test('names with every allowed separator are valid', async (t) => {
  const { app } = await startWharf(t);
  for (const name of ['a', 'a.b', 'a_b', 'a__b', 'a-b', 'a--b', 'a/b/c', '0/1', 'my.org/my_team/my-app']) {
    const digest = await pushBlob(app, name, name);
    t.equal((await inject(app, 'GET', `/v2/${name}/blobs/${digest}`)).status, 200, name);
  }
});

// --- digests -----------------------------------------------------------------------------------

const BAD_DIGESTS: Record<string, string> = {
  'not a digest': 'notadigest',
  'short sha256': `sha256:${'a'.repeat(63)}`,
  'long sha256': `sha256:${'a'.repeat(65)}`,
  'uppercase hex': `sha256:${'A'.repeat(64)}`,
  'non-hex': `sha256:${'g'.repeat(64)}`,
  'sha512 with 64 hex': `sha512:${'a'.repeat(64)}`,
  'empty encoded part': 'sha256:',
  'no algorithm': `:${'a'.repeat(64)}`,
  'uppercase algorithm': `SHA256:${'a'.repeat(64)}`,
};

const UNSUPPORTED_DIGESTS: Record<string, string> = {
  md5: 'md5:d41d8cd98f00b204e9800998ecf8427e',
  sha1: 'sha1:da39a3ee5e6b4b0d3255bfef95601890afd80709',
  'sha256+b64u': `sha256+b64u:${'a'.repeat(43)}`,
  blake3: `blake3:${'a'.repeat(64)}`,
};

t.test('invalid and unsupported digests answer 400 DIGEST_INVALID on blobs, manifests, referrers and uploads', async (t) => {
  const { app } = await startWharf(t);
  await pushBlob(app, 'repo', 'exists');
  const { path } = sessionOf(await inject(app, 'POST', '/v2/repo/blobs/uploads/'));
  for (const [what, d] of Object.entries({ ...BAD_DIGESTS, ...UNSUPPORTED_DIGESTS })) {
    // In the path the digest goes as is (':' and '+' are legal there); in a query it is percent-encoded.
    const q = encodeURIComponent(d);
    assertError(t, await inject(app, 'GET', `/v2/repo/blobs/${d}`), 400, 'DIGEST_INVALID', `${what}: GET blob`);
    assertHeadError(t, await inject(app, 'HEAD', `/v2/repo/blobs/${d}`), 400, `${what}: HEAD blob`);
    assertError(t, await inject(app, 'DELETE', `/v2/repo/blobs/${d}`), 400, 'DIGEST_INVALID', `${what}: DELETE blob`);
    assertError(t, await inject(app, 'GET', `/v2/repo/referrers/${d}`), 400, 'DIGEST_INVALID', `${what}: referrers`);
    assertError(t, await inject(app, 'POST', `/v2/repo/blobs/uploads/?digest=${q}`, { body: 'x' }), 400, 'DIGEST_INVALID', `${what}: monolithic`);
    assertError(t, await inject(app, 'POST', `/v2/repo/blobs/uploads/?mount=${q}&from=repo`), 400, 'DIGEST_INVALID', `${what}: mount`);
    assertError(t, await inject(app, 'PUT', `${path}?digest=${q}`), 400, 'DIGEST_INVALID', `${what}: PUT upload`);
    if (d.includes(':')) {
      // A reference with a colon is a digest, never a tag.
      assertError(t, await inject(app, 'GET', `/v2/repo/manifests/${d}`), 400, 'DIGEST_INVALID', `${what}: GET manifest`);
      assertHeadError(t, await inject(app, 'HEAD', `/v2/repo/manifests/${d}`), 400, `${what}: HEAD manifest`);
      assertError(t, await inject(app, 'DELETE', `/v2/repo/manifests/${d}`), 400, 'DIGEST_INVALID', `${what}: DELETE manifest`);
      assertError(t, await inject(app, 'PUT', `/v2/repo/manifests/${d}`, { headers: { 'content-type': OCI_MANIFEST }, body: '{}' }), 400, 'DIGEST_INVALID', `${what}: PUT manifest`);
    }
  }
  t.equal((await inject(app, 'GET', path)).status, 204, 'the session survived every refused PUT');
});

t.test('both supported algorithms are accepted where a digest is expected', async (t) => {
  const { app } = await startWharf(t);
  await pushBlob(app, 'repo', 'exists');
  for (const d of [D, D512]) {
    assertError(t, await inject(app, 'GET', `/v2/repo/blobs/${d}`), 404, 'BLOB_UNKNOWN', d.slice(0, 6));
    assertError(t, await inject(app, 'GET', `/v2/repo/manifests/${d}`), 404, 'MANIFEST_UNKNOWN', d.slice(0, 6));
    t.equal((await inject(app, 'GET', `/v2/repo/referrers/${d}`)).status, 200, `${d.slice(0, 6)} referrers`);
  }
});

// --- tags --------------------------------------------------------------------------------------

t.test('invalid tags: PUT answers 400; GET and HEAD answer 404 MANIFEST_UNKNOWN (a tag that cannot exist is not there); DELETE a 4xx', async (t) => {
  const { app } = await startWharf(t);
  await pushBlob(app, 'repo', 'exists');
  const bad = ['-leading-dash', '.leading-dot', 'x'.repeat(129), 'with%20space', 'semi%3Bcolon', 'a%2Fb', '%C3%BCmlaut'];
  for (const tag of bad) {
    const path = `/v2/repo/manifests/${tag}`;
    const label = tag.slice(0, 20);
    assertError(t, await inject(app, 'PUT', path, { headers: { 'content-type': OCI_MANIFEST }, body: '{}' }), 400, undefined, `PUT ${label}`);
    assertError(t, await inject(app, 'GET', path), 404, 'MANIFEST_UNKNOWN', `GET ${label}`);
    assertHeadError(t, await inject(app, 'HEAD', path), 404, `HEAD ${label}`);
    const del = await inject(app, 'DELETE', path);
    assertError(t, del, del.status === 404 ? 404 : 400, ['MANIFEST_INVALID', 'MANIFEST_UNKNOWN', 'TAG_INVALID'], `DELETE ${label}`);
  }
  assertError(t, await inject(app, 'PUT', `/v2/repo/manifests/${'x'.repeat(129)}`, { headers: { 'content-type': OCI_MANIFEST }, body: '{}' }), 400, 'MANIFEST_INVALID', 'PUT with a 129-character tag');
});

t.test('a 128-character tag and tags with every allowed character are valid', async (t) => {
  const { app } = await startWharf(t);
  await pushBlob(app, 'repo', 'exists');
  for (const tag of ['x'.repeat(128), '_under', 'A.b-C_9', '0']) {
    assertError(t, await inject(app, 'GET', `/v2/repo/manifests/${tag}`), 404, 'MANIFEST_UNKNOWN', tag.slice(0, 20));
  }
});

// --- endpoints and methods ---------------------------------------------------------------------

t.test('unknown endpoints answer 404 with an OCI JSON error body', async (t) => {
  const { url } = await startWharf(t);
  const paths = [
    '/v2/repo/unknown',
    '/v2/repo/blobs',
    '/v2/repo/blobs/',
    '/v2/repo/manifests',
    '/v2/repo/manifests/',
    '/v2/repo/tags',
    '/v2/repo/tags/list/extra',
    '/v2/repo/referrers',
    '/v3/',
    '/nope',
    '/dashboard/nope.js',
    '/v2../',
  ];
  for (const path of paths) {
    const res = await raw(url, 'GET', path);
    assertError(t, res, 404, undefined, path);
    t.match(res.header('content-type'), /^application\/json/, `${path}: JSON`);
  }
});

const WRONG_METHODS: Array<[string, string, string[]]> = [
  ['/v2/', 'POST PUT DELETE PATCH', ['GET', 'HEAD']],
  ['/v2/_catalog', 'POST PUT DELETE PATCH', ['GET']],
  ['/v2/repo/tags/list', 'POST PUT DELETE PATCH', ['GET']],
  ['/v2/repo/manifests/latest', 'POST PATCH', ['GET', 'HEAD', 'PUT', 'DELETE']],
  [`/v2/repo/blobs/${D}`, 'POST PUT PATCH', ['GET', 'HEAD', 'DELETE']],
  ['/v2/repo/blobs/uploads/', 'GET PUT PATCH DELETE', ['POST']],
  ['/v2/repo/blobs/uploads/123e4567-e89b-42d3-a456-426614174000', 'POST', ['GET', 'PATCH', 'PUT', 'DELETE']],
  [`/v2/repo/referrers/${D}`, 'POST PUT DELETE PATCH', ['GET']],
];

t.test('a method an endpoint does not support answers 405 UNSUPPORTED with Allow', async (t) => {
  const { app } = await startWharf(t);
  for (const [path, methods, allowed] of WRONG_METHODS) {
    for (const method of methods.split(' ')) {
      const res = await inject(app, method, path, method === 'GET' || method === 'DELETE' ? {} : { body: '' });
      assertError(t, res, 405, 'UNSUPPORTED', `${method} ${path}`);
      const allow = (res.header('allow') ?? '').split(',').map((s) => s.trim()).filter(Boolean).sort();
      t.same(allow, [...allowed].sort(), `${method} ${path}: Allow`);
    }
  }
});

t.test('OPTIONS on a known endpoint answers 405 UNSUPPORTED, not 404', async (t) => {
  const { app } = await startWharf(t);
  for (const path of ['/v2/', '/v2/repo/manifests/latest', `/v2/repo/blobs/${D}`, '/v2/repo/tags/list']) {
    assertError(t, await inject(app, 'OPTIONS', path), 405, 'UNSUPPORTED', `OPTIONS ${path}`);
  }
});

t.test('a path with malformed percent-encoding answers 400 with an OCI error body and the API version header', async (t) => {
  const { url } = await startWharf(t);
  for (const path of ['/v2/%zz/tags/list', '/v2/a/blobs/%', '/v2/%ff%fe/tags/list', '/v2/a/referrers/%zz']) {
    const res = await raw(url, 'GET', path);
    assertError(t, res, 400, undefined, path);
    t.equal(res.header('docker-distribution-api-version'), 'registry/2.0', `${path}: API version header`);
  }
});

// --- hostile input sweep -----------------------------------------------------------------------

interface Hostile {
  method: string;
  path: string;
  /** When the request is odd but legitimate: the status it must get instead of a 4xx. */
  status?: number;
  headers?: Record<string, string>;
  body?: Buffer | string;
}

function hostileRequests(session: string): Hostile[] {
  const long = (n: number) => 'a'.repeat(n);
  const manifest = (doc: unknown) => ({ headers: { 'content-type': OCI_MANIFEST }, body: typeof doc === 'string' ? doc : JSON.stringify(doc) });
  const desc = (over: Record<string, unknown>) => ({ mediaType: 'application/octet-stream', digest: D, size: 1, ...over });
  const m = (over: Record<string, unknown>) => ({ schemaVersion: 2, mediaType: OCI_MANIFEST, config: desc({}), layers: [], ...over });
  return [
    // traversal in every position
    { method: 'GET', path: '/v2/../../etc/passwd' },
    { method: 'GET', path: '/v2/%2e%2e/%2e%2e/etc/passwd' },
    { method: 'GET', path: '/v2/..%2f..%2fetc%2fpasswd/tags/list' },
    { method: 'GET', path: '/v2/a/blobs/..%2f..%2fmetadata.db' },
    { method: 'GET', path: '/v2/a/blobs/sha256:..%2f..%2f..%2fmetadata.db' },
    { method: 'GET', path: '/v2/a/manifests/..%2f..%2fmetadata.db' },
    { method: 'GET', path: '/v2/a/manifests/..' },
    { method: 'DELETE', path: '/v2/a/manifests/..%2F..' },
    { method: 'GET', path: '/v2/a/blobs/uploads/..%2f..%2fmetadata.db' },
    { method: 'GET', path: '/v2/a/blobs/uploads/%2e%2e' },
    { method: 'DELETE', path: '/v2/a/blobs/uploads/..' },
    { method: 'GET', path: '/v2/a/blobs/uploads/.ingest-0000' },
    { method: 'PUT', path: `/v2/a/blobs/uploads/..%2f..%2fmetadata.db?digest=${D}` },
    { method: 'PATCH', path: '/v2/a/blobs/uploads/..%2fx', body: 'x' },
    // NUL, bad percent-encoding, odd bytes
    { method: 'GET', path: '/v2/a/manifests/%00' },
    { method: 'GET', path: '/v2/%00/tags/list' },
    { method: 'GET', path: '/v2/a%00b/tags/list' },
    { method: 'GET', path: '/v2/%zz/tags/list' },
    { method: 'GET', path: '/v2/a/referrers/%zz' },
    { method: 'GET', path: '/v2/a/blobs/%' },
    { method: 'GET', path: '/v2/a/tags/list?n=%zz' },
    { method: 'GET', path: '/v2/a/tags/list?last=%ff%fe', status: 200 },
    { method: 'GET', path: '/v2/%ff%fe/tags/list' },
    { method: 'GET', path: '/v2/a/manifests/%F0%9F%90%8B' },
    // sizes
    { method: 'GET', path: `/v2/_catalog?n=${'9'.repeat(400)}` },
    { method: 'GET', path: '/v2/_catalog?n=-1' },
    { method: 'GET', path: `/v2/${'a/'.repeat(2000)}tags/list` },
    { method: 'GET', path: `/v2/${long(8000)}/tags/list` },
    { method: 'GET', path: `/v2/a/manifests/${long(5000)}` },
    { method: 'GET', path: `/v2/a/blobs/sha256:${long(5000)}` },
    { method: 'GET', path: `/v2/a/referrers/sha256:${long(5000)}` },
    // digests and references
    { method: 'GET', path: `/v2/a/manifests/sha256:${'A'.repeat(64)}` },
    { method: 'GET', path: '/v2/a/manifests/:' },
    { method: 'GET', path: '/v2/a/manifests/latest:tag' },
    { method: 'GET', path: '/v2/a/blobs/sha256:' },
    { method: 'HEAD', path: '/v2/a/blobs/sha256:zz' },
    { method: 'HEAD', path: '/v2/../x' },
    { method: 'GET', path: `/v2/a/blobs/md5:${'a'.repeat(32)}` },
    // upload parameters
    { method: 'POST', path: '/v2/a/blobs/uploads/?digest=sha256:..%2f..%2fx', body: 'x' },
    { method: 'POST', path: '/v2/a/blobs/uploads/?digest=', body: 'x' },
    { method: 'POST', path: '/v2/a/blobs/uploads/?mount=..%2f..%2fetc&from=b' },
    { method: 'POST', path: `/v2/a/blobs/uploads/?mount=${D}&from=..%2fb` },
    { method: 'POST', path: `/v2/a/blobs/uploads/?mount=${D}&from=` },
    { method: 'POST', path: `/v2/a/blobs/uploads/?mount=${D}&from=${long(300)}` },
    { method: 'PUT', path: `/v2/a/blobs/uploads/123e4567-e89b-42d3-a456-426614174000?digest=${D}`, body: 'x' },
    { method: 'PUT', path: `${session}?digest=sha256:zz` },
    { method: 'PUT', path: `${session}?digest=${digestOf('not what was sent')}`, body: 'x' },
    { method: 'PATCH', path: session, headers: { 'content-range': 'bytes=99999999999999999999-999999999999999999999' }, body: 'x' },
    { method: 'PATCH', path: session, headers: { 'content-range': '0-18446744073709551615' }, body: 'x' },
    { method: 'PATCH', path: session, headers: { 'content-range': '5-2' }, body: 'x' },
    { method: 'PATCH', path: session, headers: { 'content-range': 'garbage' }, body: 'x' },
    { method: 'PATCH', path: session, headers: { 'content-range': '-1--5' }, body: 'x' },
    // manifest bodies
    { method: 'PUT', path: '/v2/a/manifests/latest', ...manifest('['.repeat(200000)) },
    { method: 'PUT', path: '/v2/a/manifests/latest', ...manifest('{"a":'.repeat(50000)) },
    { method: 'PUT', path: '/v2/a/manifests/latest', headers: { 'content-type': OCI_MANIFEST }, body: Buffer.from([0xff, 0xfe, 0x00, 0x7b]) },
    { method: 'PUT', path: '/v2/a/manifests/latest', ...manifest('null') },
    { method: 'PUT', path: '/v2/a/manifests/latest', ...manifest('1e400') },
    { method: 'PUT', path: '/v2/a/manifests/latest', ...manifest(m({ config: desc({ digest: 'sha256:../../../etc/passwd' }) })) },
    { method: 'PUT', path: '/v2/a/manifests/latest', ...manifest(m({ config: desc({ size: 1e400 }) })) },
    { method: 'PUT', path: '/v2/a/manifests/latest', ...manifest(m({ config: desc({ size: -1 }) })) },
    { method: 'PUT', path: '/v2/a/manifests/latest', ...manifest(m({ config: desc({ size: 2 ** 60 }) })) },
    { method: 'PUT', path: '/v2/a/manifests/latest', ...manifest(m({ config: desc({ mediaType: 42 }) })) },
    { method: 'PUT', path: '/v2/a/manifests/latest', ...manifest(m({ layers: [null, 1, 'x'] })) },
    { method: 'PUT', path: '/v2/a/manifests/latest', ...manifest(m({ layers: Array.from({ length: 20000 }, (_, i) => desc({ digest: digestOf(String(i)) })) })) },
    { method: 'PUT', path: '/v2/a/manifests/latest', ...manifest(m({ subject: desc({ digest: 'md5:abc' }) })) },
    { method: 'PUT', path: '/v2/a/manifests/latest', ...manifest(m({ annotations: ['x'] })) },
    { method: 'PUT', path: '/v2/a/manifests/latest', ...manifest(m({ artifactType: { x: 1 } })) },
    { method: 'PUT', path: '/v2/a/manifests/latest', ...manifest('{"__proto__":{"polluted":true},"schemaVersion":2}') },
    { method: 'PUT', path: '/v2/a/manifests/latest', ...manifest('{"constructor":{"prototype":{"polluted":true}}}') },
    { method: 'PUT', path: '/v2/a/manifests/latest', headers: { 'content-type': OCI_INDEX }, body: JSON.stringify({ schemaVersion: 2, mediaType: OCI_INDEX, manifests: [null] }) },
    { method: 'PUT', path: '/v2/a/manifests/latest', headers: { 'content-type': OCI_INDEX }, body: JSON.stringify({ schemaVersion: 2, mediaType: OCI_INDEX, manifests: 'x' }) },
    { method: 'PUT', path: '/v2/a/manifests/latest', headers: { 'content-type': ';;;' }, body: '{}' },
    { method: 'PUT', path: '/v2/a/manifests/latest', headers: { 'content-type': 'application/vnd.docker.distribution.manifest.v1+prettyjws' }, body: '{"schemaVersion":1}' },
    { method: 'PUT', path: '/v2/a/manifests/latest', headers: { 'content-type': 'text/html' }, body: '<html></html>' },
    { method: 'PUT', path: '/v2/a/manifests/latest?tag=..%2F..%2Fx', ...manifest(m({})) },
    { method: 'PUT', path: `/v2/a/manifests/latest?tag=${long(200)}`, ...manifest(m({})) },
    { method: 'PUT', path: '/v2/a/manifests/latest', headers: { 'content-type': OCI_MANIFEST, 'content-length': '99999999999' }, body: '' },
    // listings
    { method: 'GET', path: '/v2/a/tags/list?n=1e3' },
    { method: 'GET', path: '/v2/a/tags/list?n=0x10' },
    { method: 'GET', path: `/v2/a/tags/list?last=${long(10000)}`, status: 200 },
    // methods the server has no route for
    { method: 'OPTIONS', path: '/v2/' },
    { method: 'TRACE', path: '/v2/' },
    { method: 'PROPFIND', path: '/v2/a/manifests/latest' },
    { method: 'DELETE', path: '/v2/_catalog' },
    { method: 'POST', path: '/healthz' },
  ];
}

t.test('hostile requests never answer 5xx, and every error is an OCI error body', async (t) => {
  const { url, app } = await startWharf(t);
  await pushBlob(app, 'a', 'a exists');
  const session = sessionOf(await inject(app, 'POST', '/v2/a/blobs/uploads/')).path;
  for (const r of hostileRequests(session)) {
    const label = `${r.method} ${r.path.length > 80 ? `${r.path.slice(0, 80)}…` : r.path}`;
    let res;
    try {
      res = await raw(url, r.method, r.path, { headers: r.headers ?? {}, ...(r.body !== undefined ? { body: r.body } : {}) });
    } catch (err) {
      t.fail(`${label}: the server answered`, { error: String(err) });
      continue;
    }
    if (r.status !== undefined) {
      t.equal(res.status, r.status, `${label}: ${r.status}`, describe(res));
      continue;
    }
    t.ok(res.status >= 400 && res.status < 500, `${label}: 4xx (got ${res.status})`, describe(res));
    if (r.method !== 'HEAD') {
      t.match(res.header('content-type'), /^application\/json/, `${label}: JSON error`);
      ociErrors(t, res, label);
    }
  }
  t.equal((await raw(url, 'GET', '/v2/')).status, 200, 'the server is still up');
  t.same((await raw(url, 'GET', '/v2/_catalog')).json(), { repositories: ['a'] }, 'no repository was created');
});

t.test('malformed HTTP framing never answers 5xx', async (t) => {
  const { url } = await startWharf(t);
  const cases: Hostile[] = [
    { method: 'POST', path: `/v2/a/blobs/uploads/?digest=${D}`, headers: { 'content-length': 'abc' }, body: 'x' },
    { method: 'PUT', path: '/v2/a/manifests/latest', headers: { 'content-length': '-1' }, body: '{}' },
  ];
  for (const r of cases) {
    let status = 0;
    try {
      status = (await raw(url, r.method, r.path, { headers: r.headers ?? {}, ...(r.body !== undefined ? { body: r.body } : {}) })).status;
    } catch {
      status = 0; // the connection was refused outright: acceptable for broken framing
    }
    t.ok(status === 0 || (status >= 400 && status < 500), `${r.method} ${r.path} with ${JSON.stringify(r.headers)}: no 5xx (got ${status})`);
  }
  t.equal((await raw(url, 'GET', '/v2/')).status, 200, 'the server is still up');
});
