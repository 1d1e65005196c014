// PUT/GET/HEAD/DELETE /v2/<name>/manifests/<reference>: every supported manifest kind stored and served
// byte for byte, reference checks on PUT, tags (?tag=, OCI-Tag), OCI-Subject, deletion, sha512.
import t, { type Test } from 'tap';
import type { FastifyInstance } from 'fastify';
import { startWharf } from '../helpers/server.js';
import {
  DOCKER_MANIFEST,
  DOCKER_MANIFEST_LIST,
  OCI_CONFIG,
  OCI_EMPTY,
  OCI_INDEX,
  OCI_LAYER,
  OCI_MANIFEST,
  artifactManifest,
  assertError,
  assertHeadError,
  descriptorOf,
  digestOf,
  imageManifest,
  inject,
  pushBlob,
  pushManifest,
  raw,
  type Res,
} from '../helpers/http.js';

/** GET and HEAD by `reference` return exactly `body`, `mediaType` and `digest`. */
async function assertServed(t: Tap, app: FastifyInstance, repo: string, reference: string, body: string | Buffer, mediaType: string) {
  const bytes = Buffer.from(body);
  const digest = digestOf(bytes);
  const get = await inject(app, 'GET', `/v2/${repo}/manifests/${reference}`, { headers: { accept: `${mediaType}, ${OCI_MANIFEST}, ${OCI_INDEX}` } });
  t.equal(get.status, 200, `GET ${reference}: 200`);
  t.ok(get.body.equals(bytes), `GET ${reference}: the exact bytes sent`, { got: get.text, want: bytes.toString() });
  t.equal(get.header('content-type'), mediaType, `GET ${reference}: Content-Type is the stored media type`);
  t.equal(get.header('docker-content-digest'), digest, `GET ${reference}: Docker-Content-Digest`);
  t.equal(get.header('content-length'), String(bytes.length), `GET ${reference}: Content-Length`);
  const head = await inject(app, 'HEAD', `/v2/${repo}/manifests/${reference}`);
  t.equal(head.status, 200, `HEAD ${reference}: 200`);
  t.equal(head.body.length, 0, `HEAD ${reference}: no body`);
  t.equal(head.header('content-type'), mediaType, `HEAD ${reference}: Content-Type`);
  t.equal(head.header('docker-content-digest'), digest, `HEAD ${reference}: Docker-Content-Digest`);
  t.equal(head.header('content-length'), String(bytes.length), `HEAD ${reference}: Content-Length`);
}
type Tap = Test;

async function put(app: FastifyInstance, repo: string, reference: string, body: string | Buffer, contentType: string): Promise<Res> {
  return inject(app, 'PUT', `/v2/${repo}/manifests/${reference}`, { headers: { 'content-type': contentType }, body });
}

/** The manifest is not stored: 404 by digest (and by tag when given). */
async function assertNotStored(t: Tap, app: FastifyInstance, repo: string, body: string, tag?: string) {
  const res = await inject(app, 'GET', `/v2/${repo}/manifests/${digestOf(body)}`);
  t.equal(res.status, 404, 'not stored: GET by digest is 404');
  if (tag) t.equal((await inject(app, 'GET', `/v2/${repo}/manifests/${tag}`)).status, 404, `not stored: GET ${tag} is 404`);
}

// --- kinds of manifests ------------------------------------------------------------------------

t.test('OCI image manifest: PUT by tag answers 201 with Location and Docker-Content-Digest; GET/HEAD by tag and digest', async (t) => {
  const { app } = await startWharf(t);
  const m = await imageManifest(app, 'org/app', 'image');
  const res = await put(app, 'org/app', 'v1', m.body, OCI_MANIFEST);
  t.equal(res.status, 201);
  t.equal(res.header('location'), `/v2/org/app/manifests/${m.digest}`);
  t.equal(res.header('docker-content-digest'), m.digest);
  t.equal(res.header('oci-subject'), undefined, 'no OCI-Subject without a subject');
  await assertServed(t, app, 'org/app', 'v1', m.body, OCI_MANIFEST);
  await assertServed(t, app, 'org/app', m.digest, m.body, OCI_MANIFEST);
});

t.test('OCI image manifest: PUT by digest answers 201 and is served by digest', async (t) => {
  const { app } = await startWharf(t);
  const m = await imageManifest(app, 'repo', 'by-digest');
  const res = await put(app, 'repo', m.digest, m.body, OCI_MANIFEST);
  t.equal(res.status, 201);
  t.equal(res.header('location'), `/v2/repo/manifests/${m.digest}`);
  t.equal(res.header('docker-content-digest'), m.digest);
  t.equal(res.header('oci-tag'), undefined, 'no OCI-Tag without tags');
  await assertServed(t, app, 'repo', m.digest, m.body, OCI_MANIFEST);
});

