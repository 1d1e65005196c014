// The GcState contract: every driver (SQLite now, PostgreSQL next) must pass this suite. It pins what
// the collector (src/gc/collector.ts) and the blob ledger's sweep rely on, through the interfaces only:
// content is recorded with RegistryMetadata, then mark, the dead sets and the re-checked sweeps are
// asked about it. Run it from a driver's test file: gcStateContract(t, 'sqlite', (t) => a fresh, empty
// GcState and the RegistryMetadata of the same database, closed when t ends).
//
// Times: rows are written at the wall clock, so most cases take a cutoff hours ahead of it (every row
// is old) and make a row fresh by recording a pull at or after that cutoff (touchAccess); pull order
// for the cache rules is set the same way, below the cutoff.
import type { GcMarkOptions, GcState } from '../../src/metadata/gc-state.js';
import type { RegistryMetadata } from '../../src/metadata/registry-metadata.js';
import { dg, manifest, sleep, type TestObject } from './contract-helpers.js';

/** The collector's state and the registry metadata kept in the same database. */
export interface GcStateFixture {
  gc: GcState;
  metadata: RegistryMetadata;
}

const HOUR = 3_600_000;
const INDEX = 'application/vnd.oci.image.index.v1+json';

interface Content {
  tags?: string[];
  /** Blob digests the manifest references (config, layers). */
  blobs?: string[];
  /** Child manifests (an index). */
  children?: string[];
  subject?: string;
  local?: boolean;
  /** Size of the blob row of the manifest's own bytes; 0 = record none. */
  size?: number;
}

/** A blob row, linked in `repo` when given. */
async function blob(metadata: RegistryMetadata, digest: string, size: number, o: { local?: boolean; repo?: string } = {}): Promise<void> {
  await metadata.putBlob(digest, size, { local: o.local ?? true });
  if (o.repo !== undefined) await metadata.linkBlob(o.repo, digest);
}

/** A manifest with its references, tags and (as the registry records it) the blob row of its own bytes. */
async function put(metadata: RegistryMetadata, repo: string, digest: string, o: Content = {}): Promise<void> {
  const local = o.local ?? true;
  if ((o.size ?? 1) > 0) await blob(metadata, digest, o.size ?? 1, { local });
  await metadata.putManifest(
    manifest(repo, digest, {
      ...(o.children ? { mediaType: INDEX } : {}),
      subject: o.subject ?? null,
      references: [
        ...(o.blobs ?? []).map((d) => ({ digest: d, kind: 'blob' as const })),
        ...(o.children ?? []).map((d) => ({ digest: d, kind: 'manifest' as const })),
      ],
      tags: o.tags ?? [],
      local,
    }),
  );
}

/** Records a pull of the manifest at `at` (ms). */
const pullManifest = (metadata: RegistryMetadata, repo: string, digest: string, at: number): Promise<void> =>
  metadata.touchAccess({ manifests: [{ repo, digest, at }], blobs: [] });
/** Records a pull of the blob at `at` (ms). */
const pullBlob = (metadata: RegistryMetadata, digest: string, at: number): Promise<void> =>
  metadata.touchAccess({ manifests: [], blobs: [{ digest, at }] });

/** Waits until the wall clock has moved on and returns it: rows written before are older than it. */
async function tick(): Promise<number> {
  const start = Date.now();
  while (Date.now() <= start) await sleep(1);
  return Date.now();
}

/** Every dead manifest as repo/digest@rule, one page of `limit` at a time. */
async function allDead(gc: GcState, limit = 1000): Promise<string[]> {
  const out: string[] = [];
  let after: [string, string] | undefined;
  for (;;) {
    const page = await gc.deadManifests(after, limit);
    out.push(...page.map((m) => `${m.repo}/${m.digest}@${m.rule}`));
    const last = page[page.length - 1];
    if (page.length < limit || !last) return out;
    after = [last.repo, last.digest];
  }
}

const at = (repo: string, digest: string, rule = 'unreferenced'): string => `${repo}/${digest}@${rule}`;

