// What warming needs of the pull-through cache (PullThroughRegistry implements it): routing, tag lists
// and referrers as clients see them, and manifests and blobs fetched into the cache exactly as a pull
// would fetch them (single fill, cluster leases, verification), with no client at the other end.
import type { Repository } from '../registry/registry.js';
import type { MaybeStale } from '../registry/registry.js';
import type { RouteTarget } from '../registry/router.js';
import type { StoredManifest } from '../registry/manifest-service.js';

export interface WarmSource {
  route(name: string, ns?: string): RouteTarget;
  repository(name: string, ns?: string): Repository;
  /** A manifest as a pull fetches it; a tag is asked of the upstream whatever its TTL, `previous` its digest here before. */
  refreshManifest(name: string, reference: string): Promise<StoredManifest & MaybeStale & { previous?: string }>;
  /** A blob fetched into the cache; `cached` when it was there already. */
  fillBlob(name: string, digest: string, onBytes?: (n: number) => void): Promise<{ size: number; cached: boolean }>;
}
