// The MetadataStore contract: every driver (SQLite now, PostgreSQL next) must pass this suite.
// Run it from a driver's test file: metadataStoreContract(t, 'sqlite', () => open a fresh, empty store).
// Each subtest gets its own store and closes it in teardown. Results whose order the interface does
// not define (referrers, references) are sorted before comparison so any driver can pass.
import { createHash } from 'node:crypto';
import type t from 'tap';
import { MissingContentError } from '../../src/metadata/metadata-store.js';
import type { ManifestReference } from '../../src/oci/references.js';
import type {
  MetadataStore,
  PutManifestInput,
  ServiceTokenRecord,
} from '../../src/metadata/metadata-store.js';

type Tap = typeof t;
/** A tap test object (the root `t` or a subtest's). */
export type TestObject = Parameters<Parameters<Tap['test']>[0]>[0] | Tap;

/** A syntactically valid sha256 digest made from a small number, so tests read as `dg(1)`, `dg(2)`. */
export function dg(n: number): string {
  return `sha256:${n.toString(16).padStart(64, '0')}`;
}

const IMAGE = 'application/vnd.oci.image.manifest.v1+json';
const INDEX = 'application/vnd.oci.image.index.v1+json';
const SIG = 'application/vnd.dev.cosign.artifact.sig.v1+json';
const SBOM = 'application/spdx+json';

function manifest(repo: string, digest: string, extra: Partial<PutManifestInput> = {}): PutManifestInput {
  return {
    repo,
    digest,
    mediaType: IMAGE,
    size: 512,
    subject: null,
    artifactType: null,
    annotations: null,
    references: [],
    tags: [],
    ...extra,
  };
}

const byDigest = <T extends { digest: string }>(a: T, b: T): number =>
  a.digest < b.digest ? -1 : a.digest > b.digest ? 1 : 0;
const byKindDigest = (a: ManifestReference, b: ManifestReference): number =>
  a.kind === b.kind ? byDigest(a, b) : a.kind < b.kind ? -1 : 1;

