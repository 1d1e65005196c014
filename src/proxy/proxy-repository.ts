// One upstream repository as the pull-through cache serves it: reads go to the cache (and the
// upstream behind it), writes are refused, the cache being a read-only mirror of the upstream.
import { RegistryError } from '../registry/errors.js';
import type { Repository, RepositoryBlobs, RepositoryManifests, RepositoryUploads, RequestContext } from '../registry/registry.js';
import type { Page } from '../oci/page.js';
import type { EventRequest } from '../events/event.js';
import type { ProxyBlobs } from './proxy-blobs.js';
import type { ProxyListings } from './proxy-listings.js';
import type { ProxyManifests } from './proxy-manifests.js';
import type { UpstreamRepository, UpstreamSettings } from './upstream-repository.js';

/** The pull-through cache's parts, shared by every repository it serves (fills, freshness, list caches). */
export interface ProxyParts {
  manifests: ProxyManifests;
  blobs: ProxyBlobs;
  listings: ProxyListings;
}

export class ProxyRepository implements Repository, UpstreamRepository {
  readonly upstream: UpstreamSettings['upstream'];
  readonly client: UpstreamSettings['client'];
  readonly tagTtlMs: number;
  readonly listTtlMs: number;
  readonly minRate?: UpstreamSettings['minRate'];
  readonly manifests: RepositoryManifests;
  readonly blobs: RepositoryBlobs;
  readonly tags: Repository['tags'];
  readonly referrers: Repository['referrers'];
  readonly uploads: RepositoryUploads;
  readonly request?: EventRequest;

  /**
   * @param asked the name as the client spelled it (named in a refusal)
   * @param remote the name at the upstream
   * @param name where its cached content lives here
   * @param ctx the request it serves: its logger, its cache outcome, its identity in fill events
   */
  constructor(settings: UpstreamSettings, asked: string, readonly remote: string, readonly name: string, parts: ProxyParts, readonly ctx?: RequestContext) {
    if (ctx?.event) this.request = ctx.event;
    this.upstream = settings.upstream;
    // The upstream calls made for this request log with its id.
    const log = ctx?.log;
    this.client = log ? { request: (req) => settings.client.request({ ...req, log }) } : settings.client;
    this.tagTtlMs = settings.tagTtlMs;
    this.listTtlMs = settings.listTtlMs;
    if (settings.minRate) this.minRate = settings.minRate;
    const refuse = async (): Promise<never> => {
      const { name: upstream, url } = this.upstream;
      throw new RegistryError('DENIED', `repository ${asked} is a read-only mirror of upstream ${upstream} (${url}): push to a local namespace instead`, {
        detail: { name: asked, upstream },
      });
    };
    this.manifests = {
      get: (reference: string) => parts.manifests.get(this, reference),
      put: refuse,
      delete: refuse,
    };
    this.blobs = {
      get: (digest: string, opts: { rangeHeader?: string; head?: boolean }) => parts.blobs.read(this, digest, opts),
      delete: refuse,
    };
    this.tags = { list: (page: Page) => parts.listings.tags(this, page) };
    this.referrers = { list: (digest: string, artifactType?: string) => parts.listings.referrers(this, digest, artifactType) };
    this.uploads = {
      chunkMinLength: 0,
      start: refuse,
      monolithic: refuse,
      mount: refuse,
      status: refuse,
      append: refuse,
      complete: refuse,
      cancel: refuse,
    };
  }
}
