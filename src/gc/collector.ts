// The garbage collector (DESIGN.md "Garbage collection and eviction"): online mark & sweep, cache
// eviction by age and by size, upload expiry, orphan files. One run at a time across processes (a
// lock row in the metadata store, renewed while running).
//
// Mark computes in the database what is live: manifests reachable from tags, referrers of live
// subjects, children of live indexes, untagged manifests unless deleteUntagged, and everything
// created or touched within the grace period; then the blobs they reference or are, fresh blobs and
// fills in progress. Cached manifests not pulled within cacheMaxAge, then the least recently pulled
// ones while the cached bytes exceed cacheMaxSize, are evicted (local pushes never are).
//
// Sweep order is manifests → repository links → blob rows → blob bytes: a row goes before what it
// points at, a row before its bytes, so a crash (SIGKILL) anywhere leaves at worst bytes without
// rows, which the next run removes. Each delete re-checks liveness in its own statement, so content
// pushed, tagged or pulled after the mark stays; a push racing the sweep never loses a blob (the
// blob ledger's two-step delete, src/ledger/blob-sweep.ts).
import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import type { GcMarkResult, GcState } from '../metadata/gc-state.js';
import type { UploadSessions } from '../metadata/upload-sessions.js';
import type { BlobLedger } from '../ledger/blob-ledger.js';
import type { EventSink } from '../events/event.js';

/** The metadata the collector works on: its own queries (lock, mark, sweep, reports) and upload sessions. */
export interface GcStores {
  gc: GcState;
  uploads: UploadSessions;
}

/** What the collector asks of the blob ledger: blob rows and bytes go through it only. */
export type BlobSweeper = Pick<BlobLedger, 'sweep' | 'sweepOrphans' | 'recoverAside' | 'removeWriter' | 'sweepWriters'>;

export interface GcOptions {
  /** ms: anything created or touched within it is live. */
  grace: number;
  /** Also delete untagged manifests (not referenced by a tag, an index, or as a live subject's referrer). */
  deleteUntagged: boolean;
  /** ms; 0 = off: cached (upstream-routed) manifests not pulled for longer are dropped. */
  cacheMaxAge: number;
  /** bytes; 0 = off: while cached bytes exceed it, the least recently pulled cached manifests go first. */
  cacheMaxSize: number;
  /** ms: upload sessions not updated for longer are removed with their bytes. */
  uploadsMaxAge: number;
  /** Report what would go, touch nothing. */
  dryRun: boolean;
}

export interface GcReport {
  dryRun: boolean;
  startedAt: string;
  durationMs: number;
  manifestsDeleted: number;
  tagsDeleted: number;
  blobsDeleted: number;
  uploadsDeleted: number;
  /** Blob bytes removed (each blob counted once). */
  bytesReclaimed: number;
  /** Blob bytes remaining (each blob counted once). */
  bytesKept: number;
  evictedByAge: number;
  evictedBySize: number;
  /** Blob files with no metadata row (e.g. after a crash), older than grace. */
  orphanFilesRemoved: number;
}

/** Another run (in this process or another one on the same store) is in progress. */
export class GcBusyError extends Error {
  constructor(message = 'another garbage collection is in progress') {
    super(message);
    this.name = 'GcBusyError';
  }
}

export interface GcLog {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
}

export interface GcDeps {
  /** Digests of pull-through fills in progress (PullThroughRegistry.activeFills()). */
  activeFills?: () => Iterable<string>;
  now?: () => number;
  log?: GcLog;
  /**
   * Told after each page of sweeps that removed manifests (and their tags), before their blobs go:
   * copies of them held in memory (this process's, other processes' through the store's change
   * signal) must be dropped.
   */
  manifestsRemoved?: () => void;
  /** Told of each cached manifest evicted (by cache.maxAge or cache.maxSize): an `evict` event. */
  events?: EventSink;
  /** Told of each finished run's report (the metrics count runs and bytes reclaimed). */
  finished?: (report: GcReport) => void;
}

