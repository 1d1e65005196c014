// A writer of the filesystem blob store: one file under uploads/ (named by the session for an
// upload, at random otherwise) that grows in order, is hashed, and gets a second name in blobs/ once
// verified. The second name comes from an atomic link or rename, so a reader never sees a partial
// blob and two writers of the same digest both end with the same complete file; the writer's own
// name stays until cancel(), so a commit repeated after a collector set the blob aside puts it back.
import { createReadStream } from 'node:fs';
import { copyFile, link, mkdir, open, rename, rm, stat, truncate, type FileHandle } from 'node:fs/promises';
import { dirname } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { BlobReader, BlobStat, BlobWriter } from './blob-store.js';
import { blobPath } from './paths.js';
import { SizeMismatchError } from './storage-errors.js';
import { WriterGuard } from './writer-guard.js';
import { isNotFound } from './fs-dirs.js';
import { newHash, type DigestAlgorithm } from '../oci/digest.js';


/**
 * How an append batches what it takes: a vectored write starts as soon as the previous one is done
 * and at least WRITE_MIN bytes wait; reading stops while WRITE_MAX bytes wait behind a running
 * write. The hash (onData) runs on the bytes as they arrive, alongside the write of the batch before:
 * per-chunk writes through a write stream (64 KiB at a time, the next chunk waiting for each) left
 * the disk and the hash taking turns.
 */
const WRITE_MIN = 1024 * 1024;
const WRITE_MAX = 8 * 1024 * 1024;

export class FsBlobWriter implements BlobWriter {
  /** Writable until committed (under one digest) or cancelled. */
  private readonly guard: WriterGuard;
  /** Open for write() (vectored writes at the end), closed by commit and cancel. */
  private handle: FileHandle | undefined;

  constructor(
    readonly id: string,
    private readonly root: string,
    private readonly path: string,
    private written: number,
  ) {
    this.guard = new WriterGuard(id);
  }

  get size(): number {
    return this.written;
  }

  async write(buffers: Buffer[]): Promise<void> {
    this.guard.writable();
    const start = this.written;
    const total = buffers.reduce((n, b) => n + b.length, 0);
    try {
      this.handle ??= await open(this.path, 'r+');
      await writeAll(this.handle, buffers, start);
    } catch (err) {
      // Bytes of a failed write go back at once (cutting a file needs no free space).
      await truncate(this.path, start).catch(() => undefined);
      throw err;
    }
    this.written = start + total;
  }

  async append(source: Readable, opts: { onData?: (chunk: Buffer) => void; length?: number } = {}): Promise<number> {
    this.guard.writable();
    const start = this.written;
    const max = opts.length ?? Number.POSITIVE_INFINITY;
    const onData = opts.onData;
    // Its own descriptor, closed before returning: a writer resumed for one chunk is dropped after it.
    const file = await open(this.path, 'r+');
    let position = start;
    let batch: Buffer[] = [];
    let batchBytes = 0;
    let running: Promise<void> | undefined;
    let failure: unknown;
    const flush = () => {
      const buffers = batch;
      const at = position;
      position += batchBytes;
      batch = [];
      batchBytes = 0;
      running = writeAll(file, buffers, at).then(
        () => void (running = undefined),
        (err: unknown) => void (failure ??= err),
      );
    };
    try {
      let bytes = 0;
      for await (const chunk of source as AsyncIterable<Buffer>) {
        if (failure !== undefined) throw failure;
        bytes += chunk.length;
        if (bytes > max) throw new SizeMismatchError(`content is longer than the declared ${max} bytes`, max);
        onData?.(chunk);
        batch.push(chunk);
        batchBytes += chunk.length;
        if (running && batchBytes >= WRITE_MAX) await running;
        if (failure !== undefined) throw failure;
        if (!running && batchBytes >= WRITE_MIN) flush();
      }
      if (opts.length !== undefined && bytes !== opts.length) {
        throw new SizeMismatchError(`chunk declared ${opts.length} bytes but ${bytes} arrived`, opts.length, bytes);
      }
      if (running) await running;
      if (failure === undefined && batchBytes > 0) {
        flush();
        await running;
      }
      if (failure !== undefined) throw failure;
      this.written = start + bytes;
      return this.written;
    } catch (err) {
      // A failed chunk (a full disk, a short or long body, a client gone) takes its bytes back at
      // once: the space is free again and the writer resumes where it was. A write still running
      // finishes first, so nothing lands after the cut.
      await running;
      await truncate(this.path, start).catch(() => undefined);
      throw err;
    } finally {
      await file.close();
    }
  }

