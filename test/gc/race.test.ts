// A push that races the collector never loses a blob: pushes, tag moves and deletes through the
// real HTTP API while a collector (its own connection to the store, as `wharf gc` would have) runs
// over and over with a grace of a few milliseconds (shorter than anything a real store uses). Afterwards every tag pulls, every blob verifies and fsck is ok.
import { createHash } from 'node:crypto';
import t from 'tap';
import { GarbageCollector, GcBusyError } from '../../src/gc/collector.js';
import { fsck } from '../../src/gc/fsck.js';
import { FsBlobStore } from '../../src/storage/fs-blob-store.js';
import { BlobLedger } from '../../src/ledger/blob-ledger.js';
import { startWharf } from '../helpers/server.js';
import { OCI_CONFIG, OCI_LAYER, OCI_MANIFEST, digestOf, inject, pushBlob, raw } from '../helpers/http.js';
import { sharedStoreTarget } from './gc-setup.js';

const DURATION_MS = 12_000;
const MAX_ITERATIONS = 2000;

t.test('pushes, tag moves and deletes racing a collector with almost no grace lose nothing', async (t) => {
  // The server's metadata (SQLite, or PostgreSQL when a postgres-*.test.ts file chose it) and a
  // second connection to it for the collector.
  const target = await sharedStoreTarget(t);
  const server = await startWharf(t, target.overrides);
  const { metadata, state, uploads } = await target.open(server.dataDir);
  const blobs = await FsBlobStore.open(server.dataDir);
  const gc = new GarbageCollector({ gc: state, uploads }, new BlobLedger(metadata, blobs, state));
  // A push takes a few ms between its blobs and its manifest; with a grace shorter than that the
  // collector would take the blobs every time and the push could never finish.
  const gcOptions = { grace: 50, deleteUntagged: true, cacheMaxAge: 0, cacheMaxSize: 0, uploadsMaxAge: 0, dryRun: false };

  /** The tags the pushers believe in: repo:tag → digest, as of their last successful write. */
  const expected = new Map<string, string>();
  let stop = false;
  let iterations = 0;
  let refused = 0;
  let runs = 0;
  let reclaimed = 0;

  const pushImage = async (repo: string, tag: string, seed: string): Promise<void> => {
    const configBytes = JSON.stringify({ architecture: 'amd64', os: 'linux', seed });
    // A base layer shared by every image (the "already exists" path) and one of its own.
    const layers = ['shared base layer', `top layer ${seed}`];
    const body = JSON.stringify({
      schemaVersion: 2,
      mediaType: OCI_MANIFEST,
      config: { mediaType: OCI_CONFIG, digest: digestOf(configBytes), size: Buffer.byteLength(configBytes) },
      layers: layers.map((l) => ({ mediaType: OCI_LAYER, digest: digestOf(l), size: Buffer.byteLength(l) })),
    });
    for (let attempt = 0; ; attempt++) {
      await pushBlob(server.app, repo, configBytes);
      for (const l of layers) await pushBlob(server.app, repo, l);
      const res = await inject(server.app, 'PUT', `/v2/${repo}/manifests/${tag}`, { headers: { 'content-type': OCI_MANIFEST }, body });
      if (res.status === 201) {
        expected.set(`${repo}:${tag}`, res.header('docker-content-digest') as string);
        return;
      }
      // With so little grace, the collector may still take blobs pushed a moment ago and not yet referenced:
      // the manifest is then refused (never recorded without its content) and the client pushes again.
      const code = (res.json() as { errors: Array<{ code: string }> }).errors[0]?.code;
      if (res.status !== 400 || code !== 'MANIFEST_BLOB_UNKNOWN' || attempt > 50) {
        throw new Error(`manifest put ${repo}:${tag}: ${res.status} ${res.text}`);
      }
      refused++;
    }
  };

  const pusher = async (id: number): Promise<void> => {
    const repo = `team/app${id}`;
    while (!stop && iterations < MAX_ITERATIONS) {
      const i = iterations++;
      const tag = `t${i % 5}`;
      const op = i % 7;
      if (op === 5 && expected.has(`${repo}:${tag}`)) {
        // Delete a tag.
        const res = await inject(server.app, 'DELETE', `/v2/${repo}/manifests/${tag}`);
        if (res.status !== 202) throw new Error(`delete tag: ${res.status} ${res.text}`);
        expected.delete(`${repo}:${tag}`);
      } else if (op === 6) {
        // Delete a manifest by digest (and the tags on it).
        const digest = expected.get(`${repo}:${tag}`);
        if (digest) {
          const res = await inject(server.app, 'DELETE', `/v2/${repo}/manifests/${digest}`);
          if (res.status !== 202) throw new Error(`delete manifest: ${res.status} ${res.text}`);
          for (const [k, v] of expected) if (k.startsWith(`${repo}:`) && v === digest) expected.delete(k);
        }
      } else {
        // A new image under a tag (a tag move when the tag exists), seeds repeating so content recurs.
        await pushImage(repo, tag, `seed-${id}-${i % 11}`);
      }
    }
  };

  const collector = async (): Promise<void> => {
    while (!stop && iterations < MAX_ITERATIONS) {
      try {
        const r = await gc.run(gcOptions);
        runs++;
        reclaimed += r.blobsDeleted;
      } catch (err) {
        if (!(err instanceof GcBusyError)) throw err;
      }
      await new Promise((r) => setImmediate(r));
    }
  };

  const timer = setTimeout(() => (stop = true), DURATION_MS);
  try {
    await Promise.all([pusher(1), pusher(2), pusher(3), collector()]);
  } finally {
    stop = true;
    clearTimeout(timer);
  }
  t.comment(`${iterations} operations, ${runs} collections, ${reclaimed} blobs reclaimed, ${refused} manifest puts refused and retried`);
  t.ok(runs >= 5, 'the collector ran while the pushers worked');
  t.ok(reclaimed > 0, 'and it did reclaim garbage (so it really raced)');
  t.ok(expected.size > 0, 'some tags remain');

  // One more collection once everything is quiet: still nothing live may go.
  await gc.run(gcOptions);

  for (const [key, digest] of expected) {
    const [repo, tag] = key.split(':') as [string, string];
    const res = await raw(server.url, 'GET', `/v2/${repo}/manifests/${tag}`, { headers: { accept: OCI_MANIFEST } });
    t.equal(res.status, 200, `${key} pulls`);
    t.equal(res.header('docker-content-digest'), digest, `${key} points where it was last pushed`);
    t.equal(digestOf(res.body), digest, `${key} manifest bytes verify`);
    const doc = JSON.parse(res.text) as { config: { digest: string }; layers: Array<{ digest: string }> };
    for (const d of [doc.config.digest, ...doc.layers.map((l) => l.digest)]) {
      const blob = await raw(server.url, 'GET', `/v2/${repo}/blobs/${d}`);
      t.equal(blob.status, 200, `${key}: blob ${d} pulls`);
      t.equal(`sha256:${createHash('sha256').update(blob.body).digest('hex')}`, d, `${key}: blob ${d} bytes verify`);
    }
  }
  const tagsOnServer = (await metadata.listRepositories()).length;
  t.ok(tagsOnServer > 0);
  const check = await fsck(state, blobs);
  t.ok(check.ok, 'fsck ok', check);
});