const PAGE = 1000;
const LOCK_TTL_MS = 60_000;
const REPORTS_KEPT = 20;
/** Temporary files of streaming writes and fills are left alone at least this long. */
const TEMP_MIN_AGE_MS = 60 * 60 * 1000;

export class GarbageCollector {
  private running = false;
  private readonly now: () => number;

  constructor(
    private readonly metadata: GcStores,
    private readonly ledger: BlobSweeper,
    private readonly deps: GcDeps = {},
  ) {
    this.now = deps.now ?? Date.now;
  }

  /**
   * A collector killed on this host (SIGKILL, OOM) leaves its lock until it expires; when its
   * process is gone the lock is taken over at once instead.
   */
  private async takeOverFromDead(holder: string): Promise<boolean> {
    const gc = this.metadata.gc;
    const current = await gc.lockHolder();
    if (!current) return gc.acquireLock(holder, LOCK_TTL_MS);
    const [host, pid] = current.split(':');
    if (host !== hostname() || !pid || !/^\d+$/.test(pid) || processAlive(Number(pid))) return false;
    this.deps.log?.warn({ previous: current }, 'gc: taking over the lock of a collector that is no longer running');
    return gc.takeOverLock(current, holder, LOCK_TTL_MS);
  }

  async run(opts: GcOptions): Promise<GcReport> {
    if (this.running) throw new GcBusyError();
    this.running = true;
    const gc = this.metadata.gc;
    const holder = `${hostname()}:${process.pid}:${randomUUID()}`;
    try {
      if (!(await gc.acquireLock(holder, LOCK_TTL_MS)) && !(await this.takeOverFromDead(holder))) {
        throw new GcBusyError('another process is collecting garbage on this store');
      }
      let lost = false;
      const renew = setInterval(() => {
        gc.renewLock(holder, LOCK_TTL_MS).then(
          (ok) => {
            if (!ok) lost = true;
          },
          (err: unknown) => this.deps.log?.warn({ err }, 'gc: could not renew the collector lock'),
        );
      }, LOCK_TTL_MS / 4);
      renew.unref();
      const checkLock = (): void => {
        if (lost) throw new GcBusyError('the collector lock expired while this run was sweeping; stopped');
      };
      let report: GcReport;
      try {
        report = await this.collect(opts, checkLock);
      } finally {
        clearInterval(renew);
        await gc.endMark().catch(() => undefined);
        await gc.releaseLock(holder).catch(() => undefined);
      }
      await gc.saveReport(report, REPORTS_KEPT);
      this.deps.log?.info({ gc: report }, report.dryRun ? 'gc dry run finished' : 'gc finished');
      this.deps.finished?.(report);
      return report;
    } finally {
      this.running = false;
    }
  }

  async recentRuns(): Promise<GcReport[]> {
    return (await this.metadata.gc.listReports(REPORTS_KEPT)) as GcReport[];
  }

  private async collect(opts: GcOptions, checkLock: () => void): Promise<GcReport> {
    const gc = this.metadata.gc;
    const started = this.now();
    const t0 = performance.now();
    const cutoff = started - Math.max(0, opts.grace);
    const { dryRun } = opts;

    const uploadsDeleted = await this.sweepUploads(Math.min(cutoff, started - Math.max(0, opts.uploadsMaxAge)), dryRun, checkLock);

    const marked: GcMarkResult = await gc.mark({
      cutoff,
      deleteUntagged: opts.deleteUntagged,
      ageCutoff: opts.cacheMaxAge > 0 ? started - opts.cacheMaxAge : undefined,
      maxCachedBytes: opts.cacheMaxSize > 0 ? opts.cacheMaxSize : undefined,
      activeBlobs: [...(this.deps.activeFills?.() ?? [])],
    });

    const report: GcReport = {
      dryRun,
      startedAt: new Date(started).toISOString(),
      durationMs: 0,
      manifestsDeleted: marked.manifests,
      tagsDeleted: marked.tags,
      blobsDeleted: marked.blobs,
      uploadsDeleted,
      bytesReclaimed: marked.bytes,
      bytesKept: marked.bytesKept,
      evictedByAge: marked.evictedByAge,
      evictedBySize: marked.evictedBySize,
      orphanFilesRemoved: 0,
    };

    if (!dryRun) {
      Object.assign(report, { manifestsDeleted: 0, tagsDeleted: 0, blobsDeleted: 0, bytesReclaimed: 0, evictedByAge: 0, evictedBySize: 0 });
      await this.sweepManifests(cutoff, report, checkLock);
      await this.sweepLinks(cutoff, checkLock);
      await this.sweepBlobs(cutoff, report, checkLock);
      await this.ledger.recoverAside();
      await this.sweepWriters(started - Math.max(opts.grace, opts.uploadsMaxAge, TEMP_MIN_AGE_MS));
    }
    report.orphanFilesRemoved = await this.ledger.sweepOrphans(cutoff, dryRun, checkLock);
    if (!dryRun) report.bytesKept = await gc.blobBytes();
    report.durationMs = Math.round(performance.now() - t0);
    return report;
  }

