// Filesystem BlobStore. Committed blobs live under blobs/ by digest; every write goes through a
// writer, a file under uploads/ (src/storage/fs-blob-writer.ts) that is verified before it gets its
// name under blobs/. The layout is in src/storage/paths.ts.
import { mkdir, open, rm, stat } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import type { AsideHandle, BlobStat, BlobStore, BlobWriter, ByteRange, StaleWriter, StoredBlob } from './blob-store.js';
import { blobPath, isSessionId, isWriterFile, uploadPath, uploadsDir, writerPath } from './paths.js';
import { FileBlobStream } from './file-blob-stream.js';
import { FsBlobAside } from './fs-blob-aside.js';
import { listBlobs } from './fs-blob-list.js';
import { FsBlobWriter } from './fs-blob-writer.js';
import { isNotFound, listDir } from './fs-dirs.js';
import { BlobNotFoundError } from './storage-errors.js';

export class FsBlobStore implements BlobStore {
  /** A session's writer is a file like any other: fills write to sessions at no extra cost. */
  readonly cheapSessions = true;
  private readonly aside: FsBlobAside;

  private constructor(readonly root: string) {
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
      return { size: s.size, modifiedAt: s.mtimeMs };
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

  async writer(session?: string): Promise<BlobWriter> {
    const id = session ?? `.writer-${randomBytes(12).toString('hex')}`;
    const path = session === undefined ? writerPath(this.root, id) : uploadPath(this.root, session);
    await (await open(path, 'wx')).close();
    return new FsBlobWriter(id, this.root, path, 0);
  }

  async resume(session: string): Promise<BlobWriter | undefined> {
    if (!isSessionId(session)) return undefined;
    const path = uploadPath(this.root, session);
    try {
      return new FsBlobWriter(session, this.root, path, (await stat(path)).size);
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw err;
    }
  }

  async *staleWriters(before: number): AsyncIterable<StaleWriter> {
    for (const name of await listDir(uploadsDir(this.root))) {
      if (!isWriterFile(name)) continue;
      try {
        if ((await stat(join(uploadsDir(this.root), name))).mtimeMs >= before) continue;
      } catch (err) {
        // Committed and cancelled meanwhile.
        if (isNotFound(err)) continue;
        throw err;
      }
      yield { id: name, session: isSessionId(name) };
    }
  }

  async removeWriter(id: string): Promise<void> {
    const path = writerPath(this.root, id);
    await rm(path, { force: true });
    await rm(`${path}.copy`, { force: true });
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
}
