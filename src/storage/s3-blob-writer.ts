// A writer of the S3 blob store. The bytes go to a local scratch file (what followers in this process
// read as it grows, and what parts are read from) and, a part at a time as they arrive, into a
// multipart upload at the writer's staging key; each part is `partSize` bytes but the last. The
// commit verifies the digest first and only then makes the bytes visible under it: a blob that never
// filled a part is put there with one PutObject; otherwise the staging upload is completed (the last
// part the tail) and copied to the digest's key. Both are atomic in S3: a reader never sees part of a
// blob. The staging object stays until cancel(), so a commit repeated after a collector set the blob
// aside puts it back.
//
// A session writer also keeps its state in the bucket after every append: its tail (the bytes after
// the stored parts) as an object whose metadata says where it starts and which upload holds the
// parts. Another process resumes it from there (S3BlobStore.resume); parts past the tail's start are
// left by an append that did not finish, and are overwritten. Parts of an upload in progress cannot
// be read back, so a resumed writer that must read its earlier bytes (read(), a hash rebuilt in
// another process) first completes the upload to make them an object, and continues in a new upload
// whose first parts are copied from it on the server. A resumed writer cut back below its tail's start
// (a node stored a chunk and stopped before the session's offset was recorded) does the same, and
// fetches the bytes after the last whole part kept back into its scratch file.
import { createReadStream } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  PutObjectCommand,
  UploadPartCommand,
  UploadPartCopyCommand,
  type S3Client,
} from '@aws-sdk/client-s3';
import type { BlobReader, BlobStat, BlobWriter } from './blob-store.js';
import type { FsBlobWriter } from './fs-blob-writer.js';
import { isS3NotFound, type S3Layout } from './s3-layout.js';
import { SizeMismatchError } from './storage-errors.js';
import { WriterGuard } from './writer-guard.js';
import { newHash, type DigestAlgorithm } from '../oci/digest.js';

/** What a writer needs of its store. */
export interface S3Context {
  client: S3Client;
  bucket: string;
  layout: S3Layout;
  partSize: number;
  /** Largest object CopyObject copies in one request (S3: 5 GiB); larger ones are copied in parts. */
  maxCopySize: number;
  /** Places a verified object under a digest's key (stat after); shared with the store. */
  copy(from: string, to: string, size: number): Promise<void>;
  stat(digest: string): Promise<BlobStat | undefined>;
  /** A reader of a committed blob by ranged GETs. */
  blobReader(digest: string): BlobReader;
  /** Every part an upload holds. */
  listParts(key: string, uploadId: string): Promise<Array<{ number: number; etag: string; size: number }>>;
}

/** A session writer's state in its tail object's metadata (S3 lowercases metadata names). */
export interface TailState {
  /** Where the tail starts: the bytes before are in the upload's parts (or the staging object). */
  start: number;
  uploadId?: string;
  /** The staging object holds [0, start): an upload completed so its bytes could be read. */
  staged: boolean;
  /** And no more: false when parts past the counted ones had to be completed with it. */
  exact: boolean;
}

interface Part {
  number: number;
  etag: string;
  offset: number;
  size: number;
}

/** Part uploads running at once per writer; a write waits when this many are in flight. */
const PARTS_IN_FLIGHT = 4;
/** What an append hands the scratch file at a time. */
const APPEND_BATCH = 1024 * 1024;

export class S3BlobWriter implements BlobWriter {
  private readonly guard: WriterGuard;
  /** Completed, stored parts by number, in order of offset. */
  private parts: Part[];
  /** Bytes covered by parts stored or being uploaded. */
  private queued: number;
  /** The number of the next part queued. */
  private nextNumber: number;
  /**
   * The highest part number the upload holds, counted or not: radosgw (16.2) refuses to complete an
   * upload with fewer parts than it holds, so parts left past the end by a failed append matter.
   */
  private highest: number;
  private readonly inflight = new Set<Promise<void>>();
  private failure: unknown;
  private uploadId: string | undefined;
  private creating: Promise<string> | undefined;
  /** The staging object holds [0, stagedSize) (see TailState). */
  private staged: boolean;
  private stagedSize: number;
  /** The staged object holds no more than [0, stagedSize). */
  private stagedExact: boolean;
  /** The staging key holds the whole blob (the commit completed it). */
  private complete = false;

