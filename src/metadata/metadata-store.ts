// The MetadataStore interface: everything about the registry that is not blob bytes.
// One logical schema, several drivers (SQLite embedded now, PostgreSQL next); every driver passes
// test/contract/metadata-store.contract.ts. Methods are async so a networked driver fits unchanged.
import type { TokenScope } from '../auth/types.js';
import type { Page } from '../oci/page.js';
import type { ManifestReference } from '../oci/references.js';

export interface BlobRecord {
  digest: string;
  size: number;
  /** Milliseconds since the epoch. */
  createdAt: number;
  lastAccessAt: number;
  /** true = pushed locally; false = cached from an upstream. */
  local: boolean;
}

export interface ManifestRecord {
  repo: string;
  digest: string;
  mediaType: string;
  size: number;
  /** Digest of the manifest this one refers to (`subject` field), if any. */
  subject: string | null;
  /** artifactType field, else the config media type for image manifests, else null. */
  artifactType: string | null;
  /** JSON-encoded annotations object, or null. */
  annotations: Record<string, string> | null;
  createdAt: number;
  lastAccessAt: number;
}

export interface PutManifestInput {
  repo: string;
  digest: string;
  mediaType: string;
  size: number;
  subject: string | null;
  artifactType: string | null;
  annotations: Record<string, string> | null;
  references: ManifestReference[];
  /** Tags to point at this manifest in the same transaction. */
  tags: string[];
  /** false = cached from an upstream (evictable by the collector's cache rules). Default true. */
  local?: boolean;
  /**
   * What must still be recorded when the transaction commits, else it rejects with
   * MissingContentError and changes nothing: 'self' = the manifest's own blob row; 'references' =
   * that, plus every referenced blob row and child manifest (in the repository). This is how a push
   * racing the collector is refused instead of recording a manifest whose content was just swept.
   */
  verify?: 'self' | 'references';
}

/** putManifest refused: content it needs is no longer recorded (the collector removed it). */
export class MissingContentError extends Error {
  constructor(
    readonly missing: string[],
    /** true when the manifest's own bytes are missing (a retry that stores them again succeeds). */
    readonly self: boolean,
  ) {
    super(`content no longer recorded: ${missing.join(', ')}`);
    this.name = 'MissingContentError';
  }
}

/** Pull times gathered by the AccessTracker, flushed in one transaction (never moves a time backwards). */
export interface AccessBatch {
  manifests: Array<{ repo: string; digest: string; at: number }>;
  blobs: Array<{ digest: string; at: number }>;
}

export interface UploadRecord {
  id: string;
  repo: string;
  /** Bytes received so far. */
  offset: number;
  startedAt: number;
  updatedAt: number;
}

/**
 * A service token for automation. The secret itself is never stored: only its hash (the token
 * string is shown once, at creation; see src/auth/service-tokens.ts).
 */
export interface ServiceTokenRecord {
  /** Short random id, [a-z0-9]{12}; part of the token string, so a token is looked up without scanning. */
  id: string;
  /** The Basic-auth user name to use with the token; unique among tokens that are not revoked. */
  name: string;
  /** Hex SHA-256 of the secret part of the token. */
  secretHash: string;
  scopes: TokenScope[];
  /** Milliseconds since the epoch; null = never. */
  createdAt: number;
  expiresAt: number | null;
  revokedAt: number | null;
  lastUsedAt: number | null;
}

export interface MetadataStore {
  // Repositories (a repository exists once it holds a blob link or a manifest).
  listRepositories(page?: Page): Promise<string[]>;
  repositoryExists(repo: string): Promise<boolean>;
  /** The user who owns a repository (the first user allowed to push to it), if any. */
  repositoryOwner(repo: string): Promise<string | undefined>;
  /** Records `owner` as the repository's owner unless it has one already; returns the owner now recorded. */
  claimRepository(repo: string, owner: string): Promise<string>;

