// Filesystem BlobStore. Every write goes to a temporary file under uploads/, is hashed while it
// streams, verified, and only then renamed into blobs/: a reader never sees a partial blob, and two
// concurrent writers of the same digest both end with the same complete file (rename is atomic).
import { createReadStream, createWriteStream } from 'node:fs';
import { copyFile, link, mkdir, open, rename, rm, stat, truncate, type FileHandle } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { dirname, join } from 'node:path';
import { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { AsideHandle, BlobStat, BlobStore, ByteRange, IngestResult, RegisterBlob, StoredBlob, TempBlob, UploadArea } from './blob-store.js';
import { blobPath, uploadPath, uploadsDir } from './paths.js';
import { FileBlobStream } from './file-blob-stream.js';
import { FsBlobAside } from './fs-blob-aside.js';
import { listBlobs } from './fs-blob-list.js';
import { BlobNotFoundError, DigestMismatchError, SizeMismatchError } from './storage-errors.js';
import { checkDigest, newHash, type DigestAlgorithm } from '../oci/digest.js';

const isNotFound = (err: unknown): boolean => (err as NodeJS.ErrnoException | undefined)?.code === 'ENOENT';

/** Counts and hashes bytes as they pass; fails once more than `max` bytes arrive. */
class Meter extends Transform {
  bytes = 0;
  constructor(
    private readonly onChunk: (chunk: Buffer) => void,
    private readonly max = Number.POSITIVE_INFINITY,
  ) {
    super();
  }
  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: (err?: Error | null, data?: Buffer) => void): void {
    this.bytes += chunk.length;
    if (this.bytes > this.max) {
      cb(new SizeMismatchError(`content is longer than the declared ${this.max} bytes`, this.max));
      return;
    }
    this.onChunk(chunk);
    cb(null, chunk);
  }
}

export class FsBlobStore implements BlobStore {
  readonly uploads: UploadArea;
  private readonly aside: FsBlobAside;

  private constructor(readonly root: string) {
    this.uploads = new FsUploadArea(root, (tmp, digest, size, register) => this.place(tmp, digest, size, register));
    this.aside = new FsBlobAside(root);
  }

  static async open(root: string): Promise<FsBlobStore> {
    await mkdir(join(root, 'blobs'), { recursive: true });
    await mkdir(uploadsDir(root), { recursive: true });
    return new FsBlobStore(root);
  }

  /** The store on `root` as it is, creating nothing: for read-only checks (fsck). */
  static existing(root: string): FsBlobStore {
    return new FsBlobStore(root);
  }

  async stat(digest: string): Promise<BlobStat | undefined> {
    try {
      const s = await stat(blobPath(this.root, digest));
      return { size: s.size };
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw err;
    }
  }

  async open(digest: string, range?: ByteRange): Promise<Readable> {
    let handle;
    try {
      handle = await open(blobPath(this.root, digest), 'r');
    } catch (err) {
      if (isNotFound(err)) throw new BlobNotFoundError(digest, { cause: err });
      throw err;
    }
    // The open handle keeps the bytes readable even if the file is unlinked meanwhile.
    if (range) return new FileBlobStream(handle, range.start, range.end);
    const { size } = await handle.stat();
    return new FileBlobStream(handle, 0, size - 1);
  }

  async ingest(
    source: Readable,
    expected: { digest?: string; size?: number; algorithm?: DigestAlgorithm },
    register?: RegisterBlob,
  ): Promise<IngestResult> {
    const algorithm = expected.digest ? checkDigest(expected.digest).algorithm : (expected.algorithm ?? 'sha256');
    const hash = newHash(algorithm);
    const meter = new Meter((c) => hash.update(c), expected.size);
    const tmp = join(uploadsDir(this.root), `.ingest-${randomBytes(12).toString('hex')}`);
    try {
      await pipeline(source, meter, createWriteStream(tmp, { flags: 'wx' }));
      const digest = `${algorithm}:${hash.digest('hex')}`;
      if (expected.size !== undefined && meter.bytes !== expected.size) {
        throw new SizeMismatchError(`received ${meter.bytes} bytes, expected ${expected.size}`, expected.size, meter.bytes);
      }
      if (expected.digest !== undefined && digest !== expected.digest) {
        throw new DigestMismatchError(`content digest is ${digest}, not the declared ${expected.digest}`, expected.digest, digest);
      }
      await this.place(tmp, digest, meter.bytes, register);
      return { digest, size: meter.bytes };
    } catch (err) {
      await rm(tmp, { force: true });
      throw err;
    }
  }

