// The OCI distribution-spec conformance workflows (upstream conformance/ suite: setup.go,
// 01_pull_test.go, 02_push_test.go, 03_discovery_test.go, 04_management_test.go), rewritten for tap.
//
// Every request and status/header assertion of the upstream ginkgo suite has an equivalent here, in
// the same order and with the same tolerance (e.g. "201 or 202", "2xx or 405"). Checks marked
// "(spec)" or "(v1.2 suite)" come from the spec text or from the newer table-driven upstream suite
// (Location verification, digest headers, upload cancel, bad digests, atomic deletes, ...).
//
// sha512, as the newer upstream suite exercises it: every blob is pushed under a sha512 digest through
// every upload method, and manifests (whose descriptors all use sha512) are pushed by their sha512
// digest. A tag push names no digest, so the registry files it under its canonical (sha256) digest;
// in sha512 runs a tagged manifest is therefore pushed by sha512 digest first and then by tag, and a
// digest header on a by-tag response only has to name the body under one of the two algorithms.
import type { Test } from 'tap';
import { startWharf } from '../helpers/server.js';
import {
  ANNOTATION_KEY,
  ARTIFACT_TYPE_A,
  EMPTY_JSON_DIGEST,
  MT,
  chunkedBlob,
  digestOf,
  isDigestOf,
  makeFixtures,
  type Algorithm,
  type ChunkedBlob,
  type Fixtures,
  type TestBlob,
  type TestManifest,
} from './fixtures.js';
import {
  OciClient,
  expectErrorBody,
  expectHeader,
  expectHeaderPresent,
  expectStatus,
  type OciResponse,
  type StatusMatcher,
} from './http.js';

export type Workflow = 'pull' | 'push' | 'discovery' | 'management';
export const ALL_WORKFLOWS: readonly Workflow[] = ['pull', 'push', 'discovery', 'management'];

export interface ConformanceOptions {
  algorithm: Algorithm;
  /** Registry base URL; when absent a fresh Wharf is started for this test. */
  baseUrl?: string;
  workflows?: readonly Workflow[];
  /**
   * Whether the registry mounts a blob named by ?mount= without ?from= (automatic content discovery).
   * Undefined (the default) accepts either behaviour, as the upstream suite does without OCI_AUTOMATIC_CROSSMOUNT.
   */
  automaticCrossmount?: boolean;
}

interface Ctx {
  client: OciClient;
  alg: Algorithm;
  fx: Fixtures;
  /** The repository every workflow works in (upstream OCI_NAMESPACE). */
  repo: string;
  /** A fresh repository for cross-mount tests (upstream OCI_CROSSMOUNT_NAMESPACE). */
  crossRepo: string;
  automaticCrossmount: boolean | undefined;
}

const TEST_TAG = 'tagtest0';
const EMPTY_LAYER_TAG = 'emptylayer';
/** Not a valid tag at all: the upstream suite expects 404 for it. */
const NONEXISTENT_MANIFEST = '.INVALID_MANIFEST_NAME';
const INVALID_MANIFEST_BODY = 'blablabla';
const WORKFLOW_TIMEOUT_MS = 60_000;

/** Upstream accepts any 2xx for a delete (the spec names 202, checked separately in deleteAndVerify). */
const TWO_XX = [200, 201, 202, 203, 204, 205, 206];
const DELETE_OK = [...TWO_XX, 405];
const DELETE_OK_OR_GONE = [...TWO_XX, 404, 405];
/** Deleting a tag may also be refused with 400 (spec: tag deletion disabled). */
const TAG_DELETE_OK_OR_GONE = [...TWO_XX, 400, 404, 405];

const blobPath = (repo: string, digest: string) => `/v2/${repo}/blobs/${digest}`;
const manifestPath = (repo: string, ref: string) => `/v2/${repo}/manifests/${ref}`;
const uploadsPath = (repo: string) => `/v2/${repo}/blobs/uploads/`;
const tagsPath = (repo: string) => `/v2/${repo}/tags/list`;
const referrersPath = (repo: string, digest: string) => `/v2/${repo}/referrers/${digest}`;

const rand = () => Math.random().toString(36).slice(2, 10);

export async function runConformance(t: Test, opts: ConformanceOptions): Promise<void> {
  const baseUrl = opts.baseUrl ?? (await startWharf(t)).url;
  const alg = opts.algorithm;
  const run = rand();
  const ctx: Ctx = {
    client: new OciClient(baseUrl),
    alg,
    fx: makeFixtures(alg),
    repo: `conformance-${alg}/repo-${run}`,
    crossRepo: `conformance-${alg}/crossmount-${run}`,
    automaticCrossmount: opts.automaticCrossmount,
  };
  const workflows = opts.workflows ?? ALL_WORKFLOWS;
  const titles: Record<Workflow, string> = {
    pull: 'Pull',
    push: 'Push',
    discovery: 'Content Discovery',
    management: 'Content Management',
  };
  const bodies: Record<Workflow, (t: Test, c: Ctx) => Promise<void>> = {
    pull: pullWorkflow,
    push: pushWorkflow,
    discovery: discoveryWorkflow,
    management: managementWorkflow,
  };
  for (const wf of workflows) {
    await t.test(`${titles[wf]} workflow (${alg})`, { timeout: WORKFLOW_TIMEOUT_MS }, (t) => bodies[wf](t, ctx));
  }
}

// ---------------------------------------------------------------------------------------------
// Shared request helpers

/** POST /blobs/uploads/ then PUT <location>?digest= with the whole blob (the upstream setup steps). */
async function pushBlob(t: Test, c: Ctx, repo: string, b: TestBlob): Promise<OciResponse | undefined> {
  const post = await c.client.post(uploadsPath(repo));
  const loc = post.header('location');
  if (!loc) {
    t.fail('POST /blobs/uploads/ returns a Location to upload to', { exchange: post.describe() });
    return undefined;
  }
  return c.client.put(loc, {
    query: { digest: b.digest },
    headers: { 'content-type': MT.octet },
    body: b.content,
  });
}

async function setupBlob(t: Test, c: Ctx, repo: string, b: TestBlob): Promise<void> {
  const res = await pushBlob(t, c, repo, b);
  if (res) expectStatus(t, res, 'success', 'blob upload completes');
}

function putManifest(c: Ctx, repo: string, ref: string, m: TestManifest): Promise<OciResponse> {
  return c.client.put(manifestPath(repo, ref), { headers: { 'content-type': m.mediaType }, body: m.content });
}

function getManifest(c: Ctx, method: 'GET' | 'HEAD', repo: string, ref: string): Promise<OciResponse> {
  return c.client.request(method, manifestPath(repo, ref), { headers: { accept: `${MT.manifest}, ${MT.index}` } });
}

/**
 * Pushes a manifest under a tag. In sha512 runs it is first pushed by its sha512 digest, so that
 * the digest-addressed steps find it (a tag push is filed under the registry's canonical digest).
 */
