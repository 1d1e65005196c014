// The facade the HTTP routes call. Holds the services of the domain over one MetadataStore and one
// BlobStore, routes each repository name to local storage or to the pull-through cache, and keeps
// upstream-routed names read-only.
import { BlobLedger } from '../ledger/blob-ledger.js';
import { BlobService } from './blob-service.js';
import { DiscoveryService } from './discovery-service.js';
import { ManifestService } from './manifest-service.js';
import { UploadService } from './upload-service.js';
import { LocalRepository } from './local-repository.js';
import { RegistryError } from './errors.js';
import { Router, type RouteTarget } from './router.js';
import type { RepositoryReader } from './repository.js';
import type { BlobStore } from '../storage/blob-store.js';
import type { MetadataStore } from '../metadata/metadata-store.js';
import { PullThrough, type PullThroughDeps } from '../proxy/pull-through.js';
import type { AccessTracker } from '../metadata/access-tracker.js';

export interface RegistryOptions {
  /** OCI-Chunk-Min-Length announced for chunked uploads (0 = none). */
  chunkMinLength: number;
  localNamespaces?: readonly string[];
  /** Configured upstreams with their clients: names routed to them go through the pull-through cache. */
  upstreams?: PullThroughDeps['upstreams'];
  /** Shared TTL caches (tag freshness, lists); in memory when absent. */
  cache?: PullThroughDeps['cache'];
  events?: PullThroughDeps['events'];
  /**
   * Records pulls (manifest and blob access times) for the collector's cache eviction, batched.
   * Closed (flushed) by close(), before the metadata store. None = access times stay at push/fill time.
   */
  accessTracker?: AccessTracker;
  /** Most descriptors per manifest, pushed or pulled through (default DEFAULT_MAX_DESCRIPTORS). */
  maxDescriptors?: number;
}

export class RegistryService {
  readonly ledger: BlobLedger;
  readonly blobs: BlobService;
  readonly uploads: UploadService;
  readonly manifests: ManifestService;
  readonly discovery: DiscoveryService;
  readonly router: Router;
  readonly pullThrough: PullThrough;
  private readonly upstreamUrls: ReadonlyMap<string, string>;

  constructor(
    readonly metadata: MetadataStore,
    readonly blobStore: BlobStore,
    readonly options: RegistryOptions,
  ) {
    this.ledger = new BlobLedger(metadata, blobStore);
    this.blobs = new BlobService(this.ledger, blobStore, options.accessTracker);
    this.uploads = new UploadService(metadata, blobStore, this.ledger);
    this.manifests = new ManifestService(metadata, blobStore, this.ledger, options.accessTracker, { maxDescriptors: options.maxDescriptors });
    const upstreams = options.upstreams ?? [];
    this.router = new Router(
      upstreams.map((u) => u.config),
      options.localNamespaces ?? [],
    );
    this.discovery = new DiscoveryService(metadata, (repo) => this.router.canonicalOf(repo));
    this.upstreamUrls = new Map(upstreams.map((u) => [u.config.name, u.config.url]));
    this.pullThrough = new PullThrough({
      services: this,
      metadata,
      blobStore,
      upstreams,
      cache: options.cache,
      events: options.events,
    });
  }

  route(name: string, ns?: string): RouteTarget {
    return this.router.route(name, ns);
  }

  /** The repository to read from: local storage, or the pull-through cache of an upstream. */
  reader(name: string, ns?: string): RepositoryReader {
    const target = this.route(name, ns);
    if (target.kind === 'local') return new LocalRepository(target.repo, this);
    return this.pullThrough.repository(target.upstream, target.remote, target.repo);
  }

  /** The local repository a write goes to; upstream-routed names are refused. */
  writable(name: string, ns?: string): string {
    const target = this.route(name, ns);
    if (target.kind === 'local') return target.repo;
    const url = this.upstreamUrls.get(target.upstream);
    throw new RegistryError(
      'DENIED',
      `repository ${name} is a read-only mirror of upstream ${target.upstream}${url ? ` (${url})` : ''}: push to a local namespace instead`,
      { detail: { name, upstream: target.upstream } },
    );
  }

  async close(): Promise<void> {
    await this.pullThrough.drain();
    await this.options.accessTracker?.close();
    await this.metadata.close();
  }
}
