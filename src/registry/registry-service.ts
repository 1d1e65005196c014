// The facade the HTTP routes call. Holds the services of the domain over one MetadataStore and one
// BlobStore; later layers (the pull-through proxy, auth) decorate what is passed in here.
import { BlobService } from './blob-service.js';
import { DiscoveryService } from './discovery-service.js';
import { ManifestService } from './manifest-service.js';
import { UploadService } from './upload-service.js';
import type { BlobStore } from '../storage/blob-store.js';
import type { MetadataStore } from '../metadata/metadata-store.js';

export interface RegistryOptions {
  /** OCI-Chunk-Min-Length announced for chunked uploads (0 = none). */
  chunkMinLength: number;
}

export class RegistryService {
  readonly blobs: BlobService;
  readonly uploads: UploadService;
  readonly manifests: ManifestService;
  readonly discovery: DiscoveryService;

  constructor(
    readonly metadata: MetadataStore,
    readonly blobStore: BlobStore,
    readonly options: RegistryOptions,
  ) {
    this.blobs = new BlobService(metadata, blobStore);
    this.uploads = new UploadService(metadata, blobStore);
    this.manifests = new ManifestService(metadata, blobStore);
    this.discovery = new DiscoveryService(metadata);
  }

  async close(): Promise<void> {
    await this.metadata.close();
  }
}