t.test('odd whitespace, key order, custom fields, data fields and non-ASCII text are kept byte for byte', async (t) => {
  const { app } = await startWharf(t);
  const config = JSON.stringify({ os: 'linux' });
  const layer = 'tiny layer';
  await pushBlob(app, 'repo', config);
  await pushBlob(app, 'repo', layer);
  const body =
    '{\n\t"layers" :[ {"size":' + Buffer.byteLength(layer) + ',  "digest":"' + digestOf(layer) + '","mediaType":"' + OCI_LAYER +
    '", "data": "' + Buffer.from(layer).toString('base64') + '"}  ],\r\n' +
    '   "config":{"mediaType":"' + OCI_CONFIG + '","digest":"' + digestOf(config) + '","size":' + Buffer.byteLength(config) +
    ',"data":"' + Buffer.from(config).toString('base64') + '", "x-custom": {"nested": [1, 2.50, true, null]}},' +
    '"schemaVersion":2 , "mediaType":"' + OCI_MANIFEST + '",' +
    '"annotations":{"org.opencontainers.image.title":"caf\u00e9 \u2615 \u{1F40B}","z":"last","a":"first"},' +
    '"com.example.unknown-field":{"keep":"me"}   }\n\n';
  const res = await put(app, 'repo', 'odd', body, OCI_MANIFEST);
  t.equal(res.status, 201, 'accepted', { body: res.text });
  t.equal(res.header('docker-content-digest'), digestOf(body), 'digest of the exact bytes');
  await assertServed(t, app, 'repo', 'odd', body, OCI_MANIFEST);
});

t.test('a manifest without a mediaType field takes its type from Content-Type', async (t) => {
  const { app } = await startWharf(t);
  const m = await imageManifest(app, 'repo', 'no-media-type');
  const doc = JSON.parse(m.body) as Record<string, unknown>;
  delete doc.mediaType;
  const body = JSON.stringify(doc);
  t.equal((await put(app, 'repo', 'plain', body, OCI_MANIFEST)).status, 201);
  await assertServed(t, app, 'repo', 'plain', body, OCI_MANIFEST);
});

t.test('a Content-Type with parameters is accepted and the stored media type is the bare type', async (t) => {
  const { app } = await startWharf(t);
  const m = await imageManifest(app, 'repo', 'params');
  t.equal((await put(app, 'repo', 'p', m.body, `${OCI_MANIFEST}; charset=utf-8`)).status, 201);
  await assertServed(t, app, 'repo', 'p', m.body, OCI_MANIFEST);
});

t.test('OCI image index: PUT by tag after its children; GET returns it with the index media type', async (t) => {
  const { app } = await startWharf(t);
  const amd = await imageManifest(app, 'multi', 'amd64');
  const arm = await imageManifest(app, 'multi', 'arm64');
  await pushManifest(app, 'multi', amd.digest, amd.body, OCI_MANIFEST);
  await pushManifest(app, 'multi', arm.digest, arm.body, OCI_MANIFEST);
  const index = JSON.stringify({
    schemaVersion: 2,
    mediaType: OCI_INDEX,
    manifests: [
      { ...descriptorOf(OCI_MANIFEST, amd.body), platform: { architecture: 'amd64', os: 'linux' } },
      { ...descriptorOf(OCI_MANIFEST, arm.body), platform: { architecture: 'arm64', os: 'linux', variant: 'v8' } },
    ],
    annotations: { 'org.opencontainers.image.ref.name': 'latest' },
  });
  const res = await put(app, 'multi', 'latest', index, OCI_INDEX);
  t.equal(res.status, 201);
  t.equal(res.header('docker-content-digest'), digestOf(index));
  await assertServed(t, app, 'multi', 'latest', index, OCI_INDEX);
  await assertServed(t, app, 'multi', digestOf(index), index, OCI_INDEX);
});

t.test('nested index: an index whose child is an index', async (t) => {
  const { app } = await startWharf(t);
  const img = await imageManifest(app, 'nest', 'leaf');
  await pushManifest(app, 'nest', img.digest, img.body, OCI_MANIFEST);
  const inner = JSON.stringify({ schemaVersion: 2, mediaType: OCI_INDEX, manifests: [descriptorOf(OCI_MANIFEST, img.body)] });
  await pushManifest(app, 'nest', digestOf(inner), inner, OCI_INDEX);
  const outer = JSON.stringify({ schemaVersion: 2, mediaType: OCI_INDEX, manifests: [descriptorOf(OCI_INDEX, inner)] });
  const res = await put(app, 'nest', 'outer', outer, OCI_INDEX);
  t.equal(res.status, 201);
  await assertServed(t, app, 'nest', 'outer', outer, OCI_INDEX);
  await assertServed(t, app, 'nest', digestOf(inner), inner, OCI_INDEX);
});

