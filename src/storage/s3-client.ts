// The S3 client of storage.s3, and the blob store over it. Loaded only when storage.s3 is configured:
// a filesystem store never loads the AWS SDK.
import { GetObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import { S3BlobStore } from './s3-blob-store.js';

/** What the store needs of storage.s3 (config/schema.ts), with the secret key the loader read from its file or variable. */
export interface S3StoreConfig {
  endpoint?: string;
  region: string;
  bucket: string;
  prefix: string;
  forcePathStyle: boolean;
  accessKeyId?: string;
  secretAccessKey?: string;
  redirect: boolean;
  /** How long a presigned blob URL (redirect) stays valid, in ms (the config bounds it to S3's 7 days). */
  presignExpiry: number;
}

export function s3ClientFor(s3: S3StoreConfig): S3Client {
  return new S3Client({
    region: s3.region,
    ...(s3.endpoint !== undefined ? { endpoint: s3.endpoint } : {}),
    forcePathStyle: s3.forcePathStyle,
    // Without a configured key, the SDK's chain: AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, profiles, instance roles.
    ...(s3.accessKeyId !== undefined && s3.secretAccessKey !== undefined
      ? { credentials: { accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey } }
      : {}),
    // Checksums only where S3 requires them: by default the SDK sends streamed bodies aws-chunked with
    // a trailing checksum, which Ceph's RADOS Gateway (16.2) answers with 411 Length Required. Bytes
    // are verified against their digest anyway.
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
  });
}

/** The blob store in the bucket of storage.s3, with `scratch` (storage.path) as its local scratch directory. */
export function openS3BlobStore(s3: S3StoreConfig, scratch: string): Promise<S3BlobStore> {
  const client = s3ClientFor(s3);
  return S3BlobStore.open({
    client,
    bucket: s3.bucket,
    prefix: s3.prefix,
    scratch,
    ...(s3.redirect
      ? { presign: (key: string) => getSignedUrl(client, new GetObjectCommand({ Bucket: s3.bucket, Key: key }), { expiresIn: Math.max(1, Math.floor(s3.presignExpiry / 1000)) }) }
      : {}),
  });
}