  async truncate(size: number): Promise<void> {
    this.guard.writable();
    await truncate(this.path, size);
    this.written = size;
  }

  async reader(): Promise<BlobReader> {
    // Opened on the writer's file while it exists; the descriptor stays valid after it is linked,
    // renamed or unlinked. A reader that arrives after cancel() finds the bytes at their digest.
    let file: FileHandle;
    try {
      file = await open(this.path, 'r');
    } catch (err) {
      const committed = this.guard.committed;
      if (!isNotFound(err) || committed === undefined) throw err;
      file = await open(blobPath(this.root, committed), 'r');
    }
    return {
      read: async (position, length, into) => {
        const buf = into !== undefined && into.length >= length ? into : Buffer.allocUnsafe(length);
        const { bytesRead } = await file.read(buf, 0, length, position);
        return buf.subarray(0, bytesRead);
      },
      close: () => file.close(),
    };
  }

  read(end?: number): Readable {
    if (end === 0) return Readable.from([]);
    return createReadStream(this.path, end === undefined ? {} : { start: 0, end: end - 1 });
  }

  async commit(digest: string, opts: { knownDigest?: string; size?: number } = {}): Promise<BlobStat> {
    await this.guard.verify(digest, opts, {
      settle: async (size) => {
        await this.closeHandle();
        if (size !== undefined && size !== this.written) {
          await truncate(this.path, size);
          this.written = size;
        }
      },
      hash: (algorithm) => hashFile(this.path, algorithm),
    });
    const placed = await this.place(digest);
    return { size: this.written, modifiedAt: placed.mtimeMs };
  }

  async cancel(): Promise<void> {
    this.guard.cancel();
    await this.closeHandle();
    await rm(this.path, { force: true });
    await rm(`${this.path}.copy`, { force: true });
  }

  private async closeHandle(): Promise<void> {
    const handle = this.handle;
    this.handle = undefined;
    await handle?.close();
  }

  /** Puts a second name on the writer's file at the blob's place unless a complete file is there already. */
  private async place(digest: string): Promise<{ mtimeMs: number }> {
    const target = blobPath(this.root, digest);
    const existing = await statOf(target);
    if (existing && existing.size === this.written) return existing;
    await mkdir(dirname(target), { recursive: true });
    if (existing) await rm(target, { force: true });
    try {
      await link(this.path, target);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'EEXIST') return (await statOf(target)) ?? { mtimeMs: Date.now() };
      if (code !== 'EPERM' && code !== 'ENOTSUP' && code !== 'EXDEV') throw err;
      // No hard links here: a copy under a temporary name, renamed into place.
      const copy = `${this.path}.copy`;
      await copyFile(this.path, copy);
      await rename(copy, target);
    }
    // A collector may set the blob aside at any moment; the time of our own file serves then.
    return (await statOf(target)) ?? (await stat(this.path));
  }
}

async function statOf(path: string): Promise<{ size: number; mtimeMs: number } | undefined> {
  try {
    return await stat(path);
  } catch (err) {
    if (isNotFound(err)) return undefined;
    throw err;
  }
}

async function hashFile(path: string, algorithm: DigestAlgorithm): Promise<string> {
  const hash = newHash(algorithm);
  await pipeline(createReadStream(path), async (src: AsyncIterable<Buffer>) => {
    for await (const chunk of src) hash.update(chunk);
  });
  return `${algorithm}:${hash.digest('hex')}`;
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
