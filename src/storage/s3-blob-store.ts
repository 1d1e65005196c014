// S3-compatible BlobStore (AWS S3, Ceph's RADOS Gateway, MinIO, ...). Committed blobs are objects
// under their digest's key; writers are multipart uploads at staging keys, copied to the digest's key
// once verified (src/storage/s3-blob-writer.ts); the collector's set-aside is a copy under trash/.
// The layout is in src/storage/s3-layout.ts. The local scratch directory (storage.path) holds what
// writers of this process are writing, for the followers of a fill and for parts on their way.
import { randomBytes } from 'node:crypto';
import { mkdir, open, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CopyObjectCommand,
  CreateMultipartUploadCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListMultipartUploadsCommand,
  ListObjectsV2Command,
  ListPartsCommand,
  PutObjectCommand,
  UploadPartCopyCommand,
  type S3Client,
} from '@aws-sdk/client-s3';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import type { AsideHandle, BlobReader, BlobStat, BlobStore, BlobWriter, ByteRange, StaleWriter, StoredBlob } from './blob-store.js';
import { FsBlobWriter } from './fs-blob-writer.js';
import { isNotFound, listDir } from './fs-dirs.js';
import { isSessionId, isWriterId } from './paths.js';
import { anonymousWriterId, copyPieces, S3BlobWriter, type S3Context } from './s3-blob-writer.js';
import { isS3NotFound, S3Layout } from './s3-layout.js';
import { ObjectGetter, S3GetError, type ObjectGet } from './s3-object-get.js';
import { S3ObjectStream } from './s3-object-stream.js';
import { BlobNotFoundError } from './storage-errors.js';
import { tryParseDigest } from '../oci/digest.js';

export interface S3BlobStoreOptions {
  client: S3Client;
  bucket: string;
  /** Keys live under this prefix ('' for the bucket's root). */
  prefix: string;
  /** The local scratch directory (storage.path): writers' files live in its s3-uploads/. */
  scratch: string;
  /** Multipart part size (S3's minimum is 5 MiB, 10000 parts at most); default 16 MiB (blobs up to ~156 GiB). */
  partSize?: number;
  /** Largest object copied with one CopyObject (S3: 5 GiB); larger ones are copied in parts. */
  maxCopySize?: number;
  /** A presigned GET URL of a key: blobs are then offered by url() (storage.s3.redirect). */
  presign?: (key: string) => Promise<string>;
}

const DEFAULT_PART_SIZE = 16 * 1024 * 1024;
const MAX_COPY_SIZE = 5 * 1024 * 1024 * 1024;
/** The URLs open() signs are used at once; a minute covers a clock a little ahead of S3's. */
const GET_URL_EXPIRY_S = 60;
/** <algorithm>-<hex>.<random>: the digest, and a random part so two set-asides never collide. */
const ASIDE_KEY = /^([a-z0-9]+)-([0-9a-f]+)\.[0-9a-f]+$/;

export class S3BlobStore implements BlobStore {
  readonly layout: S3Layout;
  private readonly client: S3Client;
  private readonly bucket: string;
  private readonly dir: string;
  private readonly ctx: S3Context;
  private readonly presign: ((key: string) => Promise<string>) | undefined;
  private readonly getter = new ObjectGetter();

  private constructor(opts: S3BlobStoreOptions) {
    this.presign = opts.presign;
    this.client = opts.client;
    this.bucket = opts.bucket;
    this.layout = new S3Layout(opts.prefix);
    this.dir = join(opts.scratch, 's3-uploads');
    this.ctx = {
      client: this.client,
      bucket: this.bucket,
      layout: this.layout,
      partSize: opts.partSize ?? DEFAULT_PART_SIZE,
      maxCopySize: opts.maxCopySize ?? MAX_COPY_SIZE,
      copy: (from, to, size) => this.copy(from, to, size),
      stat: (digest) => this.stat(digest),
      blobReader: (digest) => this.blobReader(digest),
      listParts: (key, uploadId) => this.listParts(key, uploadId),
    };
  }