export function gcStateContract(
  tap: TestObject,
  name: string,
  factory: (t: TestObject) => Promise<GcStateFixture>,
): Promise<unknown> {
  return tap.test(`GcState contract: ${name}`, async (t) => {
    /** A fresh, empty store, closed when `tt` ends. */
    const fresh = (tt: TestObject): Promise<GcStateFixture> => factory(tt);
    /** Mark options: nothing evicted, nothing active, untagged manifests kept unless told. */
    const opts = (cutoff: number, extra: Partial<GcMarkOptions> = {}): GcMarkOptions => ({ cutoff, deleteUntagged: false, activeBlobs: [], ...extra });

    t.test('gc lock: one holder at a time, renewable, taken over once expired', async (t) => {
      const { gc: store } = await fresh(t);
      t.equal(await store.acquireLock('a', 60_000), true);
      t.equal(await store.acquireLock('b', 60_000), false, 'held by a');
      t.equal(await store.renewLock('a', 60_000), true);
      t.equal(await store.renewLock('b', 60_000), false);
      await store.releaseLock('b');
      t.equal(await store.acquireLock('b', 60_000), false, 'release by another holder does nothing');
      await store.releaseLock('a');
      t.equal(await store.acquireLock('b', -1), true, 'free after release');
      t.equal(await store.acquireLock('c', 60_000), true, 'an expired lock is taken over');
      t.equal(await store.renewLock('b', 60_000), false, 'the expired holder lost it');
    });

    t.test('gc reports: newest first, only the last `keep` kept', async (t) => {
      const { gc: store } = await fresh(t);
      for (let i = 0; i < 5; i++) await store.saveReport({ i }, 3);
      t.same(await store.listReports(10), [{ i: 4 }, { i: 3 }, { i: 2 }]);
    });

    t.test('mark: tagged manifests are live, untagged ones unless deleteUntagged, released ones are not', async (t) => {
      const { gc, metadata } = await fresh(t);
      await put(metadata, 'r', dg(1), { tags: ['v1'] });
      await put(metadata, 'r', dg(2)); // never tagged
      await put(metadata, 'r', dg(3), { tags: ['v3'] });
      await put(metadata, 'r', dg(4), { tags: ['v4'] }); // its tag moves away: untagged, not released
      await put(metadata, 'r', dg(5), { tags: ['v4'] });
      await put(metadata, 'r', dg(6), { tags: ['a', 'b'] }); // one of two tags deleted: still tagged
      t.ok(await metadata.deleteTag('r', 'v3'));
      t.ok(await metadata.deleteTag('r', 'a'));
      const cutoff = Date.now() + 10 * HOUR;

      await gc.mark(opts(cutoff));
      t.same(await allDead(gc), [at('r', dg(3))], 'only the manifest whose last tag was deleted');
      await gc.endMark();

      await gc.mark(opts(cutoff, { deleteUntagged: true }));
      t.same(await allDead(gc), [at('r', dg(2)), at('r', dg(3)), at('r', dg(4))], 'deleteUntagged: every untagged manifest');
      await gc.endMark();
    });

    t.test('mark: anything created or touched at or after the cutoff is live', async (t) => {
      const { gc, metadata } = await fresh(t);
      await put(metadata, 'r', dg(1));
      await put(metadata, 'r', dg(2));
      await blob(metadata, dg(10), 10);
      await blob(metadata, dg(11), 11);
      const cutoff = await tick();
      await put(metadata, 'r', dg(3)); // created after the cutoff
      await blob(metadata, dg(12), 12);

      let marked = await gc.mark(opts(cutoff, { deleteUntagged: true }));
      t.same(await allDead(gc), [at('r', dg(1)), at('r', dg(2))], 'created at or after the cutoff: live');
      t.same(await gc.deadBlobs(undefined, 10), [dg(1), dg(2), dg(10), dg(11)]);
      await gc.endMark();

      const later = cutoff + 10 * HOUR;
      await pullManifest(metadata, 'r', dg(1), later); // touched exactly at the cutoff
      await pullBlob(metadata, dg(10), later);
      await pullBlob(metadata, dg(11), later - 1); // just before
      marked = await gc.mark(opts(later, { deleteUntagged: true }));
      t.same(await allDead(gc), [at('r', dg(2)), at('r', dg(3))], 'touched at the cutoff: live');
      t.same(await gc.deadBlobs(undefined, 10), [dg(2), dg(3), dg(11), dg(12)], 'a blob touched at the cutoff is live, one just before is not');
      t.equal(marked.blobs, 4);
      await gc.endMark();
    });

    t.test('mark: children of a live index and referrers of a live subject are live, in the same repository', async (t) => {
      const { gc, metadata } = await fresh(t);
      // r: index 1 (tagged) → child 2; 3 refers to child 2 (referrer of a live manifest); 4 refers to 3.
      await put(metadata, 'r', dg(2));
      await put(metadata, 'r', dg(1), { tags: ['v1'], children: [dg(2)] });
      await put(metadata, 'r', dg(3), { subject: dg(2) });
      await put(metadata, 'r', dg(4), { subject: dg(3) });
      // 5 refers to a subject that is not there; untagged index 6 → child 7 (both dead); 8 refers to 7.
      await put(metadata, 'r', dg(5), { subject: dg(99) });
      await put(metadata, 'r', dg(7));
      await put(metadata, 'r', dg(6), { children: [dg(7)] });
      await put(metadata, 'r', dg(8), { subject: dg(7) });
      // s holds copies of 2 and 3 untagged: the index and subject of r do not keep them.
      await put(metadata, 's', dg(2));
      await put(metadata, 's', dg(3), { subject: dg(2) });
      const cutoff = Date.now() + 10 * HOUR;

      const marked = await gc.mark(opts(cutoff, { deleteUntagged: true }));
      t.same(
        await allDead(gc),
        [at('r', dg(5)), at('r', dg(6)), at('r', dg(7)), at('r', dg(8)), at('s', dg(2)), at('s', dg(3))],
        'children and referrers of live manifests follow them, transitively; dead ones do not keep theirs',
      );
      t.equal(marked.manifests, 6);
      t.same(await gc.deadBlobs(undefined, 10), [dg(5), dg(6), dg(7), dg(8)], 'blobs of 2 and 3 are live through r');
      await gc.endMark();
    });

    t.test('mark: live blobs, and the counts and bytes of what the sweep would remove', async (t) => {
      const { gc, metadata } = await fresh(t);
      await blob(metadata, dg(10), 10, { repo: 'r' }); // layer of the live manifest
      await blob(metadata, dg(11), 100, { repo: 'r' }); // layer shared by the live and the dead manifest
      await blob(metadata, dg(12), 1_000, { repo: 'r' }); // layer of the dead manifest only
      await blob(metadata, dg(13), 10_000, { repo: 'r' }); // linked, no manifest, old
      await blob(metadata, dg(14), 100_000, { repo: 'r' }); // linked, no manifest, fresh
      await blob(metadata, dg(15), 1_000_000); // a fill in progress
      await blob(metadata, dg(16), 10_000_000); // loose, old
      await put(metadata, 'r', dg(1), { tags: ['v1'], blobs: [dg(10), dg(11)], size: 3 });
      await put(metadata, 'r', dg(2), { tags: ['gone'], blobs: [dg(11), dg(12)], size: 5 });
      t.ok(await metadata.deleteTag('r', 'gone'));
      const cutoff = Date.now() + 10 * HOUR;
      await pullBlob(metadata, dg(14), cutoff);

      const marked = await gc.mark(opts(cutoff, { activeBlobs: [dg(15), dg(77)] }));
      t.same(await gc.deadBlobs(undefined, 10), [dg(2), dg(12), dg(13), dg(16)], 'the dead manifest, its own layer, old loose blobs');
      t.same(marked, {
        manifests: 1,
        tags: 0,
        blobs: 4,
        bytes: 5 + 1_000 + 10_000 + 10_000_000,
        bytesKept: 3 + 10 + 100 + 100_000 + 1_000_000,
        evictedByAge: 0,
        evictedBySize: 0,
      });
      await gc.endMark();
    });

    t.test('mark: cached manifests not pulled since ageCutoff are evicted, tagged or not; local ones never', async (t) => {
      const { gc, metadata } = await fresh(t);
      const now = Date.now();
      await blob(metadata, dg(10), 10, { local: false });
      await blob(metadata, dg(11), 100, { local: false });
      await put(metadata, 'c', dg(1), { tags: ['v1', 'latest'], blobs: [dg(10), dg(11)], local: false });
      await put(metadata, 'c', dg(2), { tags: ['v2'], blobs: [dg(11)], local: false });
      await put(metadata, 'c', dg(3), { local: false }); // untagged, never pulled
      await put(metadata, 'l', dg(4), { tags: ['v4'] }); // local, never pulled
      await pullManifest(metadata, 'c', dg(1), now + HOUR);
      await pullManifest(metadata, 'c', dg(2), now + 3 * HOUR);
      const cutoff = now + 10 * HOUR;

      const marked = await gc.mark(opts(cutoff, { ageCutoff: now + 2 * HOUR }));
      t.same(await allDead(gc), [at('c', dg(1), 'age'), at('c', dg(3), 'age')], 'not pulled since ageCutoff; the local one stays');
      const [first] = await gc.deadManifests(undefined, 1);
      t.same(first, { repo: 'c', digest: dg(1), rule: 'age', access: now + HOUR }, 'the pull time seen by the mark');
      t.same(
        { manifests: marked.manifests, tags: marked.tags, evictedByAge: marked.evictedByAge, evictedBySize: marked.evictedBySize },
        { manifests: 2, tags: 2, evictedByAge: 2, evictedBySize: 0 },
        'tags of evicted manifests are counted',
      );
      t.same(await gc.deadBlobs(undefined, 10), [dg(1), dg(3), dg(10)], 'the shared layer stays with the manifest that keeps it');
      await gc.endMark();

      // Grace wins over the age rule: pulled at or after the cutoff, not evicted even below ageCutoff.
      await pullManifest(metadata, 'c', dg(3), cutoff);
      await gc.mark(opts(cutoff, { ageCutoff: cutoff + HOUR }));
      t.same(await allDead(gc), [at('c', dg(1), 'age'), at('c', dg(2), 'age')], 'fresh: kept');
      await gc.endMark();

      await gc.mark(opts(cutoff));
      t.same(await allDead(gc), [], 'no ageCutoff: no eviction');
      await gc.endMark();
    });

    t.test('mark: over maxCachedBytes, the least recently pulled cached manifests go first; shared layers and local content stay', async (t) => {
      const { gc, metadata } = await fresh(t);
      const now = Date.now();
      // Pull order 23, 22, 21 (digest order the other way round). 23 and 21 share layer 10.
      await blob(metadata, dg(10), 100, { local: false });
      await blob(metadata, dg(11), 100, { local: false });
      await put(metadata, 'c', dg(21), { tags: ['a'], blobs: [dg(10)], local: false });
      await put(metadata, 'c', dg(22), { tags: ['b'], blobs: [dg(11)], local: false });
      await put(metadata, 'c', dg(23), { tags: ['c'], blobs: [dg(10)], local: false });
      await blob(metadata, dg(12), 10_000);
      await put(metadata, 'l', dg(30), { tags: ['l'], blobs: [dg(12)], size: 10 }); // local, pulled before all of them
      await pullManifest(metadata, 'l', dg(30), now + HOUR);
      await pullManifest(metadata, 'c', dg(23), now + 2 * HOUR);
      await pullManifest(metadata, 'c', dg(22), now + 3 * HOUR);
      await pullManifest(metadata, 'c', dg(21), now + 4 * HOUR);
      const cutoff = now + 10 * HOUR;

      // Cached bytes: 1 + 1 + 1 (manifests) + 100 + 100 (layers) = 203. Evicting 23 frees 1 (its layer
      // is 21's too): 202; evicting 22 frees 101: 101, within 150.
      let marked = await gc.mark(opts(cutoff, { maxCachedBytes: 150 }));
      t.same(await allDead(gc), [at('c', dg(22), 'size'), at('c', dg(23), 'size')], 'least recently pulled first, until within budget');
      t.same(await gc.deadBlobs(undefined, 10), [dg(11), dg(22), dg(23)]);
      t.same(marked, { manifests: 2, tags: 2, blobs: 3, bytes: 102, bytesKept: 1 + 100 + 10 + 10_000, evictedByAge: 0, evictedBySize: 2 });
      await gc.endMark();

      await gc.mark(opts(cutoff, { maxCachedBytes: 150, activeBlobs: [dg(11)] }));
      t.notOk((await gc.deadBlobs(undefined, 10)).includes(dg(11)), 'a layer being filled stays when its manifest is evicted');
      await gc.endMark();

      marked = await gc.mark(opts(cutoff, { maxCachedBytes: 203 }));
      t.same(await allDead(gc), [], 'within budget: nothing evicted');
      await gc.endMark();

      marked = await gc.mark(opts(cutoff, { maxCachedBytes: 1 }));
      t.same(await allDead(gc), [at('c', dg(21), 'size'), at('c', dg(22), 'size'), at('c', dg(23), 'size')], 'never the local manifest');
      t.equal(marked.evictedBySize, 3);
      t.equal(marked.bytesKept, 10_010, 'local bytes are not in the budget and stay');
      await gc.endMark();

      // Age first, then size: 23 is evicted by age and no longer counts against the budget.
      marked = await gc.mark(opts(cutoff, { ageCutoff: now + 2 * HOUR + 1, maxCachedBytes: 150 }));
      t.same(await allDead(gc), [at('c', dg(22), 'size'), at('c', dg(23), 'age')]);
      t.same([marked.evictedByAge, marked.evictedBySize], [1, 1]);
      await gc.endMark();

      // Fresh cached manifests are not evicted by size either (and keep their layers).
      await pullManifest(metadata, 'c', dg(23), cutoff);
      marked = await gc.mark(opts(cutoff, { maxCachedBytes: 1 }));
      t.same(await allDead(gc), [at('c', dg(21), 'size'), at('c', dg(22), 'size')], 'the freshly pulled one is skipped');
      t.same(await gc.deadBlobs(undefined, 10), [dg(11), dg(21), dg(22)], 'the layer 21 shares with it stays');
      await gc.endMark();
    });

    t.test('mark: size eviction frees only bytes nothing live still needs', async (t) => {
      const { gc, metadata } = await fresh(t);
      const now = Date.now();
      await blob(metadata, dg(10), 100, { local: false });
      await blob(metadata, dg(11), 100, { local: false });
      await blob(metadata, dg(13), 1_000, { local: false }); // fresh
      await put(metadata, 'c', dg(1), { tags: ['a'], blobs: [dg(10)], local: false });
      await put(metadata, 'c2', dg(1), { tags: ['a'], blobs: [dg(10)], local: false }); // the same manifest cached twice
      await put(metadata, 'c', dg(2), { tags: ['b'], blobs: [dg(11), dg(13)], local: false });
      await pullManifest(metadata, 'c', dg(1), now + HOUR);
      await pullManifest(metadata, 'c', dg(2), now + 2 * HOUR);
      await pullManifest(metadata, 'c2', dg(1), now + 3 * HOUR);
      const cutoff = now + 10 * HOUR;
      await pullBlob(metadata, dg(13), cutoff);

      // Cached bytes 1 + 1 + 100 + 100 + 1000 = 1202. Evicting c/1 frees nothing (c2 keeps its bytes and
      // layer); evicting c/2 frees 101 (its fresh layer stays): 1101, within budget.
      const marked = await gc.mark(opts(cutoff, { maxCachedBytes: 1_101 }));
      t.same(await allDead(gc), [at('c', dg(1), 'size'), at('c', dg(2), 'size')]);
      t.same(await gc.deadBlobs(undefined, 10), [dg(2), dg(11)], 'the bytes of a manifest live in another repository and a fresh layer stay');
      t.same([marked.blobs, marked.bytes, marked.bytesKept], [2, 101, 1_101]);
      await gc.endMark();
    });

    t.test('deadManifests: pages in (repo, digest) order after a cursor', async (t) => {
      const { gc, metadata } = await fresh(t);
      for (const [repo, n] of [['b', 2], ['a', 3], ['b', 1], ['a', 1], ['c', 9]] as const) await put(metadata, repo, dg(n));
      await gc.mark(opts(Date.now() + HOUR, { deleteUntagged: true }));
      const all = [at('a', dg(1)), at('a', dg(3)), at('b', dg(1)), at('b', dg(2)), at('c', dg(9))];
      t.same(await allDead(gc), all);
      t.same(await allDead(gc, 2), all, 'the same in pages of 2');
      t.same((await gc.deadManifests(['a', dg(3)], 2)).map((m) => `${m.repo}/${m.digest}`), [`b/${dg(1)}`, `b/${dg(2)}`], 'after the cursor');
      t.same(await gc.deadManifests(['c', dg(9)], 2), [], 'nothing after the last');
      await gc.endMark();
    });

    t.test('sweepManifest: deletes what is still dead, keeps what was tagged, pulled or referenced since the mark', async (t) => {
      const { gc, metadata } = await fresh(t);
      for (const n of [1, 2, 3, 4, 5]) await put(metadata, 'r', dg(n), { blobs: [dg(10)] });
      await put(metadata, 'r', dg(6), { subject: dg(50) });
      const cutoff = Date.now() + 10 * HOUR;
      await gc.mark(opts(cutoff, { deleteUntagged: true }));
      const dead = await gc.deadManifests(undefined, 10);
      t.equal(dead.length, 6);
      const of = (n: number) => dead.find((m) => m.digest === dg(n))!;

      // Changes after the mark.
      await put(metadata, 'r', dg(2), { tags: ['v2'], blobs: [dg(10)] }); // tagged
      await pullManifest(metadata, 'r', dg(3), cutoff); // pulled
      await put(metadata, 'r', dg(40), { tags: ['idx'], children: [dg(4)] }); // a new index holds it
      await put(metadata, 'r', dg(50), { tags: ['v50'] }); // its subject pushed

      t.equal(await gc.sweepManifest(of(1), cutoff), 0, 'still dead: deleted, no tags');
      t.equal(await metadata.getManifest('r', dg(1)), undefined);
      t.same(await metadata.listManifestReferences('r', dg(1)), [], 'its references went with it');
      t.equal(await gc.sweepManifest(of(1), cutoff), undefined, 'sweeping twice: nothing to delete');
      t.equal(await gc.sweepManifest(of(2), cutoff), undefined, 'tagged since the mark: kept');
      t.equal(await metadata.getTag('r', 'v2'), dg(2));
      t.equal(await gc.sweepManifest(of(3), cutoff), undefined, 'pulled since the mark: kept');
      t.equal(await gc.sweepManifest(of(4), cutoff), undefined, 'a child of an index pushed since the mark: kept');
      t.equal(await gc.sweepManifest(of(6), cutoff), undefined, 'its subject pushed since the mark: kept');
      for (const n of [2, 3, 4, 6]) t.ok(await metadata.getManifest('r', dg(n)), `manifest ${n} still there`);
      t.equal(await gc.sweepManifest(of(5), cutoff - 20 * HOUR), undefined, 'within the cutoff given to the sweep: kept');
      t.equal(await gc.sweepManifest(of(5), cutoff), 0);
      t.equal(await metadata.getManifest('r', dg(5)), undefined);
      await gc.endMark();
    });

    t.test('sweepManifest: an evicted manifest goes with its tags unless pulled or pushed locally since the mark', async (t) => {
      const { gc, metadata } = await fresh(t);
      const now = Date.now();
      await put(metadata, 'c', dg(1), { tags: ['v1', 'latest'], blobs: [dg(10)], local: false });
      await put(metadata, 'c', dg(2), { tags: ['v2'], local: false });
      await put(metadata, 'c', dg(3), { tags: ['v3'], local: false });
      await put(metadata, 'c', dg(4), { local: false });
      const cutoff = now + 10 * HOUR;
      const marked = await gc.mark(opts(cutoff, { ageCutoff: now + HOUR }));
      t.equal(marked.evictedByAge, 4);
      const dead = await gc.deadManifests(undefined, 10);
      const of = (n: number) => dead.find((m) => m.digest === dg(n))!;

      await pullManifest(metadata, 'c', dg(2), of(2).access + 1); // pulled, still well before the cutoff
      await put(metadata, 'c', dg(3), { tags: ['v3'], local: true }); // pushed locally

      t.equal(await gc.sweepManifest(of(1), cutoff), 2, 'evicted with its two tags');
      t.equal(await metadata.getManifest('c', dg(1)), undefined);
      t.same(await metadata.listTags('c'), ['v2', 'v3'], 'its tags went');
      t.same(await metadata.listManifestReferences('c', dg(1)), []);
      t.equal(await gc.sweepManifest(of(2), cutoff), undefined, 'pulled since the mark: kept');
      t.equal(await gc.sweepManifest(of(3), cutoff), undefined, 'pushed locally since the mark: kept');
      t.equal(await metadata.getTag('c', 'v2'), dg(2));
      t.equal(await gc.sweepManifest(of(4), cutoff), 0, 'untagged evicted manifest: no tags');
      await gc.endMark();
    });

    t.test('sweepLinks: removes only links nothing references and older than the cutoff, in pages', async (t) => {
      const { gc, metadata } = await fresh(t);
      await blob(metadata, dg(10), 10, { repo: 'r' }); // referenced by manifest 1 in r
      await blob(metadata, dg(11), 10, { repo: 'r' }); // nothing references it
      await blob(metadata, dg(12), 10, { repo: 'r' }); // fresh
      await metadata.linkBlob('s', dg(10)); // referenced in r, not in s
      await put(metadata, 'r', dg(1), { tags: ['v1'], blobs: [dg(10)] });
      await metadata.linkBlob('r', dg(1)); // the manifest's own bytes
      const early = Date.now() - HOUR;
      const cutoff = Date.now() + 10 * HOUR;
      await pullBlob(metadata, dg(12), cutoff);

      let r = await gc.sweepLinks(early, undefined, 10);
      t.same(r, { removed: 0 }, 'everything is newer than an early cutoff; a short page has no next');

      const pages: Array<{ removed: number; next?: [string, string] }> = [];
      let after: [string, string] | undefined;
      do {
        r = await gc.sweepLinks(cutoff, after, 2);
        pages.push(r);
        after = r.next;
      } while (after);
      t.same(pages.map((p) => p.next), [['r', dg(10)], ['r', dg(12)], undefined], 'pages of 2 in (repo, digest) order: r×4, then s');
      t.equal(pages.reduce((n, p) => n + p.removed, 0), 2);
      t.equal(await metadata.isBlobLinked('r', dg(10)), true, 'referenced by a manifest of its repository');
      t.equal(await metadata.isBlobLinked('r', dg(1)), true, 'a manifest of its repository is these bytes');
      t.equal(await metadata.isBlobLinked('r', dg(12)), true, 'its blob is fresh');
      t.equal(await metadata.isBlobLinked('r', dg(11)), false, 'unreferenced');
      t.equal(await metadata.isBlobLinked('s', dg(10)), false, 'referenced in another repository only');
      t.ok(await metadata.getBlob(dg(11)), 'links only: the blob row stays');
    });

    t.test('deadBlobs pages; sweepBlob and sweepBlobs delete only rows still unreferenced, unlinked and old', async (t) => {
      const { gc, metadata } = await fresh(t);
      for (let n = 1; n <= 7; n++) await blob(metadata, dg(n), n * 10);
      await put(metadata, 'r', dg(20), { tags: ['v1'], blobs: [dg(21)] });
      await blob(metadata, dg(21), 5);
      const cutoff = await tick();
      await gc.mark(opts(cutoff));
      const dead = [1, 2, 3, 4, 5, 6, 7].map(dg);
      t.same(await gc.deadBlobs(undefined, 10), dead);
      t.same([...(await gc.deadBlobs(undefined, 3)), ...(await gc.deadBlobs(dg(3), 3)), ...(await gc.deadBlobs(dg(6), 3))], dead, 'in pages after a cursor');
      t.same(await gc.deadBlobs(dg(7), 3), []);

      // Changes after the mark.
      await metadata.linkBlob('r', dg(1)); // linked (a push)
      t.equal(await metadata.refreshBlob(dg(2)), true); // refreshed (a writer relies on it)
      await put(metadata, 'r', dg(30), { blobs: [dg(3)], size: 0 }); // referenced by a new manifest
      await put(metadata, 'r', dg(4), { size: 0 }); // a manifest is these bytes

      t.same(
        await gc.sweepBlobs([dg(1), dg(2), dg(3), dg(4), dg(5), dg(6), dg(99)], cutoff),
        new Map([[dg(5), 50], [dg(6), 60]]),
        'the sizes of the rows removed; linked, refreshed, referenced and absent ones are not',
      );
      for (const n of [1, 2, 3, 4]) t.ok(await metadata.getBlob(dg(n)), `blob ${n} kept`);
      t.equal(await metadata.getBlob(dg(5)), undefined);
      t.equal(await gc.sweepBlob(dg(21), cutoff), undefined, 'referenced by a live manifest: kept');
      t.equal(await gc.sweepBlob(dg(20), cutoff), undefined, 'the bytes of a manifest: kept');
      t.equal(await gc.sweepBlob(dg(7), cutoff - HOUR), undefined, 'newer than the cutoff given to the sweep: kept');
      t.equal(await gc.sweepBlob(dg(7), cutoff), 70);
      t.equal(await gc.sweepBlob(dg(7), cutoff), undefined, 'sweeping twice: nothing to delete');
      t.same(await gc.sweepBlobs([dg(5)], cutoff), new Map(), 'gone already');
      await gc.endMark();
    });

    t.test('fsck queries: existingBlobs, blobBytes, blobDigests, danglingReferences, badTags', async (t) => {
      const { gc, metadata } = await fresh(t);
      t.equal(await gc.blobBytes(), 0, 'no rows');
      t.same(await gc.blobDigests(undefined, 10), []);
      for (let n = 1; n <= 5; n++) await blob(metadata, dg(n), n);
      const asked = [...Array.from({ length: 2_500 }, (_, i) => dg(i + 100)), dg(6), dg(5), dg(4), dg(3)];
      t.same([...(await gc.existingBlobs(asked))].sort(), [dg(3), dg(4), dg(5)], 'only those with a row, however many are asked');
      t.same(await gc.existingBlobs([]), new Set());
      t.equal(await gc.blobBytes(), 15);
      t.same(await gc.blobDigests(undefined, 2), [dg(1), dg(2)]);
      t.same(await gc.blobDigests(dg(2), 2), [dg(3), dg(4)]);
      t.same(await gc.blobDigests(dg(4), 2), [dg(5)]);

      t.same(await gc.danglingReferences(10), [], 'nothing dangles');
      await put(metadata, 'r', dg(40), { tags: ['v1'], blobs: [dg(1), dg(41), dg(42)], size: 0 }); // local: 41, 42 and its bytes missing
      await put(metadata, 'r', dg(43), { blobs: [dg(44)], local: false }); // cached: references may be absent
      await put(metadata, 'r', dg(45), { children: [dg(46)] }); // a missing child is not a blob
      t.same(await gc.danglingReferences(10), [dg(40), dg(41), dg(42)], 'local references and manifest bytes without a row, in digest order');
      t.same(await gc.danglingReferences(2), [dg(40), dg(41)], 'at most limit');

      t.same(await gc.badTags(10), [], 'every tag resolves');
      t.ok(await metadata.deleteManifest('r', dg(40)));
      t.same(await gc.badTags(10), [], 'deleting a manifest leaves no tag behind');
    });

    t.test('endMark: idempotent, and a new mark starts from the current state', async (t) => {
      const { gc, metadata } = await fresh(t);
      await put(metadata, 'r', dg(1), { tags: ['gone'] });
      t.ok(await metadata.deleteTag('r', 'gone'));
      const cutoff = Date.now() + 10 * HOUR;
      await gc.endMark(); // before any mark
      let marked = await gc.mark(opts(cutoff));
      t.equal(marked.manifests, 1);
      await gc.endMark();
      await gc.endMark();

      await put(metadata, 'r', dg(1), { tags: ['back'] });
      await put(metadata, 'r', dg(2), { tags: ['gone2'] });
      t.ok(await metadata.deleteTag('r', 'gone2'));
      marked = await gc.mark(opts(cutoff, { activeBlobs: [dg(2)] }));
      t.same(await allDead(gc), [at('r', dg(2))], 'the first mark left nothing behind');
      t.same(await gc.deadBlobs(undefined, 10), [], 'activeBlobs of this mark');
      t.same([marked.manifests, marked.blobs], [1, 0]);
      await gc.endMark();
    });
  });
}