async function pushTagged(t: Test, c: Ctx, repo: string, tag: string, m: TestManifest, want: StatusMatcher): Promise<OciResponse> {
  if (c.alg !== 'sha256') {
    const byDigest = await putManifest(c, repo, m.digest, m);
    expectStatus(t, byDigest, want, `${c.alg} manifest PUT by digest`);
    checkDigestHeader(t, c, byDigest, m, 'digest');
  }
  return putManifest(c, repo, tag, m);
}

/**
 * Docker-Content-Digest is optional, but when present it must name the content. Addressed by digest,
 * it must be exactly that digest; addressed by tag in a sha512 run, any digest of the body will do.
 */
function checkDigestHeader(t: Test, c: Ctx, res: OciResponse, b: TestBlob, by: 'digest' | 'tag'): void {
  const h = res.header('docker-content-digest');
  if (h === null) return;
  if (by === 'digest' || c.alg === 'sha256') {
    t.equal(h, b.digest, 'Docker-Content-Digest names the content', { exchange: res.describe() });
  } else {
    t.ok(isDigestOf(h, b.content), 'Docker-Content-Digest is a digest of the manifest', { exchange: res.describe() });
  }
}

/** (spec) The Location of a completed blob upload or mount is a pullable URL for that blob. */
async function expectLocationServesBlob(t: Test, c: Ctx, res: OciResponse, b: TestBlob): Promise<void> {
  const loc = res.header('location');
  if (!loc) return; // absence already asserted by the caller
  const got = await c.client.get(loc, { follow: true });
  expectStatus(t, got, 200, '(spec) GET on the returned Location serves the blob');
  t.ok(got.body.equals(b.content), '(spec) the blob served at Location is the uploaded content', { exchange: got.describe() });
}

/** (spec) The Location of a manifest PUT is a pullable URL for that manifest, bytes unchanged. */
async function expectLocationServesManifest(t: Test, c: Ctx, res: OciResponse, m: TestManifest): Promise<void> {
  const loc = res.header('location');
  if (!loc) return;
  const got = await c.client.get(loc, { headers: { accept: `${MT.manifest}, ${MT.index}` } });
  expectStatus(t, got, 200, '(spec) GET on the returned Location serves the manifest');
  t.ok(got.body.equals(m.content), '(spec) the registry stores the manifest byte for byte', { exchange: got.describe() });
  expectHeader(t, got, 'content-type', m.mediaType, '(spec) Content-Type is the manifest media type');
}

/**
 * DELETE, accepting `want`; when the registry answered 202, the content must be gone at once
 * ((v1.2 suite) atomic delete: HEAD answers 404).
 */
async function deleteAndVerify(t: Test, c: Ctx, path: string, want: StatusMatcher, what: string): Promise<OciResponse> {
  const res = await c.client.delete(path);
  expectStatus(t, res, want, what);
  if (res.status >= 400) expectErrorBody(t, res);
  if (res.status >= 200 && res.status < 300) {
    t.equal(res.status, 202, '(spec) a successful DELETE answers 202 Accepted', { exchange: res.describe() });
    const head = await c.client.head(path, { follow: true, headers: { accept: `${MT.manifest}, ${MT.index}` } });
    expectStatus(t, head, 404, '(v1.2 suite) deleted content answers 404 right away');
  }
  return res;
}


function locationPath(c: Ctx, res: OciResponse): string | undefined {
  const loc = res.header('location');
  return loc ? c.client.resolve(loc).pathname : undefined;
}

function requireLocation(t: Test, res: OciResponse, what = 'Location header is present'): string | undefined {
  expectHeaderPresent(t, res, 'location', what);
  return res.header('location') ?? undefined;
}

interface TagList {
  name?: unknown;
  tags?: unknown;
}

function tagsOf(res: OciResponse): string[] {
  const body = res.json() as TagList | undefined;
  return Array.isArray(body?.tags) ? (body.tags as unknown[]).filter((x): x is string => typeof x === 'string') : [];
}

function nextLink(res: OciResponse): string | undefined {
  const link = res.header('link');
  if (!link) return undefined;
  const m = /<([^>]+)>\s*;\s*rel="?next"?/i.exec(link);
  return m?.[1];
}

interface IndexBody {
  schemaVersion?: unknown;
  mediaType?: unknown;
  manifests?: Array<{
    mediaType?: unknown;
    digest?: unknown;
    size?: unknown;
    artifactType?: unknown;
    annotations?: Record<string, unknown>;
  }>;
}

function indexOf(t: Test, res: OciResponse): NonNullable<IndexBody['manifests']> {
  const body = res.json() as IndexBody | undefined;
  t.ok(body && Array.isArray(body.manifests), 'body is an image index with a manifests list', { exchange: res.describe() });
  return body?.manifests ?? [];
}

// ---------------------------------------------------------------------------------------------
// 01 Pull