  static async open(opts: S3BlobStoreOptions): Promise<S3BlobStore> {
    await mkdir(join(opts.scratch, 's3-uploads'), { recursive: true });
    return new S3BlobStore(opts);
  }

  async stat(digest: string): Promise<BlobStat | undefined> {
    try {
      const head = await this.client.send(new HeadObjectCommand({ Bucket: this.bucket, Key: this.layout.blob(digest) }));
      return { size: head.ContentLength ?? 0, modifiedAt: head.LastModified?.getTime() ?? Date.now() };
    } catch (err) {
      if (isS3NotFound(err)) return undefined;
      throw err;
    }
  }

  /** A presigned URL clients may GET the committed blob from, when the store was opened to give them. */
  async url(digest: string): Promise<string | undefined> {
    return this.presign?.(this.layout.blob(digest));
  }

  /**
   * The blob's bytes by a GET of a presigned URL on a socket of the store's own (s3-object-get.ts),
   * not the SDK's GetObject: its http client allocates a buffer per socket read. The signature is
   * the SDK's (its credential chain), the Range header goes unsigned as S3 allows.
   */
  async open(digest: string, range?: ByteRange): Promise<Readable> {
    const key = this.layout.blob(digest);
    const url = await getSignedUrl(this.client, new GetObjectCommand({ Bucket: this.bucket, Key: key }), { expiresIn: GET_URL_EXPIRY_S });
    let get;
    try {
      get = await this.getter.get(url, range);
    } catch (err) {
      if (err instanceof S3GetError && err.status === 404) throw new BlobNotFoundError(digest, { cause: err });
      throw err;
    }
    const length = checkBody(get, range, key);
    if (typeof length !== 'number') {
      get.abort(length);
      throw length;
    }
    return new S3ObjectStream(get, length);
  }

  async writer(session?: string): Promise<BlobWriter> {
    const id = session ?? anonymousWriterId();
    const path = this.scratchPath(id);
    await (await open(path, 'wx')).close();
    // A session exists in the bucket from the start: another process may resume it at 0 bytes.
    if (session !== undefined) {
      await this.client.send(new PutObjectCommand({ Bucket: this.bucket, Key: this.layout.tail(id), Metadata: { start: '0', staged: '0' }, Body: Buffer.alloc(0) }));
    }
    return new S3BlobWriter(this.ctx, id, session !== undefined, new FsBlobWriter(id, this.dir, path, 0), path, 0);
  }

  async resume(session: string): Promise<BlobWriter | undefined> {
    if (!isSessionId(session)) return undefined;
    let tail: Buffer;
    let meta: Record<string, string>;
    try {
      const got = await this.client.send(new GetObjectCommand({ Bucket: this.bucket, Key: this.layout.tail(session) }));
      tail = Buffer.from(await got.Body!.transformToByteArray());
      meta = got.Metadata ?? {};
    } catch (err) {
      if (isS3NotFound(err)) return undefined;
      throw err;
    }
    const start = Number(meta.start ?? '0');
    const staged = meta.staged === '1';
    const exact = meta.exact !== '0';
    const uploadId = meta['upload-id'];
    const { parts, highest } = uploadId !== undefined ? await this.storedParts(session, uploadId, start) : { parts: [], highest: 0 };
    // The scratch file holds the tail at its place; the bytes before it stay in the bucket.
    const path = this.scratchPath(session);
    const file = await open(path, 'w');
    try {
      await file.truncate(start);
      if (tail.length > 0) await file.write(tail, 0, tail.length, start);
    } finally {
      await file.close();
    }
    const local = new FsBlobWriter(session, this.dir, path, start + tail.length);
    return new S3BlobWriter(this.ctx, session, true, local, path, start, { parts, uploadId, staged, exact, start, highest });
  }

