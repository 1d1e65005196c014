// The collector's liveness rules, one per subtest, each checked with fsck after the run.
import { mkdirSync, readdirSync, utimesSync, writeFileSync, existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import t from 'tap';
import { GarbageCollector, GcBusyError, type GcReport } from '../../src/gc/collector.js';
import { blobPath, uploadPath } from '../../src/storage/paths.js';
import { filesUnder } from '../helpers/http.js';
import { DAY, HOUR, options, setup, sha } from './gc-setup.js';

type Setup = Awaited<ReturnType<typeof setup>>;

/** A dry run, then the real run: the dry run changes nothing and predicts the real counts. */
async function collect(tt: Tap, s: Setup, opts = options()): Promise<GcReport> {
  const before = await s.fsck();
  const files = () => [...filesUnder(join(s.dir, 'blobs')), ...filesUnder(join(s.dir, 'uploads'))];
  const filesBefore = files();
  const dry = await s.gc.run({ ...opts, dryRun: true });
  tt.same(files(), filesBefore, 'dry run removes no file');
  tt.same(await s.fsck(), before, 'dry run changes no row');
  const real = await s.gc.run(opts);
  const strip = ({ dryRun: _d, startedAt: _s, durationMs: _m, ...counts }: GcReport) => counts;
  tt.same(strip(dry), strip(real), 'dry run reports what the real run does');
  tt.equal(dry.dryRun, true);
  tt.equal(real.dryRun, false);
  const check = await s.fsck();
  tt.ok(check.ok, 'fsck ok after the run', check);
  return real;
}
type Tap = Parameters<Parameters<typeof t.test>[0]>[0];

t.test('a tagged image stays; untagged stays unless deleteUntagged', async (t) => {
  const s = await setup(t);
  const a = await s.image('team/app', 'a', { tag: 'v1' });
  // b loses its tag to c (a tag move): untagged, but not released.
  const b = await s.image('team/app', 'b', { tag: 'v2' });
  const c = await s.image('team/app', 'c', { tag: 'v2' });
  s.clock.skew = 2 * HOUR;

  let r = await collect(t, s);
  t.equal(r.manifestsDeleted, 0, 'untagged manifest kept without deleteUntagged');
  t.ok(await s.stored(b.layers[0]!), 'its layer kept');

  r = await collect(t, s, options({ deleteUntagged: true }));
  t.equal(r.manifestsDeleted, 1);
  t.equal(r.blobsDeleted, 3, 'config, layer and manifest bytes of the untagged image');
  t.equal(r.bytesReclaimed, b.body.length + Buffer.byteLength(JSON.stringify({ architecture: 'amd64', os: 'linux', seed: 'b' })) + 'layer of b'.length);
  t.notOk(await s.stored(b.digest));
  t.notOk(await s.stored(b.layers[0]!));
  t.notOk(await s.stored(b.config));
  for (const d of [a.digest, a.config, ...a.layers, c.digest]) t.ok(await s.stored(d), 'tagged image content kept');
  t.equal((await s.registry.repository('team/app').manifests.get('v1')).digest, a.digest, 'tag still pulls');
});

t.test('a tag deleted through the API releases its manifest, even without deleteUntagged', async (t) => {
  const s = await setup(t);
  const a = await s.image('team/app', 'a', { tag: 'v1' });
  const b = await s.image('team/app', 'b', { tag: 'v2' });
  const d = await s.image('team/app', 'd', { tag: 'v3' });
  await s.registry.repository('team/app').manifests.delete('v2');
  // d has a second tag: deleting one of them releases nothing.
  await s.image('team/app', 'd', { tag: 'v4' });
  await s.registry.repository('team/app').manifests.delete('v3');
  s.clock.skew = 2 * HOUR;
  const r = await collect(t, s);
  t.equal(r.manifestsDeleted, 1, 'only the manifest whose last tag was deleted');
  t.notOk(await s.stored(b.digest));
  t.notOk(await s.stored(b.layers[0]!));
  for (const x of [a.digest, d.digest, ...d.layers]) t.ok(await s.stored(x), 'the others stay');
  t.equal((await s.registry.repository('team/app').manifests.get('v4')).digest, d.digest);
});

t.test('grace: content created or touched within it is live', async (t) => {
  const s = await setup(t);
  const loose = await s.blob('team/app', 'pushed, no manifest yet');
  const img = await s.image('team/app', 'fresh', { tag: 'tmp' });
  await s.registry.repository('team/app').manifests.delete('tmp');

  let r = await collect(t, s, options({ deleteUntagged: true }));
  t.equal(r.blobsDeleted + r.manifestsDeleted, 0, 'nothing older than grace');
  t.ok(await s.stored(loose));

  // Touched (pulled) recently: still live two hours on.
  s.clock.skew = 2 * HOUR;
  await s.metadata.touchAccess({ manifests: [], blobs: [{ digest: loose, at: s.now() - 10 }] });
  r = await collect(t, s, options({ deleteUntagged: true }));
  t.ok(await s.stored(loose), 'touched blob kept');
  t.notOk(await s.stored(img.digest), 'the untouched untagged manifest went');
  t.equal(await s.metadata.isBlobLinked('team/app', img.config), false, 'its repository link went too');

  s.clock.skew = 4 * HOUR;
  r = await collect(t, s, options({ deleteUntagged: true }));
  t.equal(r.blobsDeleted, 1);
  t.notOk(await s.stored(loose), 'unreferenced blob goes once out of grace');
  t.equal(await s.metadata.isBlobLinked('team/app', loose), false, 'and its link');
});

t.test('referrers of a live subject stay; they go with their subject', async (t) => {
  const s = await setup(t);
  const app = await s.image('team/app', 'app', { tag: 'v1' });
  const sig = await s.image('team/app', 'sig', { subject: app });
  const orphanSig = await s.image('team/app', 'other-sig', { subject: { digest: sha('nothing'), body: 'x', config: '', layers: [] } });
  s.clock.skew = 2 * HOUR;

  let r = await collect(t, s, options({ deleteUntagged: true }));
  t.equal(r.manifestsDeleted, 1, 'only the referrer of an absent subject');
  t.ok(await s.stored(sig.digest), 'signature of a tagged image kept');
  t.ok(await s.stored(sig.layers[0]!));
  t.notOk(await s.stored(orphanSig.digest));

  await s.registry.repository('team/app').manifests.delete('v1');
  r = await collect(t, s, options({ deleteUntagged: true }));
  t.equal(r.manifestsDeleted, 2, 'subject and signature');
  t.notOk(await s.stored(app.digest));
  t.notOk(await s.stored(sig.digest));
  t.same((await s.metadata.listReferrers('team/app', app.digest)).length, 0);
});

t.test('children of a live index stay', async (t) => {
  const s = await setup(t);
  const amd = await s.image('team/multi', 'amd64');
  const arm = await s.image('team/multi', 'arm64');
  const idx = await s.index('team/multi', [amd, arm], 'latest');
  s.clock.skew = 2 * HOUR;

  let r = await collect(t, s, options({ deleteUntagged: true }));
  t.equal(r.manifestsDeleted, 0);
  for (const d of [amd.digest, arm.digest, ...amd.layers, arm.config]) t.ok(await s.stored(d), 'child content kept');

  await s.registry.repository('team/multi').manifests.delete('latest');
  r = await collect(t, s, options({ deleteUntagged: true }));
  t.equal(r.manifestsDeleted, 3);
  t.equal(r.tagsDeleted, 0);
  t.equal(r.blobsDeleted, 7, 'index bytes, two child manifests, two configs, two layers');
  t.notOk(await s.stored(idx.digest));
  t.notOk(await s.stored(arm.layers[0]!));
});

t.test('a layer shared with a manifest that stays is kept, counted once', async (t) => {
  const s = await setup(t);
  const keep = await s.image('team/a', 'keep', { tag: 'v1', layers: ['shared base', 'keep top'] });
  const drop = await s.image('team/b', 'drop', { tag: 'v1', layers: ['shared base', 'drop top'] });
  await s.registry.repository('team/b').manifests.delete(drop.digest);
  s.clock.skew = 2 * HOUR;
  const r = await collect(t, s);
  t.equal(r.manifestsDeleted, 0, 'deleted through the API already');
  t.equal(r.blobsDeleted, 3, 'manifest bytes, config, own layer');
  t.ok(await s.stored(keep.layers[0]!), 'shared layer kept');
  t.equal(await s.metadata.isBlobLinked('team/b', keep.layers[0]!), false, 'its link in the other repository went');
  t.ok(await s.metadata.isBlobLinked('team/a', keep.layers[0]!));
  t.notOk(await s.stored(drop.layers[1]!));
});

t.test('uploads: in progress kept, expired removed with their bytes', async (t) => {
  const s = await setup(t);
  const old = await s.registry.repository('team/app').uploads.start();
  s.clock.skew = 2 * DAY;
  const r = await collect(t, s);
  t.equal(r.uploadsDeleted, 1);
  t.equal(await s.uploads.getUpload(old.id), undefined);
  t.notOk(existsSync(uploadPath(s.dir, old.id)), 'bytes removed');

  const fresh = await s.registry.repository('team/app').uploads.start();
  s.clock.skew = 0;
  const r2 = await collect(t, s);
  t.equal(r2.uploadsDeleted, 0);
  t.ok(await s.uploads.getUpload(fresh.id), 'upload in progress kept');
  t.ok(existsSync(uploadPath(s.dir, fresh.id)));
});

t.test('cache maxAge evicts cold cached manifests, never local ones', async (t) => {
  const s = await setup(t);
  const cold = await s.image('hub/library/cold', 'cold', { tag: 'latest', local: false });
  const warm = await s.image('hub/library/warm', 'warm', { tag: 'latest', local: false });
  const mine = await s.image('team/app', 'mine', { tag: 'v1' });
  s.clock.skew = 10 * DAY;
  await s.metadata.touchAccess({ manifests: [{ repo: 'hub/library/warm', digest: warm.digest, at: s.now() - DAY }], blobs: [] });

  const r = await collect(t, s, options({ cacheMaxAge: 7 * DAY }));
  t.equal(r.evictedByAge, 1);
  t.equal(r.manifestsDeleted, 1);
  t.equal(r.tagsDeleted, 1, 'the cached tag goes with it');
  t.notOk(await s.stored(cold.digest));
  t.notOk(await s.stored(cold.layers[0]!));
  t.equal(await s.metadata.getTag('hub/library/cold', 'latest'), undefined);
  t.ok(await s.stored(warm.layers[0]!), 'recently pulled cached image kept');
  t.ok(await s.stored(mine.layers[0]!), 'local image as old as the cold one kept');
});

t.test('cache maxSize evicts least recently pulled first and keeps a shared layer', async (t) => {
  const s = await setup(t);
  const big = 'L'.repeat(10_000);
  const a = await s.image('hub/a', 'a', { tag: 't', local: false, layers: [big, 'A'.repeat(5000)] });
  const b = await s.image('hub/b', 'b', { tag: 't', local: false, layers: ['B'.repeat(5000)] });
  const c = await s.image('hub/c', 'c', { tag: 't', local: false, layers: [big] });
  const mine = await s.image('team/app', 'mine', { tag: 'v1', layers: ['M'.repeat(50_000)] });
  s.clock.skew = DAY;
  const at = s.now() - 12 * HOUR;
  await s.metadata.touchAccess({
    manifests: [
      { repo: 'hub/a', digest: a.digest, at },
      { repo: 'hub/b', digest: b.digest, at: at + 1000 },
      { repo: 'hub/c', digest: c.digest, at: at + 2000 },
    ],
    blobs: [],
  });
  const cached = async () => {
    let n = 0;
    for (const d of [a, b, c].flatMap((i) => [i.digest, i.config, ...i.layers])) n += (await s.metadata.getBlob(d))?.size ?? 0;
    return n;
  };
  const total = (await cached()) - big.length; // the shared layer appears twice in the flat list
  // Dropping A frees its own layer, config and manifest bytes but not the layer C shares.
  const r = await collect(t, s, options({ cacheMaxSize: total - 4000 }));
  t.equal(r.evictedBySize, 1, 'one image was enough');
  t.notOk(await s.stored(a.digest), 'the least recently pulled went');
  t.notOk(await s.stored(a.layers[1]!));
  t.ok(await s.stored(a.layers[0]!), 'layer shared with C kept');
  t.ok(await s.stored(b.digest));
  t.ok(await s.stored(c.digest));
  t.ok(await s.stored(mine.layers[0]!), 'local content is not counted nor evicted');

  const r2 = await collect(t, s, options({ cacheMaxSize: 1 }));
  t.equal(r2.evictedBySize, 2, 'all cached images go under a tiny budget');
  t.ok(await s.stored(mine.layers[0]!), 'local image still there');
  t.notOk(await s.stored(big && c.layers[0]!));
});

t.test('orphan files and leftover trash are removed; fresh orphans wait for grace', async (t) => {
  const s = await setup(t);
  const write = (content: string, ageMs: number) => {
    const d = sha(content);
    const f = blobPath(s.dir, d);
    mkdirSync(dirname(f), { recursive: true });
    writeFileSync(f, content);
    const when = (Date.now() - ageMs) / 1000;
    utimesSync(f, when, when);
    return d;
  };
  const old = write('crashed before its row', 2 * HOUR);
  const young = write('written a moment ago', 0);
  mkdirSync(join(s.dir, 'trash'), { recursive: true });
  writeFileSync(join(s.dir, 'trash', `${sha('x').replace(':', '-')}.abc`), 'x');
  t.same((await s.fsck()).orphanFiles.sort(), [old, young].sort(), 'fsck sees both orphans');

  const dry = await s.gc.run(options({ dryRun: true }));
  t.equal(dry.orphanFilesRemoved, 1);
  t.ok(existsSync(blobPath(s.dir, old)), 'dry run leaves the file');
  const r = await s.gc.run(options());
  t.equal(r.orphanFilesRemoved, 1);
  t.notOk(existsSync(blobPath(s.dir, old)));
  t.ok(existsSync(blobPath(s.dir, young)), 'a file younger than grace may belong to a write in progress');
  t.same(readdirSync(join(s.dir, 'trash')), [], 'trash emptied');
});

t.test('bytes a stopped collector left set aside go back when the blob is recorded, and go otherwise', async (t) => {
  const s = await setup(t);
  const recorded = await s.blob('team/app', 'recorded while aside');
  const dropped = await s.blob('team/app', 'row swept before the crash');
  await s.metadata.unlinkBlob('team/app', dropped);
  t.ok(await s.state.sweepBlob(dropped, Date.now() + HOUR), 'its row is gone');
  // A collector set both aside and stopped (SIGKILL) before deciding.
  t.ok(await s.blobs.setAside(recorded));
  t.ok(await s.blobs.setAside(dropped));
  const r = await s.gc.run(options());
  t.equal(r.blobsDeleted, 0, 'nothing swept by this run');
  t.ok(await s.stored(recorded), 'the recorded blob has its bytes again');
  t.notOk(await s.stored(dropped), 'the other is gone, row and bytes');
  t.same(readdirSync(join(s.dir, 'trash')), [], 'nothing left aside');
  t.ok((await s.fsck()).ok);
});

t.test('one run at a time: in this process and across processes', async (t) => {
  const s = await setup(t);
  await s.image('team/app', 'x', { tag: 'v1' });
  const first = s.gc.run(options());
  await t.rejects(s.gc.run(options()), GcBusyError, 'second call while the first runs');
  await first;

  // Another process holds the lock row.
  t.ok(await s.state.acquireLock('other-process', 60_000));
  const other = new GarbageCollector({ gc: s.state, uploads: s.uploads }, s.ledger);
  await t.rejects(other.run(options()), GcBusyError, 'lock held elsewhere');
  await t.rejects(s.gc.run(options()), GcBusyError);
  await s.state.releaseLock('other-process');
  const r = await other.run(options());
  t.equal(r.dryRun, false, 'runs once the lock is free');

  // An expired lock (its holder died) is taken over.
  t.ok(await s.state.acquireLock('dead-process', -1));
  await t.resolves(s.gc.run(options()));
});

t.test('recentRuns: the last 20, newest first, dry runs included', async (t) => {
  const s = await setup(t);
  for (let i = 0; i < 22; i++) await s.gc.run(options({ dryRun: i % 2 === 0 }));
  const runs = await s.gc.recentRuns();
  t.equal(runs.length, 20);
  t.equal(runs[0]?.dryRun, false, 'newest (the 22nd, a real run) first');
  t.equal(runs[1]?.dryRun, true);
  t.ok(runs.every((r, i) => i === 0 || r.startedAt <= runs[i - 1]!.startedAt), 'newest first');
});

t.test('active fills keep their blob', async (t) => {
  const filling = new Set<string>();
  const s = await setup(t, { activeFills: () => filling });
  const loose = await s.blob('hub/x', 'being filled again', false);
  filling.add(loose);
  s.clock.skew = 2 * HOUR;
  const r = await s.gc.run(options());
  t.equal(r.blobsDeleted, 0);
  t.ok(await s.stored(loose));
  filling.clear();
  const r2 = await s.gc.run(options());
  t.equal(r2.blobsDeleted, 1);
  t.notOk(await s.stored(loose));
});
