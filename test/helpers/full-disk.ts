// A blob store whose disk fills up: a real FsBlobStore in a temporary directory, wrapped so that
// every write past a budget fails with ENOSPC exactly as node:fs reports it (code, errno, syscall).
// The budget covers every BlobWriter's writes and appends (a fill, an upload's chunks, monolithic
// pushes, manifests). Reads are not affected.
import { readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import type { BlobWriter } from '../../src/storage/blob-store.js';
import { FsBlobStore } from '../../src/storage/fs-blob-store.js';
import { wrapWriter } from './wrap-writer.js';

export interface FullDisk {
  store: FsBlobStore;
  /** Bytes that may still be written; Infinity (the start) for no limit. */
  left: number;
  /** Writes refused so far. */
  refused: number;
}

export function enospc(): NodeJS.ErrnoException {
  return Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC', errno: -28, syscall: 'write' });
}

export async function fullDiskStore(root: string): Promise<FullDisk> {
  const inner = await FsBlobStore.open(root);
  const disk: FullDisk = { store: inner, left: Number.POSITIVE_INFINITY, refused: 0 };
  const take = (n: number): void => {
    if (n > disk.left) {
      disk.left = 0;
      disk.refused++;
      throw enospc();
    }
    disk.left -= n;
  };
  /** `source` as it reaches the disk: an ENOSPC error once the budget is spent (read only when the writer reads). */
  const limited = (source: Readable): Readable =>
    Readable.from(
      (async function* () {
        for await (const chunk of source) {
          take((chunk as Buffer).length);
          yield chunk as Buffer;
        }
      })(),
      { objectMode: false },
    );
  const limitedWriter = (w: BlobWriter): BlobWriter =>
    wrapWriter(w, {
      write: async (buffers) => {
        take(buffers.reduce((n, b) => n + b.length, 0));
        await w.write(buffers);
      },
      append: (source, opts) => w.append(limited(source), opts),
    });
  const store = Object.create(inner) as FsBlobStore;
  store.writer = async (session) => limitedWriter(await inner.writer(session));
  store.resume = async (session) => {
    const w = await inner.resume(session);
    return w && limitedWriter(w);
  };
  disk.store = store;
  return disk;
}

/** Bytes held by the files under `dir` (recursively): what a full disk would get back. */
export async function bytesUnder(dir: string): Promise<number> {
  let total = 0;
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    total += entry.isDirectory() ? await bytesUnder(path) : (await stat(path)).size;
  }
  return total;
}
