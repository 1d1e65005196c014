// The race windows of the collector, opened one at a time on purpose: a write lands between the
// mark and the sweep, or between a row's deletion and its file's removal. Each would lose a blob if
// the sweep trusted the mark or a writer trusted an existing file.
import { existsSync } from 'node:fs';
import t from 'tap';
import { BlobLedger } from '../../src/ledger/blob-ledger.js';
import type { GcState } from '../../src/metadata/gc-state.js';
import { RegistryError } from '../../src/registry/errors.js';
import { MissingContentError } from '../../src/metadata/registry-metadata.js';
import { blobPath } from '../../src/storage/paths.js';
import { OCI_CONFIG, OCI_LAYER, OCI_MANIFEST } from '../helpers/http.js';
import { wrapWriter } from '../helpers/wrap-writer.js';
import { HOUR, setup, sha } from './gc-setup.js';

const markOld = (s: Awaited<ReturnType<typeof setup>>) =>
  s.state.mark({ cutoff: s.now(), deleteUntagged: true, activeBlobs: [] });

t.test('a manifest put after the mark keeps the blobs it references', async (t) => {
  const s = await setup(t);
  const config = await s.blob('team/app', '{"seed":"late"}');
  const layer = await s.blob('team/app', 'late layer');
  s.clock.skew = 2 * HOUR;
  const cutoff = s.now() - HOUR;
  await s.state.mark({ cutoff, deleteUntagged: true, activeBlobs: [] });
  t.same((await s.state.deadBlobs(undefined, 10)).sort(), [config, layer].sort(), 'both unreferenced at the mark');

  const body = JSON.stringify({
    schemaVersion: 2,
    mediaType: OCI_MANIFEST,
    config: { mediaType: OCI_CONFIG, digest: config, size: 15 },
    layers: [{ mediaType: OCI_LAYER, digest: layer, size: 10 }],
  });
  await s.registry.repository('team/app').manifests.put('v1', Buffer.from(body), OCI_MANIFEST);
  t.equal(await s.state.sweepBlob(layer, cutoff), undefined, 'the sweep re-checks and keeps the layer');
  t.equal(await s.state.sweepBlob(config, cutoff), undefined);
  t.equal(await s.state.sweepLinks(cutoff, undefined, 100).then((r) => r.removed), 0, 'links referenced now');
  await s.state.endMark();
  t.ok((await s.fsck()).ok);
});

t.test('a manifest put after its blob row was swept is refused, not recorded', async (t) => {
  const s = await setup(t);
  const layer = await s.blob('team/app', 'swept layer');
  const config = await s.blob('team/app', '{"seed":"x"}');
  s.clock.skew = 2 * HOUR;
  await s.metadata.unlinkBlob('team/app', layer);
  t.ok(await s.state.sweepBlob(layer, s.now() - HOUR), 'row swept');
  // The client still thinks the layer is there; the link check passes if it was linked again.
  await s.metadata.linkBlob('team/app', layer);
  const body = JSON.stringify({
    schemaVersion: 2,
    mediaType: OCI_MANIFEST,
    config: { mediaType: OCI_CONFIG, digest: config, size: 12 },
    layers: [{ mediaType: OCI_LAYER, digest: layer, size: 11 }],
  });
  const err = await s.registry.repository('team/app').manifests.put('v1', Buffer.from(body), OCI_MANIFEST).then(() => undefined, (e: unknown) => e);
  t.ok(err instanceof RegistryError, 'refused with a registry error', { err });
  t.equal((err as RegistryError).code, 'MANIFEST_BLOB_UNKNOWN');
  t.match(JSON.stringify((err as RegistryError).detail), layer, 'names the missing layer');
  t.equal(await s.metadata.getTag('team/app', 'v1'), undefined, 'nothing recorded');
  await t.rejects(
    s.metadata.putManifest({
      repo: 'team/app', digest: sha(body), mediaType: OCI_MANIFEST, size: body.length, subject: null, artifactType: null,
      annotations: null, references: [{ digest: layer, kind: 'blob' }], tags: [], verify: 'references',
    }),
    MissingContentError,
  );
});