  async delete(digest: string): Promise<boolean> {
    try {
      await rm(blobPath(this.root, digest));
      return true;
    } catch (err) {
      if (isNotFound(err)) return false;
      throw err;
    }
  }

  list(after: string | undefined, limit: number): Promise<StoredBlob[]> {
    return listBlobs(this.root, after, limit);
  }

  setAside(digest: string): Promise<AsideHandle | undefined> {
    return this.aside.setAside(digest);
  }

  restore(handle: AsideHandle): Promise<void> {
    return this.aside.restore(handle);
  }

  purge(handle: AsideHandle): Promise<void> {
    return this.aside.purge(handle);
  }

  leftAside(): AsyncIterable<AsideHandle> {
    return this.aside.leftAside();
  }

  async temp(): Promise<TempBlob> {
    const path = join(uploadsDir(this.root), `.fill-${randomBytes(12).toString('hex')}`);
    await (await open(path, 'wx')).close();
    let committed: string | undefined;
    return {
      openWriter: async () => {
        const file = await open(path, 'r+');
        return { write: (buffers, position) => writeAll(file, buffers, position), close: () => file.close() };
      },
      openReader: async () => {
        // Opened on the path while it exists; the descriptor stays valid after the rename or unlink.
        // A reader that arrives after the commit finds the bytes at their final place.
        let reader;
        try {
          reader = await open(path, 'r');
        } catch (err) {
          if (!isNotFound(err) || committed === undefined) throw err;
          reader = await open(blobPath(this.root, committed), 'r');
        }
        return {
          read: async (position, length) => {
            const buf = Buffer.allocUnsafe(length);
            const { bytesRead } = await reader.read(buf, 0, length, position);
            return buf.subarray(0, bytesRead);
          },
          close: () => reader.close(),
        };
      },
      commit: async (digest, size, register) => {
        committed = digest;
        try {
          await this.place(path, digest, size, register);
        } catch (err) {
          committed = undefined;
          throw err;
        }
      },
      discard: async () => {
        await rm(path, { force: true });
      },
    };
  }

  /**
   * Moves a verified temporary file into its content-addressed place. With `register`, the order is
   * what keeps a collector running at the same time from losing the blob (src/gc/collector.ts): the
   * file goes in place first (a crash leaves an orphan file, never a row without its file), then the
   * metadata row is made fresh, then the file is checked again — a collector that deleted the row
   * before `register` may have moved the file away since, and the temporary copy puts it back.
   */
  private async place(tmp: string, digest: string, size: number, register?: RegisterBlob): Promise<void> {
    const target = blobPath(this.root, digest);
    if (!register) {
      const existing = await this.stat(digest);
      if (existing && existing.size === size) {
        await rm(tmp, { force: true });
        return;
      }
      await mkdir(dirname(target), { recursive: true });
      await rename(tmp, target);
      return;
    }
    try {
      await this.putCopy(tmp, digest, size);
      await register({ digest, size });
      await this.putCopy(tmp, digest, size);
    } finally {
      await rm(tmp, { force: true });
    }
  }