t.test('Docker v2 schema 2 manifest and manifest list are stored and served with their media types', async (t) => {
  const { app } = await startWharf(t);
  const config = JSON.stringify({ architecture: 'amd64', os: 'linux', config: {} });
  const layer = Buffer.from('docker layer');
  await pushBlob(app, 'docker/img', config);
  await pushBlob(app, 'docker/img', layer);
  const manifest = JSON.stringify(
    {
      schemaVersion: 2,
      mediaType: DOCKER_MANIFEST,
      config: descriptorOf('application/vnd.docker.container.image.v1+json', config),
      layers: [descriptorOf('application/vnd.docker.image.rootfs.diff.tar.gzip', layer)],
    },
    null,
    3,
  );
  const r1 = await put(app, 'docker/img', 'v2', manifest, DOCKER_MANIFEST);
  t.equal(r1.status, 201, 'schema 2 manifest accepted', { body: r1.text });
  await assertServed(t, app, 'docker/img', 'v2', manifest, DOCKER_MANIFEST);

  const list = JSON.stringify({
    schemaVersion: 2,
    mediaType: DOCKER_MANIFEST_LIST,
    manifests: [{ ...descriptorOf(DOCKER_MANIFEST, manifest), platform: { architecture: 'amd64', os: 'linux' } }],
  });
  const r2 = await put(app, 'docker/img', 'list', list, DOCKER_MANIFEST_LIST);
  t.equal(r2.status, 201, 'manifest list accepted', { body: r2.text });
  await assertServed(t, app, 'docker/img', 'list', list, DOCKER_MANIFEST_LIST);
});

t.test('artifact: artifactType with the empty config {} is stored and served', async (t) => {
  const { app } = await startWharf(t);
  const empty = await inject(app, 'GET', `/v2/art/blobs/${digestOf('{}')}`);
  t.equal(empty.status, 404, 'the empty blob is not there before it is pushed');
  const a = await artifactManifest(app, 'art', 'application/vnd.example.sbom.v1+json', {
    annotations: { 'org.opencontainers.image.created': '2024-01-01T00:00:00Z' },
  });
  t.equal(digestOf('{}'), 'sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a');
  const res = await put(app, 'art', 'sbom', a.body, OCI_MANIFEST);
  t.equal(res.status, 201);
  await assertServed(t, app, 'art', 'sbom', a.body, OCI_MANIFEST);
  const blob = await inject(app, 'GET', `/v2/art/blobs/${digestOf('{}')}`);
  t.equal(blob.text, '{}', 'the empty config blob is served');
  const doc = JSON.parse((await inject(app, 'GET', '/v2/art/manifests/sbom')).text) as { artifactType: string; config: { mediaType: string } };
  t.equal(doc.artifactType, 'application/vnd.example.sbom.v1+json');
  t.equal(doc.config.mediaType, OCI_EMPTY);
});

t.test('a non-distributable layer that is not in the repository is accepted', async (t) => {
  const { app } = await startWharf(t);
  const config = JSON.stringify({ os: 'windows' });
  await pushBlob(app, 'win', config);
  const foreign = {
    mediaType: 'application/vnd.oci.image.layer.nondistributable.v1.tar+gzip',
    digest: digestOf('never pushed: foreign base layer'),
    size: 123456,
    urls: ['https://example.com/layer.tar.gz'],
  };
  const body = JSON.stringify({ schemaVersion: 2, mediaType: OCI_MANIFEST, config: descriptorOf(OCI_CONFIG, config), layers: [foreign] });
  const res = await put(app, 'win', 'oci', body, OCI_MANIFEST);
  t.equal(res.status, 201, 'OCI non-distributable layer', { body: res.text });
  await assertServed(t, app, 'win', 'oci', body, OCI_MANIFEST);

  const dockerConfig = JSON.stringify({ os: 'windows', docker: true });
  await pushBlob(app, 'win', dockerConfig);
  const dockerBody = JSON.stringify({
    schemaVersion: 2,
    mediaType: DOCKER_MANIFEST,
    config: descriptorOf('application/vnd.docker.container.image.v1+json', dockerConfig),
    layers: [{ ...foreign, mediaType: 'application/vnd.docker.image.rootfs.foreign.diff.tar.gzip' }],
  });
  const res2 = await put(app, 'win', 'docker', dockerBody, DOCKER_MANIFEST);
  t.equal(res2.status, 201, 'Docker foreign layer', { body: res2.text });
});

t.test('re-PUT of the same manifest is idempotent and moving a tag points it at the new manifest', async (t) => {
  const { app } = await startWharf(t);
  const a = await imageManifest(app, 'repo', 'a');
  const b = await imageManifest(app, 'repo', 'b');
  t.equal((await put(app, 'repo', 'v1', a.body, OCI_MANIFEST)).status, 201);
  t.equal((await put(app, 'repo', 'v1', a.body, OCI_MANIFEST)).status, 201, 'same bytes again');
  t.equal((await put(app, 'repo', 'v1', b.body, OCI_MANIFEST)).status, 201, 'tag moved');
  await assertServed(t, app, 'repo', 'v1', b.body, OCI_MANIFEST);
  await assertServed(t, app, 'repo', a.digest, a.body, OCI_MANIFEST);
});

t.test('a 4 MiB manifest is accepted', async (t) => {
  const { app } = await startWharf(t);
  const m = await imageManifest(app, 'big', 'pad');
  const doc = JSON.parse(m.body) as Record<string, unknown>;
  const shell = JSON.stringify({ ...doc, annotations: { pad: '' } });
  const body = JSON.stringify({ ...doc, annotations: { pad: 'x'.repeat(4 * 1024 * 1024 - Buffer.byteLength(shell)) } });
  t.equal(Buffer.byteLength(body), 4 * 1024 * 1024);
  const res = await put(app, 'big', 'max', body, OCI_MANIFEST);
  t.equal(res.status, 201, 'exactly 4 MiB', { body: res.text });
  const get = await inject(app, 'GET', '/v2/big/manifests/max');
  t.equal(get.body.length, 4 * 1024 * 1024);
});

