// GET /v2/<name>/referrers/<digest>: an OCI index of the manifests whose subject is the digest,
// the artifactType filter, and the empty index (never 404) for unknown digests and repositories.
import t from 'tap';
import type { FastifyInstance } from 'fastify';
import { startWharf } from '../helpers/server.js';
import {
  OCI_CONFIG,
  OCI_INDEX,
  OCI_MANIFEST,
  artifactManifest,
  assertError,
  descriptorOf,
  digestOf,
  imageManifest,
  inject,
  pushBlob,
  pushManifest,
} from '../helpers/http.js';

const SBOM = 'application/vnd.example.sbom.v1+json';
const SIG = 'application/vnd.example.signature.v1';

interface Index {
  schemaVersion: number;
  mediaType: string;
  manifests: Array<{ mediaType: string; digest: string; size: number; artifactType?: string; annotations?: Record<string, string> }>;
}

async function setup(app: FastifyInstance, repo = 'repo') {
  const target = await imageManifest(app, repo, 'subject');
  await pushManifest(app, repo, 'v1', target.body, OCI_MANIFEST);
  const subject = descriptorOf(OCI_MANIFEST, target.body);
  const sbom = await artifactManifest(app, repo, SBOM, {
    subject,
    annotations: { 'org.opencontainers.image.created': '2024-05-01T00:00:00Z', 'com.example.kind': 'sbom' },
  });
  await pushManifest(app, repo, sbom.digest, sbom.body, OCI_MANIFEST);
  // A referrer without artifactType: its artifact type is the config media type.
  const sigConfig = JSON.stringify({ signature: true });
  await pushBlob(app, repo, sigConfig);
  const sigBody = JSON.stringify({
    schemaVersion: 2,
    mediaType: OCI_MANIFEST,
    config: descriptorOf(SIG, sigConfig),
    layers: [],
    subject,
  });
  await pushManifest(app, repo, digestOf(sigBody), sigBody, OCI_MANIFEST);
  return { target, sbom, sig: { body: sigBody, digest: digestOf(sigBody) } };
}

async function referrers(app: FastifyInstance, path: string) {
  const res = await inject(app, 'GET', path);
  return { res, index: res.status === 200 ? (res.json() as Index) : undefined };
}

t.test('referrers of a digest: 200 OCI index of the manifests whose subject it is, with artifactType and annotations', async (t) => {
  const { app } = await startWharf(t);
  const { target, sbom, sig } = await setup(app);
  const unrelated = await imageManifest(app, 'repo', 'unrelated');
  await pushManifest(app, 'repo', 'v2', unrelated.body, OCI_MANIFEST);

  const { res, index } = await referrers(app, `/v2/repo/referrers/${target.digest}`);
  t.equal(res.status, 200);
  t.equal(res.header('content-type'), OCI_INDEX);
  t.equal(res.header('oci-filters-applied'), undefined, 'no filter header without a filter');
  t.equal(index?.schemaVersion, 2);
  t.equal(index?.mediaType, OCI_INDEX);
  const byDigest = Object.fromEntries((index?.manifests ?? []).map((m) => [m.digest, m]));
  t.same(Object.keys(byDigest).sort(), [sbom.digest, sig.digest].sort(), 'exactly the two referrers');
  t.same(byDigest[sbom.digest], {
    mediaType: OCI_MANIFEST,
    digest: sbom.digest,
    size: Buffer.byteLength(sbom.body),
    artifactType: SBOM,
    annotations: { 'org.opencontainers.image.created': '2024-05-01T00:00:00Z', 'com.example.kind': 'sbom' },
  });
  t.same(byDigest[sig.digest], {
    mediaType: OCI_MANIFEST,
    digest: sig.digest,
    size: Buffer.byteLength(sig.body),
    artifactType: SIG,
  }, 'artifactType falls back to the config media type; no annotations key when there are none');
});

t.test('?artifactType= filters the referrers and answers OCI-Filters-Applied: artifactType', async (t) => {
  const { app } = await startWharf(t);
  const { target, sbom, sig } = await setup(app);
  const s = await referrers(app, `/v2/repo/referrers/${target.digest}?artifactType=${encodeURIComponent(SBOM)}`);
  t.equal(s.res.status, 200);
  t.equal(s.res.header('oci-filters-applied'), 'artifactType');
  t.same(s.index?.manifests.map((m) => m.digest), [sbom.digest]);
  const g = await referrers(app, `/v2/repo/referrers/${target.digest}?artifactType=${encodeURIComponent(SIG)}`);
  t.same(g.index?.manifests.map((m) => m.digest), [sig.digest]);
  const none = await referrers(app, `/v2/repo/referrers/${target.digest}?artifactType=application/vnd.nothing`);
  t.equal(none.res.status, 200);
  t.equal(none.res.header('oci-filters-applied'), 'artifactType');
  t.same(none.index?.manifests, []);
});

