// RegistryMetadata: what the registry records about its content besides the bytes — repositories and
// their owners, blob rows and repository→blob links, manifests with their references, tags and
// referrers, pull times. One logical schema, several drivers (SQLite embedded now, PostgreSQL next);
// every driver passes test/contract/registry-metadata.contract.ts. Methods are async so a networked
// driver fits unchanged.
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

/** What a manifest is recorded with: its record's fields but the times, which the store sets. */
export interface PutManifestInput extends Omit<ManifestRecord, 'createdAt' | 'lastAccessAt'> {
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

/**
 * A repository as the management API shows it. Times are milliseconds since the epoch, null when it
 * never happened. Sizes are bytes stored here (inventory-queries.ts says what counts).
 */
export interface RepositoryStats {
  name: string;
  /** Its manifests, plus every distinct blob they reference whose bytes are stored (each counted once). */
  size: number;
  tagCount: number;
  manifestCount: number;
  /** When content last arrived: the newest manifest recorded or tag set (a push; for cached content, a fill). */
  lastPushAt: number | null;
  /** The newest pull of any of its manifests (recorded by touchAccess), null when never pulled. */
  lastPullAt: number | null;
}

export interface TagDetail {
  tag: string;
  digest: string;
  mediaType: string;
  /** The manifest it points at, with its blobs and, for an index, its stored children with theirs. */
  size: number;
  /** When the tag was last set (pushed, or moved by a fill). */
  updatedAt: number;
}

export interface ManifestDetail {
  digest: string;
  mediaType: string;
  /** Itself, its blobs and, for an index, its stored children with theirs (each blob once). */
  size: number;
  /** Its tags in this repository, in lexical order. */
  tags: string[];
  createdAt: number;
  lastPullAt: number | null;
}

/** What deleteRepository removed (so caches can drop it). */
export interface DeletedRepository {
  tags: string[];
  manifests: string[];
}

/** Storage used, per namespace (a repository name's first path component). */
export interface StorageUse {
  /** Bytes of every blob recorded, each counted once. */
  totalBytes: number;
  /**
   * Per namespace, in name order: the bytes of the blobs linked in its repositories (a blob linked
   * in two namespaces counts in both) and how many repositories it has.
   */
  namespaces: Array<{ namespace: string; bytes: number; repositories: number }>;
}

export interface RegistryMetadata {
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

  // The management API's view: one statement per page, whatever the number of entries on it.
  /** Stats of a page of repositories, in name order (`last` = a repository name). */
  listRepositoryStats(page?: Page): Promise<RepositoryStats[]>;
  /** Stats of one repository, undefined when it does not exist. */
  repositoryStats(repo: string): Promise<RepositoryStats | undefined>;
  /** A page of the repository's tags in lexical order (`last` = a tag), with their manifests. */
  listTagDetails(repo: string, page?: Page): Promise<TagDetail[]>;
  /** A page of the repository's manifests in digest order (`last` = a digest), with their tags. */
  listManifestDetails(repo: string, page?: Page): Promise<ManifestDetail[]>;
  /**
   * Deletes the repository: its tags, manifests, references and blob links, atomically (the blobs
   * are left to the collector; the owner claim stays, so nobody takes the name over by deleting it).
   * Undefined when it did not exist.
   */
  deleteRepository(repo: string): Promise<DeletedRepository | undefined>;

  /** Records pull times (and last access); rows that no longer exist are skipped. */
  touchAccess(batch: AccessBatch): Promise<void>;
  /**
   * Makes an existing blob row fresh (last access = now) before a caller relies on its file;
   * false when there is no row (the collector removed it: the caller must write the bytes again).
   */
  refreshBlob(digest: string): Promise<boolean>;

  /** Bytes stored, in all and per namespace (the management API's statistics). */
  storageUse(): Promise<StorageUse>;
}

/** StorageUse from the rows of its queries (both drivers): namespaces in name order. */
export function storageUseOf(totalBytes: number, repos: Array<{ ns: string; n: number }>, bytes: Array<{ ns: string; n: number }>): StorageUse {
  const byNs = new Map<string, { namespace: string; bytes: number; repositories: number }>();
  for (const r of repos) byNs.set(r.ns, { namespace: r.ns, bytes: 0, repositories: Number(r.n) });
  for (const b of bytes) {
    const e = byNs.get(b.ns) ?? { namespace: b.ns, bytes: 0, repositories: 0 };
    e.bytes = Number(b.n);
    byNs.set(b.ns, e);
  }
  const namespaces = [...byNs.values()].sort((a, b) => (a.namespace < b.namespace ? -1 : a.namespace > b.namespace ? 1 : 0));
  return { totalBytes: Number(totalBytes), namespaces };
}