  constructor(
    private readonly ctx: S3Context,
    readonly id: string,
    private readonly session: boolean,
    /** The scratch file; its positions are the blob's. */
    private readonly local: FsBlobWriter,
    private readonly localPath: string,
    /** Bytes before this are not in the scratch file (a writer resumed from the bucket). */
    private localBase: number,
    resumed: { parts: Part[]; uploadId?: string; staged: boolean; exact: boolean; start: number; highest: number } = { parts: [], staged: false, exact: true, start: 0, highest: 0 },
  ) {
    this.guard = new WriterGuard(id);
    this.parts = resumed.parts;
    this.uploadId = resumed.uploadId;
    this.staged = resumed.staged;
    this.stagedSize = resumed.staged ? resumed.start : 0;
    this.queued = resumed.start;
    this.nextNumber = this.firstFreeNumber();
    this.highest = resumed.highest;
    this.stagedExact = resumed.exact;
  }

  get size(): number {
    return this.local.size;
  }

  async write(buffers: Buffer[]): Promise<void> {
    this.guard.writable();
    const start = this.size;
    try {
      await this.local.write(buffers);
      await this.shipParts();
      if (this.session) await this.persist();
    } catch (err) {
      await this.rollback(start);
      throw err;
    }
  }

  async append(source: Readable, opts: { onData?: (chunk: Buffer) => void; length?: number } = {}): Promise<number> {
    this.guard.writable();
    const start = this.size;
    const max = opts.length ?? Number.POSITIVE_INFINITY;
    let bytes = 0;
    let batch: Buffer[] = [];
    let batchBytes = 0;
    const flush = async (): Promise<void> => {
      const buffers = batch;
      batch = [];
      batchBytes = 0;
      // Through the scratch writer's append, which closes its descriptor when done: an upload
      // session's writer serves one request and is dropped without a commit or cancel.
      await this.local.append(Readable.from(buffers));
      await this.shipParts();
    };
    try {
      for await (const chunk of source as AsyncIterable<Buffer>) {
        bytes += chunk.length;
        if (bytes > max) throw new SizeMismatchError(`content is longer than the declared ${max} bytes`, max);
        opts.onData?.(chunk);
        batch.push(chunk);
        batchBytes += chunk.length;
        if (batchBytes >= APPEND_BATCH) await flush();
      }
      if (opts.length !== undefined && bytes !== opts.length) {
        throw new SizeMismatchError(`chunk declared ${opts.length} bytes but ${bytes} arrived`, opts.length, bytes);
      }
      if (batchBytes > 0) await flush();
      if (this.session) await this.persist();
      return this.size;
    } catch (err) {
      await this.rollback(start);
      throw err;
    }
  }

  async truncate(size: number): Promise<void> {
    this.guard.writable();
    await this.settle();
    await this.cut(size);
    if (this.session) await this.persist();
  }

  async reader(): Promise<BlobReader> {
    const committed = this.guard.committed;
    try {
      const local = await this.local.reader();
      const base = this.localBase;
      return {
        read: (position, length, into) => {
          if (position < base) return Promise.reject(new Error(`bytes before ${base} of writer ${this.id} are not in this process`));
          return local.read(position, length, into);
        },
        close: () => local.close(),
      };
    } catch (err) {
      // The scratch file is gone (cancelled after the commit): the committed blob is read instead.
      if (committed === undefined) throw err;
      return this.ctx.blobReader(committed);
    }
  }

  read(end?: number): Readable {
    const stop = end ?? this.size;
    if (stop <= 0) return Readable.from([]);
    if (this.localBase === 0) return this.local.read(stop);
    // Earlier bytes are in the bucket: made readable (staged) first.
    return Readable.from(this.readStored(stop), { objectMode: false });
  }

  private async *readStored(stop: number): AsyncGenerator<Buffer> {
    await this.stage();
    const cut = Math.min(stop, this.stagedSize);
    if (cut > 0) {
      const got = await this.ctx.client.send(new GetObjectCommand({ Bucket: this.ctx.bucket, Key: this.ctx.layout.data(this.id), Range: `bytes=0-${cut - 1}` }));
      yield* got.Body as AsyncIterable<Buffer>;
    }
    if (stop > cut) yield* createReadStream(this.localPath, { start: cut, end: stop - 1 }) as AsyncIterable<Buffer>;
  }