async function pullWorkflow(t: Test, c: Ctx): Promise<void> {
  const { client, repo, fx } = c;
  const [config0, config1] = fx.configs as [TestBlob, TestBlob];
  const [m0, m1] = fx.manifests as [TestManifest, TestManifest];
  let tag = '';

  await t.test('Setup', async (t) => {
    await t.test('populate the registry with config blob 0', (t) => setupBlob(t, c, repo, config0));
    await t.test('populate the registry with config blob 1', (t) => setupBlob(t, c, repo, config1));
    await t.test('populate the registry with the layer blob', (t) => setupBlob(t, c, repo, fx.layer));
    await t.test('populate the registry with manifest 0 under a tag', async (t) => {
      tag = TEST_TAG;
      const res = await pushTagged(t, c, repo, tag, m0, 'success');
      expectStatus(t, res, 'success', 'manifest PUT by tag');
    });
    await t.test('populate the registry with manifest 1 by digest', async (t) => {
      const res = await putManifest(c, repo, m1.digest, m1);
      expectStatus(t, res, 'success', 'manifest PUT by digest');
    });
  });

  await t.test('Pull blobs', async (t) => {
    await t.test('HEAD on a nonexistent blob returns 404', async (t) => {
      const res = await client.head(blobPath(repo, fx.dummyDigest), { follow: true });
      expectStatus(t, res, 404);
    });
    await t.test('HEAD on an existing blob returns 200 and its digest', async (t) => {
      const res = await client.head(blobPath(repo, config0.digest), { follow: true });
      expectStatus(t, res, 200);
      checkDigestHeader(t, c, res, config0, 'digest');
      const len = res.header('content-length');
      if (len !== null) t.equal(len, String(config0.length), '(v1.2 suite) HEAD Content-Length is the blob size');
      t.equal(res.body.length, 0, 'HEAD carries no body');
    });
    await t.test('GET on a nonexistent blob returns 404 with BLOB_UNKNOWN', async (t) => {
      const res = await client.get(blobPath(repo, fx.dummyDigest), { follow: true });
      expectStatus(t, res, 404);
      expectErrorBody(t, res, { code: 'BLOB_UNKNOWN' });
    });
    await t.test('GET on an existing blob returns 200 and the content', async (t) => {
      const res = await client.get(blobPath(repo, config0.digest), { follow: true });
      expectStatus(t, res, 200);
      t.ok(res.body.equals(config0.content), '(spec) the blob served is the content pushed', { exchange: res.describe() });
      checkDigestHeader(t, c, res, config0, 'digest');
    });
  });

  await t.test('Pull manifests', async (t) => {
    await t.test('HEAD on a nonexistent manifest returns 404', async (t) => {
      const res = await getManifest(c, 'HEAD', repo, NONEXISTENT_MANIFEST);
      expectStatus(t, res, 404);
    });
    for (const [i, m] of [m0, m1].entries()) {
      await t.test(`HEAD on manifest ${i} by digest returns 200 and its digest`, async (t) => {
        const res = await getManifest(c, 'HEAD', repo, m.digest);
        expectStatus(t, res, 200);
        checkDigestHeader(t, c, res, m, 'digest');
        const ct = res.header('content-type');
        if (ct !== null) t.equal(ct, m.mediaType, '(v1.2 suite) HEAD Content-Type is the manifest media type');
        const len = res.header('content-length');
        if (len !== null) t.equal(len, String(m.length), '(v1.2 suite) HEAD Content-Length is the manifest size');
      });
    }
    await t.test('HEAD on a manifest by tag returns 200 and the tagged digest', async (t) => {
      t.not(tag, '', 'a tag was pushed in setup');
      const res = await getManifest(c, 'HEAD', repo, tag);
      expectStatus(t, res, 200);
      checkDigestHeader(t, c, res, m0, 'tag');
    });
    await t.test('GET on a nonexistent manifest returns 404', async (t) => {
      const res = await getManifest(c, 'GET', repo, NONEXISTENT_MANIFEST);
      expectStatus(t, res, 404);
      expectErrorBody(t, res);
    });
    for (const [i, m] of [m0, m1].entries()) {
      await t.test(`GET on manifest ${i} by digest returns 200 and the manifest`, async (t) => {
        const res = await getManifest(c, 'GET', repo, m.digest);
        expectStatus(t, res, 200);
        t.ok(res.body.equals(m.content), '(spec) the manifest is served byte for byte', { exchange: res.describe() });
        expectHeader(t, res, 'content-type', m.mediaType, '(spec) Content-Type is the manifest media type');
        checkDigestHeader(t, c, res, m, 'digest');
      });
    }
    await t.test('GET on a manifest by tag returns 200 and the manifest', async (t) => {
      t.not(tag, '', 'a tag was pushed in setup');
      const res = await getManifest(c, 'GET', repo, tag);
      expectStatus(t, res, 200);
      t.ok(res.body.equals(m0.content), '(spec) the tagged manifest is served byte for byte', { exchange: res.describe() });
      checkDigestHeader(t, c, res, m0, 'tag');
    });
    await t.test('(v1.2 suite) GET on a never-pushed manifest digest returns 404 with MANIFEST_UNKNOWN', async (t) => {
      const res = await getManifest(c, 'GET', repo, digestOf(`missing ${rand()}`, c.alg));
      expectStatus(t, res, 404);
      expectErrorBody(t, res, { code: 'MANIFEST_UNKNOWN' });
    });
    await t.test('(v1.2 suite) GET on a never-pushed tag returns 404 with MANIFEST_UNKNOWN', async (t) => {
      const res = await getManifest(c, 'GET', repo, `missing-${rand()}`);
      expectStatus(t, res, 404);
      expectErrorBody(t, res, { code: 'MANIFEST_UNKNOWN' });
    });
  });

  await t.test('Error codes', async (t) => {
    await t.test('GET on a malformed digest reference returns 400 with an OCI error body, or 404', async (t) => {
      const res = await getManifest(c, 'GET', repo, `${c.alg}:totallywrong`);
      expectStatus(t, res, [400, 404]);
      expectErrorBody(t, res, { required: res.status === 400 });
    });
    await t.test('PUT of a non-manifest to a malformed digest reference returns 400 with an OCI error body, or 404', async (t) => {
      const res = await client.put(manifestPath(repo, `${c.alg}:totallywrong`), {
        headers: { 'content-type': MT.manifest },
        body: INVALID_MANIFEST_BODY,
      });
      expectStatus(t, res, [400, 404]);
      expectErrorBody(t, res, { required: res.status === 400 });
    });
    await t.test('(v1.2 suite) PUT of a valid manifest to a malformed digest reference returns 400', async (t) => {
      const res = await putManifest(c, repo, `${c.alg}:baddigeststring`, m1);
      expectStatus(t, res, 400);
      expectErrorBody(t, res, { required: true });
      const get = await getManifest(c, 'GET', repo, `${c.alg}:baddigeststring`);
      expectStatus(t, get, [400, 404], 'GET on the malformed digest reference');
    });
    await t.test('(v1.2 suite) PUT of a manifest whose bytes do not match the digest returns 400 with DIGEST_INVALID', async (t) => {
      const altered: TestManifest = { ...m1, content: Buffer.concat([m1.content, Buffer.from('  ')]) };
      const res = await putManifest(c, repo, m1.digest, altered);
      expectStatus(t, res, 400);
      expectErrorBody(t, res, { code: ['DIGEST_INVALID', 'MANIFEST_INVALID'] });
    });
  });

  await t.test('Teardown', async (t) => {
    await t.test('delete manifest 0 created in setup', (t) => deleteAndVerify(t, c, manifestPath(repo, m0.digest), DELETE_OK, 'DELETE manifest 0'));
    await t.test('delete manifest 1 created in setup', (t) => deleteAndVerify(t, c, manifestPath(repo, m1.digest), DELETE_OK, 'DELETE manifest 1'));
    if (c.alg !== 'sha256') {
      await t.test(`delete the tag pushed in setup (${c.alg} runs file it separately)`, (t) =>
        deleteAndVerify(t, c, manifestPath(repo, TEST_TAG), TAG_DELETE_OK_OR_GONE, 'DELETE tag'),
      );
    }
    await t.test('delete config blob 0 created in setup', (t) => deleteAndVerify(t, c, blobPath(repo, config0.digest), DELETE_OK_OR_GONE, 'DELETE config 0'));
    await t.test('delete config blob 1 created in setup', (t) => deleteAndVerify(t, c, blobPath(repo, config1.digest), DELETE_OK_OR_GONE, 'DELETE config 1'));
    await t.test('delete the layer blob created in setup', (t) => deleteAndVerify(t, c, blobPath(repo, fx.layer.digest), DELETE_OK_OR_GONE, 'DELETE layer'));
  });
}