// --- refusals ----------------------------------------------------------------------------------

t.test('a manifest with more descriptors than manifests.maxDescriptors is refused with 400 MANIFEST_INVALID naming the limit', async (t) => {
  const { app } = await startWharf(t, { manifests: { maxDescriptors: 3 } });
  const config = JSON.stringify({ os: 'linux' });
  const layers = ['one', 'two', 'three'];
  for (const blob of [config, ...layers]) await pushBlob(app, 'repo', blob);
  const image = (n: number) =>
    JSON.stringify({
      schemaVersion: 2,
      mediaType: OCI_MANIFEST,
      config: descriptorOf(OCI_CONFIG, config),
      layers: layers.slice(0, n).map((l) => descriptorOf(OCI_LAYER, l)),
    });

  const over = image(3);
  const res = await put(app, 'repo', 'over', over, OCI_MANIFEST);
  assertError(t, res, 400, 'MANIFEST_INVALID');
  const error = (res.json() as { errors: Array<{ message: string; detail: Record<string, unknown> }> }).errors[0];
  t.match(error?.message, /4 descriptors, more than the 3 .*manifests\.maxDescriptors/, 'the message names the count, the limit and the setting');
  t.same(error?.detail, { descriptors: 4, limit: 3, setting: 'manifests.maxDescriptors' });
  await assertNotStored(t, app, 'repo', over, 'over');

  const index = JSON.stringify({
    schemaVersion: 2,
    mediaType: OCI_INDEX,
    manifests: ['a', 'b', 'c', 'd'].map((x) => descriptorOf(OCI_MANIFEST, x)),
  });
  assertError(t, await put(app, 'repo', 'index', index, OCI_INDEX), 400, 'MANIFEST_INVALID', 'an index is limited by its children');

  t.equal((await put(app, 'repo', 'at', image(2), OCI_MANIFEST)).status, 201, 'a manifest at the limit is accepted');
});

t.test('a 4 MiB manifest of ~37,000 layers is refused by the default limit at once', async (t) => {
  const { app } = await startWharf(t);
  const layers = Array.from({ length: 37_000 }, (_, i) => ({ mediaType: 'a/b', digest: digestOf(`layer ${i}`), size: 1 }));
  const body = JSON.stringify({ schemaVersion: 2, mediaType: OCI_MANIFEST, config: descriptorOf(OCI_CONFIG, '{}'), layers });
  t.ok(Buffer.byteLength(body) <= 4 * 1024 * 1024, 'within the 4 MiB a manifest may have');
  const t0 = performance.now();
  const refused = await put(app, 'repo', 'big', body, OCI_MANIFEST);
  const ms = performance.now() - t0;
  assertError(t, refused, 400, 'MANIFEST_INVALID');
  t.match(refused.text, /37001 descriptors, more than the 10000 /);
  // Before the limit (and with quadratic parsing) this request held the event loop for 5 to 20 s.
  t.ok(ms < 3000, `refused in ${Math.round(ms)} ms`);
  await assertNotStored(t, app, 'repo', body, 'big');
});

t.test('PUT of a manifest whose layer is not in the repository: 400 MANIFEST_BLOB_UNKNOWN, nothing stored', async (t) => {
  const { app } = await startWharf(t);
  const config = JSON.stringify({ os: 'linux' });
  await pushBlob(app, 'repo', config);
  const body = JSON.stringify({
    schemaVersion: 2,
    mediaType: OCI_MANIFEST,
    config: descriptorOf(OCI_CONFIG, config),
    layers: [descriptorOf(OCI_LAYER, 'missing layer')],
  });
  assertError(t, await put(app, 'repo', 'broken', body, OCI_MANIFEST), 400, 'MANIFEST_BLOB_UNKNOWN');
  await assertNotStored(t, app, 'repo', body, 'broken');
});

t.test('a manifest with many missing layers answers an error of bounded size: the first 100 listed, and how many', async (t) => {
  const { app } = await startWharf(t);
  const config = JSON.stringify({ os: 'linux' });
  await pushBlob(app, 'repo', config);
  const layers = Array.from({ length: 150 }, (_, i) => descriptorOf(OCI_LAYER, `missing ${i}`));
  const body = JSON.stringify({ schemaVersion: 2, mediaType: OCI_MANIFEST, config: descriptorOf(OCI_CONFIG, config), layers });
  const res = await put(app, 'repo', 'broken', body, OCI_MANIFEST);
  assertError(t, res, 400, 'MANIFEST_BLOB_UNKNOWN');
  const error = (res.json() as { errors: Array<{ message: string; detail: { missing: string[]; count: number } }> }).errors[0];
  t.same(error?.detail.missing, layers.slice(0, 100).map((l) => l.digest), 'the first 100, in manifest order');
  t.equal(error?.detail.count, 150);
  t.match(error?.message, /150 items not in repository repo: .* and 140 more; push them first/);
});

