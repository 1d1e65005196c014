// What the HTTP routes see of the registry, and all they see: a Registry hands out a Repository per
// name. The local registry implements it over this registry's own storage; the pull-through cache
// implements it too, wrapping the local one (distribution's decorator), so routes cannot tell
// whether a repository is local or a cached upstream one.
import type { Readable } from 'node:stream';
import type { Listing, ReferrersIndex } from './discovery-service.js';
import type { PutManifestResult, StoredManifest } from './manifest-service.js';
import type { BlobRead } from './blob-service.js';
import type { ChunkRange, PushedBlob, UploadState } from './upload-service.js';
import type { MayPull } from '../ledger/blob-ledger.js';
import type { RouteTarget } from './router.js';
import type { Page } from '../oci/page.js';
import type { EventRequest } from '../events/event.js';
import type { UpstreamLogger } from '../upstream/upstream-logger.js';

/** How the pull-through cache answered: from the cache, fetched, joined a fetch under way, or a stale copy. */
export type CacheOutcome = 'hit' | 'miss' | 'coalesced' | 'stale';

/**
 * What one client request carries down (issue 13): its logger, so that the upstream calls it makes
 * log with its request id, and how the cache answered it, for its log line and the metrics.
 */
export interface RequestContext {
  log?: UpstreamLogger;
  cache?: { kind: 'manifest' | 'blob'; outcome: CacheOutcome; upstream: string };
  /** The request as events name it (fills it causes). */
  event?: EventRequest;
}

/** Set when a cached copy is served because the upstream could not be asked (RFC 9111 Warning 299). */
export interface MaybeStale {
  warning?: string;
}

export interface Registry {
  /**
   * The repository a client's name (and containerd's `?ns=`) leads to; NAME_INVALID for a bad one.
   * `ctx`: the request it serves: its logger, its event identity (named in the fills it causes);
   * the cache outcome is noted there.
   */
  repository(name: string, ns?: string, ctx?: RequestContext): Repository;
  /** Canonical repository names, only those `visible` accepts when given. */
  catalog(page: Page, visible?: (canonical: string) => Promise<boolean>): Promise<Listing>;
  /**
   * The manifest `reference` names in the repository `name` leads to, when memory alone can answer
   * it: held in memory and, for an upstream tag, confirmed within its TTL. Nothing is read, queried
   * or asked; the pull is recorded as by get(). Undefined otherwise (also for a name that is not
   * valid): then get() decides.
   */
  hotManifest(name: string, ns: string | undefined, reference: string, ctx?: RequestContext): StoredManifest | undefined;
  /** Where a name leads (access control decides on the name actually served). */
  route(name: string, ns?: string): RouteTarget;
  /** The canonical name of a repository as stored here (what the catalogue lists and policies judge). */
  canonicalOf(stored: string): string;
  close(): Promise<void>;
}

export interface Repository {
  /** The repository's name in this registry's storage (canonical for cached upstream content). */
  readonly name: string;
  readonly manifests: RepositoryManifests;
  readonly blobs: RepositoryBlobs;
  readonly tags: { list(page: Page): Promise<Listing & MaybeStale> };
  readonly referrers: { list(digest: string, artifactType?: string): Promise<ReferrersIndex & MaybeStale & { filtered: boolean }> };
  readonly uploads: RepositoryUploads;
}

export interface RepositoryManifests {
  get(reference: string, opts?: { head?: boolean }): Promise<StoredManifest & MaybeStale>;
  /** `tags`: more tags for the same manifest (?tag= on a PUT). */
  put(reference: string, body: Buffer, contentType: string | undefined, tags?: string[]): Promise<PutManifestResult>;
  /** By digest: the manifest and its tags go. By tag: only the tag goes. */
  delete(reference: string): Promise<void>;
}

export interface RepositoryBlobs {
  get(digest: string, opts: { rangeHeader?: string; head?: boolean }): Promise<BlobRead & MaybeStale>;
  /** Unlinks the blob from the repository; the bytes go when the collector finds nothing holds them. */
  delete(digest: string): Promise<void>;
}

export interface RepositoryUploads {
  /** OCI-Chunk-Min-Length announced for chunked uploads (0 = none). */
  readonly chunkMinLength: number;
  start(): Promise<UploadState>;
  /** Single-request upload (POST ?digest=): verified, committed and linked, or nothing is kept; the blob. */
  monolithic(digest: string, body: Readable, size?: number): Promise<PushedBlob>;
  /**
   * Cross-repository mount: true when the blob is linked in `from` (a stored name; without it, in a
   * repository `mayPull` accepts) and is now linked here.
   */
  mount(digest: string, from: string | undefined, mayPull: MayPull): Promise<boolean>;
  status(id: string): Promise<UploadState>;
  /** Appends a chunk. With `range`, the chunk must start at the current offset (else 416). */
  append(id: string, body: Readable, range?: ChunkRange, length?: number): Promise<UploadState>;
  /** Completes the upload with an optional last chunk; the committed blob. */
  complete(id: string, digest: string, body?: Readable, length?: number, range?: ChunkRange): Promise<PushedBlob>;
  cancel(id: string): Promise<void>;
}