// ---------------------------------------------------------------------------------------------
// 02 Push

async function pushWorkflow(t: Test, c: Ctx): Promise<void> {
  const { client, repo, fx } = c;
  const config1 = fx.configs[1] as TestBlob;
  const m1 = fx.manifests[1] as TestManifest;
  let last: OciResponse | undefined;
  let prev: OciResponse | undefined;
  let emptyLayerPushed = false;

  await t.test('Blob upload streamed', async (t) => {
    await t.test('PATCH with the blob in the body returns 202', async (t) => {
      const post = await client.post(uploadsPath(repo));
      const loc = requireLocation(t, post, 'POST /blobs/uploads/ returns a Location');
      if (!loc) return;
      const res = await client.patch(loc, { headers: { 'content-type': MT.octet }, body: fx.blobA.content });
      expectStatus(t, res, 202);
      requireLocation(t, res, '(spec) PATCH response carries the Location to continue with');
      last = res;
    });
    await t.test('PUT to the session URL with the digest returns 201', async (t) => {
      const loc = last?.header('location');
      if (!loc) return t.fail('no upload session from the previous step');
      const res = await client.put(loc, { query: { digest: fx.blobA.digest }, headers: { 'content-type': MT.octet } });
      expectStatus(t, res, 201);
      requireLocation(t, res);
      checkDigestHeader(t, c, res, fx.blobA, 'digest');
      await expectLocationServesBlob(t, c, res, fx.blobA);
    });
  });

  await t.test('Blob upload monolithic', async (t) => {
    await t.test('GET on a nonexistent blob returns 404', async (t) => {
      const res = await client.get(blobPath(repo, fx.dummyDigest), { follow: true });
      expectStatus(t, res, 404);
      expectErrorBody(t, res, { code: 'BLOB_UNKNOWN' });
    });
    await t.test('POST with digest and blob returns 201 (or 202 to fall back to PUT)', async (t) => {
      const res = await client.post(uploadsPath(repo), {
        query: { digest: config1.digest },
        headers: { 'content-type': MT.octet },
        body: config1.content,
      });
      requireLocation(t, res);
      expectStatus(t, res, [201, 202]);
      if (res.status === 201) {
        checkDigestHeader(t, c, res, config1, 'digest');
        await expectLocationServesBlob(t, c, res, config1);
      }
      last = res;
    });
    await t.test('GET on the blob from the single POST returns 200 (404 if the POST only opened a session)', async (t) => {
      if (!last) return t.fail('no response from the previous step');
      const res = await client.get(blobPath(repo, config1.digest), { follow: true });
      expectStatus(t, res, last.status === 202 ? 404 : 200);
    });
    await t.test('POST returns 202 and a session Location', async (t) => {
      const res = await client.post(uploadsPath(repo));
      expectStatus(t, res, 202);
      requireLocation(t, res, '(spec) the session Location is present');
      last = res;
    });
    await t.test('PUT of the whole blob to the session returns 201', async (t) => {
      const loc = last?.header('location');
      if (!loc) return t.fail('no upload session from the previous step');
      const res = await client.put(loc, {
        query: { digest: config1.digest },
        headers: { 'content-type': MT.octet },
        body: config1.content,
      });
      requireLocation(t, res);
      expectStatus(t, res, 201);
      checkDigestHeader(t, c, res, config1, 'digest');
      await expectLocationServesBlob(t, c, res, config1);
    });
    await t.test('GET on the uploaded blob returns 200', async (t) => {
      const res = await client.get(blobPath(repo, config1.digest), { follow: true });
      expectStatus(t, res, 200);
      t.ok(res.body.equals(config1.content), '(spec) the blob served is the content pushed');
    });
    await t.test('POST then PUT of a layer blob returns 201', async (t) => {
      const res = await pushBlob(t, c, repo, fx.layer);
      if (!res) return;
      requireLocation(t, res);
      expectStatus(t, res, 201);
      await expectLocationServesBlob(t, c, res, fx.layer);
    });
    await t.test('GET on the uploaded layer returns 200', async (t) => {
      const res = await client.get(blobPath(repo, fx.layer.digest), { follow: true });
      expectStatus(t, res, 200);
    });
    await t.test('(v1.2 suite) PUT with a digest that does not match the content returns 400 with DIGEST_INVALID', async (t) => {
      const post = await client.post(uploadsPath(repo));
      const loc = requireLocation(t, post, 'POST /blobs/uploads/ returns a Location');
      if (!loc) return;
      const res = await client.put(loc, {
        query: { digest: fx.dummyDigest },
        headers: { 'content-type': MT.octet },
        body: fx.blobA.content,
      });
      expectStatus(t, res, 400);
      expectErrorBody(t, res, { code: 'DIGEST_INVALID' });
      const get = await client.get(blobPath(repo, fx.dummyDigest), { follow: true });
      expectStatus(t, get, 404, 'nothing was stored under the claimed digest');
    });
    await t.test('(v1.2 suite) single POST with a digest that does not match the content returns 400 (or 202)', async (t) => {
      const res = await client.post(uploadsPath(repo), {
        query: { digest: fx.dummyDigest },
        headers: { 'content-type': MT.octet },
        body: fx.blobA.content,
      });
      expectStatus(t, res, [400, 202]);
      if (res.status === 400) expectErrorBody(t, res, { code: 'DIGEST_INVALID' });
    });
    await t.test('(v1.2 suite) DELETE on an upload session cancels it with 204', async (t) => {
      const post = await client.post(uploadsPath(repo));
      const loc = requireLocation(t, post, 'POST /blobs/uploads/ returns a Location');
      if (!loc) return;
      const res = await client.delete(loc);
      expectStatus(t, res, 204);
      const status = await client.get(loc);
      expectStatus(t, status, 404, 'GET on a cancelled session');
      expectErrorBody(t, status, { code: 'BLOB_UPLOAD_UNKNOWN' });
    });
  });

  await t.test('Blob upload chunked', async (t) => {
    let blobB: ChunkedBlob = fx.blobB;
    await t.test('an out-of-order chunk returns 416', async (t) => {
      const post = await client.post(uploadsPath(repo)); // fetch sends Content-Length: 0
      const loc = requireLocation(t, post);
      if (!loc) return;
      const min = post.header('oci-chunk-min-length');
      if (min !== null) {
        const n = Number.parseInt(min, 10);
        t.ok(Number.isInteger(n) && n >= 0, 'OCI-Chunk-Min-Length is a byte count');
        if (n > blobB.chunk1.length) blobB = chunkedBlob(n * 2 - 2, c.alg);
      }
      const res = await client.patch(loc, {
        headers: { 'content-type': MT.octet, 'content-range': blobB.chunk2Range },
        body: blobB.chunk2,
      });
      expectStatus(t, res, 416);
      expectErrorBody(t, res);
    });
    await t.test('PATCH with the first chunk returns 202 and the uploaded Range', async (t) => {
      const post = await client.post(uploadsPath(repo));
      const loc = requireLocation(t, post);
      if (!loc) return;
      prev = post;
      const res = await client.patch(loc, {
        headers: { 'content-type': MT.octet, 'content-range': blobB.chunk1Range },
        body: blobB.chunk1,
      });
      expectStatus(t, res, 202);
      expectHeader(t, res, 'range', blobB.chunk1Range);
      requireLocation(t, res, '(spec) chunk response carries the Location to continue with');
      last = res;
    });
    await t.test('retrying the previous chunk returns 416', async (t) => {
      const loc = prev?.header('location');
      if (!loc) return t.fail('no upload session from the previous step');
      const res = await client.patch(loc, {
        headers: { 'content-type': MT.octet, 'content-range': blobB.chunk1Range },
        body: blobB.chunk1,
      });
      expectStatus(t, res, 416);
      expectErrorBody(t, res);
    });
    await t.test('GET on the upload session returns 204 with the Range and a Location', async (t) => {
      const loc = prev?.header('location');
      if (!loc) return t.fail('no upload session from the previous step');
      const res = await client.get(loc);
      expectStatus(t, res, 204);
      requireLocation(t, res);
      expectHeader(t, res, 'range', blobB.chunk1Range);
      last = res;
    });
    await t.test('PATCH with the second chunk returns 202', async (t) => {
      const loc = last?.header('location');
      if (!loc) return t.fail('no upload session from the previous step');
      const res = await client.patch(loc, {
        headers: { 'content-type': MT.octet, 'content-range': blobB.chunk2Range },
        body: blobB.chunk2,
      });
      expectStatus(t, res, 202);
      requireLocation(t, res);
      expectHeader(t, res, 'range', `0-${blobB.length - 1}`, '(spec) Range covers both chunks');
      last = res;
    });
    await t.test('PUT with the digest closes the upload with 201', async (t) => {
      const loc = last?.header('location');
      if (!loc) return t.fail('no upload session from the previous step');
      const res = await client.put(loc, { query: { digest: blobB.digest }, headers: { 'content-type': MT.octet } });
      expectStatus(t, res, 201);
      requireLocation(t, res);
      checkDigestHeader(t, c, res, blobB, 'digest');
      await expectLocationServesBlob(t, c, res, blobB);
    });
  });

  await t.test('Cross-repository blob mount', async (t) => {
    await t.test('mounting a blob without from yields an upload session (202)', async (t) => {
      const res = await client.post(uploadsPath(c.crossRepo), { query: { mount: fx.dummyDigest } });
      expectStatus(t, res, 202);
      requireLocation(t, res);
    });
    await t.test("POST to mount another repository's blob returns 201 or 202", async (t) => {
      const res = await client.post(uploadsPath(c.crossRepo), { query: { mount: fx.blobA.digest, from: repo } });
      expectStatus(t, res, [201, 202]);
      requireLocation(t, res, '(spec) the mount response carries a Location');
      last = res;
    });
    if (last?.status === 201) await t.test('GET on the mounted blob in the target repository returns 200', async (t) => {
      if (!last) return;
      t.equal(locationPath(c, last), blobPath(c.crossRepo, fx.blobA.digest), 'Location is the blob in the target repository');
      checkDigestHeader(t, c, last, fx.blobA, 'digest');
      const loc = last.header('location');
      if (!loc) return;
      const res = await client.get(loc, { follow: true });
      expectStatus(t, res, 200);
      t.ok(res.body.equals(fx.blobA.content), '(spec) the mounted blob is the source content');
    });
    if (last?.status === 202) await t.test('a mount the registry declines yields an upload session in the target repository', async (t) => {
      if (!last) return;
      t.ok(
        locationPath(c, last)?.startsWith(uploadsPath(c.crossRepo)),
        'Location is an upload session under the target repository',
        { exchange: last.describe() },
      );
    });
    if (c.automaticCrossmount === true && last?.status === 201)
      await t.test(
      'mounting without from, with automatic content discovery enabled, returns 201',
      async (t) => {
        const res = await client.post(uploadsPath(c.crossRepo), { query: { mount: fx.blobA.digest } });
        expectStatus(t, res, 201);
      },
    );
    if (c.automaticCrossmount === false && last?.status === 201)
      await t.test(
      'mounting without from, with automatic content discovery disabled, returns 202',
      async (t) => {
        const res = await client.post(uploadsPath(c.crossRepo), { query: { mount: fx.blobA.digest } });
        expectStatus(t, res, 202);
      },
    );
    await t.test('(spec) mounting an existing blob without from into a new repository mounts it (201) or opens a session (202)', async (t) => {
      const target = `${c.crossRepo}-auto`;
      const res = await client.post(uploadsPath(target), { query: { mount: fx.layer.digest } });
      const want = c.automaticCrossmount === undefined ? [201, 202] : c.automaticCrossmount ? 201 : 202;
      expectStatus(t, res, want);
      requireLocation(t, res);
      if (res.status === 201) {
        t.equal(locationPath(c, res), blobPath(target, fx.layer.digest), 'Location is the blob in the target repository');
        await expectLocationServesBlob(t, c, res, fx.layer);
      } else if (res.status === 202) {
        t.ok(locationPath(c, res)?.startsWith(uploadsPath(target)), 'Location is an upload session under the target repository');
      }
    });
    await t.test('(v1.2 suite) mounting a blob the source repository does not hold yields an upload session (202)', async (t) => {
      const res = await client.post(uploadsPath(c.crossRepo), { query: { mount: digestOf(`absent ${rand()}`, c.alg), from: repo } });
      expectStatus(t, res, 202);
      requireLocation(t, res);
    });
  });

  await t.test('Manifest upload', async (t) => {
    await t.test('GET on a nonexistent manifest returns 404', async (t) => {
      const res = await getManifest(c, 'GET', repo, NONEXISTENT_MANIFEST);
      expectStatus(t, res, 404);
      expectErrorBody(t, res);
    });
    await t.test('PUT accepts a manifest upload under four tags (201 and Location)', async (t) => {
      for (let i = 0; i < 4; i++) {
        const res = await pushTagged(t, c, repo, `test${i}`, m1, 201);
        requireLocation(t, res);
        expectStatus(t, res, 201, `PUT tag test${i}`);
        checkDigestHeader(t, c, res, m1, 'tag');
        await expectLocationServesManifest(t, c, res, m1);
      }
    });
    await t.test('PUT accepts an image manifest with no layers', async (t) => {
      const m = fx.emptyLayerManifest;
      const res = await pushTagged(t, c, repo, EMPTY_LAYER_TAG, m, 201);
      expectStatus(t, res, 201, 'manifest with an empty layer list');
      if (res.status === 201) {
        emptyLayerPushed = true;
        requireLocation(t, res);
        checkDigestHeader(t, c, res, m, 'tag');
        await expectLocationServesManifest(t, c, res, m);
      }
    });
    await t.test('GET on the manifest by digest returns 200', async (t) => {
      const res = await getManifest(c, 'GET', repo, m1.digest);
      expectStatus(t, res, 200);
      t.ok(res.body.equals(m1.content), '(spec) the manifest is served byte for byte');
      checkDigestHeader(t, c, res, m1, 'digest');
    });
    await t.test('(spec) PUT by digest returns 201, Location and the same Docker-Content-Digest', async (t) => {
      const res = await putManifest(c, repo, m1.digest, m1);
      expectStatus(t, res, 201);
      requireLocation(t, res);
      checkDigestHeader(t, c, res, m1, 'digest');
      await expectLocationServesManifest(t, c, res, m1);
    });
  });

  await t.test('Teardown', async (t) => {
    await t.test('delete the manifest created in tests', async (t) => {
      await deleteAndVerify(t, c, manifestPath(repo, m1.digest), DELETE_OK, 'DELETE manifest');
      if (emptyLayerPushed) {
        await deleteAndVerify(t, c, manifestPath(repo, fx.emptyLayerManifest.digest), DELETE_OK, 'DELETE empty-layer manifest');
      }
    });
    if (c.alg !== 'sha256') {
      await t.test(`delete the tags pushed in tests (${c.alg} runs file them separately)`, async (t) => {
        for (const tag of ['test0', 'test1', 'test2', 'test3', EMPTY_LAYER_TAG]) {
          await deleteAndVerify(t, c, manifestPath(repo, tag), TAG_DELETE_OK_OR_GONE, `DELETE tag ${tag}`);
        }
      });
    }
    await t.test('delete the config blob created in tests', (t) => deleteAndVerify(t, c, blobPath(repo, config1.digest), DELETE_OK_OR_GONE, 'DELETE config'));
    await t.test('delete the layer blob created in tests', (t) => deleteAndVerify(t, c, blobPath(repo, fx.layer.digest), DELETE_OK_OR_GONE, 'DELETE layer'));
  });
}

