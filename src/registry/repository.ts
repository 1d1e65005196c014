// What the read routes see of a repository, whether it is local or a cached upstream one: the
// proxy implements the same interface as local storage, so routes cannot tell (distribution's
// decorator). Writes only ever go to local repositories.
import type { BlobRead } from './blob-service.js';
import type { Listing, ReferrersIndex } from './discovery-service.js';
import type { StoredManifest } from './manifest-service.js';
import type { Page } from '../oci/page.js';

/** Set when a cached copy is served because the upstream could not be asked (RFC 9111 Warning 299). */
export interface MaybeStale {
  warning?: string;
}

export interface RepositoryReader {
  /** The repository's name in this registry's storage (canonical for cached upstream content). */
  readonly repo: string;
  manifest(reference: string, opts: { head?: boolean }): Promise<StoredManifest & MaybeStale>;
  blob(digest: string, opts: { rangeHeader?: string; head?: boolean }): Promise<BlobRead & MaybeStale>;
  tags(page: Page): Promise<Listing & MaybeStale>;
  referrers(digest: string, artifactType?: string): Promise<ReferrersIndex & MaybeStale & { filtered: boolean }>;
}