t.test('PUT of a manifest whose config is not in the repository: 400 MANIFEST_BLOB_UNKNOWN', async (t) => {
  const { app } = await startWharf(t);
  const layer = 'present layer';
  await pushBlob(app, 'repo', layer);
  const body = JSON.stringify({
    schemaVersion: 2,
    mediaType: OCI_MANIFEST,
    config: descriptorOf(OCI_CONFIG, '{"missing":true}'),
    layers: [descriptorOf(OCI_LAYER, layer)],
  });
  assertError(t, await put(app, 'repo', 'broken', body, OCI_MANIFEST), 400, 'MANIFEST_BLOB_UNKNOWN');
  await assertNotStored(t, app, 'repo', body, 'broken');
});

t.test('PUT of a manifest whose blobs are only in another repository: 400 MANIFEST_BLOB_UNKNOWN', async (t) => {
  const { app } = await startWharf(t);
  const m = await imageManifest(app, 'other', 'elsewhere');
  await pushBlob(app, 'repo', 'repo exists');
  assertError(t, await put(app, 'repo', 'x', m.body, OCI_MANIFEST), 400, 'MANIFEST_BLOB_UNKNOWN');
  await assertNotStored(t, app, 'repo', m.body, 'x');
});

t.test('PUT of an index whose child manifest is missing: 400 MANIFEST_BLOB_UNKNOWN, nothing stored', async (t) => {
  const { app } = await startWharf(t);
  const present = await imageManifest(app, 'repo', 'present');
  await pushManifest(app, 'repo', present.digest, present.body, OCI_MANIFEST);
  const index = JSON.stringify({
    schemaVersion: 2,
    mediaType: OCI_INDEX,
    manifests: [descriptorOf(OCI_MANIFEST, present.body), descriptorOf(OCI_MANIFEST, '{"not":"pushed"}')],
  });
  assertError(t, await put(app, 'repo', 'idx', index, OCI_INDEX), 400, 'MANIFEST_BLOB_UNKNOWN');
  await assertNotStored(t, app, 'repo', index, 'idx');
});

t.test('PUT of an index whose child is only a blob (not a manifest) in the repository: 400 MANIFEST_BLOB_UNKNOWN', async (t) => {
  const { app } = await startWharf(t);
  const m = await imageManifest(app, 'repo', 'child-as-blob');
  await pushBlob(app, 'repo', m.body);
  const index = JSON.stringify({ schemaVersion: 2, mediaType: OCI_INDEX, manifests: [descriptorOf(OCI_MANIFEST, m.body)] });
  assertError(t, await put(app, 'repo', 'idx', index, OCI_INDEX), 400, 'MANIFEST_BLOB_UNKNOWN');
});

t.test('PUT of an index whose child manifest is only in another repository: 400 MANIFEST_BLOB_UNKNOWN', async (t) => {
  const { app } = await startWharf(t);
  const m = await imageManifest(app, 'other', 'child');
  await pushManifest(app, 'other', m.digest, m.body, OCI_MANIFEST);
  await pushBlob(app, 'repo', 'repo exists');
  const index = JSON.stringify({ schemaVersion: 2, mediaType: OCI_INDEX, manifests: [descriptorOf(OCI_MANIFEST, m.body)] });
  assertError(t, await put(app, 'repo', 'idx', index, OCI_INDEX), 400, 'MANIFEST_BLOB_UNKNOWN');
});

t.test('PUT of malformed JSON answers 400 MANIFEST_INVALID', async (t) => {
  const { app } = await startWharf(t);
  for (const body of ['{"schemaVersion": 2,', 'not json at all', '', '\u0000\u0001', '{"a":1}{"b":2}']) {
    assertError(t, await put(app, 'repo', 'bad', body, OCI_MANIFEST), 400, 'MANIFEST_INVALID', JSON.stringify(body));
  }
  assertError(t, await inject(app, 'GET', '/v2/repo/manifests/bad'), 404, ['NAME_UNKNOWN', 'MANIFEST_UNKNOWN'], 'nothing stored');
});

t.test('PUT of JSON that is not a valid manifest answers 400 MANIFEST_INVALID', async (t) => {
  const { app } = await startWharf(t);
  const m = await imageManifest(app, 'repo', 'shape');
  const doc = JSON.parse(m.body) as Record<string, unknown>;
  const cases: Record<string, unknown> = {
    'an array': [doc],
    'a string': 'manifest',
    null: null,
    'schemaVersion 1': { ...doc, schemaVersion: 1 },
    'schemaVersion missing': { ...doc, schemaVersion: undefined },
    'layers not an array': { ...doc, layers: {} },
    'config missing': { ...doc, config: undefined },
    'a descriptor with a bad digest': { ...doc, layers: [{ mediaType: OCI_LAYER, digest: 'sha256:nope', size: 1 }] },
    'a descriptor with a negative size': { ...doc, layers: [{ ...(doc.layers as object[])[0], size: -1 }] },
    'a descriptor with a string size': { ...doc, layers: [{ ...(doc.layers as object[])[0], size: '12' }] },
    'annotations that are not strings': { ...doc, annotations: { a: 1 } },
    'a subject that is not a descriptor': { ...doc, subject: 'sha256:abc' },
  };
  for (const [what, value] of Object.entries(cases)) {
    assertError(t, await put(app, 'repo', 'shape', JSON.stringify(value), OCI_MANIFEST), 400, 'MANIFEST_INVALID', what);
  }
});

