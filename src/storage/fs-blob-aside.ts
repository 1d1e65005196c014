// The collector's two-step delete on the filesystem: a blob file is renamed into <data>/trash/ (same
// filesystem, atomic), and from there either linked back to its place or removed. What a collector
// that stopped (a crash) left in trash/ is listed for the next run to decide. The decision itself
// (is the blob recorded again?) belongs to the ledger (src/ledger/blob-ledger.ts), not to storage.
import { randomBytes } from 'node:crypto';
import { link, mkdir, rename, rm } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import type { AsideHandle } from './blob-store.js';
import { blobPath } from './paths.js';
import { isCode, listDir } from './fs-dirs.js';
import { tryParseDigest } from '../oci/digest.js';

/** <algorithm>-<hex>.<random>: the digest, and a random part so two set-asides never collide. */
const KEY = /^([a-z0-9]+)-([0-9a-f]+)\.[0-9a-f]+$/;

export class FsBlobAside {
  private readonly dir: string;

  constructor(private readonly root: string) {
    this.dir = join(root, 'trash');
  }

  async setAside(digest: string): Promise<AsideHandle | undefined> {
    const handle = { digest, key: `${digest.replace(':', '-')}.${randomBytes(6).toString('hex')}` };
    const from = blobPath(this.root, digest);
    for (let attempt = 0; ; attempt++) {
      try {
        await rename(from, this.path(handle));
        return handle;
      } catch (err) {
        if (!isCode(err, 'ENOENT')) throw err;
        // Either the blob is absent or trash/ is (first use, or removed by hand): made, tried once more.
        if (attempt > 0) return undefined;
        await mkdir(this.dir, { recursive: true });
      }
    }
  }

  async restore(handle: AsideHandle): Promise<void> {
    const trashed = this.path(handle);
    const target = blobPath(this.root, handle.digest);
    await mkdir(dirname(target), { recursive: true });
    try {
      await link(trashed, target);
    } catch (err) {
      if (isCode(err, 'EPERM') || isCode(err, 'ENOTSUP')) {
        // No hard links on this filesystem: the set-aside file itself goes back (rename replaces a
        // writer's copy of the same content-addressed bytes, which readers holding it open keep).
        await rename(trashed, target);
        return;
      }
      // Already there: a writer placed the same (content-addressed) bytes meanwhile.
      if (!isCode(err, 'EEXIST')) throw err;
    }
    await rm(trashed, { force: true });
  }

  async purge(handle: AsideHandle): Promise<void> {
    await rm(this.path(handle), { force: true });
  }

  async *leftAside(): AsyncGenerator<AsideHandle> {
    for (const key of await listDir(this.dir)) {
      const m = KEY.exec(key);
      const digest = m ? `${m[1]}:${m[2]}` : '';
      if (m && tryParseDigest(digest)) yield { digest, key };
      // Not a name setAside gives: nothing can bring it back, and trash/ is the store's own.
      else await rm(join(this.dir, key), { force: true });
    }
  }

  /** The set-aside file of a handle; only names setAside gives are ever joined into a path. */
  private path(handle: AsideHandle): string {
    const m = KEY.exec(handle.key);
    if (!m || `${m[1]}:${m[2]}` !== handle.digest) throw new Error(`not a set-aside blob: ${handle.key}`);
    return join(this.dir, handle.key);
  }
}
