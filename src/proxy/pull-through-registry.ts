// The pull-through cache as a Registry wrapped around the local one (distribution's decorator):
// each name is routed; local names go to the local registry, names routed to an upstream get a
// ProxyRepository, read-only, whose content is fetched from the upstream on a miss and kept in the
// local registry's storage. One instance per registry process owns the fills in progress, the tag
// freshness and the list cache.
import Keyv from 'keyv';
import type { MaybeStale, Registry, Repository, RequestContext } from '../registry/registry.js';
import type { StoredManifest } from '../registry/manifest-service.js';
import type { CacheStore } from '../registry/cache-store.js';
import type { BlobLedger } from '../ledger/blob-ledger.js';
import { Router, type RouteTarget } from '../registry/router.js';
import type { Listing } from '../registry/discovery-service.js';
import type { BlobStore } from '../storage/blob-store.js';
import type { Page } from '../oci/page.js';
import type { UpstreamConfig } from '../config/schema.js';
import { ProxyBlobs, type FillEvents } from './proxy-blobs.js';
import { ProxyListings } from './proxy-listings.js';
import { ProxyManifests } from './proxy-manifests.js';
import { ProxyRepository, type ProxyParts } from './proxy-repository.js';
import type { UpstreamFetcher } from './upstream-fetcher.js';
import type { UpstreamSettings } from './upstream-repository.js';
import type { ClusterFills } from './cluster-fills.js';
import type { BlobRead } from '../registry/blob-service.js';
import { RegistryError } from '../registry/errors.js';
import { NO_EVENTS, withCanonicalNames, type EventSink } from '../events/event.js';

export interface PullThroughOptions {
  /** The local registry's ledger and blob store: fills write there and record through the ledger. */
  ledger: BlobLedger;
  blobStore: BlobStore;
  /** Configured upstreams with their clients. */
  upstreams: ReadonlyArray<{ config: UpstreamConfig; client: UpstreamFetcher }>;
  /** Namespaces that stay local whatever the upstreams (local.namespaces). */
  localNamespaces?: readonly string[];
  /** Shared TTL caches (tag freshness, lists): in memory by default, PostgreSQL for several nodes. */
  cache?: Keyv<unknown>;
  events?: FillEvents;
  /** Where fill events go (a manifest or blob fetched from an upstream and committed to the cache). */
  sink?: EventSink;
  /** Several nodes: one fill per blob in the cluster, through leases in the shared database. */
  cluster?: ClusterFills;
}

export class PullThroughRegistry implements Registry {
  private readonly router: Router;
  private readonly parts: ProxyParts;
  private readonly upstreams = new Map<string, UpstreamSettings>();
  /** hotHit()'s notes, by upstream. */
  private readonly hotHits = new Map<string, NonNullable<RequestContext['cache']>>();
  private readonly cluster: ClusterFills | undefined;

  constructor(
    private readonly local: Registry & CacheStore,
    opts: PullThroughOptions,
  ) {
    const cache = opts.cache ?? new Keyv<unknown>();
    this.router = new Router(
      opts.upstreams.map((u) => u.config),
      opts.localNamespaces ?? [],
    );
    this.cluster = opts.cluster;
    // Fill events name the repository as the catalogue does (docker.io/library/x's canonical name).
    const sink = withCanonicalNames(opts.sink ?? NO_EVENTS, (stored) => this.router.canonicalOf(stored));
    this.parts = {
      manifests: new ProxyManifests(local, cache, sink),
      blobs: new ProxyBlobs(local, opts.ledger, opts.blobStore, opts.events, opts.cluster, sink),
      listings: new ProxyListings(local, cache),
    };
    for (const { config, client } of opts.upstreams) {
      this.upstreams.set(config.name, {
        upstream: { name: config.name, url: config.url },
        client,
        tagTtlMs: config.tagTTL,
        listTtlMs: config.listTTL,
        minRate: { bytesPerSecond: config.timeouts.minRate, windowMs: config.timeouts.minRateWindow },
      });
    }
  }

