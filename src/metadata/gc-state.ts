// GcState: the collector's queries on the metadata (lock, mark, dead sets and their re-checked sweeps,
// reports, fsck). Every driver passes test/contract/gc-state.contract.ts. Upload sessions expire through
// UploadSessions (upload-sessions.ts).

/** Why a cached manifest is evicted, or 'unreferenced' for plain garbage. */
export type GcRule = 'age' | 'size' | 'unreferenced';

export interface GcMarkOptions {
  /** Anything created or touched at or after this time (ms) is live. */
  cutoff: number;
  deleteUntagged: boolean;
  /** Cached manifests last pulled before this time are evicted; undefined = off. */
  ageCutoff?: number;
  /** Cached bytes budget; undefined = off. */
  maxCachedBytes?: number;
  /** Digests of fills in progress: live. */
  activeBlobs: string[];
}

export interface GcMarkResult {
  /** Counts and bytes of what the sweep would remove if nothing changed meanwhile. */
  manifests: number;
  tags: number;
  blobs: number;
  bytes: number;
  bytesKept: number;
  evictedByAge: number;
  evictedBySize: number;
}

export interface GcDeadManifest {
  repo: string;
  digest: string;
  rule: GcRule;
  /** last_access_at when marked: an evicted manifest pulled since is kept. */
  access: number;
}

/**
 * The collector's side of the metadata. Mark works in the database (temporary tables owned by
 * this connection), the sweep pages through what mark left and deletes each row with a statement
 * that re-checks every liveness condition against the current state.
 */
export interface GcState {
  /** Takes the collector lock for `holder` until now + ttlMs; false when another holder has it. */
  acquireLock(holder: string, ttlMs: number): Promise<boolean>;
  /** Extends the lock; false when `holder` no longer has it. */
  renewLock(holder: string, ttlMs: number): Promise<boolean>;
  /** The current holder of the collector lock, if any (expired or not). */
  lockHolder(): Promise<string | undefined>;
  /** Takes the lock from `from` (a holder known to be dead) if it still holds it. */
  takeOverLock(from: string, holder: string, ttlMs: number): Promise<boolean>;
  releaseLock(holder: string): Promise<void>;

  /** Computes the dead set (see GcMarkOptions) and returns what sweeping it would remove. */
  mark(opts: GcMarkOptions): Promise<GcMarkResult>;
  /** Dead manifests after `after` (an opaque cursor: [repo, digest]), at most `limit`. */
  deadManifests(after: [string, string] | undefined, limit: number): Promise<GcDeadManifest[]>;
  /** Deletes the manifest (and its tags and references) if it is still dead; tags deleted, or undefined when kept. */
  sweepManifest(m: GcDeadManifest, cutoff: number): Promise<number | undefined>;
  /** Removes repository→blob links nothing references, older than cutoff, in pages; returns the count. */
  sweepLinks(cutoff: number, after: [string, string] | undefined, limit: number): Promise<{ removed: number; next?: [string, string] }>;
  /** Blob digests not marked live, after `after`, at most `limit`. */
  deadBlobs(after: string | undefined, limit: number): Promise<string[]>;
  /** Deletes the blob row if still unreferenced, unlinked and older than cutoff; its size, or undefined when kept. */
  sweepBlob(digest: string, cutoff: number): Promise<number | undefined>;
  /**
   * sweepBlob for many digests in one transaction (each row re-checked in its own DELETE); the
   * sizes of the rows removed, by digest.
   */
  sweepBlobs(digests: string[], cutoff: number): Promise<Map<string, number>>;
  /** Sum of the sizes of all blob rows. */
  blobBytes(): Promise<number>;
  /** Drops the temporary tables of the last mark. */
  endMark(): Promise<void>;

  /** Which of these digests have a blob row. */
  existingBlobs(digests: string[]): Promise<Set<string>>;
  /** Blob digests after `after`, in order, at most `limit` (fsck). */
  blobDigests(after: string | undefined, limit: number): Promise<string[]>;
  /** Local manifests' references to blobs without a row, and manifests whose own bytes have no row (fsck). */
  danglingReferences(limit: number): Promise<string[]>;
  /** Tags pointing at manifests that do not exist, as repo:tag (fsck). */
  badTags(limit: number): Promise<string[]>;

  saveReport(report: object, keep: number): Promise<void>;
  /** Newest first. */
  listReports(limit: number): Promise<object[]>;
}