  async commit(digest: string, opts: { knownDigest?: string; size?: number } = {}): Promise<BlobStat> {
    await this.guard.verify(digest, opts, {
      settle: async (size) => {
        await this.settle();
        if (size !== undefined && size !== this.size) await this.cut(size);
      },
      hash: (algorithm) => this.hash(algorithm),
    });
    return this.place(digest);
  }

  async cancel(): Promise<void> {
    if (!this.guard.cancel()) return;
    await this.settle().catch(() => undefined);
    const { client, bucket, layout } = this.ctx;
    if (this.uploadId !== undefined) {
      await client.send(new AbortMultipartUploadCommand({ Bucket: bucket, Key: layout.data(this.id), UploadId: this.uploadId })).catch(ignoreNotFound);
    }
    if (this.complete || this.staged) await client.send(new DeleteObjectCommand({ Bucket: bucket, Key: layout.data(this.id) }));
    if (this.session) await client.send(new DeleteObjectCommand({ Bucket: bucket, Key: layout.tail(this.id) }));
    await this.local.cancel();
  }

  /** Starts an upload for every whole part written and not yet queued; waits while too many run. */
  private async shipParts(): Promise<void> {
    const { partSize } = this.ctx;
    while (this.size - this.queued >= partSize) {
      const offset = this.queued;
      const number = this.nextNumber++;
      this.highest = Math.max(this.highest, number);
      this.queued += partSize;
      const running: Promise<void> = this.uploadPart(number, offset, partSize).then(
        (part) => void this.parts.push(part),
        (err: unknown) => void (this.failure ??= err),
      );
      this.inflight.add(running);
      void running.finally(() => this.inflight.delete(running));
      while (this.inflight.size >= PARTS_IN_FLIGHT) await Promise.race(this.inflight);
      if (this.failure !== undefined) throw this.failure;
    }
    if (this.failure !== undefined) throw this.failure;
  }

  /** Waits for the part uploads in flight; throws the first failure among them. */
  private async settle(): Promise<void> {
    while (this.inflight.size > 0) await Promise.all(this.inflight);
    this.parts.sort((a, b) => a.offset - b.offset);
    const failure = this.failure;
    this.failure = undefined;
    if (failure !== undefined) throw failure;
  }

  /** After a failed write: back to `size`, parts past it forgotten (later ones overwrite them). */
  private async rollback(size: number): Promise<void> {
    await this.settle().catch(() => undefined);
    await this.cut(size).catch(() => undefined);
  }

  /** Cuts the bytes back to `size` (no part upload in flight). */
  private async cut(size: number): Promise<void> {
    if (size < this.localBase) await this.fetchBack(size);
    await this.local.truncate(size);
    // The parts that still count: in order from the start, none missing (a failed upload leaves a
    // gap that later ones must not paper over), none past `size`.
    const kept: Part[] = [];
    let expected = 0;
    for (const p of [...this.parts].sort((a, b) => a.offset - b.offset)) {
      if (p.offset !== expected || p.offset + p.size > size) break;
      kept.push(p);
      expected = p.offset + p.size;
    }
    this.parts = kept;
    this.queued = this.covered();
    this.nextNumber = this.firstFreeNumber();
  }

  /**
   * Cuts back into bytes another process stored: a node that stored a chunk and stopped before the
   * session's offset was recorded leaves the bucket ahead of the session. The stored bytes are staged
   * (made one readable object), its whole parts before `size` are kept as the staged bytes (copied
   * into the next upload on the server), and the rest up to `size`, less than a part, is fetched
   * back into the scratch file to be uploaded again from here.
   */
  private async fetchBack(size: number): Promise<void> {
    await this.stage();
    const { client, bucket, layout, partSize } = this.ctx;
    const key = layout.data(this.id);
    const keep = Math.floor(size / partSize) * partSize;
    let back = Buffer.alloc(0);
    if (size > keep) {
      const got = await client.send(new GetObjectCommand({ Bucket: bucket, Key: key, Range: `bytes=${keep}-${size - 1}` }));
      back = Buffer.from(await got.Body!.transformToByteArray());
      if (back.length !== size - keep) throw new Error(`writer ${this.id}: the staged object gave ${back.length} bytes at ${keep}, not ${size - keep}`);
    }
    await this.local.truncate(keep);
    // Through append, which closes its descriptor: a session's writer may be dropped after this.
    if (back.length > 0) await this.local.append(Readable.from([back]));
    if (keep === 0) {
      // Nothing stored is kept: the staged object goes, and the bytes are put from here at the commit.
      await client.send(new DeleteObjectCommand({ Bucket: bucket, Key: key }));
      this.staged = false;
      this.stagedSize = 0;
      this.stagedExact = true;
    } else {
      // The staged object is longer than what counts now; only [0, keep) is copied from it.
      this.stagedSize = keep;
      this.stagedExact = false;
    }
    this.localBase = keep;
  }