t.test('PUT by digest whose body has another digest: 400 DIGEST_INVALID, nothing stored', async (t) => {
  const { app } = await startWharf(t);
  const m = await imageManifest(app, 'repo', 'mismatch');
  const wrong = digestOf(`${m.body} `);
  assertError(t, await put(app, 'repo', wrong, m.body, OCI_MANIFEST), 400, 'DIGEST_INVALID');
  assertError(t, await inject(app, 'GET', `/v2/repo/manifests/${wrong}`), 404, 'MANIFEST_UNKNOWN', 'declared digest');
  assertError(t, await inject(app, 'GET', `/v2/repo/manifests/${m.digest}`), 404, 'MANIFEST_UNKNOWN', 'actual digest');
});

t.test('PUT by a sha512 digest whose body has another digest: 400 DIGEST_INVALID', async (t) => {
  const { app } = await startWharf(t);
  const m = await imageManifest(app, 'repo', 'mismatch512');
  assertError(t, await put(app, 'repo', digestOf('other', 'sha512'), m.body, OCI_MANIFEST), 400, 'DIGEST_INVALID');
});

t.test('PUT of a manifest larger than 4 MiB answers 413 SIZE_INVALID', async (t) => {
  const { app } = await startWharf(t);
  const m = await imageManifest(app, 'big', 'too-big');
  const doc = JSON.parse(m.body) as Record<string, unknown>;
  const body = JSON.stringify({ ...doc, annotations: { pad: 'x'.repeat(4 * 1024 * 1024) } });
  assertError(t, await put(app, 'big', 'huge', body, OCI_MANIFEST), 413, 'SIZE_INVALID');
  assertError(t, await inject(app, 'GET', '/v2/big/manifests/huge'), 404, 'MANIFEST_UNKNOWN', 'nothing stored');
});

t.test('PUT of a manifest larger than 4 MiB over a real socket answers 413 SIZE_INVALID', async (t) => {
  const { app, url } = await startWharf(t);
  const m = await imageManifest(app, 'big', 'too-big-socket');
  const body = Buffer.concat([Buffer.from(m.body), Buffer.alloc(4 * 1024 * 1024, 0x20)]);
  const res = await raw(url, 'PUT', '/v2/big/manifests/huge', { headers: { 'content-type': OCI_MANIFEST }, body });
  assertError(t, res, 413, 'SIZE_INVALID');
});

t.test('Content-Type that disagrees with the mediaType field answers 400 MANIFEST_INVALID', async (t) => {
  const { app } = await startWharf(t);
  const m = await imageManifest(app, 'repo', 'ct');
  assertError(t, await put(app, 'repo', 'ct', m.body, DOCKER_MANIFEST), 400, 'MANIFEST_INVALID', 'Docker type, OCI body');
  assertError(t, await put(app, 'repo', 'ct', m.body, OCI_INDEX), 400, 'MANIFEST_INVALID', 'index type, manifest body');
  await assertNotStored(t, app, 'repo', m.body, 'ct');
});

t.test('an unsupported manifest media type answers 400 MANIFEST_INVALID', async (t) => {
  const { app } = await startWharf(t);
  const m = await imageManifest(app, 'repo', 'unsupported');
  const doc = { ...(JSON.parse(m.body) as Record<string, unknown>), mediaType: 'application/vnd.example.thing+json' };
  assertError(t, await put(app, 'repo', 'u', JSON.stringify(doc), 'application/vnd.example.thing+json'), 400, 'MANIFEST_INVALID');
});

// --- tags and subject --------------------------------------------------------------------------

t.test('PUT by digest with ?tag=a&tag=b tags both and answers one OCI-Tag header per tag', async (t) => {
  const { app } = await startWharf(t);
  const m = await imageManifest(app, 'repo', 'tagged');
  const res = await inject(app, 'PUT', `/v2/repo/manifests/${m.digest}?tag=a&tag=b`, { headers: { 'content-type': OCI_MANIFEST }, body: m.body });
  t.equal(res.status, 201);
  t.same(res.headerValues('oci-tag'), ['a', 'b'], 'one OCI-Tag value per tag');
  t.equal(res.header('docker-content-digest'), m.digest);
  await assertServed(t, app, 'repo', 'a', m.body, OCI_MANIFEST);
  await assertServed(t, app, 'repo', 'b', m.body, OCI_MANIFEST);
  const tags = await inject(app, 'GET', '/v2/repo/tags/list');
  t.same(tags.json(), { name: 'repo', tags: ['a', 'b'] });
});

