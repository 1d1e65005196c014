// The one rule of blob access, in one place: a blob (layer, config or manifest bytes) is served under
// a repository only when it is linked there. Links are made by
//   commit  bytes verified and stored for a repository (a push, a fill from that repository's upstream);
//   adopt   a blob already stored is linked to another repository once something vouches for it there
//           (the repository's upstream confirmed it holds the digest): no second download;
//   mount   a blob linked in a source repository the caller may pull is linked to the target.
// Uploads, fills, manifests and mounts call this module; none of them links on its own. The
// collector removes blobs through it too (sweep, src/ledger/blob-sweep.ts).
import type { BlobStat, BlobStore, BlobWriter } from '../storage/blob-store.js';
import type { GcState } from '../metadata/gc-state.js';
import type { RegistryMetadata } from '../metadata/registry-metadata.js';
import { BlobSweep, type SweepResult } from './blob-sweep.js';

/** Whether the caller may pull a repository (stored name); decided by the access-control layer. */
export type MayPull = (repo: string) => Promise<boolean>;

/** Repositories looked at when a mount names no source. */
const MOUNT_CANDIDATES = 50;

export class BlobLedger {
  private readonly sweeper: BlobSweep;

  constructor(
    private readonly metadata: RegistryMetadata,
    private readonly store: BlobStore,
    gc: GcState,
  ) {
    this.sweeper = new BlobSweep(gc, store);
  }

  /** Whether `repo` holds the blob by a link (what a pushed manifest may reference). */
  isLinked(repo: string, digest: string): Promise<boolean> {
    return this.metadata.isBlobLinked(repo, digest);
  }

  /** The blob's size when it is linked in `repo` and its bytes are here; undefined otherwise. */
  async linked(repo: string, digest: string): Promise<BlobStat | undefined> {
    if (!(await this.metadata.isBlobLinked(repo, digest))) return undefined;
    return this.store.stat(digest);
  }

  /**
   * What may be served of `digest` under `repo`: the linked blob; or, when the bytes are stored for
   * other repositories and `confirm` is given, the same bytes once `confirm` resolves (it throws to
   * refuse), then linked (adopted). undefined when nothing may be served from storage: not stored, or
   * not linked and nobody to confirm (the caller fetches it, or answers BLOB_UNKNOWN).
   */
  async access(repo: string, digest: string, confirm?: () => Promise<void>): Promise<BlobStat | undefined> {
    const stat = await this.linked(repo, digest);
    // Looked at without refreshing the row: a refused request does not keep a blob from the collector.
    if (stat || !confirm || !(await this.metadata.getBlob(digest)) || !(await this.store.stat(digest))) return stat;
    await confirm();
    return this.adopt(repo, digest);
  }

  /**
   * Places a writer's bytes under `digest` and records them (a fresh row, linked in `repo` when
   * given); the writer is cancelled whatever happens. The order is what keeps a collector running
   * at the same time from losing the blob (src/ledger/blob-sweep.ts): the bytes are verified and
   * placed first (a crash leaves an orphan, never a row without its bytes), then the row is made
   * fresh, then the writer commits again, which puts the bytes back if a collector that had deleted
   * the row before it was made fresh set them aside since. Wrong bytes: DigestMismatchError, nothing
   * recorded.
   */
  async commit(
    writer: BlobWriter,
    digest: string,
    opts: { local: boolean; repo?: string; knownDigest?: string; size?: number },
  ): Promise<BlobStat> {
    try {
      const placed = await writer.commit(digest, { knownDigest: opts.knownDigest, size: opts.size });
      await this.metadata.putBlob(digest, placed.size, { local: opts.local });
      if (opts.repo !== undefined) await this.metadata.linkBlob(opts.repo, digest);
      return await writer.commit(digest);
    } finally {
      await writer.cancel();
    }
  }

  /**
   * Links a stored blob in `repo` after the caller has established that `repo` may have it; its stat,
   * or undefined when the bytes are no longer stored (swept): the caller writes them again.
   */
  async adopt(repo: string, digest: string): Promise<BlobStat | undefined> {
    // The row is made fresh before the file is relied on: a collector that has not deleted it by now
    // will not (grace), and one that has leaves no row to refresh.
    const stat = await this.stored(digest);
    if (stat) await this.metadata.linkBlob(repo, digest);
    return stat;
  }

  /**
   * Cross-repository mount: links `digest` in `repo` when it is linked in `from` or, without `from`,
   * in any repository `mayPull` accepts. false when no such source holds it (the client uploads).
   */
  async mount(repo: string, digest: string, from: string | undefined, mayPull: MayPull): Promise<boolean> {
    if (await this.linked(repo, digest)) return true;
    const sources = from !== undefined ? [from] : await this.metadata.blobRepositories(digest, MOUNT_CANDIDATES);
    for (const source of sources) {
      if (source === repo) continue;
      // blobRepositories lists only where the blob is linked; a named source is checked here.
      if (from !== undefined ? !(await this.metadata.isBlobLinked(source, digest)) : !(await mayPull(source))) continue;
      return (await this.adopt(repo, digest)) !== undefined;
    }
    return false;
  }

  /** Unlinks the blob from `repo`; the bytes go when the collector finds nothing holds them. */
  unlink(repo: string, digest: string): Promise<boolean> {
    return this.metadata.unlinkBlob(repo, digest);
  }

  /** The collector's blob step: dead blobs' rows and bytes removed, a blob recorded again meanwhile kept. */
  sweep(digests: string[], cutoff: number): Promise<SweepResult> {
    return this.sweeper.sweep(digests, cutoff);
  }

  /** Stored blobs without a row, older than `cutoff`, removed; how many (would) go. */
  sweepOrphans(cutoff: number, dryRun: boolean, checkpoint?: () => void): Promise<number> {
    return this.sweeper.sweepOrphans(cutoff, dryRun, checkpoint);
  }

  /** What a stopped collector left set aside: restored when recorded, purged otherwise. */
  recoverAside(): Promise<number> {
    return this.sweeper.recoverAside();
  }

  /**
   * Writers not written since `before` that nothing will finish: anonymous ones (a crashed process)
   * and sessions `isLiveSession` does not know (their row is gone); how many were removed.
   */
  sweepWriters(before: number, isLiveSession: (id: string) => Promise<boolean>): Promise<number> {
    return this.sweeper.sweepWriters(before, isLiveSession);
  }

  /** The bytes of an upload session whose row the collector has removed. */
  removeWriter(id: string): Promise<void> {
    return this.store.removeWriter(id);
  }

  /** The bytes' stat when they are here and recorded (the row made fresh so the collector spares them). */
  private async stored(digest: string): Promise<BlobStat | undefined> {
    return (await this.metadata.refreshBlob(digest)) ? this.store.stat(digest) : undefined;
  }
}
