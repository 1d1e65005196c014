// The RegistryMetadata contract: every driver (SQLite now, PostgreSQL next) must pass this suite.
// Run it from a driver's test file: registryMetadataContract(t, 'sqlite', (t) => open a fresh, empty store
// closed when t ends). Results whose order the interface does not define (referrers, references) are
// sorted before comparison so any driver can pass.
import { MissingContentError } from '../../src/metadata/registry-metadata.js';
import type { RegistryMetadata } from '../../src/metadata/registry-metadata.js';
import type { ManifestReference } from '../../src/oci/references.js';
import { dg, IMAGE, manifest, sleep, type TestObject } from './contract-helpers.js';

const INDEX = 'application/vnd.oci.image.index.v1+json';
const SIG = 'application/vnd.dev.cosign.artifact.sig.v1+json';
const SBOM = 'application/spdx+json';

const byDigest = <T extends { digest: string }>(a: T, b: T): number =>
  a.digest < b.digest ? -1 : a.digest > b.digest ? 1 : 0;
const byKindDigest = (a: ManifestReference, b: ManifestReference): number =>
  a.kind === b.kind ? byDigest(a, b) : a.kind < b.kind ? -1 : 1;

export function registryMetadataContract(
  tap: TestObject,
  name: string,
  factory: (t: TestObject) => Promise<RegistryMetadata>,
): Promise<unknown> {
  return tap.test(`RegistryMetadata contract: ${name}`, async (t) => {
    /** A fresh, empty store, closed when `tt` ends. */
    const fresh = (tt: TestObject): Promise<RegistryMetadata> => factory(tt);

    t.test('methods return promises', async (t) => {
      const store = await fresh(t);
      const p = store.getTag('r', 'latest');
      t.ok(p instanceof Promise, 'getTag returns a Promise');
      t.equal(await p, undefined);
    });

    t.test('repositories: created by linkBlob and putManifest only', async (t) => {
      const store = await fresh(t);
      t.same(await store.listRepositories(), []);
      t.equal(await store.repositoryExists('a'), false);

      await store.putBlob(dg(1), 10, { local: true });
      t.same(await store.listRepositories(), [], 'putBlob creates no repository');

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

    t.test('listRepositoryStats: sizes count each stored blob once, plus manifests; counts; pages', async (t) => {
      const store = await fresh(t);
      t.same(await store.listRepositoryStats(), [], 'no repositories');
      // Two images in 'a' share blob 1 (100 bytes); blob 9 is referenced but not stored (a cached
      // layer nobody pulled): it counts nothing.
      await store.putBlob(dg(1), 100, { local: true });
      await store.putBlob(dg(2), 20, { local: true });
      await store.putBlob(dg(3), 3, { local: true });
      const blob = (d: string): ManifestReference => ({ digest: d, kind: 'blob' });
      await store.putManifest(manifest('a', dg(10), { size: 1000, references: [blob(dg(1)), blob(dg(2))], tags: ['v1', 'latest'] }));
      await store.putManifest(manifest('a', dg(11), { size: 2000, references: [blob(dg(1)), blob(dg(3)), blob(dg(9))], tags: ['v2'] }));
      // 'b' holds the same blob 1: counted in each repository.
      await store.putManifest(manifest('b', dg(12), { size: 500, references: [blob(dg(1))] }));
      // 'c' has a blob link but no manifest.
      await store.linkBlob('c', dg(2));

      const all = await store.listRepositoryStats();
      t.same(
        all.map((r) => [r.name, r.size, r.tagCount, r.manifestCount]),
        [
          ['a', 1000 + 2000 + 100 + 20 + 3, 3, 2],
          ['b', 500 + 100, 0, 1],
          ['c', 0, 0, 0],
        ],
      );
      const a = all[0]!;
      const m10 = await store.getManifest('a', dg(11));
      t.equal(a.lastPushAt, m10!.createdAt, 'last push = the newest manifest or tag');
      t.equal(a.lastPullAt, null, 'never pulled');
      t.equal(all[2]!.lastPushAt, null, 'no manifest, no push');

      t.same((await store.listRepositoryStats({ n: 1 })).map((r) => r.name), ['a']);
      t.same((await store.listRepositoryStats({ last: 'a', n: 5 })).map((r) => r.name), ['b', 'c'], 'last is exclusive');
      t.same(await store.listRepositoryStats({ n: 0 }), []);
      t.same((await store.repositoryStats('b'))?.size, 600);
      t.same(await store.repositoryStats('b'), all[1], 'one repository, the same figures');
      t.equal(await store.repositoryStats('nope'), undefined);

      // A pull (touchAccess) is the last pull; a push is not.
      const at = Date.now() + 60_000;
      await store.touchAccess({ manifests: [{ repo: 'a', digest: dg(10), at }], blobs: [] });
      t.equal((await store.repositoryStats('a'))?.lastPullAt, at);
      await store.touchAccess({ manifests: [{ repo: 'a', digest: dg(11), at: at - 5 }], blobs: [] });
      t.equal((await store.repositoryStats('a'))?.lastPullAt, at, 'the newest pull of any manifest');
      await store.putManifest(manifest('b', dg(12), { size: 500, references: [blob(dg(1))] }));
      t.equal((await store.repositoryStats('b'))?.lastPullAt, null, 'a re-put is not a pull');

      // A tag moved later than any manifest was created is the last push.
      await sleep(5);
      await store.putManifest(manifest('a', dg(10), { size: 1000, references: [blob(dg(1)), blob(dg(2))], tags: ['moved'] }));
      const after = await store.repositoryStats('a');
      t.ok(after!.lastPushAt! > a.lastPushAt!, 'a tag set is a push');
      t.equal(after!.tagCount, 4);
    });

    t.test('listTagDetails: digest, media type, size with what the manifest reaches, set time', async (t) => {
      const store = await fresh(t);
      const blob = (d: string): ManifestReference => ({ digest: d, kind: 'blob' });
      const child = (d: string): ManifestReference => ({ digest: d, kind: 'manifest' });
      await store.putBlob(dg(1), 100, { local: true });
      await store.putBlob(dg(2), 20, { local: true });
      await store.putBlob(dg(3), 3, { local: true });
      // Two platform images sharing blob 1, and an index over them plus a child that is not stored.
      await store.putManifest(manifest('r', dg(10), { size: 400, references: [blob(dg(1)), blob(dg(2))] }));
      await store.putManifest(manifest('r', dg(11), { size: 300, references: [blob(dg(1)), blob(dg(3))], tags: ['arm'] }));
      await store.putManifest(manifest('r', dg(12), { mediaType: INDEX, size: 50, references: [child(dg(10)), child(dg(11)), child(dg(13))], tags: ['v1', 'latest'] }));
      await store.putManifest(manifest('other', dg(12), { mediaType: INDEX, size: 50, tags: ['zzz'] }));

      const tags = await store.listTagDetails('r');
      t.same(
        tags.map((x) => [x.tag, x.digest, x.mediaType, x.size]),
        [
          ['arm', dg(11), IMAGE, 300 + 100 + 3],
          ['latest', dg(12), INDEX, 50 + 400 + 300 + 100 + 20 + 3],
          ['v1', dg(12), INDEX, 50 + 400 + 300 + 100 + 20 + 3],
        ],
        'an index counts its stored children and each blob once',
      );
      t.ok(tags.every((x) => typeof x.updatedAt === 'number' && x.updatedAt > 0));
      t.same((await store.listTagDetails('r', { n: 1 })).map((x) => x.tag), ['arm']);
      t.same((await store.listTagDetails('r', { last: 'arm', n: 1 })).map((x) => x.tag), ['latest']);
      t.same((await store.listTagDetails('r', { last: 'v1' })).map((x) => x.tag), []);
      t.same(await store.listTagDetails('nope'), []);
      t.same((await store.listTagDetails('other')).map((x) => [x.tag, x.size]), [['zzz', 50]], 'children are looked up in the same repository');
    });

    t.test('listManifestDetails: every manifest with its tags, size and pull time, in digest order', async (t) => {
      const store = await fresh(t);
      await store.putBlob(dg(1), 100, { local: true });
      await store.putManifest(manifest('r', dg(12), { size: 10, references: [{ digest: dg(1), kind: 'blob' }], tags: ['b', 'a'] }));
      await store.putManifest(manifest('r', dg(11), { size: 20 }));
      await store.putManifest(manifest('r', dg(13), { size: 30, tags: ['c'] }));
      await store.putManifest(manifest('other', dg(14), { size: 40, tags: ['d'] }));
      const at = Date.now() + 60_000;
      await store.touchAccess({ manifests: [{ repo: 'r', digest: dg(12), at }], blobs: [] });

      const all = await store.listManifestDetails('r');
      t.same(
        all.map((m) => [m.digest, m.mediaType, m.size, m.tags, m.lastPullAt]),
        [
          [dg(11), IMAGE, 20, [], null],
          [dg(12), IMAGE, 110, ['a', 'b'], at],
          [dg(13), IMAGE, 30, ['c'], null],
        ],
      );
      t.equal(all[1]!.createdAt, (await store.getManifest('r', dg(12)))!.createdAt);
      // A page counts manifests, not tags.
      t.same((await store.listManifestDetails('r', { n: 2 })).map((m) => [m.digest, m.tags]), [[dg(11), []], [dg(12), ['a', 'b']]]);
      t.same((await store.listManifestDetails('r', { last: dg(12), n: 2 })).map((m) => m.digest), [dg(13)]);
      t.same(await store.listManifestDetails('r', { n: 0 }), []);
      t.same(await store.listManifestDetails('nope'), []);
    });

    t.test('deleteRepository removes tags, manifests, references and links; blobs and other repositories stay', async (t) => {
      const store = await fresh(t);
      await store.putBlob(dg(1), 100, { local: true });
      await store.linkBlob('r', dg(1));
      await store.linkBlob('s', dg(1));
      await store.putManifest(manifest('r', dg(10), { references: [{ digest: dg(1), kind: 'blob' }], tags: ['v1', 'latest'] }));
      await store.putManifest(manifest('r', dg(11), { subject: dg(10) }));
      await store.putManifest(manifest('s', dg(10), { tags: ['v1'] }));
      await store.claimRepository('r', 'alice');

      t.same(await store.deleteRepository('r'), { tags: ['latest', 'v1'], manifests: [dg(10), dg(11)] });
      t.equal(await store.repositoryExists('r'), false);
      t.same(await store.listRepositories(), ['s']);
      t.equal(await store.getManifest('r', dg(10)), undefined);
      t.same(await store.listTags('r'), []);
      t.same(await store.listManifestReferences('r', dg(10)), []);
      t.equal(await store.isBlobLinked('r', dg(1)), false);
      t.same(await store.blobRepositories(dg(1), 10), ['s']);
      t.ok(await store.getBlob(dg(1)), 'the blob row is left to the collector');
      t.equal(await store.getTag('s', 'v1'), dg(10), 'other repositories untouched');
      t.equal(await store.repositoryOwner('r'), 'alice', 'the owner claim stays');
      t.equal(await store.deleteRepository('r'), undefined, 'twice: nothing to delete');
      t.equal(await store.deleteRepository('nope'), undefined);

      // The name can be used again.
      await store.putManifest(manifest('r', dg(10), { tags: ['v2'] }));
      t.same(await store.listTags('r'), ['v2']);
      t.same(await store.listManifestReferences('r', dg(10)), []);
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

    t.test('storageUse: total bytes once per blob; per namespace the distinct blobs linked there and its repositories', async (t) => {
      const store = await fresh(t);
      t.same(await store.storageUse(), { totalBytes: 0, namespaces: [] }, 'an empty store');
      await store.putBlob(dg(1), 1000, { local: true });
      await store.putBlob(dg(2), 200, { local: false });
      await store.putBlob(dg(3), 30, { local: false });
      await store.putBlob(dg(4), 4, { local: true });
      // dg(1) twice in team (counted once there) and once in docker.io; dg(4) linked nowhere.
      await store.linkBlob('team/app', dg(1));
      await store.linkBlob('team/web', dg(1));
      await store.linkBlob('team/web', dg(3));
      await store.linkBlob('docker.io/library/alpine', dg(1));
      await store.linkBlob('docker.io/library/alpine', dg(2));
      await store.linkBlob('solo', dg(3));
      await store.putManifest(manifest('ghcr.io/org/app', dg(5)));
      t.same(await store.storageUse(), {
        totalBytes: 1234,
        namespaces: [
          { namespace: 'docker.io', bytes: 1200, repositories: 1 },
          { namespace: 'ghcr.io', bytes: 0, repositories: 1 },
          { namespace: 'solo', bytes: 30, repositories: 1 },
          { namespace: 'team', bytes: 1030, repositories: 2 },
        ],
      });
    });
  });
}