t.test('referrers of an unknown digest: 200 with an empty index, not 404', async (t) => {
  const { app } = await startWharf(t);
  await setup(app);
  const { res, index } = await referrers(app, `/v2/repo/referrers/${digestOf('nothing refers to this')}`);
  t.equal(res.status, 200);
  t.equal(res.header('content-type'), OCI_INDEX);
  t.same(index, { schemaVersion: 2, mediaType: OCI_INDEX, manifests: [] });
});

t.test('referrers in an unknown repository: 200 with an empty index, not 404', async (t) => {
  const { app } = await startWharf(t);
  const { res, index } = await referrers(app, `/v2/no/such/repo/referrers/${digestOf('x')}`);
  t.equal(res.status, 200);
  t.equal(res.header('content-type'), OCI_INDEX);
  t.same(index, { schemaVersion: 2, mediaType: OCI_INDEX, manifests: [] });
});

t.test('referrers pushed before their subject are listed', async (t) => {
  const { app } = await startWharf(t);
  const subject = descriptorOf(OCI_MANIFEST, '{"pushed":"later"}');
  const early = await artifactManifest(app, 'repo', SBOM, { subject });
  await pushManifest(app, 'repo', early.digest, early.body, OCI_MANIFEST);
  const { res, index } = await referrers(app, `/v2/repo/referrers/${subject.digest}`);
  t.equal(res.status, 200);
  t.same(index?.manifests.map((m) => m.digest), [early.digest]);
});

t.test('referrers in another repository are not listed', async (t) => {
  const { app } = await startWharf(t);
  const { target } = await setup(app, 'one');
  const { index } = await referrers(app, `/v2/two/referrers/${target.digest}`);
  t.same(index?.manifests, []);
});

t.test('a deleted referrer leaves the list', async (t) => {
  const { app } = await startWharf(t);
  const { target, sbom, sig } = await setup(app);
  t.equal((await inject(app, 'DELETE', `/v2/repo/manifests/${sbom.digest}`)).status, 202);
  const { index } = await referrers(app, `/v2/repo/referrers/${target.digest}`);
  t.same(index?.manifests.map((m) => m.digest), [sig.digest]);
});

t.test('an index with a subject is listed as a referrer with the index media type', async (t) => {
  const { app } = await startWharf(t);
  const { target } = await setup(app);
  const child = await imageManifest(app, 'repo', 'child');
  await pushManifest(app, 'repo', child.digest, child.body, OCI_MANIFEST);
  const idx = JSON.stringify({
    schemaVersion: 2,
    mediaType: OCI_INDEX,
    artifactType: 'application/vnd.example.bundle',
    manifests: [descriptorOf(OCI_MANIFEST, child.body)],
    subject: descriptorOf(OCI_MANIFEST, target.body),
  });
  await pushManifest(app, 'repo', digestOf(idx), idx, OCI_INDEX);
  const { index } = await referrers(app, `/v2/repo/referrers/${target.digest}?artifactType=application/vnd.example.bundle`);
  t.same(index?.manifests, [{ mediaType: OCI_INDEX, digest: digestOf(idx), size: Buffer.byteLength(idx), artifactType: 'application/vnd.example.bundle' }]);
});

t.test('referrers of a sha512 subject digest', async (t) => {
  const { app } = await startWharf(t);
  const target = await imageManifest(app, 'repo', 'sha512 subject');
  const d512 = digestOf(target.body, 'sha512');
  await pushManifest(app, 'repo', d512, target.body, OCI_MANIFEST);
  const art = await artifactManifest(app, 'repo', SBOM, { subject: { mediaType: OCI_MANIFEST, digest: d512, size: Buffer.byteLength(target.body) } });
  await pushManifest(app, 'repo', art.digest, art.body, OCI_MANIFEST);
  const { res, index } = await referrers(app, `/v2/repo/referrers/${d512}`);
  t.equal(res.status, 200);
  t.same(index?.manifests.map((m) => m.digest), [art.digest]);
});

t.test('referrers with a malformed digest answer 400 DIGEST_INVALID', async (t) => {
  const { app } = await startWharf(t);
  await setup(app);
  for (const d of ['notadigest', 'sha256:abc', `sha256:${'G'.repeat(64)}`, `md5:${'a'.repeat(32)}`, 'v1']) {
    assertError(t, await inject(app, 'GET', `/v2/repo/referrers/${d}`), 400, 'DIGEST_INVALID', d);
  }
});

t.test('referrers: a config blob that is not a manifest config has no effect on listing', async (t) => {
  // A plain blob (not a manifest) whose JSON names a subject is not a referrer.
  const { app } = await startWharf(t);
  const { target } = await setup(app);
  const blob = JSON.stringify({ schemaVersion: 2, mediaType: OCI_MANIFEST, config: descriptorOf(OCI_CONFIG, 'x'), layers: [], subject: descriptorOf(OCI_MANIFEST, target.body) });
  await pushBlob(app, 'repo', blob);
  const { index } = await referrers(app, `/v2/repo/referrers/${target.digest}`);
  t.notOk(index?.manifests.some((m) => m.digest === digestOf(blob)), 'a blob is never a referrer');
  t.equal(index?.manifests.length, 2);
});