  /** The number after the last stored part, or after the parts a staged object will be copied into. */
  private firstFreeNumber(): number {
    const last = this.parts[this.parts.length - 1];
    if (last) return last.number + 1;
    return this.staged ? copyPieces(this.stagedSize, this.ctx.maxCopySize).length + 1 : 1;
  }

  /** Bytes covered by the stored parts (or by the staged object when no part is stored yet). */
  private covered(): number {
    const last = this.parts[this.parts.length - 1];
    return last ? last.offset + last.size : this.staged ? this.stagedSize : 0;
  }

  private async uploadPart(number: number, offset: number, size: number): Promise<Part> {
    const uploadId = await this.upload();
    const out = await this.ctx.client.send(
      new UploadPartCommand({
        Bucket: this.ctx.bucket,
        Key: this.ctx.layout.data(this.id),
        UploadId: uploadId,
        PartNumber: number,
        ContentLength: size,
        Body: size === 0 ? Buffer.alloc(0) : createReadStream(this.localPath, { start: offset, end: offset + size - 1 }),
      }),
    );
    return { number, etag: out.ETag ?? '', offset, size };
  }

  /** The multipart upload at the staging key, created on first use (with the staged bytes copied in). */
  private upload(): Promise<string> {
    if (this.uploadId !== undefined) return Promise.resolve(this.uploadId);
    this.creating ??= (async () => {
      const { client, bucket, layout } = this.ctx;
      const key = layout.data(this.id);
      const { UploadId } = await client.send(new CreateMultipartUploadCommand({ Bucket: bucket, Key: key }));
      if (UploadId === undefined) throw new Error(`S3 gave no upload id for ${key}`);
      if (this.staged) {
        // The staged object's bytes become the first parts, copied on the server.
        const pieces = copyPieces(this.stagedSize, this.ctx.maxCopySize);
        const copied = await Promise.all(
          pieces.map(async ({ offset, size }, i) => {
            const out = await client.send(
              new UploadPartCopyCommand({
                Bucket: bucket,
                Key: key,
                UploadId,
                PartNumber: i + 1,
                CopySource: `${bucket}/${key}`,
                CopySourceRange: `bytes=${offset}-${offset + size - 1}`,
              }),
            );
            return { number: i + 1, etag: out.CopyPartResult?.ETag ?? '', offset, size };
          }),
        );
        this.parts.unshift(...copied);
        this.highest = Math.max(this.highest, pieces.length);
      }
      this.uploadId = UploadId;
      return UploadId;
    })();
    return this.creating.finally(() => (this.creating = undefined));
  }

  /** A session's state in the bucket: its tail object (the bytes after the stored parts). */
  private async persist(): Promise<void> {
    await this.settle();
    const start = this.covered();
    const size = this.size - start;
    const staged = this.staged && this.parts.length === 0;
    const state: Record<string, string> = { start: String(start), staged: staged ? '1' : '0', exact: staged && !this.stagedExact ? '0' : '1' };
    if (this.uploadId !== undefined) state['upload-id'] = this.uploadId;
    await this.ctx.client.send(
      new PutObjectCommand({
        Bucket: this.ctx.bucket,
        Key: this.ctx.layout.tail(this.id),
        Metadata: state,
        ContentLength: size,
        Body: size === 0 ? Buffer.alloc(0) : createReadStream(this.localPath, { start, end: this.size - 1 }),
      }),
    );
  }