/** A service token record; ids are 12 characters like the real ones, hashes 64 hex digits. */
function token(id: string, extra: Partial<ServiceTokenRecord> = {}): ServiceTokenRecord {
  return {
    id: id.padEnd(12, '0'),
    name: `ci-${id}`,
    secretHash: createHash('sha256').update(id).digest('hex'),
    scopes: [{ repositories: ['team/**'], actions: ['pull'] }],
    createdAt: 1_700_000_000_000,
    expiresAt: null,
    revokedAt: null,
    lastUsedAt: null,
    ...extra,
  };
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export function metadataStoreContract(
  tap: TestObject,
  name: string,
  factory: () => Promise<MetadataStore>,
): Promise<unknown> {
  return tap.test(`MetadataStore contract: ${name}`, async (t) => {
    async function fresh(tt: TestObject): Promise<MetadataStore> {
      const store = await factory();
      tt.teardown(() => store.close());
      return store;
    }

    t.test('methods return promises and failures reject instead of throwing', async (t) => {
      const store = await fresh(t);
      const p = store.getTag('r', 'latest');
      t.ok(p instanceof Promise, 'getTag returns a Promise');
      t.equal(await p, undefined);
      const up = { id: 'u1', repo: 'r', offset: 0, startedAt: 1, updatedAt: 1 };
      await store.createUpload(up);
      // A duplicate upload id is a bug, never a silent overwrite.
      await t.rejects(store.createUpload({ ...up, offset: 99 }));
      t.equal((await store.getUpload('u1'))?.offset, 0);
    });

    t.test('repositories: created by linkBlob and putManifest only', async (t) => {
      const store = await fresh(t);
      t.same(await store.listRepositories(), []);
      t.equal(await store.repositoryExists('a'), false);

      await store.putBlob(dg(1), 10, { local: true });
      await store.createUpload({ id: 'u', repo: 'pending', offset: 0, startedAt: 1, updatedAt: 1 });
      t.same(await store.listRepositories(), [], 'putBlob and createUpload create no repository');
      t.equal(await store.repositoryExists('pending'), false, 'an upload in progress does not make a repo visible');

      await store.linkBlob('a', dg(1));
      t.equal(await store.repositoryExists('a'), true, 'linkBlob creates the repository');
      await store.putManifest(manifest('b', dg(2)));
      t.equal(await store.repositoryExists('b'), true, 'putManifest creates the repository');
      await store.linkBlob('a', dg(3));
      await store.putManifest(manifest('a', dg(4)));
      t.same(await store.listRepositories(), ['a', 'b'], 'no duplicates');
      t.equal(await store.repositoryExists('A'), false, 'names are case-sensitive');
      t.equal(await store.repositoryExists('a/'), false);
    });

    t.test('repository owners: the first claim wins, later claims return it, no repository is created', async (t) => {
      const store = await fresh(t);
      t.equal(await store.repositoryOwner('team/app'), undefined);
      t.equal(await store.claimRepository('team/app', 'alice'), 'alice');
      t.equal(await store.claimRepository('team/app', 'bob'), 'alice', 'a second claim does not take it over');
      t.equal(await store.repositoryOwner('team/app'), 'alice');
      t.equal(await store.repositoryOwner('team/other'), undefined);
      t.equal(await store.repositoryExists('team/app'), false, 'a claim alone does not list the repository');
    });

    t.test('listRepositories: lexical order and pagination edges', async (t) => {
      const store = await fresh(t);
      // Inserted out of order; '-' (0x2d) < '/' (0x2f) < '0' (0x30) < 'b' in binary order.
      for (const name of ['c/d', 'b', 'a/x', 'a', 'a-b']) await store.linkBlob(name, dg(1));
      const all = ['a', 'a-b', 'a/x', 'b', 'c/d'];
      t.same(await store.listRepositories(), all);
      t.same(await store.listRepositories({}), all);
      t.same(await store.listRepositories({ n: 0 }), [], 'n=0 is an empty page');
      t.same(await store.listRepositories({ n: 2 }), ['a', 'a-b']);
      t.same(await store.listRepositories({ n: 100 }), all, 'n beyond the count returns everything');
      t.same(await store.listRepositories({ last: 'a-b', n: 2 }), ['a/x', 'b'], 'last is exclusive');
      t.same(await store.listRepositories({ last: 'a-b' }), ['a/x', 'b', 'c/d'], 'last without n');
      t.same(await store.listRepositories({ last: 'a0' }), ['b', 'c/d'], 'last between entries');
      t.same(await store.listRepositories({ last: 'c/d' }), [], 'last = final entry');
      t.same(await store.listRepositories({ last: 'zzz', n: 5 }), [], 'last beyond the end');
      t.same(await store.listRepositories({ last: 'a', n: 0 }), []);

      // Walking page by page visits every name exactly once.
      const seen: string[] = [];
      let last: string | undefined;
      for (;;) {
        const page = await store.listRepositories(last === undefined ? { n: 2 } : { n: 2, last });
        if (page.length === 0) break;
        seen.push(...page);
        last = page[page.length - 1];
      }
      t.same(seen, all);
    });

    t.test('blobs: putBlob records, re-put keeps createdAt, local is sticky', async (t) => {
      const store = await fresh(t);
      t.equal(await store.getBlob(dg(1)), undefined);

      const before = Date.now();
      await store.putBlob(dg(1), 1234, { local: false });
      const after = Date.now();
      const b = await store.getBlob(dg(1));
      if (!b) throw new Error('blob not recorded');
      t.equal(b.digest, dg(1));
      t.equal(b.size, 1234);
      t.equal(b.local, false);
      t.ok(b.createdAt >= before && b.createdAt <= after, 'createdAt is Date.now() in milliseconds');
      t.ok(b.lastAccessAt >= b.createdAt && b.lastAccessAt <= after);

      await sleep(5);
      await store.putBlob(dg(1), 1234, { local: true });
      const b2 = await store.getBlob(dg(1));
      t.equal(b2?.createdAt, b.createdAt, 're-put keeps createdAt');
      t.equal(b2?.local, true, 'a local put marks a cached blob local');

      await store.putBlob(dg(1), 1234, { local: false });
      t.equal((await store.getBlob(dg(1)))?.local, true, 'a later cached put does not clear local');

      await store.putBlob(dg(2), 5, { local: false });
      await store.putBlob(dg(2), 5, { local: false });
      t.equal((await store.getBlob(dg(2)))?.local, false, 'cached stays cached');
      await store.putBlob(dg(3), 0, { local: true });
      t.match(await store.getBlob(dg(3)), { digest: dg(3), size: 0, local: true }, 'empty blob');
    });

    t.test('repository→blob links', async (t) => {
      const store = await fresh(t);
      t.equal(await store.isBlobLinked('r', dg(1)), false);
      await store.putBlob(dg(1), 10, { local: true });
      await store.linkBlob('r', dg(1));
      await store.linkBlob('r', dg(1)); // idempotent
      t.equal(await store.isBlobLinked('r', dg(1)), true);
      t.equal(await store.isBlobLinked('other', dg(1)), false, 'a link is per repository');
      t.equal(await store.isBlobLinked('r', dg(2)), false);

      t.equal(await store.unlinkBlob('r', dg(1)), true);
      t.equal(await store.isBlobLinked('r', dg(1)), false);
      t.equal(await store.unlinkBlob('r', dg(1)), false, 'unlinking twice returns false');
      t.equal(await store.unlinkBlob('r', dg(9)), false, 'never linked');
      t.equal(await store.unlinkBlob('nope', dg(1)), false, 'unknown repository');
      t.ok(await store.getBlob(dg(1)), 'unlinking keeps the blob record (the collector decides)');
    });

    t.test('blobRepositories lists the repositories a blob is linked in, in name order, up to a limit', async (t) => {
      const store = await fresh(t);
      t.strictSame(await store.blobRepositories(dg(1), 10), [], 'linked nowhere');
      await store.putBlob(dg(1), 10, { local: true });
      for (const repo of ['c/x', 'a/x', 'b/x']) await store.linkBlob(repo, dg(1));
      await store.linkBlob('d/x', dg(2));
      t.strictSame(await store.blobRepositories(dg(1), 10), ['a/x', 'b/x', 'c/x']);
      t.strictSame(await store.blobRepositories(dg(1), 2), ['a/x', 'b/x'], 'at most limit');
      await store.unlinkBlob('a/x', dg(1));
      t.strictSame(await store.blobRepositories(dg(1), 10), ['b/x', 'c/x'], 'an unlinked repository is not listed');
    });

    t.test('putManifest / getManifest round-trip every field', async (t) => {
      const store = await fresh(t);
      t.equal(await store.getManifest('r', dg(1)), undefined);
      const before = Date.now();
      await store.putManifest(
        manifest('r', dg(1), {
          size: 999,
          subject: dg(7),
          artifactType: SBOM,
          annotations: { 'org.opencontainers.image.created': '2024-01-01T00:00:00Z', 'x.y': 'é"\\' },
          references: [
            { digest: dg(2), kind: 'blob' },
            { digest: dg(3), kind: 'blob' },
          ],
        }),
      );
      const after = Date.now();
      const m = await store.getManifest('r', dg(1));
      if (!m) throw new Error('manifest not recorded');
      t.match(m, {
        repo: 'r',
        digest: dg(1),
        mediaType: IMAGE,
        size: 999,
        subject: dg(7),
        artifactType: SBOM,
      });
      t.same(m.annotations, { 'org.opencontainers.image.created': '2024-01-01T00:00:00Z', 'x.y': 'é"\\' });
      t.ok(m.createdAt >= before && m.createdAt <= after, 'createdAt in milliseconds');
      t.ok(m.lastAccessAt >= before && m.lastAccessAt <= after);
      t.same((await store.listManifestReferences('r', dg(1))).sort(byKindDigest), [
        { digest: dg(2), kind: 'blob' },
        { digest: dg(3), kind: 'blob' },
      ]);

      await store.putManifest(manifest('r', dg(4)));
      const plain = await store.getManifest('r', dg(4));
      t.equal(plain?.subject, null);
      t.equal(plain?.artifactType, null);
      t.equal(plain?.annotations, null, 'null annotations stay null');
      t.same(await store.listManifestReferences('r', dg(4)), []);
      t.same(await store.listManifestReferences('r', dg(99)), [], 'unknown manifest has no references');
      t.equal(await store.getManifest('other', dg(1)), undefined, 'manifests are per repository');
    });

    t.test('putManifest of the same digest is idempotent', async (t) => {
      const store = await fresh(t);
      const refs: ManifestReference[] = [
        { digest: dg(10), kind: 'manifest' },
        { digest: dg(11), kind: 'manifest' },
      ];
      await store.putManifest(manifest('r', dg(1), { mediaType: INDEX, references: refs, tags: ['v1'] }));
      const first = await store.getManifest('r', dg(1));
      await sleep(5);
      await store.putManifest(manifest('r', dg(1), { mediaType: INDEX, references: refs, tags: ['v1'] }));
      const second = await store.getManifest('r', dg(1));
      t.equal(second?.createdAt, first?.createdAt, 're-put keeps createdAt');
      t.same((await store.listManifestReferences('r', dg(1))).sort(byKindDigest), refs, 'no duplicated references');
      t.same(await store.listTags('r'), ['v1']);
      t.same(await store.listRepositories(), ['r']);

      // Re-put with other references replaces them, and new tags add to the old ones.
      await store.putManifest(
        manifest('r', dg(1), { mediaType: INDEX, references: [{ digest: dg(12), kind: 'blob' }], tags: ['v2'] }),
      );
      t.same(await store.listManifestReferences('r', dg(1)), [{ digest: dg(12), kind: 'blob' }], 'references replaced');
      t.same(await store.listTags('r'), ['v1', 'v2']);
      t.equal(await store.getTag('r', 'v1'), dg(1));
      t.equal(await store.getTag('r', 'v2'), dg(1));

      // The same reference listed twice in one put does not fail the transaction.
      await store.putManifest(
        manifest('r', dg(2), {
          references: [
            { digest: dg(20), kind: 'blob' },
            { digest: dg(20), kind: 'blob' },
          ],
        }),
      );
      t.same(await store.listManifestReferences('r', dg(2)), [{ digest: dg(20), kind: 'blob' }]);
    });

    t.test('tags: point, move, list, delete', async (t) => {
      const store = await fresh(t);
      t.equal(await store.getTag('r', 'latest'), undefined);
      t.same(await store.listTags('r'), [], 'unknown repository has no tags');

      await store.putManifest(manifest('r', dg(1), { tags: ['latest', 'v1'] }));
      t.equal(await store.getTag('r', 'latest'), dg(1));
      t.equal(await store.getTag('r', 'v1'), dg(1));
      t.equal(await store.getTag('other', 'latest'), undefined, 'tags are per repository');

      await store.putManifest(manifest('r', dg(2), { tags: ['latest'] }));
      t.equal(await store.getTag('r', 'latest'), dg(2), 'a tag moves to the newest put');
      t.equal(await store.getTag('r', 'v1'), dg(1), 'other tags stay');

      t.equal(await store.deleteTag('r', 'v1'), true);
      t.equal(await store.getTag('r', 'v1'), undefined);
      t.equal(await store.deleteTag('r', 'v1'), false, 'deleting twice returns false');
      t.equal(await store.deleteTag('r', 'never'), false);
      t.ok(await store.getManifest('r', dg(1)), 'deleting a tag keeps the manifest');
    });

    t.test('listTags: lexical order and pagination edges', async (t) => {
      const store = await fresh(t);
      await store.putManifest(manifest('r', dg(1), { tags: ['v2', 'latest', 'v10', 'V1', '1.0'] }));
      await store.putManifest(manifest('s', dg(1), { tags: ['zzz'] }));
      // Binary order: digits < upper case < lower case, and 'v10' < 'v2'.
      const all = ['1.0', 'V1', 'latest', 'v10', 'v2'];
      t.same(await store.listTags('r'), all);
      t.same(await store.listTags('r', { n: 0 }), [], 'n=0');
      t.same(await store.listTags('r', { n: 2 }), ['1.0', 'V1']);
      t.same(await store.listTags('r', { n: 50 }), all);
      t.same(await store.listTags('r', { last: 'V1', n: 2 }), ['latest', 'v10'], 'last is exclusive');
      t.same(await store.listTags('r', { last: 'm' }), ['v10', 'v2'], 'last between entries');
      t.same(await store.listTags('r', { last: 'v2' }), [], 'last = final entry');
      t.same(await store.listTags('r', { last: 'zz', n: 3 }), [], 'last beyond the end');
      t.same(await store.listTags('s'), ['zzz'], 'only the asked repository');
    });

    t.test('deleteManifest removes the manifest, its references and its tags', async (t) => {
      const store = await fresh(t);
      await store.putManifest(
        manifest('r', dg(1), { tags: ['a', 'b'], references: [{ digest: dg(5), kind: 'blob' }] }),
      );
      await store.putManifest(manifest('r', dg(2), { tags: ['c'] }));
      await store.putManifest(manifest('other', dg(1), { tags: ['a'] }));

      t.equal(await store.deleteManifest('r', dg(1)), true);
      t.equal(await store.getManifest('r', dg(1)), undefined);
      t.same(await store.listManifestReferences('r', dg(1)), []);
      t.equal(await store.getTag('r', 'a'), undefined);
      t.equal(await store.getTag('r', 'b'), undefined);
      t.same(await store.listTags('r'), ['c'], 'tags of other manifests stay');
      t.equal(await store.getTag('other', 'a'), dg(1), 'the same digest in another repository is untouched');
      t.ok(await store.getManifest('other', dg(1)));

      t.equal(await store.deleteManifest('r', dg(1)), false, 'deleting twice returns false');
      t.equal(await store.deleteManifest('r', dg(99)), false, 'unknown digest');
      t.equal(await store.deleteManifest('nope', dg(2)), false, 'unknown repository');

      // The digest can be pushed again after deletion, as a fresh record.
      await store.putManifest(manifest('r', dg(1), { tags: ['a'] }));
      t.equal(await store.getTag('r', 'a'), dg(1));
      t.same(await store.listManifestReferences('r', dg(1)), [], 'old references do not come back');
    });

    t.test('listReferrers: by subject, per repository, filtered by artifact type', async (t) => {
      const store = await fresh(t);
      const subject = dg(100);
      await store.putManifest(manifest('r', subject, { tags: ['latest'] }));
      await store.putManifest(
        manifest('r', dg(1), { subject, artifactType: SIG, annotations: { 'dev.cosignproject.cosign/signature': 'x' } }),
      );
      await store.putManifest(manifest('r', dg(2), { subject, artifactType: SBOM }));
      await store.putManifest(manifest('r', dg(3), { subject, artifactType: null }));
      await store.putManifest(manifest('r', dg(4), { subject: dg(200), artifactType: SIG }));
      await store.putManifest(manifest('other', dg(5), { subject, artifactType: SIG }));

      const all = (await store.listReferrers('r', subject)).sort(byDigest);
      t.same(
        all.map((m) => m.digest),
        [dg(1), dg(2), dg(3)],
        'only manifests of this repository with this subject',
      );
      t.match(all[0], { repo: 'r', digest: dg(1), subject, artifactType: SIG, mediaType: IMAGE, size: 512 });
      t.same(all[0]?.annotations, { 'dev.cosignproject.cosign/signature': 'x' });

      const sigs = await store.listReferrers('r', subject, SIG);
      t.same(
        sigs.map((m) => m.digest),
        [dg(1)],
        'filtered by artifactType',
      );
      t.same(await store.listReferrers('r', subject, 'application/unknown'), []);
      t.same(await store.listReferrers('r', dg(999)), [], 'no referrers');
      t.same(
        (await store.listReferrers('other', subject)).map((m) => m.digest),
        [dg(5)],
      );

      await store.deleteManifest('r', dg(1));
      t.same(
        (await store.listReferrers('r', subject)).sort(byDigest).map((m) => m.digest),
        [dg(2), dg(3)],
        'a deleted referrer is gone',
      );
    });

    t.test('uploads: create, get, compare-and-set advance, delete', async (t) => {
      const store = await fresh(t);
      t.equal(await store.getUpload('u1'), undefined);
      const up = { id: 'u1', repo: 'r', offset: 0, startedAt: 1_700_000_000_000, updatedAt: 1_700_000_000_000 };
      await store.createUpload(up);
      t.same(await store.getUpload('u1'), up, 'round-trips exactly');

      const before = Date.now();
      t.equal(await store.advanceUpload('u1', 0, 100), true);
      const a = await store.getUpload('u1');
      t.equal(a?.offset, 100);
      t.equal(a?.startedAt, up.startedAt, 'startedAt is kept');
      t.ok((a?.updatedAt ?? 0) >= before, 'updatedAt is refreshed');

      t.equal(await store.advanceUpload('u1', 0, 50), false, 'stale expected offset loses');
      t.equal((await store.getUpload('u1'))?.offset, 100, 'offset unchanged after a lost CAS');
      t.equal(await store.advanceUpload('u1', 100, 250), true);
      t.equal((await store.getUpload('u1'))?.offset, 250);
      t.equal(await store.advanceUpload('missing', 0, 10), false, 'unknown upload');

      await store.createUpload({ ...up, id: 'u2', offset: 7 });
      t.equal((await store.getUpload('u2'))?.offset, 7);

      t.equal(await store.deleteUpload('u1'), true);
      t.equal(await store.getUpload('u1'), undefined);
      t.equal(await store.deleteUpload('u1'), false, 'deleting twice returns false');
      t.equal(await store.advanceUpload('u1', 250, 300), false, 'a deleted upload cannot advance');
      t.equal((await store.getUpload('u2'))?.offset, 7, 'other uploads untouched');
      t.same(await store.listRepositories(), [], 'uploads never create repositories');
    });

    t.test('service tokens: create and get round-trip every field', async (t) => {
      const store = await fresh(t);
      t.equal(await store.getServiceToken('nothere00000'), undefined);
      const full = token('a', {
        name: 'Deploy.bot_1-x',
        scopes: [
          { repositories: ['team/**', 'docker.io/library/*'], actions: ['pull', 'push'] },
          { repositories: ['**'], actions: ['*'] },
          { repositories: ['é/ü'], actions: ['delete'] },
        ],
        expiresAt: 1_800_000_000_000,
        lastUsedAt: 1_700_000_000_500,
      });
      await store.createServiceToken(full);
      t.same(await store.getServiceToken(full.id), full, 'every field, scopes in order');
      const plain = token('b');
      await store.createServiceToken(plain);
      const got = await store.getServiceToken(plain.id);
      t.same(got, plain);
      t.equal(got?.expiresAt, null, 'null stays null');
      t.equal(got?.revokedAt, null);
      t.equal(got?.lastUsedAt, null);
      t.equal(await store.getServiceToken(plain.id.toUpperCase()), undefined, 'ids are case-sensitive');
      t.same(await store.listRepositories(), [], 'tokens create no repository');
    });

    t.test('service tokens: a duplicate id rejects and changes nothing', async (t) => {
      const store = await fresh(t);
      const a = token('a');
      await store.createServiceToken(a);
      await t.rejects(store.createServiceToken({ ...a, name: 'other', secretHash: 'f'.repeat(64) }));
      t.same(await store.getServiceToken(a.id), a);
      t.equal((await store.listServiceTokens()).length, 1);
    });

    t.test('service tokens: a name is unique among tokens that are not revoked', async (t) => {
      const store = await fresh(t);
      const first = token('a', { name: 'ci' });
      await store.createServiceToken(first);
      await t.rejects(store.createServiceToken(token('b', { name: 'ci' })), /taken/, 'clash with an active token');
      t.equal(await store.getServiceToken(token('b').id), undefined, 'the clashing token was not stored');
      // Expiry does not free a name: only revocation does (the name stays readable in logs and lists).
      const expired = token('c', { name: 'old', expiresAt: 1 });
      await store.createServiceToken(expired);
      await t.rejects(store.createServiceToken(token('d', { name: 'old' })), /taken/, 'an expired token still holds its name');

      t.equal(await store.revokeServiceToken(first.id, 1_700_000_001_000), true);
      const second = token('e', { name: 'ci' });
      await store.createServiceToken(second);
      t.equal(await store.revokeServiceToken(second.id, 1_700_000_002_000), true);
      const third = token('f', { name: 'ci' });
      await store.createServiceToken(third);
      const named = (await store.listServiceTokens()).filter((r) => r.name === 'ci');
      t.same(
        named.map((r) => [r.id, r.revokedAt]),
        [
          [first.id, 1_700_000_001_000],
          [second.id, 1_700_000_002_000],
          [third.id, null],
        ],
        'revoked tokens keep their name alongside the one active token',
      );
      await t.rejects(store.createServiceToken(token('g', { name: 'ci' })), /taken/, 'the new active token holds the name');
      await t.resolves(store.createServiceToken(token('h', { name: 'ci', revokedAt: 5 })), 'a revoked record never clashes');
    });

    t.test('service tokens: listed by createdAt, then id', async (t) => {
      const store = await fresh(t);
      t.same(await store.listServiceTokens(), []);
      await store.createServiceToken(token('c', { createdAt: 300 }));
      await store.createServiceToken(token('b', { createdAt: 100 }));
      await store.createServiceToken(token('z', { createdAt: 200 }));
      await store.createServiceToken(token('a', { createdAt: 200 }));
      await store.revokeServiceToken(token('b').id, 400);
      const list = await store.listServiceTokens();
      t.same(
        list.map((r) => r.id),
        ['b', 'a', 'z', 'c'].map((id) => token(id).id),
        'revoked tokens are listed too',
      );
      t.same(list[2], token('z', { createdAt: 200 }), 'full records');
    });

    t.test('service tokens: revoke once; the first revocation time is kept', async (t) => {
      const store = await fresh(t);
      const a = token('a');
      const b = token('b');
      await store.createServiceToken(a);
      await store.createServiceToken(b);
      t.equal(await store.revokeServiceToken(a.id, 5000), true);
      t.equal((await store.getServiceToken(a.id))?.revokedAt, 5000);
      t.equal(await store.revokeServiceToken(a.id, 6000), false, 'already revoked');
      t.equal((await store.getServiceToken(a.id))?.revokedAt, 5000, 'revokedAt unchanged');
      t.equal(await store.revokeServiceToken('missing00000', 5000), false, 'unknown id');
      t.equal((await store.getServiceToken(b.id))?.revokedAt, null, 'other tokens untouched');
      t.same({ ...(await store.getServiceToken(a.id)), revokedAt: null }, a, 'revoking changes only revokedAt');
    });

    t.test('service tokens: touch sets lastUsedAt, never backwards', async (t) => {
      const store = await fresh(t);
      const a = token('a');
      await store.createServiceToken(a);
      await store.createServiceToken(token('b'));
      await store.touchServiceToken(a.id, 2000);
      t.equal((await store.getServiceToken(a.id))?.lastUsedAt, 2000);
      await store.touchServiceToken(a.id, 3000);
      t.equal((await store.getServiceToken(a.id))?.lastUsedAt, 3000);
      await store.touchServiceToken(a.id, 2500);
      t.equal((await store.getServiceToken(a.id))?.lastUsedAt, 3000, 'a late, older touch does not move it back');
      t.equal((await store.getServiceToken(token('b').id))?.lastUsedAt, null, 'other tokens untouched');
      await t.resolves(store.touchServiceToken('missing00000', 1), 'unknown id is a no-op');
      t.equal((await store.listServiceTokens()).length, 2, 'touch creates nothing');
      await store.revokeServiceToken(a.id, 4000);
      await store.touchServiceToken(a.id, 5000);
      t.match(await store.getServiceToken(a.id), { revokedAt: 4000, lastUsedAt: 5000 }, 'touch does not clear revocation');
    });

    t.test('putManifest re-put refreshes lastAccessAt and keeps a local manifest local', async (t) => {
      const store = await fresh(t);
      await store.putManifest(manifest('r', dg(1), { local: false }));
      const first = await store.getManifest('r', dg(1));
      await sleep(5);
      await store.putManifest(manifest('r', dg(1), { local: true }));
      const second = await store.getManifest('r', dg(1));
      t.ok(second!.lastAccessAt > first!.lastAccessAt, 're-put is fresh for the collector');
      t.equal(second?.createdAt, first?.createdAt);
    });

    t.test('putManifest with verify refuses when content is not recorded, and records nothing', async (t) => {
      const store = await fresh(t);
      await store.putBlob(dg(1), 10, { local: true });
      const refs: ManifestReference[] = [
        { digest: dg(2), kind: 'blob' },
        { digest: dg(3), kind: 'manifest' },
      ];
      const err = await store
        .putManifest(manifest('r', dg(1), { references: refs, tags: ['v1'], verify: 'references' }))
        .then(() => undefined, (e: unknown) => e);
      t.ok(err instanceof MissingContentError);
      t.same((err as MissingContentError).missing.sort(), [dg(2), dg(3)]);
      t.equal((err as MissingContentError).self, false);
      t.equal(await store.getManifest('r', dg(1)), undefined, 'nothing recorded');
      t.equal(await store.getTag('r', 'v1'), undefined);
      const selfErr = await store.putManifest(manifest('r', dg(9), { verify: 'self' })).then(() => undefined, (e: unknown) => e);
      t.equal((selfErr as MissingContentError).self, true, 'own bytes missing');
      // 'self' does not require references (cached manifests record them lazily).
      await store.putManifest(manifest('r', dg(1), { references: refs, verify: 'self' }));
      t.ok(await store.getManifest('r', dg(1)));
    });

    t.test('touchAccess and refreshBlob move times forward only, skip absent rows', async (t) => {
      const store = await fresh(t);
      await store.putBlob(dg(1), 10, { local: true });
      await store.putManifest(manifest('r', dg(2)));
      const far = Date.now() + 1_000_000;
      await store.touchAccess({ manifests: [{ repo: 'r', digest: dg(2), at: far }, { repo: 'r', digest: dg(3), at: far }], blobs: [{ digest: dg(1), at: far }, { digest: dg(4), at: far }] });
      t.equal((await store.getManifest('r', dg(2)))?.lastAccessAt, far);
      t.equal((await store.getBlob(dg(1)))?.lastAccessAt, far);
      t.equal(await store.getBlob(dg(4)), undefined, 'no row created');
      await store.touchAccess({ manifests: [{ repo: 'r', digest: dg(2), at: 5 }], blobs: [{ digest: dg(1), at: 5 }] });
      t.equal((await store.getManifest('r', dg(2)))?.lastAccessAt, far, 'never backwards');
      t.equal(await store.refreshBlob(dg(1)), true);
      t.equal(await store.refreshBlob(dg(4)), false, 'false without a row');
      t.equal(await store.getBlob(dg(4)), undefined);
    });

    t.test('gc lock: one holder at a time, renewable, taken over once expired', async (t) => {
      const store = await fresh(t);
      t.equal(await store.gc.acquireLock('a', 60_000), true);
      t.equal(await store.gc.acquireLock('b', 60_000), false, 'held by a');
      t.equal(await store.gc.renewLock('a', 60_000), true);
      t.equal(await store.gc.renewLock('b', 60_000), false);
      await store.gc.releaseLock('b');
      t.equal(await store.gc.acquireLock('b', 60_000), false, 'release by another holder does nothing');
      await store.gc.releaseLock('a');
      t.equal(await store.gc.acquireLock('b', -1), true, 'free after release');
      t.equal(await store.gc.acquireLock('c', 60_000), true, 'an expired lock is taken over');
      t.equal(await store.gc.renewLock('b', 60_000), false, 'the expired holder lost it');
    });

    t.test('gc reports: newest first, only the last `keep` kept', async (t) => {
      const store = await fresh(t);
      for (let i = 0; i < 5; i++) await store.gc.saveReport({ i }, 3);
      t.same(await store.gc.listReports(10), [{ i: 4 }, { i: 3 }, { i: 2 }]);
    });

    t.test('close resolves and may be called twice', async (t) => {
      const store = await factory();
      await store.close();
      await t.resolves(store.close());
    });
  });
}
