// Reading and deleting blobs within a repository. A blob is visible under a repository only when
// linked there (by a push or a mount), whatever the blob store holds: the BlobLedger decides.
import type { Readable } from 'node:stream';
import { RegistryError } from './errors.js';
import { parseRange } from './range.js';
import type { BlobStore, ByteRange } from '../storage/blob-store.js';
import type { AccessTracker } from '../metadata/access-tracker.js';
import type { BlobLedger } from '../ledger/blob-ledger.js';

export interface BlobRead {
  digest: string;
  size: number;
  range?: ByteRange;
  /** Absent for HEAD, and when the client is sent to `redirect` instead. */
  body?: Readable;
  /** Where the client may download the bytes itself (an object store's presigned URL): a 307 instead of a body. */
  redirect?: string;
}

export class BlobService {
  constructor(
    private readonly ledger: BlobLedger,
    private readonly blobs: BlobStore,
    private readonly tracker?: AccessTracker,
    /** Send GETs to the store's own URL of a blob when it has one (storage.s3.redirect). */
    private readonly redirect = false,
  ) {}

  async read(repo: string, digest: string, opts: { rangeHeader?: string; head?: boolean }): Promise<BlobRead> {
    const stat = await this.ledger.access(repo, digest);
    if (!stat) throw unknownBlob(repo, digest);
    return this.serve(digest, stat.size, opts);
  }

  /** The stored bytes of a blob the ledger has allowed under the repository being read. */
  async serve(digest: string, size: number, opts: { rangeHeader?: string; head?: boolean }): Promise<BlobRead> {
    const range = parseRange(opts.rangeHeader, size);
    this.tracker?.touchBlob(digest);
    if (opts.head) return { digest, size, range };
    // Reached only once the request has been allowed: the URL is the bytes.
    const url = this.redirect ? await this.blobs.url?.(digest) : undefined;
    if (url !== undefined) return { digest, size, redirect: url };
    const body = await this.blobs.open(digest, range);
    return { digest, size, range, body };
  }

  /** Unlinks the blob from the repository; the bytes go when the collector finds nothing holds them. */
  async delete(repo: string, digest: string): Promise<void> {
    if (!(await this.ledger.unlink(repo, digest))) throw unknownBlob(repo, digest);
  }
}

function unknownBlob(repo: string, digest: string): RegistryError {
  return new RegistryError('BLOB_UNKNOWN', `blob ${digest} is not in repository ${repo}`, { detail: { digest } });
}