  /**
   * Makes [0, covered) one readable object at the staging key: the upload so far is completed. The
   * next part starts a new upload (upload() copies the staged bytes in).
   */
  private async stage(): Promise<void> {
    await this.settle();
    if (this.parts.length === 0 && !this.leftover()) return;
    this.stagedExact = await this.completeUpload();
    this.stagedSize = this.covered();
    this.staged = true;
    this.parts = [];
    this.uploadId = undefined;
    this.highest = 0;
    this.nextNumber = this.firstFreeNumber();
    if (this.session) await this.persist();
  }

  /**
   * Completes the upload at the staging key; false when parts past the counted ones had to be
   * included (the object is then longer than covered()).
   */
  private async completeUpload(): Promise<boolean> {
    const key = this.ctx.layout.data(this.id);
    const exact = !this.leftover();
    const parts = exact ? this.parts : (await this.ctx.listParts(key, this.uploadId!)).sort((a, b) => a.number - b.number);
    await this.ctx.client.send(
      new CompleteMultipartUploadCommand({
        Bucket: this.ctx.bucket,
        Key: key,
        UploadId: this.uploadId,
        MultipartUpload: { Parts: parts.map((p) => ({ PartNumber: p.number, ETag: p.etag })) },
      }),
    );
    return exact;
  }

  /** Whether the upload holds parts past the counted ones (a failed append's, a cut). */
  private leftover(): boolean {
    return this.uploadId !== undefined && this.highest > (this.parts[this.parts.length - 1]?.number ?? 0);
  }

  private async hash(algorithm: DigestAlgorithm): Promise<string> {
    const hash = newHash(algorithm);
    await pipeline(this.read(), async (src: AsyncIterable<Buffer>) => {
      for await (const chunk of src) hash.update(chunk);
    });
    return `${algorithm}:${hash.digest('hex')}`;
  }

  /** Puts the verified bytes under the digest's key unless they are there already. */
  private async place(digest: string): Promise<BlobStat> {
    const existing = await this.ctx.stat(digest);
    if (existing && existing.size === this.size) return existing;
    const { client, bucket, layout } = this.ctx;
    const target = layout.blob(digest);
    if (this.parts.length === 0 && !this.staged && !this.complete) {
      // No part stored (never filled one, or cut back before it): one PutObject of the scratch file.
      await client.send(
        new PutObjectCommand({
          Bucket: bucket,
          Key: target,
          ContentLength: this.size,
          Body: this.size === 0 ? Buffer.alloc(0) : createReadStream(this.localPath, { start: 0, end: this.size - 1 }),
        }),
      );
    } else {
      if (!this.complete) {
        // Parts left past the end cannot be dropped from an upload: it is staged with them, and the
        // counted bytes copied into a new one.
        if (this.leftover()) await this.stage();
        if (this.size > this.covered()) {
          const number = this.nextNumber++;
          this.parts.push(await this.uploadPart(number, this.covered(), this.size - this.covered()));
        } else if (this.staged && this.parts.length === 0 && !this.stagedExact) {
          await this.upload();
        }
        // A staged object that holds every byte and no more is the staging object already.
        if (this.parts.length > 0) await this.completeUpload();
        this.uploadId = undefined;
        this.complete = true;
      }
      await this.ctx.copy(layout.data(this.id), target, this.size);
    }
    // A collector may set the blob aside at any moment; then the time of the commit serves.
    return (await this.ctx.stat(digest)) ?? { size: this.size, modifiedAt: Date.now() };
  }
}

/** Ranges of at most `max` bytes that cover `size`, all but the last as large as they can be. */
export function copyPieces(size: number, max: number): Array<{ offset: number; size: number }> {
  const count = Math.max(1, Math.ceil(size / max));
  const each = Math.ceil(size / count);
  const out: Array<{ offset: number; size: number }> = [];
  for (let offset = 0; offset < size; offset += each) out.push({ offset, size: Math.min(each, size - offset) });
  return out;
}

function ignoreNotFound(err: unknown): void {
  if (!isS3NotFound(err)) throw err;
}

/** An anonymous writer's id (the shape paths.ts knows). */
export function anonymousWriterId(): string {
  return `.writer-${randomBytes(12).toString('hex')}`;
}
