// The collector's side of the filesystem blob store: removing a blob file without ever losing one a
// writer has just recorded again, walking the committed files, and clearing the trash.
//
// A file is removed in three steps: renamed to <data>/trash/ (same filesystem, atomic), the metadata
// row checked again, then unlinked — or, if a writer recorded the blob meanwhile, put back. Writers
// record the row before they rely on the file and check the file again after (FsBlobStore.place),
// so whichever side moves second sees the other: the file is never gone while its row exists.
import { randomBytes } from 'node:crypto';
import { link, mkdir, readdir, rename, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { blobPath } from '../storage/paths.js';
import { tryParseDigest } from '../oci/digest.js';

const isCode = (err: unknown, code: string): boolean => (err as NodeJS.ErrnoException | undefined)?.code === code;

export type RemoveOutcome = 'removed' | 'restored' | 'absent';

export interface BlobFile {
  digest: string;
  mtimeMs: number;
}

export class BlobFiles {
  readonly trashDir: string;

  constructor(readonly root: string) {
    this.trashDir = join(root, 'trash');
  }

  /**
   * Removes the file of `digest` unless `rowIsBack()` says a writer recorded the blob again after it
   * was moved aside, in which case the file goes back (or, if a writer has placed its own copy
   * meanwhile, the identical trashed one is dropped).
   */
  async remove(digest: string, rowIsBack: () => Promise<boolean>): Promise<RemoveOutcome> {
    const moved = await this.moveAside([digest]);
    if (moved.size === 0) return 'absent';
    const { restored } = await this.settle(moved, (await rowIsBack()) ? new Set([digest]) : new Set());
    return restored.length > 0 ? 'restored' : 'removed';
  }


  /** Step one of remove() for many files: each moved aside; the trashed path by digest (absent ones left out). */
  async moveAside(digests: Iterable<string>): Promise<Map<string, string>> {
    await mkdir(this.trashDir, { recursive: true });
    const moved = new Map<string, string>();
    await eachLimited([...digests], async (digest) => {
      const trashed = join(this.trashDir, `${digest.replace(':', '-')}.${randomBytes(6).toString('hex')}`);
      try {
        await rename(blobPath(this.root, digest), trashed);
        moved.set(digest, trashed);
      } catch (err) {
        if (!isCode(err, 'ENOENT')) throw err;
      }
    });
    return moved;
  }

  /** Step three: put back what a writer recorded again meanwhile (`back`), drop the rest. */
  async settle(moved: Map<string, string>, back: Set<string>): Promise<{ removed: string[]; restored: string[] }> {
    const removed: string[] = [];
    const restored: string[] = [];
    await eachLimited([...moved], async ([digest, trashed]) => {
      if (back.has(digest)) {
        await this.restore(trashed, blobPath(this.root, digest));
        restored.push(digest);
      } else {
        await rm(trashed, { force: true });
        removed.push(digest);
      }
    });
    return { removed, restored };
  }

  /** Committed blob files, one two-hex directory at a time (memory stays bounded). */
  async *walk(): AsyncGenerator<BlobFile[]> {
    const blobsDir = join(this.root, 'blobs');
    for (const algorithm of await listDir(blobsDir)) {
      for (const prefix of await listDir(join(blobsDir, algorithm))) {
        const dir = join(blobsDir, algorithm, prefix);
        const batch: BlobFile[] = [];
        for (const name of await listDir(dir)) {
          const digest = `${algorithm}:${name}`;
          // Only content-addressed names: anything else (a stray temporary) is not ours to judge.
          if (!tryParseDigest(digest) || !name.startsWith(prefix)) continue;
          try {
            batch.push({ digest, mtimeMs: (await stat(join(dir, name))).mtimeMs });
          } catch (err) {
            if (!isCode(err, 'ENOENT')) throw err;
          }
        }
        if (batch.length > 0) yield batch;
      }
    }
  }

  /**
   * Leftovers of a collector that stopped between moving a file aside and deciding (a crash): put
   * back when the blob is recorded and its place is empty, dropped otherwise. Returns how many went.
   */
  async clearTrash(isRecorded: (digest: string) => Promise<boolean>): Promise<number> {
    let dropped = 0;
    for (const name of await listDir(this.trashDir)) {
      const file = join(this.trashDir, name);
      const digest = name.replace(/\..*$/, '').replace('-', ':');
      if (tryParseDigest(digest) && (await isRecorded(digest))) {
        await this.restore(file, blobPath(this.root, digest));
      } else {
        await rm(file, { force: true });
        dropped++;
      }
    }
    return dropped;
  }

  private async restore(trashed: string, target: string): Promise<void> {
    try {
      await mkdir(join(target, '..'), { recursive: true });
      await link(trashed, target);
    } catch (err) {
      // Already there: a writer placed the same (content-addressed) bytes.
      if (!isCode(err, 'EEXIST')) throw err;
    }
    await rm(trashed, { force: true });
  }
}

async function listDir(dir: string): Promise<string[]> {
  try {
    return await readdir(dir);
  } catch (err) {
    if (isCode(err, 'ENOENT') || isCode(err, 'ENOTDIR')) return [];
    throw err;
  }
}

/** Filesystem operations in parallel, a few at a time (libuv's thread pool does the work). */
const FS_PARALLEL = 16;

async function eachLimited<T>(items: T[], fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) await fn(items[next++] as T);
  };
  await Promise.all(Array.from({ length: Math.min(FS_PARALLEL, items.length) }, worker));
}
