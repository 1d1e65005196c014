// The configured blob store: an S3-compatible bucket with storage.s3, else the filesystem under
// storage.path. The drivers are loaded on demand (the AWS SDK only when a bucket is configured).
import type { BlobStore } from './blob-store.js';
import type { S3StoreConfig } from './s3-client.js';

/** storage as configured (config/schema.ts). */
export async function openBlobStore(storage: { path: string; s3?: S3StoreConfig | undefined }): Promise<BlobStore> {
  if (storage.s3 !== undefined) {
    const { openS3BlobStore } = await import('./s3-client.js');
    return openS3BlobStore(storage.s3, storage.path);
  }
  const { FsBlobStore } = await import('./fs-blob-store.js');
  return FsBlobStore.open(storage.path);
}