t.test('OCI-Tag is sent as separate header lines over a real socket', async (t) => {
  const { app, url } = await startWharf(t);
  const m = await imageManifest(app, 'repo', 'tagged-socket');
  const res = await raw(url, 'PUT', `/v2/repo/manifests/${m.digest}?tag=one&tag=two&tag=three`, {
    headers: { 'content-type': OCI_MANIFEST },
    body: m.body,
  });
  t.equal(res.status, 201);
  t.same(res.headerValues('oci-tag'), ['one', 'two', 'three']);
});

t.test('PUT with an invalid ?tag= is refused and stores nothing', async (t) => {
  const { app } = await startWharf(t);
  const m = await imageManifest(app, 'repo', 'badtag');
  const res = await inject(app, 'PUT', `/v2/repo/manifests/${m.digest}?tag=ok&tag=-bad`, { headers: { 'content-type': OCI_MANIFEST }, body: m.body });
  t.equal(res.status, 400);
  t.equal((await inject(app, 'GET', '/v2/repo/manifests/ok')).status, 404, 'the valid tag was not applied either');
});

t.test('a manifest with a subject answers OCI-Subject, whether or not the subject exists', async (t) => {
  const { app } = await startWharf(t);
  const target = await imageManifest(app, 'repo', 'target');
  await pushManifest(app, 'repo', target.digest, target.body, OCI_MANIFEST);
  const present = await artifactManifest(app, 'repo', 'application/vnd.example.sig', { subject: descriptorOf(OCI_MANIFEST, target.body) });
  const r1 = await put(app, 'repo', present.digest, present.body, OCI_MANIFEST);
  t.equal(r1.status, 201);
  t.equal(r1.header('oci-subject'), target.digest, 'existing subject');

  const ghost = descriptorOf(OCI_MANIFEST, '{"never":"pushed"}');
  const dangling = await artifactManifest(app, 'repo', 'application/vnd.example.sig', { subject: ghost });
  const r2 = await put(app, 'repo', dangling.digest, dangling.body, OCI_MANIFEST);
  t.equal(r2.status, 201, 'a missing subject does not block the push');
  t.equal(r2.header('oci-subject'), ghost.digest, 'missing subject');
  await assertServed(t, app, 'repo', dangling.digest, dangling.body, OCI_MANIFEST);
});

t.test('an index with a subject answers OCI-Subject', async (t) => {
  const { app } = await startWharf(t);
  const img = await imageManifest(app, 'repo', 'idx-subject');
  await pushManifest(app, 'repo', img.digest, img.body, OCI_MANIFEST);
  const subject = descriptorOf(OCI_MANIFEST, '{"whatever":1}');
  const index = JSON.stringify({ schemaVersion: 2, mediaType: OCI_INDEX, manifests: [descriptorOf(OCI_MANIFEST, img.body)], subject });
  const res = await put(app, 'repo', digestOf(index), index, OCI_INDEX);
  t.equal(res.status, 201);
  t.equal(res.header('oci-subject'), subject.digest);
});

// --- deletion ----------------------------------------------------------------------------------

t.test('DELETE by digest answers 202 and removes the manifest and all its tags', async (t) => {
  const { app } = await startWharf(t);
  const m = await imageManifest(app, 'repo', 'doomed');
  const keep = await imageManifest(app, 'repo', 'kept');
  await pushManifest(app, 'repo', 'v1', m.body, OCI_MANIFEST);
  await pushManifest(app, 'repo', 'v2', m.body, OCI_MANIFEST);
  await pushManifest(app, 'repo', 'other', keep.body, OCI_MANIFEST);
  const del = await inject(app, 'DELETE', `/v2/repo/manifests/${m.digest}`);
  t.equal(del.status, 202);
  assertError(t, await inject(app, 'GET', `/v2/repo/manifests/${m.digest}`), 404, 'MANIFEST_UNKNOWN', 'by digest');
  assertError(t, await inject(app, 'GET', '/v2/repo/manifests/v1'), 404, 'MANIFEST_UNKNOWN', 'tag v1');
  assertError(t, await inject(app, 'GET', '/v2/repo/manifests/v2'), 404, 'MANIFEST_UNKNOWN', 'tag v2');
  assertHeadError(t, await inject(app, 'HEAD', '/v2/repo/manifests/v1'), 404, 'HEAD tag v1');
  t.same((await inject(app, 'GET', '/v2/repo/tags/list')).json(), { name: 'repo', tags: ['other'] });
  await assertServed(t, app, 'repo', 'other', keep.body, OCI_MANIFEST);
  assertError(t, await inject(app, 'DELETE', `/v2/repo/manifests/${m.digest}`), 404, 'MANIFEST_UNKNOWN', 'second delete');
});

