// A local repository: everything is in this registry's own storage, and every write is allowed
// (access control has already decided).
import type { Readable } from 'node:stream';
import type { BlobService } from './blob-service.js';
import type { DiscoveryService } from './discovery-service.js';
import type { ManifestService } from './manifest-service.js';
import type { ChunkRange, UploadService } from './upload-service.js';
import type { MayPull } from '../ledger/blob-ledger.js';
import type { Repository, RepositoryBlobs, RepositoryManifests, RepositoryUploads } from './registry.js';
import type { Page } from '../oci/page.js';

export interface LocalServices {
  blobs: BlobService;
  manifests: ManifestService;
  discovery: DiscoveryService;
  uploads: UploadService;
  chunkMinLength: number;
}

export class LocalRepository implements Repository {
  readonly manifests: RepositoryManifests;
  readonly blobs: RepositoryBlobs;
  readonly tags: Repository['tags'];
  readonly referrers: Repository['referrers'];
  readonly uploads: RepositoryUploads;

  constructor(
    readonly name: string,
    services: LocalServices,
  ) {
    const { manifests, blobs, discovery, uploads } = services;
    this.manifests = {
      get: (reference: string) => manifests.get(name, reference),
      put: (reference: string, body: Buffer, contentType: string | undefined, tags?: string[]) => manifests.put(name, reference, body, contentType, tags),
      delete: (reference: string) => manifests.delete(name, reference),
    };
    this.blobs = {
      get: (digest: string, opts: { rangeHeader?: string; head?: boolean }) => blobs.read(name, digest, opts),
      delete: (digest: string) => blobs.delete(name, digest),
    };
    this.tags = { list: (page: Page) => discovery.tags(name, page) };
    this.referrers = {
      list: async (digest: string, artifactType?: string) => ({ ...(await discovery.referrers(name, digest, artifactType)), filtered: artifactType !== undefined }),
    };
    this.uploads = {
      chunkMinLength: services.chunkMinLength,
      start: () => uploads.start(name),
      monolithic: (digest: string, body: Readable, size?: number) => uploads.monolithic(name, digest, body, size),
      mount: (digest: string, from: string | undefined, mayPull: MayPull) => uploads.mount(name, digest, from, mayPull),
      status: (id: string) => uploads.status(name, id),
      append: (id: string, body: Readable, range?: ChunkRange, length?: number) => uploads.append(name, id, body, range, length),
      complete: (id: string, digest: string, body?: Readable, length?: number, range?: ChunkRange) => uploads.complete(name, id, digest, body, length, range),
      cancel: (id: string) => uploads.cancel(name, id),
    };
  }
}
