// The pull-through cache: one instance per registry process owns the fills in progress, the tag
// freshness and the list cache, and hands out a RepositoryReader per upstream-routed repository.
import Keyv from 'keyv';
import type { RepositoryReader } from '../registry/repository.js';
import type { BlobService } from '../registry/blob-service.js';
import type { BlobLedger } from '../ledger/blob-ledger.js';
import type { DiscoveryService } from '../registry/discovery-service.js';
import type { ManifestService } from '../registry/manifest-service.js';
import type { BlobStore } from '../storage/blob-store.js';
import type { MetadataStore } from '../metadata/metadata-store.js';
import type { Page } from '../oci/page.js';
import type { UpstreamConfig } from '../config/schema.js';
import { ProxyBlobs, type FillEvents } from './proxy-blobs.js';
import { ProxyListings, type ListTarget } from './proxy-listings.js';
import { ProxyManifests } from './proxy-manifests.js';
import type { UpstreamFetcher } from './upstream-fetcher.js';

export interface PullThroughDeps {
  services: { blobs: BlobService; ledger: BlobLedger; manifests: ManifestService; discovery: DiscoveryService };
  metadata: MetadataStore;
  blobStore: BlobStore;
  upstreams: ReadonlyArray<{ config: UpstreamConfig; client: UpstreamFetcher }>;
  /** Shared TTL caches (tag freshness, lists): in memory by default, PostgreSQL for several nodes. */
  cache?: Keyv<unknown>;
  events?: FillEvents;
}

export class PullThrough {
  readonly blobs: ProxyBlobs;
  private readonly manifests: ProxyManifests;
  private readonly listings: ProxyListings;
  private readonly targets = new Map<string, Omit<ListTarget, 'remote' | 'repo'>>();

  constructor(deps: PullThroughDeps) {
    const cache = deps.cache ?? new Keyv<unknown>();
    this.manifests = new ProxyManifests(deps.services.manifests, deps.metadata, cache as Keyv<string>);
    this.blobs = new ProxyBlobs(deps.services.blobs, deps.services.ledger, deps.blobStore, deps.events);
    this.listings = new ProxyListings(deps.services.discovery, cache);
    for (const { config, client } of deps.upstreams) {
      this.targets.set(config.name, {
        upstream: { name: config.name, url: config.url },
        client,
        tagTtlMs: config.tagTTL,
        minRate: { bytesPerSecond: config.timeouts.minRate, windowMs: config.timeouts.minRateWindow },
        listTtlMs: config.listTTL,
      });
    }
  }

  repository(upstream: string, remote: string, repo: string): RepositoryReader {
    const base = this.targets.get(upstream);
    if (!base) throw new Error(`no client for upstream ${upstream}`);
    const t: ListTarget = { ...base, remote, repo };
    return {
      repo,
      manifest: (reference: string, opts: { head?: boolean }) => this.manifests.get(t, reference, opts),
      blob: (digest: string, opts: { rangeHeader?: string; head?: boolean }) => this.blobs.read(t, digest, opts),
      tags: (page: Page) => this.listings.tags(t, page),
      referrers: (digest: string, artifactType?: string) => this.listings.referrers(t, digest, artifactType),
    };
  }

  /** Lets fills in progress finish (shutdown). */
  drain(): Promise<void> {
    return this.blobs.fills.drain();
  }
}
