// What the pull-through cache needs of the local registry besides the Registry interface: a place
// to keep what it fetched (manifests stored as cached content, not as pushes) and a way to serve
// stored blob bytes it has been allowed to serve. The local registry implements it; the cache is
// handed it explicitly, never the local registry's services.
import type { Listing } from './discovery-service.js';
import type { StoredManifest } from './manifest-service.js';
import type { ParsedManifest } from './manifest.js';
import type { BlobRead } from './blob-service.js';
import type { Page } from '../oci/page.js';

export interface CacheStore {
  /** The manifest (`reference`: a tag or a digest) in `repo` when held in memory, the pull recorded; else undefined. */
  hotManifest(repo: string, ns: undefined, reference: string): StoredManifest | undefined;
  /** The manifest with this digest in `repo` (a stored name), or undefined. */
  findManifest(repo: string, digest: string): Promise<StoredManifest | undefined>;
  /** The digest `tag` points at in `repo`, or undefined. */
  taggedDigest(repo: string, tag: string): Promise<string | undefined>;
  /** Parses and validates a manifest under this registry's limits (the same as for a push). */
  parseManifest(body: Buffer, contentType: string | undefined): ParsedManifest;
  /**
   * Stores verified manifest bytes fetched from an upstream under `digest` in `repo`, with `tags`,
   * as cached content (evictable; references recorded, not required).
   */
  storeManifest(repo: string, digest: string, body: Buffer, parsed: ParsedManifest, tags: string[]): Promise<void>;
  /** The stored bytes of a blob the ledger has allowed under the repository being read. */
  serveBlob(digest: string, size: number, opts: { rangeHeader?: string; head?: boolean }): Promise<BlobRead>;
  /** The catalogue with each stored name mapped by `canonicalOf` (the cache's routing). */
  catalog(page: Page, visible: ((canonical: string) => Promise<boolean>) | undefined, canonicalOf: (stored: string) => string): Promise<Listing>;
}