  async *staleWriters(before: number): AsyncIterable<StaleWriter> {
    // Each writer's last write: its objects, its upload's parts, its scratch file here.
    const newest = new Map<string, number>();
    const note = (id: string | undefined, ms: number): void => {
      if (id !== undefined) newest.set(id, Math.max(newest.get(id) ?? 0, ms));
    };
    let token: string | undefined;
    do {
      const page = await this.client.send(new ListObjectsV2Command({ Bucket: this.bucket, Prefix: this.layout.uploads, ContinuationToken: token }));
      for (const o of page.Contents ?? []) note(this.layout.writerOf(o.Key ?? ''), o.LastModified?.getTime() ?? 0);
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (token !== undefined);
    for await (const u of this.uploads(this.layout.uploads)) {
      const id = this.layout.writerOf(u.key);
      let last = u.initiated;
      // An upload started long ago may still be written to: its newest part says.
      if (last < before) for (const p of await this.listParts(u.key, u.uploadId)) last = Math.max(last, p.modified);
      note(id, last);
    }
    for (const name of await listDir(this.dir)) {
      if (!isWriterId(name)) continue;
      try {
        note(name, (await stat(join(this.dir, name))).mtimeMs);
      } catch (err) {
        if (!isNotFound(err)) throw err;
      }
    }
    for (const [id, ms] of newest) if (ms < before) yield { id, session: isSessionId(id) };
  }

  async removeWriter(id: string): Promise<void> {
    const key = this.layout.data(id);
    for await (const u of this.uploads(key)) {
      if (u.key !== key) continue;
      await this.client.send(new AbortMultipartUploadCommand({ Bucket: this.bucket, Key: key, UploadId: u.uploadId })).catch(ignoreNotFound);
    }
    await this.client.send(new DeleteObjectCommand({ Bucket: this.bucket, Key: key }));
    await this.client.send(new DeleteObjectCommand({ Bucket: this.bucket, Key: this.layout.tail(id) }));
    await rm(this.scratchPath(id), { force: true });
  }

  async list(after: string | undefined, limit: number): Promise<StoredBlob[]> {
    if (!Number.isInteger(limit) || limit < 0) throw new RangeError(`page size must be a whole number >= 0, got ${limit}`);
    const out: StoredBlob[] = [];
    if (limit === 0) return out;
    const from = after !== undefined && tryParseDigest(after) ? this.layout.blob(after) : undefined;
    let token: string | undefined;
    do {
      const page = await this.client.send(
        new ListObjectsV2Command({
          Bucket: this.bucket,
          Prefix: this.layout.blobs,
          MaxKeys: Math.min(1000, limit - out.length),
          ...(token !== undefined ? { ContinuationToken: token } : from !== undefined ? { StartAfter: from } : {}),
        }),
      );
      // Keys order as their digests do ('/' for ':'); anything not content-addressed is not a blob.
      for (const o of page.Contents ?? []) {
        const digest = this.layout.digestOf(o.Key ?? '');
        if (digest === undefined || (after !== undefined && digest <= after)) continue;
        out.push({ digest, size: o.Size ?? 0, modifiedAt: o.LastModified?.getTime() ?? 0 });
        if (out.length >= limit) return out;
      }
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (token !== undefined);
    return out;
  }

  async setAside(digest: string): Promise<AsideHandle | undefined> {
    const found = await this.stat(digest);
    if (!found) return undefined;
    const handle = { digest, key: `${digest.replace(':', '-')}.${randomBytes(6).toString('hex')}` };
    try {
      await this.copy(this.layout.blob(digest), this.asideKey(handle), found.size);
    } catch (err) {
      // Removed meanwhile.
      if (isS3NotFound(err)) return undefined;
      throw err;
    }
    await this.client.send(new DeleteObjectCommand({ Bucket: this.bucket, Key: this.layout.blob(digest) }));
    return handle;
  }

  async restore(handle: AsideHandle): Promise<void> {
    const aside = this.asideKey(handle);
    // A writer that placed the same (content-addressed) bytes meanwhile keeps its copy.
    if (!(await this.stat(handle.digest))) {
      const head = await this.client.send(new HeadObjectCommand({ Bucket: this.bucket, Key: aside }));
      await this.copy(aside, this.layout.blob(handle.digest), head.ContentLength ?? 0);
    }
    await this.client.send(new DeleteObjectCommand({ Bucket: this.bucket, Key: aside }));
  }

  async purge(handle: AsideHandle): Promise<void> {
    await this.client.send(new DeleteObjectCommand({ Bucket: this.bucket, Key: this.asideKey(handle) }));
  }

  async *leftAside(): AsyncIterable<AsideHandle> {
    let token: string | undefined;
    do {
      const page = await this.client.send(new ListObjectsV2Command({ Bucket: this.bucket, Prefix: this.layout.trash, ContinuationToken: token }));
      for (const o of page.Contents ?? []) {
        const key = (o.Key ?? '').slice(this.layout.trash.length);
        const m = ASIDE_KEY.exec(key);
        const digest = m ? `${m[1]}:${m[2]}` : '';
        if (m && tryParseDigest(digest)) yield { digest, key };
        // Not a name setAside gives: nothing can bring it back, and trash/ is the store's own.
        else await this.client.send(new DeleteObjectCommand({ Bucket: this.bucket, Key: o.Key }));
      }
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (token !== undefined);
  }

  /** A reader of a committed blob by ranged GETs (a fill's follower after the writer is gone). */
  private blobReader(digest: string): BlobReader {
    return {
      read: async (position, length, into) => {
        if (length <= 0) return Buffer.alloc(0);
        let body: Uint8Array;
        try {
          const got = await this.client.send(new GetObjectCommand({ Bucket: this.bucket, Key: this.layout.blob(digest), Range: `bytes=${position}-${position + length - 1}` }));
          body = await got.Body!.transformToByteArray();
        } catch (err) {
          // At or past the end: nothing there.
          if ((err as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode === 416) return Buffer.alloc(0);
          throw err;
        }
        if (into === undefined || into.length < body.length) return Buffer.from(body.buffer, body.byteOffset, body.byteLength);
        into.set(body);
        return into.subarray(0, body.length);
      },
      close: async () => undefined,
    };
  }

  /** Copies an object on the server; in parts when larger than one CopyObject takes. Atomic either way. */
  private async copy(from: string, to: string, size: number): Promise<void> {
    const source = `${this.bucket}/${from.split('/').map(encodeURIComponent).join('/')}`;
    if (size <= this.ctx.maxCopySize) {
      await this.client.send(new CopyObjectCommand({ Bucket: this.bucket, Key: to, CopySource: source }));
      return;
    }
    const { UploadId } = await this.client.send(new CreateMultipartUploadCommand({ Bucket: this.bucket, Key: to }));
    try {
      const parts = await Promise.all(
        copyPieces(size, this.ctx.maxCopySize).map(async ({ offset, size: n }, i) => {
          const out = await this.client.send(
            new UploadPartCopyCommand({ Bucket: this.bucket, Key: to, UploadId, PartNumber: i + 1, CopySource: source, CopySourceRange: `bytes=${offset}-${offset + n - 1}` }),
          );
          return { PartNumber: i + 1, ETag: out.CopyPartResult?.ETag ?? '' };
        }),
      );
      await this.client.send(new CompleteMultipartUploadCommand({ Bucket: this.bucket, Key: to, UploadId, MultipartUpload: { Parts: parts } }));
    } catch (err) {
      await this.client.send(new AbortMultipartUploadCommand({ Bucket: this.bucket, Key: to, UploadId })).catch(() => undefined);
      throw err;
    }
  }

  /** The parts of a session's upload that its tail says are stored: [0, start) without a gap. */
  private async storedParts(session: string, uploadId: string, start: number) {
    const listed = await this.listParts(this.layout.data(session), uploadId);
    const parts = [];
    let offset = 0;
    for (const p of listed.sort((a, b) => a.number - b.number)) {
      if (offset >= start) break;
      parts.push({ number: p.number, etag: p.etag, offset, size: p.size });
      offset += p.size;
    }
    if (offset !== start) throw new Error(`upload session ${session}: its stored parts hold ${offset} bytes, not the ${start} its tail starts at`);
    return { parts, highest: Math.max(0, ...listed.map((p) => p.number)) };
  }

  private async listParts(key: string, uploadId: string): Promise<Array<{ number: number; etag: string; size: number; modified: number }>> {
    const out = [];
    let marker: string | undefined;
    do {
      const page = await this.client.send(new ListPartsCommand({ Bucket: this.bucket, Key: key, UploadId: uploadId, PartNumberMarker: marker }));
      for (const p of page.Parts ?? []) out.push({ number: p.PartNumber ?? 0, etag: p.ETag ?? '', size: p.Size ?? 0, modified: p.LastModified?.getTime() ?? 0 });
      marker = page.IsTruncated ? page.NextPartNumberMarker : undefined;
    } while (marker !== undefined);
    return out;
  }

  /** Multipart uploads in progress under `prefix`. */
  private async *uploads(prefix: string): AsyncGenerator<{ key: string; uploadId: string; initiated: number }> {
    let keyMarker: string | undefined;
    let idMarker: string | undefined;
    for (;;) {
      const page = await this.client.send(new ListMultipartUploadsCommand({ Bucket: this.bucket, Prefix: prefix, KeyMarker: keyMarker, UploadIdMarker: idMarker }));
      for (const u of page.Uploads ?? []) {
        if (u.Key !== undefined && u.UploadId !== undefined) yield { key: u.Key, uploadId: u.UploadId, initiated: u.Initiated?.getTime() ?? 0 };
      }
      if (!page.IsTruncated) return;
      keyMarker = page.NextKeyMarker;
      idMarker = page.NextUploadIdMarker;
    }
  }

  private scratchPath(id: string): string {
    if (!isWriterId(id)) throw new Error(`not a blob writer id: ${id}`);
    return join(this.dir, id);
  }

  /** The set-aside object of a handle; only names setAside gives are ever joined into a key. */
  private asideKey(handle: AsideHandle): string {
    const m = ASIDE_KEY.exec(handle.key);
    if (!m || `${m[1]}:${m[2]}` !== handle.digest) throw new Error(`not a set-aside blob: ${handle.key}`);
    return `${this.layout.trash}${handle.key}`;
  }
}

/**
 * The body's length when the answer is the object or the range asked (a whole object: 200; a range:
 * 206 with exactly those bytes: callers ask within the blob, and the length they announced must hold),
 * else the error to fail with.
 */
function checkBody(get: ObjectGet, range: ByteRange | undefined, key: string): number | Error {
  const length = get.remaining;
  if (!range) return get.status === 200 ? length : new Error(`S3 answered a GET of ${key} with ${get.status}, not 200`);
  const m = /^bytes (\d+)-(\d+)\/(\d+|\*)$/.exec(get.headers.get('content-range') ?? '');
  if (get.status !== 206 || !m) return new Error(`S3 answered a GET of bytes ${range.start}-${range.end} of ${key} with ${get.status} and no matching Content-Range`);
  const [start, end] = [Number(m[1]), Number(m[2])];
  if (start !== range.start || end !== range.end || end - start + 1 !== length) {
    return new Error(`S3 answered a GET of bytes ${range.start}-${range.end} of ${key} with bytes ${start}-${end} in ${length} bytes`);
  }
  return length;
}

function ignoreNotFound(err: unknown): void {
  if (!isS3NotFound(err)) throw err;
}