t.test('a blob pushed again while the collector removes its file: the file is put back', async (t) => {
  const s = await setup(t);
  const d = await s.blob('team/app', 'pushed twice');
  await s.metadata.unlinkBlob('team/app', d);
  s.clock.skew = 2 * HOUR;
  // The collector's state with a window opened right after the rows are deleted, before the bytes go.
  const gc = s.state;
  const hooked: GcState = Object.assign(Object.create(gc) as GcState, {
    sweepBlobs: async (digests: string[], cutoff: number) => {
      const swept = await gc.sweepBlobs(digests, cutoff);
      t.ok(swept.has(d), 'collector deleted the row');
      // The writer records the blob again (the file is still there: the "already exists" shortcut).
      await s.blob('team/app', 'pushed twice');
      return swept;
    },
  });
  const { removed, restored } = await new BlobLedger(s.metadata, s.blobs, hooked).sweep([d], s.now() - HOUR);
  t.same(restored, [d], 'the collector sees the row came back and restores the file');
  t.equal(removed.size, 0, 'nothing counted as removed');
  t.ok(await s.stored(d));
  t.ok((await s.fsck()).ok);
});

t.test('the collector moves the file away between a writer placing it and recording it', async (t) => {
  const s = await setup(t);
  const content = 'placed, then swept, then recorded';
  const d = sha(content);
  const writer = await s.blobs.writer();
  await writer.write([Buffer.from(content)]);
  // Right after the ledger's first commit: the file is in place, no row yet — a collector sees an
  // orphan and removes it.
  let commits = 0;
  const racing = wrapWriter(writer, {
    commit: async (digest, opts) => {
      const placed = await writer.commit(digest, opts);
      if (commits++ === 0) {
        t.ok(existsSync(blobPath(s.dir, d)), 'file placed before the row');
        t.equal(await s.metadata.getBlob(d), undefined, 'no row yet');
        // An orphan to a collector whose grace has passed.
        t.equal(await s.ledger.sweepOrphans(Date.now() + HOUR, false), 1, 'collector removed it');
        t.notOk(existsSync(blobPath(s.dir, d)));
      }
      return placed;
    },
  });
  await s.ledger.commit(racing, d, { local: true, repo: 'team/app' });
  t.ok(existsSync(blobPath(s.dir, d)), 'the writer put the file back after recording the row');
  t.ok(await s.stored(d));
  t.ok((await s.fsck()).ok);
});

t.test('an evicted cached manifest pulled after the mark stays', async (t) => {
  const s = await setup(t);
  const img = await s.image('hub/x', 'x', { tag: 'latest', local: false });
  s.clock.skew = 30 * 24 * HOUR;
  await s.state.mark({ cutoff: s.now() - HOUR, deleteUntagged: false, ageCutoff: s.now() - 7 * 24 * HOUR, activeBlobs: [] });
  const [dead] = await s.state.deadManifests(undefined, 10);
  t.equal(dead?.rule, 'age');
  await s.metadata.touchAccess({ manifests: [{ repo: 'hub/x', digest: img.digest, at: Date.now() }], blobs: [] });
  t.equal(await s.state.sweepManifest(dead!, s.now() - HOUR), undefined, 'kept: pulled since the mark');
  t.ok(await s.metadata.getManifest('hub/x', img.digest));
  await s.state.endMark();
});

t.test('a fresh mark does not see a blob pushed after the run started', async (t) => {
  const s = await setup(t);
  await markOld(s);
  await s.state.endMark();
  const d = await s.blob('team/app', 'after start');
  // With no grace, the cutoff is the run's start: the new blob is newer.
  const r = await s.gc.run({ grace: 0, deleteUntagged: true, cacheMaxAge: 0, cacheMaxSize: 0, uploadsMaxAge: 0, dryRun: false });
  t.ok(r.blobsDeleted <= 1);
  t.ok((await s.fsck()).ok);
  s.clock.skew = -60_000; // a run that started a minute before the push
  const d2 = await s.blob('team/app', 'pushed during a run');
  await s.gc.run({ grace: 0, deleteUntagged: true, cacheMaxAge: 0, cacheMaxSize: 0, uploadsMaxAge: 0, dryRun: false });
  t.ok(await s.stored(d2), 'pushed after the run started: kept');
  void d;
});