// ---------------------------------------------------------------------------------------------
// 03 Content discovery

async function discoveryWorkflow(t: Test, c: Ctx): Promise<void> {
  const { client, repo, fx } = c;
  const config2 = fx.configs[2] as TestBlob;
  const config4 = fx.configs[4] as TestBlob;
  const m2 = fx.manifests[2] as TestManifest;
  const m3 = fx.manifests[3] as TestManifest;
  const m4 = fx.manifests[4] as TestManifest;
  let numTags = 4;
  let tagList: string[] = [];
  const referrersOfM4 = [fx.refsAConfig, fx.refsALayer, fx.refsIndex, fx.refsBConfig, fx.refsBLayer];

  await t.test('(v1.2 suite) Empty repository', async (t) => {
    const emptyRepo = `${repo}-empty`;
    await t.test('tag list of a repository with no content returns 200 with no tags, or 404', async (t) => {
      const res = await client.get(tagsPath(emptyRepo));
      expectStatus(t, res, [200, 404]);
      if (res.status === 200) t.same(tagsOf(res), [], 'no tags');
      else expectErrorBody(t, res, { code: 'NAME_UNKNOWN' });
    });
    await t.test('referrers in a repository with no content returns 200 and an empty index', async (t) => {
      const res = await client.get(referrersPath(emptyRepo, digestOf(rand(), c.alg)));
      expectStatus(t, res, 200);
      expectHeader(t, res, 'content-type', MT.index);
      t.same(indexOf(t, res), [], 'no referrers');
    });
  });

  await t.test('Setup', async (t) => {
    await t.test('populate the registry with the config blob', (t) => setupBlob(t, c, repo, config2));
    await t.test('populate the registry with the layer blob', (t) => setupBlob(t, c, repo, fx.layer));
    await t.test('populate the registry with test tags', async (t) => {
      for (let i = 0; i < numTags; i++) {
        const res = await pushTagged(t, c, repo, `test${i}`, m2, 'success');
        expectStatus(t, res, 'success', `PUT tag test${i}`);
      }
      const res = await client.get(tagsPath(repo));
      tagList = tagsOf(res);
    });
    await t.test('populate the registry with referrers and their subject', async (t) => {
      t.equal(fx.emptyJSON.digest, EMPTY_JSON_DIGEST[c.alg], 'the empty JSON blob has its well-known digest');
      await setupBlob(t, c, repo, fx.emptyJSON);
      // referrers pushed before their subject exists
      await setupBlob(t, c, repo, fx.refBlobA);
      for (const m of [fx.refsAConfig, fx.refsALayer, fx.refsIndex]) {
        const res = await putManifest(c, repo, m.digest, m);
        expectStatus(t, res, 'success', `PUT referrer ${m.mediaType === MT.index ? 'index' : 'manifest'} before its subject`);
        expectHeader(t, res, 'oci-subject', m4.digest, 'OCI-Subject names the subject');
      }
      // the subject
      await setupBlob(t, c, repo, config4);
      await setupBlob(t, c, repo, fx.layer);
      const subject = await pushTagged(t, c, repo, TEST_TAG, m4, 'success');
      expectStatus(t, subject, 'success', 'PUT the subject manifest');
      // referrers pushed after their subject
      await setupBlob(t, c, repo, fx.refBlobB);
      for (const m of [fx.refsBConfig, fx.refsBLayer]) {
        const res = await putManifest(c, repo, m.digest, m);
        expectStatus(t, res, 'success', 'PUT referrer after its subject');
        expectHeader(t, res, 'oci-subject', m4.digest, 'OCI-Subject names the subject');
      }
      // a referrer whose subject is never pushed
      const res = await putManifest(c, repo, fx.refsCLayer.digest, fx.refsCLayer);
      expectStatus(t, res, 'success', 'PUT referrer of a missing subject');
      expectHeader(t, res, 'oci-subject', m3.digest, 'OCI-Subject names the missing subject');
    });
  });

  await t.test('Listing tags', async (t) => {
    await t.test('GET on the tag list returns 200', async (t) => {
      const res = await client.get(tagsPath(repo));
      expectStatus(t, res, 200);
      tagList = tagsOf(res);
      numTags = tagList.length;
      const body = res.json() as TagList | undefined;
      t.equal(body?.name, repo, '(spec) the list names the repository');
      for (const tag of ['test0', 'test1', 'test2', 'test3', TEST_TAG]) t.ok(tagList.includes(tag), `(spec) tag ${tag} is listed`);
      t.same(tagList, [...tagList].sort(), '(spec) tags are in lexical order');
    });
    await t.test('the number of tags can be limited with n', async (t) => {
      const n = Math.floor(numTags / 2);
      const res = await client.get(tagsPath(repo), { query: { n: String(n) } });
      expectStatus(t, res, 200);
      const page = tagsOf(res);
      t.equal(page.length, n, `n=${n} returns ${n} tags`, { exchange: res.describe() });
      t.same(page, tagList.slice(0, n), '(spec) the first page is the first n tags');
      const next = nextLink(res);
      if (res.header('link') !== null) {
        t.ok(next, '(spec) a Link header is an RFC 5988 link with rel="next"', { exchange: res.describe() });
      }
      if (next) {
        const more = await client.get(next);
        expectStatus(t, more, 200, '(spec) the Link next page');
        const rest = tagsOf(more);
        t.ok(rest.length > 0, '(spec) the next page has tags');
        t.same(rest, tagList.slice(n, n + rest.length), '(spec) the next page continues after the first page');
      }
    });
    await t.test('the start of the list can be set with last', async (t) => {
      const n = Math.floor(numTags / 2);
      const first = await client.get(tagsPath(repo), { query: { n: String(n) } });
      const page1 = tagsOf(first);
      const lastTag = page1[n - 1];
      if (lastTag === undefined) return t.fail('the first page has no last tag', { exchange: first.describe() });
      const res = await client.get(tagsPath(repo), { query: { n: String(n), last: lastTag } });
      expectStatus(t, res, 200);
      const page2 = tagsOf(res);
      t.ok(page2.length <= n, `at most n=${n} tags`, { exchange: res.describe() });
      t.notOk(page2.includes(lastTag), `(spec) the last tag (${lastTag}) itself is not repeated`);
      t.ok(
        page2.every((tag) => tag > lastTag),
        `(spec) only tags after ${lastTag} are listed`,
        { exchange: res.describe() },
      );
      const expected = tagList.slice(n, 2 * n);
      if (res.header('link') === null) t.same(page2, expected, '(spec) the page after last is the next n tags');
      else t.same(page2, expected.slice(0, page2.length), '(spec) the page after last continues the list');
    });
    await t.test('(spec) n=0 returns an empty list and no Link header', async (t) => {
      const res = await client.get(tagsPath(repo), { query: { n: '0' } });
      expectStatus(t, res, 200);
      t.same(tagsOf(res), [], 'no tags');
      t.equal(res.header('link'), null, 'no Link header');
    });
  });

  await t.test('Listing referrers', async (t) => {
    await t.test('GET referrers of a nonexistent manifest returns 200 and an empty index', async (t) => {
      const res = await client.get(referrersPath(repo, fx.dummyDigest));
      expectStatus(t, res, 200);
      expectHeader(t, res, 'content-type', MT.index);
      t.equal(indexOf(t, res).length, 0, 'no referrers');
    });
    await t.test('GET referrers of a manifest returns 200 and its five referrers', async (t) => {
      const res = await client.get(referrersPath(repo, m4.digest));
      expectStatus(t, res, 200);
      expectHeader(t, res, 'content-type', MT.index);
      const body = res.json() as IndexBody | undefined;
      t.equal(body?.schemaVersion, 2, '(v1.2 suite) the response is an index with schemaVersion 2');
      t.equal(body?.mediaType, MT.index, '(v1.2 suite) the response index carries its mediaType');
      const list = indexOf(t, res);
      t.equal(list.length, 5, 'five referrers', { exchange: res.describe() });
      t.not(list[0]?.digest, list[1]?.digest, 'referrers are distinct');
      t.same(
        list.map((d) => d.digest).sort(),
        referrersOfM4.map((m) => m.digest).sort(),
        '(spec) the referrers are exactly the manifests whose subject is this one',
      );
      for (const d of list) {
        const digest = String(d.digest);
        t.equal(Object.keys(d.annotations ?? {}).length, 1, `referrer ${digest} carries its one annotation`);
        t.equal(d.annotations?.[ANNOTATION_KEY], fx.annotations.get(digest), `referrer ${digest} annotation is copied from the manifest`);
        t.equal(d.artifactType, fx.artifactTypes.get(digest), `(spec) referrer ${digest} artifactType (artifactType field, else config mediaType)`);
        const m = referrersOfM4.find((x) => x.digest === digest);
        if (m) {
          t.equal(d.mediaType, m.mediaType, `(spec) referrer ${digest} mediaType`);
          t.equal(d.size, m.length, `(spec) referrer ${digest} size`);
        }
      }
    });
    await t.test('GET referrers filtered by artifactType returns 200 and the matching referrers', async (t) => {
      const res = await client.get(referrersPath(repo, m4.digest), { query: { artifactType: ARTIFACT_TYPE_A } });
      expectStatus(t, res, 200);
      expectHeader(t, res, 'content-type', MT.index);
      const list = indexOf(t, res);
      const applied = res.header('oci-filters-applied');
      if (applied !== null && applied !== '') {
        t.equal(list.length, 2, 'two referrers of the requested artifactType', { exchange: res.describe() });
        t.equal(applied, 'artifactType', 'OCI-Filters-Applied names the artifactType filter');
        for (const d of list) t.equal(d.artifactType, ARTIFACT_TYPE_A, `(spec) referrer ${String(d.digest)} has the requested artifactType`);
      } else {
        t.equal(list.length, 5, 'unfiltered: all five referrers', { exchange: res.describe() });
        t.comment('WARNING: the registry does not filter referrers by artifactType (no OCI-Filters-Applied)');
      }
      for (const d of list) {
        const digest = String(d.digest);
        t.equal(Object.keys(d.annotations ?? {}).length, 1, `referrer ${digest} carries its one annotation`);
        t.equal(d.annotations?.[ANNOTATION_KEY], fx.annotations.get(digest), `referrer ${digest} annotation`);
      }
    });
    await t.test('GET referrers of a manifest never pushed returns 200 and its referrer', async (t) => {
      const res = await client.get(referrersPath(repo, m3.digest));
      expectStatus(t, res, 200);
      expectHeader(t, res, 'content-type', MT.index);
      const list = indexOf(t, res);
      t.equal(list.length, 1, 'one referrer', { exchange: res.describe() });
      t.equal(list[0]?.digest, fx.refsCLayer.digest, 'the referrer of the missing subject');
      t.equal(list[0]?.artifactType, fx.artifactTypes.get(fx.refsCLayer.digest), '(spec) its artifactType');
    });
    await t.test('(spec) GET referrers with a malformed digest returns 400', async (t) => {
      const res = await client.get(referrersPath(repo, `${c.alg}:not-a-digest`));
      expectStatus(t, res, 400);
      expectErrorBody(t, res);
    });
  });

  await t.test('Teardown', async (t) => {
    await t.test('delete the created manifests and tags', async (t) => {
      const refs = [
        fx.refsIndex.digest,
        m2.digest,
        m4.digest,
        fx.refsAConfig.digest,
        fx.refsALayer.digest,
        TEST_TAG,
        fx.refsBConfig.digest,
        fx.refsBLayer.digest,
        fx.refsCLayer.digest,
      ];
      if (c.alg !== 'sha256') refs.push('test0', 'test1', 'test2', 'test3'); // tags filed apart in sha512 runs
      for (const ref of refs) {
        await deleteAndVerify(t, c, manifestPath(repo, ref), TAG_DELETE_OK_OR_GONE, `DELETE manifest ${ref}`);
      }
    });
    await t.test('delete the config blob created in tests', (t) => deleteAndVerify(t, c, blobPath(repo, config2.digest), DELETE_OK, 'DELETE config'));
    await t.test('delete the layer blob created in setup', (t) => deleteAndVerify(t, c, blobPath(repo, fx.layer.digest), DELETE_OK, 'DELETE layer'));
    await t.test('references teardown', async (t) => {
      for (const m of [fx.refsIndex, fx.refsAConfig, fx.refsALayer, m4, fx.refsBConfig, fx.refsBLayer]) {
        await deleteAndVerify(t, c, manifestPath(repo, m.digest), DELETE_OK_OR_GONE, 'DELETE manifest (already deleted is fine)');
      }
      for (const b of [config4, fx.refBlobA, fx.refBlobB, fx.emptyJSON]) {
        await deleteAndVerify(t, c, blobPath(repo, b.digest), DELETE_OK_OR_GONE, `DELETE blob ${b.digest.slice(0, 19)}…`);
      }
    });
    await t.test('(spec) referrers of a subject whose referrers were deleted is an empty index', async (t) => {
      const res = await client.get(referrersPath(repo, m4.digest));
      expectStatus(t, res, 200);
      t.equal(indexOf(t, res).length, 0, 'no referrers left');
    });
  });
}

