// Reading and deleting blobs within a repository. A blob is visible under a repository only when
// linked there (by a push or a mount), whatever the blob store holds.
import type { Readable } from 'node:stream';
import { RegistryError } from './errors.js';
import { parseRange } from './range.js';
import type { BlobStore, ByteRange } from '../storage/blob-store.js';
import type { MetadataStore } from '../metadata/metadata-store.js';
import type { AccessTracker } from '../metadata/access-tracker.js';

export interface BlobRead {
  digest: string;
  size: number;
  range?: ByteRange;
  /** Absent for HEAD. */
  body?: Readable;
}

export class BlobService {
  constructor(
    private readonly metadata: MetadataStore,
    private readonly blobs: BlobStore,
    private readonly tracker?: AccessTracker,
  ) {}

  async stat(repo: string, digest: string): Promise<{ size: number }> {
    const linked = await this.metadata.isBlobLinked(repo, digest);
    const stat = linked ? await this.blobs.stat(digest) : undefined;
    if (!stat) throw new RegistryError('BLOB_UNKNOWN', `blob ${digest} is not in repository ${repo}`, { detail: { digest } });
    return stat;
  }

  async read(repo: string, digest: string, opts: { rangeHeader?: string; head?: boolean }): Promise<BlobRead> {
    const { size } = await this.stat(repo, digest);
    const range = parseRange(opts.rangeHeader, size);
    this.tracker?.touchBlob(digest);
    if (opts.head) return { digest, size, range };
    const body = await this.blobs.open(digest, range);
    return { digest, size, range, body };
  }

  /** Unlinks the blob from the repository; the bytes go when the collector finds nothing holds them. */
  async delete(repo: string, digest: string): Promise<void> {
    if (!(await this.metadata.unlinkBlob(repo, digest))) {
      throw new RegistryError('BLOB_UNKNOWN', `blob ${digest} is not in repository ${repo}`, { detail: { digest } });
    }
  }
}