  /** Puts a second name on `tmp` at the blob's place unless a complete file is there already. */
  private async putCopy(tmp: string, digest: string, size: number): Promise<void> {
    const existing = await this.stat(digest);
    if (existing && existing.size === size) return;
    const target = blobPath(this.root, digest);
    await mkdir(dirname(target), { recursive: true });
    if (existing) await rm(target, { force: true });
    try {
      await link(tmp, target);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'EEXIST') return;
      if (code !== 'EPERM' && code !== 'ENOTSUP' && code !== 'EXDEV') throw err;
      // No hard links here: a copy under a temporary name, renamed into place.
      const copy = `${tmp}.copy`;
      await copyFile(tmp, copy);
      await rename(copy, target);
    }
  }
}

class FsUploadArea implements UploadArea {
  constructor(
    private readonly root: string,
    private readonly place: (tmp: string, digest: string, size: number, register?: RegisterBlob) => Promise<void>,
  ) {}

  async create(id: string): Promise<void> {
    const fh = await open(uploadPath(this.root, id), 'wx');
    await fh.close();
  }

  async size(id: string): Promise<number | undefined> {
    try {
      return (await stat(uploadPath(this.root, id))).size;
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw err;
    }
  }

  async append(
    id: string,
    offset: number,
    source: Readable,
    onData?: (chunk: Buffer) => void,
    length?: number,
  ): Promise<number> {
    const file = uploadPath(this.root, id);
    // The metadata offset is the truth: bytes past it may come from a chunk cut by a crash.
    await truncate(file, offset);
    const meter = new Meter(onData ?? (() => {}), length);
    try {
      await pipeline(source, meter, createWriteStream(file, { flags: 'r+', start: offset }));
      if (length !== undefined && meter.bytes !== length) {
        throw new SizeMismatchError(`chunk declared ${length} bytes but ${meter.bytes} arrived`, length, meter.bytes);
      }
    } catch (err) {
      // A failed chunk (a full disk, a short or long body, a client gone) takes its bytes back at
      // once: the space is free again and the session resumes at `offset`. Cutting a file needs no
      // free space, so this works on a full disk too.
      await truncate(file, offset).catch(() => undefined);
      throw err;
    }
    return offset + meter.bytes;
  }

  async truncate(id: string, size: number): Promise<void> {
    await truncate(uploadPath(this.root, id), size);
  }

  read(id: string, end?: number): Readable {
    const file = uploadPath(this.root, id);
    if (end === 0) return Readable.from([]);
    return createReadStream(file, end === undefined ? {} : { start: 0, end: end - 1 });
  }

  async commit(id: string, digest: string, opts: { size: number; knownDigest?: string; register?: RegisterBlob }): Promise<IngestResult> {
    const file = uploadPath(this.root, id);
    const { algorithm } = checkDigest(digest);
    await truncate(file, opts.size);
    let actual = opts.knownDigest;
    if (actual === undefined || checkDigest(actual).algorithm !== algorithm) {
      const hash = newHash(algorithm);
      await pipeline(createReadStream(file), new Meter((c) => hash.update(c)), async function* (src) {
        for await (const _ of src) {
          // drain
        }
      });
      actual = `${algorithm}:${hash.digest('hex')}`;
    }
    const size = opts.size;
    if (actual !== digest) {
      await rm(file, { force: true });
      throw new DigestMismatchError(`uploaded content has digest ${actual}, not the declared ${digest}`, digest, actual);
    }
    await this.place(file, digest, size, opts.register);
    return { digest, size };
  }

  async remove(id: string): Promise<void> {
    await rm(uploadPath(this.root, id), { force: true });
  }
}

/** Writes every buffer at `position`, in order, with as few vectored writes as it takes. */
async function writeAll(file: FileHandle, buffers: Buffer[], position: number): Promise<void> {
  let rest = buffers;
  let at = position;
  while (rest.length > 0) {
    const { bytesWritten } = await file.writev(rest, at);
    at += bytesWritten;
    let skip = bytesWritten;
    const next: Buffer[] = [];
    for (const b of rest) {
      if (skip >= b.length) skip -= b.length;
      else {
        next.push(skip > 0 ? b.subarray(skip) : b);
        skip = 0;
      }
    }
    rest = next;
  }
}