  /** Upload sessions not updated since `before`: rows first, then their bytes. */
  private async sweepUploads(before: number, dryRun: boolean, checkLock: () => void): Promise<number> {
    const uploads = this.metadata.uploads;
    let count = 0;
    let after: string | undefined;
    for (;;) {
      checkLock();
      const ids = await uploads.staleUploads(before, after, PAGE);
      for (const id of ids) {
        if (dryRun) count++;
        else if (await uploads.sweepUpload(id, before)) {
          count++;
          await this.ledger.removeWriter(id);
        }
      }
      if (ids.length < PAGE) return count;
      after = ids[ids.length - 1];
    }
  }

  private async sweepManifests(cutoff: number, report: GcReport, checkLock: () => void): Promise<void> {
    const gc = this.metadata.gc;
    let after: [string, string] | undefined;
    for (;;) {
      checkLock();
      const page = await gc.deadManifests(after, PAGE);
      const before = report.manifestsDeleted;
      try {
        for (const m of page) {
          const tags = await gc.sweepManifest(m, cutoff);
          if (tags === undefined) continue;
          report.manifestsDeleted++;
          report.tagsDeleted += tags;
          if (m.rule === 'unreferenced') continue;
          if (m.rule === 'age') report.evictedByAge++;
          else report.evictedBySize++;
          if (this.deps.events?.enabled) this.deps.events.emit({ action: 'evict', target: { repository: m.repo, digest: m.digest } });
        }
      } finally {
        if (report.manifestsDeleted > before) this.deps.manifestsRemoved?.();
      }
      const last = page[page.length - 1];
      if (page.length < PAGE || !last) return;
      after = [last.repo, last.digest];
    }
  }

  private async sweepLinks(cutoff: number, checkLock: () => void): Promise<void> {
    let after: [string, string] | undefined;
    let removed = 0;
    do {
      checkLock();
      const r = await this.metadata.gc.sweepLinks(cutoff, after, PAGE);
      removed += r.removed;
      after = r.next;
    } while (after);
    if (removed > 0) this.deps.log?.info({ links: removed }, 'gc: repository links nothing references removed');
  }

  private async sweepBlobs(cutoff: number, report: GcReport, checkLock: () => void): Promise<void> {
    const gc = this.metadata.gc;
    let after: string | undefined;
    for (;;) {
      checkLock();
      const page = await gc.deadBlobs(after, PAGE);
      const filling = new Set(this.deps.activeFills?.() ?? []);
      const { removed } = await this.ledger.sweep(
        page.filter((d) => !filling.has(d)),
        cutoff,
      );
      for (const size of removed.values()) {
        report.blobsDeleted++;
        report.bytesReclaimed += size;
      }
      if (page.length < PAGE) return;
      after = page[page.length - 1];
    }
  }

  /** Writers' bytes without a session: uploads whose row is gone, anonymous writers of crashed processes. */
  private async sweepWriters(before: number): Promise<void> {
    const removed = await this.ledger.sweepWriters(before, async (id) => (await this.metadata.uploads.getUpload(id)) !== undefined);
    if (removed > 0) this.deps.log?.info({ files: removed }, 'gc: abandoned upload files removed');
  }
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    // EPERM: it exists, under another user.
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}
