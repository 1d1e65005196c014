// The collector's side of a blob's life: rows and bytes removed without ever losing a blob a writer
// has just recorded again.
//
// Bytes go in two steps: set aside by the store (out of the digest's place, still recoverable), the
// rows checked again, then purged — or, if a writer recorded the blob meanwhile, restored. Writers
// record the row before they rely on the bytes and check the bytes again after (the store's commit),
// so whichever side moves second sees the other: the bytes are never gone while their row exists.
import type { AsideHandle, BlobStore } from '../storage/blob-store.js';
import type { GcState } from '../metadata/gc-state.js';

export interface SweepResult {
  /** Blobs whose rows and bytes went, with their sizes. */
  removed: Map<string, number>;
  /** Blobs recorded again by a writer while their bytes were set aside: put back. */
  restored: string[];
}

/** Store listings read per page by the orphan sweep. */
const PAGE = 1000;

export class BlobSweep {
  constructor(
    private readonly gc: GcState,
    private readonly store: BlobStore,
  ) {}

  /**
   * The collector's blob step for dead `digests`: their rows deleted (each re-checked as it goes, one
   * transaction), the bytes of those set aside, the rows checked again, and the bytes restored where
   * a writer recorded the blob meanwhile, purged elsewhere.
   */
  async sweep(digests: string[], cutoff: number): Promise<SweepResult> {
    const swept = await this.gc.sweepBlobs(digests, cutoff);
    if (swept.size === 0) return { removed: swept, restored: [] };
    const aside = await mapLimited([...swept.keys()], (d) => this.store.setAside(d));
    const { restored } = await this.settle(aside.filter((h): h is AsideHandle => h !== undefined));
    const back = new Set(restored);
    return { removed: new Map([...swept].filter(([d]) => !back.has(d))), restored };
  }

  /**
   * Committed blobs without a row whose bytes are older than `cutoff` (a crash between bytes and
   * row), each removed in the same two steps; how many went (or would go, with `dryRun`).
   * `checkpoint` runs before each page (the collector stops there when it lost its lock).
   */
  async sweepOrphans(cutoff: number, dryRun: boolean, checkpoint?: () => void): Promise<number> {
    let count = 0;
    let after: string | undefined;
    for (;;) {
      checkpoint?.();
      const page = await this.store.list(after, PAGE);
      const old = page.filter((b) => b.modifiedAt < cutoff);
      const recorded = old.length > 0 ? await this.gc.existingBlobs(old.map((b) => b.digest)) : new Set<string>();
      for (const b of old) {
        if (recorded.has(b.digest)) continue;
        if (dryRun) count++;
        else {
          const handle = await this.store.setAside(b.digest);
          if (handle && (await this.settle([handle])).purged.length > 0) count++;
        }
      }
      const last = page[page.length - 1];
      if (page.length < PAGE || !last) return count;
      after = last.digest;
    }
  }

  /**
   * Bytes a collector that stopped (a crash) left set aside: restored when the blob is recorded,
   * purged otherwise. How many were purged.
   */
  async recoverAside(): Promise<number> {
    let purged = 0;
    for await (const handle of this.store.leftAside()) purged += (await this.settle([handle])).purged.length;
    return purged;
  }

  /** See BlobLedger.sweepWriters. */
  async sweepWriters(before: number, isLiveSession: (id: string) => Promise<boolean>): Promise<number> {
    let removed = 0;
    for await (const w of this.store.staleWriters(before)) {
      if (w.session && (await isLiveSession(w.id))) continue;
      await this.store.removeWriter(w.id);
      removed++;
    }
    return removed;
  }

  /** Step two for set-aside bytes: restored where the blob has a row again, purged elsewhere. */
  private async settle(handles: AsideHandle[]): Promise<{ restored: string[]; purged: string[] }> {
    const restored: string[] = [];
    const purged: string[] = [];
    if (handles.length === 0) return { restored, purged };
    const recorded = await this.gc.existingBlobs(handles.map((h) => h.digest));
    await mapLimited(handles, async (h) => {
      if (recorded.has(h.digest)) {
        await this.store.restore(h);
        restored.push(h.digest);
      } else {
        await this.store.purge(h);
        purged.push(h.digest);
      }
    });
    return { restored, purged };
  }
}

/** Storage operations in parallel, a few at a time (libuv's thread pool, or a driver's connections). */
const PARALLEL = 16;

async function mapLimited<T, R>(items: T[], fn: (item: T) => Promise<R>): Promise<R[]> {
  const out = new Array<R>(items.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i] as T);
    }
  };
  await Promise.all(Array.from({ length: Math.min(PARALLEL, items.length) }, worker));
  return out;
}