// ---------------------------------------------------------------------------------------------
// 04 Content management

async function managementWorkflow(t: Test, c: Ctx): Promise<void> {
  const { client, repo, fx } = c;
  const config3 = fx.configs[3] as TestBlob;
  const m3 = fx.manifests[3] as TestManifest;
  let tagToDelete = '';
  let numTags = 0;
  let blobDeleteAllowed = true;

  await t.test('Setup', async (t) => {
    await t.test('populate the registry with the config blob', (t) => setupBlob(t, c, repo, config3));
    await t.test('populate the registry with the layer blob', (t) => setupBlob(t, c, repo, fx.layer));
    await t.test('populate the registry with a tag', async (t) => {
      tagToDelete = TEST_TAG;
      const res = await pushTagged(t, c, repo, tagToDelete, m3, 'success');
      expectStatus(t, res, 'success', 'PUT tag');
    });
    await t.test('count the tags before anything is deleted', async (t) => {
      const res = await client.get(tagsPath(repo));
      expectStatus(t, res, 200);
      const body = res.json() as TagList | undefined;
      t.ok(body && Array.isArray(body.tags), 'the tag list is JSON with a tags array', { exchange: res.describe() });
      numTags = tagsOf(res).length;
    });
  });

  await t.test('Manifest delete', async (t) => {
    await t.test('DELETE on a tag returns 202, unless tag deletion is disallowed (400 UNSUPPORTED / 405)', async (t) => {
      const res = await client.delete(manifestPath(repo, tagToDelete));
      expectStatus(t, res, [400, 202, 405]);
      if (res.status === 400) expectErrorBody(t, res, { code: 'UNSUPPORTED' });
      if (res.status === 202) {
        const head = await getManifest(c, 'HEAD', repo, tagToDelete);
        expectStatus(t, head, 404, '(v1.2 suite) the deleted tag answers 404 right away');
        const get = await getManifest(c, 'GET', repo, tagToDelete);
        expectStatus(t, get, 404, '(spec) GET on the deleted tag returns 404');
        expectErrorBody(t, get, { code: 'MANIFEST_UNKNOWN' });
      }
    });
    await t.test('DELETE on a manifest by digest returns 202 unless already deleted', async (t) => {
      const res = await client.delete(manifestPath(repo, m3.digest));
      expectStatus(t, res, [202, 404]);
      if (res.status === 404) expectErrorBody(t, res, { code: 'MANIFEST_UNKNOWN' });
    });
    await t.test('GET on the deleted manifest returns 404, unless delete is disallowed', async (t) => {
      const res = await getManifest(c, 'GET', repo, m3.digest);
      expectStatus(t, res, [404, 200]);
      if (res.status === 404) expectErrorBody(t, res, { code: 'MANIFEST_UNKNOWN' });
      const head = await getManifest(c, 'HEAD', repo, m3.digest);
      t.equal(head.status, res.status, '(v1.2 suite) HEAD agrees with GET');
    });
    await t.test('the tag list reflects the deletion', async (t) => {
      const res = await client.get(tagsPath(repo));
      expectStatus(t, res, 200);
      const body = res.json() as TagList | undefined;
      t.ok(body && Array.isArray(body.tags), 'the tag list is JSON with a tags array', { exchange: res.describe() });
      const tags = tagsOf(res);
      t.ok(tags.length < numTags, `fewer tags than before (${tags.length} < ${numTags})`, { exchange: res.describe() });
      t.notOk(tags.includes(tagToDelete), `(spec) ${tagToDelete} is no longer listed`);
    });
    if (c.alg !== 'sha256') {
      await t.test(`the canonical copy of the tagged manifest can be deleted too (${c.alg} runs)`, (t) =>
        deleteAndVerify(t, c, manifestPath(repo, digestOf(m3.content, 'sha256')), DELETE_OK_OR_GONE, 'DELETE sha256 copy'),
      );
    }
  });

  await t.test('Blob delete', async (t) => {
    await t.test('DELETE on a blob returns 202', async (t) => {
      const config = await deleteAndVerify(t, c, blobPath(repo, config3.digest), DELETE_OK_OR_GONE, 'DELETE config blob');
      const layer = await deleteAndVerify(t, c, blobPath(repo, fx.layer.digest), DELETE_OK_OR_GONE, 'DELETE layer blob');
      if (layer.status === 405) blobDeleteAllowed = false;
      t.equal(config.status === 405, layer.status === 405, 'blob deletion is consistently allowed or not');
    });
    if (blobDeleteAllowed) await t.test('GET on the deleted blob returns 404', async (t) => {
      const res = await client.get(blobPath(repo, config3.digest), { follow: true });
      expectStatus(t, res, 404);
      expectErrorBody(t, res, { code: 'BLOB_UNKNOWN' });
    });
    if (blobDeleteAllowed) await t.test('(spec) DELETE on a blob that does not exist returns 404', async (t) => {
      const res = await client.delete(blobPath(repo, fx.dummyDigest));
      expectStatus(t, res, 404);
      expectErrorBody(t, res, { code: 'BLOB_UNKNOWN' });
    });
  });
}
