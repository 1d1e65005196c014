// The local registry: the services of the domain over the registry's metadata and upload sessions,
// one BlobStore and the BlobLedger, behind the Registry interface. Every name is a repository in this registry's own
// storage; the pull-through cache wraps this registry for names routed to an upstream, and stores
// what it fetches through the CacheStore side of it.
import type { MetadataChange } from '../metadata/metadata-changes.js';
import { BlobService } from './blob-service.js';
import { DiscoveryService } from './discovery-service.js';
import { DEFAULT_MANIFEST_CACHE_BYTES, ManifestService } from './manifest-service.js';
import { ManifestCache } from './manifest-cache.js';
import { UploadService } from './upload-service.js';
import { LocalRepository, type LocalServices } from './local-repository.js';
import { assertName } from './reference.js';
import type { RouteTarget } from './router.js';
import type { Registry, Repository } from './registry.js';
import type { CacheStore } from './cache-store.js';
import type { ManagedStore } from './management-service.js';
import type { ParsedManifest } from './manifest.js';
import type { BlobLedger } from '../ledger/blob-ledger.js';
import type { BlobStore } from '../storage/blob-store.js';
import type { RegistryMetadata } from '../metadata/registry-metadata.js';
import type { UploadSessions } from '../metadata/upload-sessions.js';
import type { Page } from '../oci/page.js';
import type { AccessTracker } from '../metadata/access-tracker.js';

export interface LocalRegistryDeps {
  metadata: RegistryMetadata;
  uploads: UploadSessions;
  blobStore: BlobStore;
  ledger: BlobLedger;
  /** OCI-Chunk-Min-Length announced for chunked uploads (0 = none). */
  chunkMinLength: number;
  /** Most descriptors per manifest, pushed or pulled through (default DEFAULT_MAX_DESCRIPTORS). */
  maxDescriptors?: number;
  /** Bytes of manifests held in memory (default DEFAULT_MANIFEST_CACHE_BYTES; 0 = none). */
  manifestCacheBytes?: number;
  /**
   * Records pulls (manifest and blob access times) for the collector's cache eviction, batched.
   * Closed (flushed) by close(), before the metadata database. None = access times stay at push/fill time.
   */
  accessTracker?: AccessTracker;
  /** Blob GETs answered with a redirect to the store's URL of the blob, where it has one (storage.s3.redirect). */
  redirectBlobs?: boolean;
}

const asStored = (name: string): string => name;

export class LocalRegistry implements Registry, CacheStore, ManagedStore {
  private readonly services: LocalServices;

  constructor(private readonly deps: LocalRegistryDeps) {
    const { metadata, uploads, blobStore, ledger, accessTracker } = deps;
    this.services = {
      blobs: new BlobService(ledger, blobStore, accessTracker, deps.redirectBlobs),
      uploads: new UploadService(uploads, blobStore, ledger),
      manifests: new ManifestService(
        metadata,
        blobStore,
        ledger,
        accessTracker,
        { maxDescriptors: deps.maxDescriptors },
        new ManifestCache(deps.manifestCacheBytes ?? DEFAULT_MANIFEST_CACHE_BYTES),
      ),
      discovery: new DiscoveryService(metadata),
      chunkMinLength: deps.chunkMinLength,
    };
  }

  repository(name: string): Repository {
    return new LocalRepository(assertName(name), this.services);
  }

  /** Every name is local here, as spelled. */
  route(name: string): RouteTarget {
    return { kind: 'local', repo: name, canonical: name };
  }

  canonicalOf(stored: string): string {
    return stored;
  }

  catalog(page: Page, visible?: (canonical: string) => Promise<boolean>, canonicalOf: (stored: string) => string = asStored) {
    return this.services.discovery.catalog(page, canonicalOf, visible);
  }

  hotManifest(name: string, _ns: string | undefined, reference: string) {
    return this.services.manifests.hot(name, reference);
  }

  findManifest(repo: string, digest: string) {
    return this.services.manifests.find(repo, digest);
  }

  taggedDigest(repo: string, tag: string): Promise<string | undefined> {
    return this.services.manifests.taggedDigest(repo, tag);
  }

  /**
   * Forgets every manifest and tag resolution held in memory: the collector swept (in this process
   * or, told through the store's change signal, in another one).
   */
  dropCachedManifests(): void {
    this.services.manifests.cache.clear();
  }

  /** Another node changed a tag or removed a manifest: what this process holds of it in memory goes. */
  metadataChanged(change: MetadataChange): void {
    const cache = this.services.manifests.cache;
    if (change.kind === 'tag') cache.tagDeleted(change.repo, change.tag);
    else if (change.kind === 'manifest') cache.manifestDeleted(change.repo, change.digest);
    else cache.clear();
  }

  parseManifest(body: Buffer, contentType: string | undefined): ParsedManifest {
    return this.services.manifests.parse(body, contentType);
  }

  storeManifest(repo: string, digest: string, body: Buffer, parsed: ParsedManifest, tags: string[]): Promise<void> {
    return this.services.manifests.store(repo, digest, body, parsed, tags, { local: false });
  }

  serveBlob(digest: string, size: number, opts: { rangeHeader?: string; head?: boolean }) {
    return this.services.blobs.serve(digest, size, opts);
  }

  async flushAccess(): Promise<void> {
    await this.deps.accessTracker?.flush();
  }

  deleteTag(repo: string, tag: string): Promise<boolean> {
    return this.services.manifests.deleteTag(repo, tag);
  }

  deleteRepository(repo: string): Promise<boolean> {
    return this.services.manifests.deleteRepository(repo);
  }

  async close(): Promise<void> {
    await this.deps.accessTracker?.close();
  }
}