t.test('DELETE by tag answers 202 and removes only that tag', async (t) => {
  const { app } = await startWharf(t);
  const m = await imageManifest(app, 'repo', 'untag');
  await pushManifest(app, 'repo', 'v1', m.body, OCI_MANIFEST);
  await pushManifest(app, 'repo', 'v2', m.body, OCI_MANIFEST);
  t.equal((await inject(app, 'DELETE', '/v2/repo/manifests/v1')).status, 202);
  assertError(t, await inject(app, 'GET', '/v2/repo/manifests/v1'), 404, 'MANIFEST_UNKNOWN');
  await assertServed(t, app, 'repo', 'v2', m.body, OCI_MANIFEST);
  await assertServed(t, app, 'repo', m.digest, m.body, OCI_MANIFEST);
  t.same((await inject(app, 'GET', '/v2/repo/tags/list')).json(), { name: 'repo', tags: ['v2'] });
});

t.test('DELETE of an unknown manifest answers 404 MANIFEST_UNKNOWN', async (t) => {
  const { app } = await startWharf(t);
  const m = await imageManifest(app, 'repo', 'exists');
  await pushManifest(app, 'repo', 'v1', m.body, OCI_MANIFEST);
  assertError(t, await inject(app, 'DELETE', `/v2/repo/manifests/${digestOf('unknown')}`), 404, 'MANIFEST_UNKNOWN', 'unknown digest');
  assertError(t, await inject(app, 'DELETE', '/v2/repo/manifests/nope'), 404, 'MANIFEST_UNKNOWN', 'unknown tag');
  assertError(t, await inject(app, 'DELETE', `/v2/ghost/manifests/${digestOf('unknown')}`), 404, ['MANIFEST_UNKNOWN', 'NAME_UNKNOWN'], 'unknown repo');
  await assertServed(t, app, 'repo', 'v1', m.body, OCI_MANIFEST);
});

t.test('GET and HEAD of an unknown manifest answer 404', async (t) => {
  const { app } = await startWharf(t);
  const m = await imageManifest(app, 'repo', 'some');
  await pushManifest(app, 'repo', 'v1', m.body, OCI_MANIFEST);
  assertError(t, await inject(app, 'GET', '/v2/repo/manifests/missing'), 404, 'MANIFEST_UNKNOWN', 'unknown tag');
  assertError(t, await inject(app, 'GET', `/v2/repo/manifests/${digestOf('x')}`), 404, 'MANIFEST_UNKNOWN', 'unknown digest');
  assertHeadError(t, await inject(app, 'HEAD', '/v2/repo/manifests/missing'), 404, 'HEAD unknown tag');
  assertError(t, await inject(app, 'GET', '/v2/ghost/manifests/v1'), 404, ['NAME_UNKNOWN', 'MANIFEST_UNKNOWN'], 'unknown repo');
  assertError(t, await inject(app, 'GET', '/v2/other/manifests/' + m.digest), 404, ['NAME_UNKNOWN', 'MANIFEST_UNKNOWN'], 'other repo');
});

t.test('a manifest pushed to one repository is 404 in another', async (t) => {
  const { app } = await startWharf(t);
  const m = await imageManifest(app, 'one', 'scoped');
  await pushManifest(app, 'one', 'v1', m.body, OCI_MANIFEST);
  await pushBlob(app, 'two', 'two exists');
  assertError(t, await inject(app, 'GET', `/v2/two/manifests/${m.digest}`), 404, 'MANIFEST_UNKNOWN');
  assertError(t, await inject(app, 'GET', '/v2/two/manifests/v1'), 404, 'MANIFEST_UNKNOWN');
});

// --- sha512 ------------------------------------------------------------------------------------

t.test('sha512: PUT by a sha512 digest answers that digest, GET by it returns the bytes with the sha512 Docker-Content-Digest', async (t) => {
  const { app } = await startWharf(t);
  const m = await imageManifest(app, 'repo', 'sha512');
  const d512 = digestOf(m.body, 'sha512');
  const res = await put(app, 'repo', d512, m.body, OCI_MANIFEST);
  t.equal(res.status, 201);
  t.equal(res.header('docker-content-digest'), d512);
  t.equal(res.header('location'), `/v2/repo/manifests/${d512}`);
  const get = await inject(app, 'GET', `/v2/repo/manifests/${d512}`);
  t.equal(get.status, 200);
  t.equal(get.text, m.body);
  t.equal(get.header('docker-content-digest'), d512);
  t.equal(get.header('content-type'), OCI_MANIFEST);
  const head = await inject(app, 'HEAD', `/v2/repo/manifests/${d512}`);
  t.equal(head.status, 200);
  t.equal(head.header('docker-content-digest'), d512);
});

t.test('sha512: PUT by sha512 digest with ?tag= serves the tag with the sha512 digest', async (t) => {
  const { app } = await startWharf(t);
  const m = await imageManifest(app, 'repo', 'sha512-tag');
  const d512 = digestOf(m.body, 'sha512');
  const res = await inject(app, 'PUT', `/v2/repo/manifests/${d512}?tag=s5`, { headers: { 'content-type': OCI_MANIFEST }, body: m.body });
  t.equal(res.status, 201);
  t.same(res.headerValues('oci-tag'), ['s5']);
  const get = await inject(app, 'GET', '/v2/repo/manifests/s5');
  t.equal(get.status, 200);
  t.equal(get.text, m.body);
  t.equal(get.header('docker-content-digest'), d512);
});
