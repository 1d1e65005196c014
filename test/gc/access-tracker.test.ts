// Pull times are batched in memory and written in one go; a pull never waits on the store.
import t from 'tap';
import { AccessTracker } from '../../src/metadata/access-tracker.js';
import type { AccessBatch } from '../../src/metadata/registry-metadata.js';
import { HOUR, setup } from './gc-setup.js';

t.test('touches are held until flush, then written; times never go backwards', async (t) => {
  const s = await setup(t);
  const img = await s.image('team/app', 'x', { tag: 'v1' });
  const before = (await s.metadata.getManifest('team/app', img.digest))!.lastAccessAt;
  let clock = Date.now() + HOUR;
  const tracker = new AccessTracker(s.metadata, { intervalMs: 60_000, now: () => clock });
  tracker.touchManifest('team/app', img.digest);
  tracker.touchBlob(img.layers[0]!);
  t.equal((await s.metadata.getManifest('team/app', img.digest))!.lastAccessAt, before, 'not written before the flush');
  await tracker.flush();
  t.equal((await s.metadata.getManifest('team/app', img.digest))!.lastAccessAt, clock, 'manifest time written');
  t.equal((await s.metadata.getBlob(img.layers[0]!))!.lastAccessAt, clock, 'blob time written');
  const written = clock;
  clock -= 10 * HOUR;
  tracker.touchManifest('team/app', img.digest);
  tracker.touchManifest('team/app', 'sha256:' + '0'.repeat(64));
  await tracker.close();
  t.equal((await s.metadata.getManifest('team/app', img.digest))!.lastAccessAt, written, 'an older touch does not move it back');
  tracker.touchBlob(img.layers[0]!);
  await tracker.flush();
  t.equal((await s.metadata.getBlob(img.layers[0]!))!.lastAccessAt, written, 'touches after close are ignored');
});

t.test('pulls through the services are recorded, batched into one write', async (t) => {
  const s = await setup(t);
  const img = await s.image('team/app', 'y', { tag: 'v1' });
  const batches: AccessBatch[] = [];
  let written!: () => void;
  const firstBatch = new Promise<void>((resolve) => (written = resolve));
  const spy = new Proxy(s.metadata, {
    get(target, prop, receiver) {
      if (prop === 'touchAccess') return async (b: AccessBatch) => { batches.push(b); await target.touchAccess(b); written(); };
      return Reflect.get(target, prop, receiver) as unknown;
    },
  });
  // Long enough for the pulls below on a loaded machine; the test waits for the batch, not the time.
  const tracker = new AccessTracker(spy, { intervalMs: 1000 });
  const { LocalRegistry } = await import('../../src/registry/local-registry.js');
  const { BlobLedger } = await import('../../src/ledger/blob-ledger.js');
  const registry = new LocalRegistry({ metadata: s.metadata, uploads: s.uploads, blobStore: s.blobs, ledger: new BlobLedger(s.metadata, s.blobs, s.state), chunkMinLength: 0, accessTracker: tracker });
  const repo = registry.repository('team/app');
  for (let i = 0; i < 5; i++) {
    await repo.manifests.get('v1');
    await repo.blobs.get(img.layers[0]!, { head: true });
  }
  t.equal(batches.length, 0, 'no write per pull');
  // The tracker's timer does not hold the process open; this does while the test waits.
  const alive = setTimeout(() => undefined, 30_000);
  await firstBatch;
  clearTimeout(alive);
  t.equal(batches.length, 1, 'one batch from the timer');
  t.same(batches[0]?.manifests.map((m) => m.digest), [img.digest], 'each manifest once');
  t.same(batches[0]?.blobs.map((b) => b.digest), [img.layers[0]]);
  await tracker.close();
});
