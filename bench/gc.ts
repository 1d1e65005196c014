// Garbage collection at scale: a store with 100,000 blobs (real files) and 10,000 manifests, half
// of them unreachable (their tags deleted), collected with grace 0 and deleteUntagged. Reports the
// duration of a dry run and of the real run, what they removed, and the process's peak RSS; then
// checks the store with fsck. One run, this machine.
//
// Usage: npm run bench:gc   (or: node --import tsx bench/gc.ts [blobs] [manifests])
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { GarbageCollector } from '../src/gc/collector.js';
import { fsck } from '../src/gc/fsck.js';
import { SqliteDatabase } from '../src/metadata/sqlite-database.js';
import { SqliteGcState } from '../src/metadata/sqlite-gc-state.js';
import { SqliteRegistryMetadata } from '../src/metadata/sqlite-registry-metadata.js';
import { SqliteUploadSessions } from '../src/metadata/sqlite-upload-sessions.js';
import { FsBlobStore } from '../src/storage/fs-blob-store.js';
import { BlobLedger } from '../src/ledger/blob-ledger.js';
import { populateStore } from '../test/helpers/gc-fixture.js';
import { memOf } from './lib/measure.js';

const BLOBS = Number(process.argv[2] ?? 100_000);
const MANIFESTS = Number(process.argv[3] ?? 10_000);
const MiB = 1024 * 1024;

const log = (msg: string) => console.error(`[bench ${(performance.now() / 1000).toFixed(1)}s] ${msg}`);

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'wharf-bench-gc-'));
  try {
    log(`writing ${BLOBS} blobs (files and rows) and ${MANIFESTS} manifests, half of them tagged`);
    await populateStore(dir, { blobs: BLOBS, manifests: MANIFESTS });
    const blobs = await FsBlobStore.open(dir);
    const database = SqliteDatabase.open(join(dir, 'metadata.db'));
    const state = new SqliteGcState(database);
    const ledger = new BlobLedger(new SqliteRegistryMetadata(database), blobs, state);
    const collector = new GarbageCollector({ gc: state, uploads: new SqliteUploadSessions(database) }, ledger);
    const opts = { grace: 0, deleteUntagged: true, cacheMaxAge: 0, cacheMaxSize: 0, uploadsMaxAge: 86_400_000, dryRun: true };
    // Reset the kernel's peak-RSS mark (VmHWM), so the peak below is the collector's alone.
    writeFileSync('/proc/self/clear_refs', '5');
    const before = memOf(process.pid);
    log(`store ready; RSS ${(before.rss / MiB).toFixed(0)} MiB, peak so far ${(before.hwm / MiB).toFixed(0)} MiB`);
    const dry = await collector.run(opts);
    log(`dry run: ${JSON.stringify(dry)}`);
    const real = await collector.run({ ...opts, dryRun: false });
    const after = memOf(process.pid);
    log(`memory after: ${JSON.stringify(process.memoryUsage())}`);
    log(`real run: ${JSON.stringify(real)}`);
    const check = await fsck(state, blobs);
    const figures = {
      bench: 'gc',
      blobs: BLOBS,
      manifests: MANIFESTS,
      dryRunMs: dry.durationMs,
      runMs: real.durationMs,
      manifestsDeleted: real.manifestsDeleted,
      blobsDeleted: real.blobsDeleted,
      bytesReclaimed: real.bytesReclaimed,
      bytesKept: real.bytesKept,
      rssBeforeMiB: Math.round(before.rss / MiB),
      rssAfterMiB: Math.round(after.rss / MiB),
      peakRssMiB: Math.round(after.hwm / MiB),
      fsckOk: check.ok,
    };
    console.log(JSON.stringify(figures));
    await database.close();
    if (!check.ok) process.exitCode = 1;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