  // Blobs and repository→blob links. A blob is served under a repository only if linked there.
  putBlob(digest: string, size: number, opts: { local: boolean }): Promise<void>;
  getBlob(digest: string): Promise<BlobRecord | undefined>;
  linkBlob(repo: string, digest: string): Promise<void>;
  isBlobLinked(repo: string, digest: string): Promise<boolean>;
  /** Repositories the blob is linked in, in name order, at most `limit`. */
  blobRepositories(digest: string, limit: number): Promise<string[]>;
  /** Returns false when the blob was not linked in that repository. */
  unlinkBlob(repo: string, digest: string): Promise<boolean>;

  // Manifests, their references and tags.
  /** Records the manifest, its references and tags atomically. Re-putting the same digest is idempotent. */
  putManifest(input: PutManifestInput): Promise<void>;
  getManifest(repo: string, digest: string): Promise<ManifestRecord | undefined>;
  /** The blobs and child manifests a manifest references (as last recorded by putManifest); [] when absent. */
  listManifestReferences(repo: string, digest: string): Promise<ManifestReference[]>;
  /** Deletes the manifest and every tag pointing at it; false when absent. */
  deleteManifest(repo: string, digest: string): Promise<boolean>;
  getTag(repo: string, tag: string): Promise<string | undefined>;
  listTags(repo: string, page?: Page): Promise<string[]>;
  /** false when the tag did not exist. */
  deleteTag(repo: string, tag: string): Promise<boolean>;
  /** Manifests in the repository whose subject is `subject`, optionally filtered by artifact type. */
  listReferrers(repo: string, subject: string, artifactType?: string): Promise<ManifestRecord[]>;

  // Upload sessions (bytes live in the BlobStore's upload area).
  createUpload(upload: UploadRecord): Promise<void>;
  getUpload(id: string): Promise<UploadRecord | undefined>;
  /** Sets the offset only if it still equals `expectedOffset`; false otherwise (a concurrent writer won). */
  advanceUpload(id: string, expectedOffset: number, newOffset: number): Promise<boolean>;
  deleteUpload(id: string): Promise<boolean>;

  // Service tokens.
  /** Rejects with an Error saying the name is taken when a token that is not revoked has the same name. */
  createServiceToken(rec: ServiceTokenRecord): Promise<void>;
  getServiceToken(id: string): Promise<ServiceTokenRecord | undefined>;
  /** Every token, revoked and expired ones included, ordered by createdAt then id. */
  listServiceTokens(): Promise<ServiceTokenRecord[]>;
  /** Sets revokedAt; false when the token is absent or already revoked (the first revocation time is kept). */
  revokeServiceToken(id: string, at: number): Promise<boolean>;
  /** Sets lastUsedAt, never backwards (processes sharing the store may touch out of order); no-op when absent. */
  touchServiceToken(id: string, at: number): Promise<void>;

  /** Records pull times; rows that no longer exist are skipped. */
  touchAccess(batch: AccessBatch): Promise<void>;
  /**
   * Makes an existing blob row fresh (last access = now) before a caller relies on its file;
   * false when there is no row (the collector removed it: the caller must write the bytes again).
   */
  refreshBlob(digest: string): Promise<boolean>;

  /** The collector's queries (src/gc). */
  readonly gc: GcMetadata;

  close(): Promise<void>;
}

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
 * The collector's side of the metadata store. Mark works in the database (temporary tables owned by
 * this connection), the sweep pages through what mark left and deletes each row with a statement
 * that re-checks every liveness condition against the current state.
 */
export interface GcMetadata {
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
  /**
   * sweepBlob for many digests in one transaction (each row re-checked in its own DELETE); the
   * sizes of the rows removed, by digest.
   */
  sweepBlobs(digests: string[], cutoff: number): Promise<Map<string, number>>;
  sweepBlob(digest: string, cutoff: number): Promise<number | undefined>;
  /** Sum of the sizes of all blob rows. */
  blobBytes(): Promise<number>;
  /** Drops the temporary tables of the last mark. */
  endMark(): Promise<void>;

  /** Ids of upload sessions not updated since `before`, after the id `after`, in id order, at most `limit`. */
  staleUploads(before: number, after: string | undefined, limit: number): Promise<string[]>;
  /** Deletes the session if it is still not updated since `before`. */
  sweepUpload(id: string, before: number): Promise<boolean>;

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