  repository(name: string, ns?: string, ctx?: RequestContext): Repository {
    const target = this.route(name, ns);
    if (target.kind === 'local') return this.local.repository(target.repo);
    const settings = this.upstreams.get(target.upstream);
    if (!settings) throw new Error(`no client for upstream ${target.upstream}`);
    return new ProxyRepository(settings, name, target.remote, target.repo, this.parts, ctx);
  }

  hotManifest(name: string, ns: string | undefined, reference: string, ctx?: RequestContext): StoredManifest | undefined {
    const target = this.router.route(name, ns);
    if (target.kind === 'local') return this.local.hotManifest(target.repo, undefined, reference);
    const m = this.parts.manifests.hot(target.upstream, target.remote, target.repo, reference);
    if (m !== undefined && ctx) ctx.cache = this.hotHit(target.upstream);
    return m;
  }

  /** The cache note of a hot manifest from `upstream`: one object per upstream, shared (never changed). */
  private hotHit(upstream: string): NonNullable<RequestContext['cache']> {
    let hit = this.hotHits.get(upstream);
    if (!hit) {
      hit = Object.freeze({ kind: 'manifest', outcome: 'hit', upstream });
      this.hotHits.set(upstream, hit);
    }
    return hit;
  }

  /** Blob fills running on this node. */
  fillsInFlight(): number {
    return this.parts.blobs.fills.size;
  }

  route(name: string, ns?: string): RouteTarget {
    return this.router.route(name, ns);
  }

  /**
   * A manifest fetched and cached as a pull of `name` would (warming, src/warm/), a tag asked of the
   * upstream whatever its TTL; `previous` is the digest the tag had here before. `name` must be routed
   * to an upstream.
   */
  async refreshManifest(name: string, reference: string): Promise<StoredManifest & MaybeStale & { previous?: string }> {
    const repo = this.upstreamRepository(name);
    const previous = reference.includes(':') ? undefined : await this.local.taggedDigest(repo.name, reference).catch(() => undefined);
    const manifest = await this.parts.manifests.get(repo, reference, { revalidate: true });
    return previous === undefined ? manifest : { ...manifest, previous };
  }

  /** A blob of `name` fetched into the cache as a pull would, with no client (ProxyBlobs.warm). */
  fillBlob(name: string, digest: string, onBytes?: (n: number) => void): Promise<{ size: number; cached: boolean }> {
    return this.parts.blobs.warm(this.upstreamRepository(name), digest, onBytes);
  }

  private upstreamRepository(name: string): ProxyRepository {
    const repo = this.repository(name);
    if (!(repo instanceof ProxyRepository)) {
      throw new RegistryError('NAME_UNKNOWN', `repository ${name} is local here, not routed to an upstream: there is nothing to fetch`, { detail: { name } });
    }
    return repo;
  }

  canonicalOf(stored: string): string {
    return this.router.canonicalOf(stored);
  }

  catalog(page: Page, visible?: (canonical: string) => Promise<boolean>): Promise<Listing> {
    return this.local.catalog(page, visible, (stored) => this.router.canonicalOf(stored));
  }

  /** Digests of the fills in progress: the collector leaves their blobs alone. */
  activeFills(): Iterable<string> {
    return this.parts.blobs.fills.digests();
  }

  /** The fill of `digest` running on this node, for another node of the cluster; undefined when none runs here. */
  localFill(digest: string, rangeHeader: string | undefined): Promise<BlobRead | undefined> {
    return this.parts.blobs.localFill(digest, rangeHeader);
  }

  /** Lets fills in progress finish (their leases released), then closes the local registry. */
  async close(): Promise<void> {
    await this.parts.blobs.fills.drain();
    await this.cluster?.close();
    await this.local.close();
  }
}
