// Pull times, batched (DESIGN.md "Storage": a pull never waits on a metadata write). Pulls mark
// manifests and blobs in memory; a timer writes the batch every `intervalMs` in one transaction.
// The collector's cache eviction (maxAge, maxSize LRU) reads these times. Times only move forward,
// so several processes flushing out of order do no harm. A touch lost in a crash costs an earlier
// eviction at worst, never data.
import type { RegistryMetadata } from './registry-metadata.js';

export interface AccessTrackerOptions {
  /** How often the batch is written; default 5 s. */
  intervalMs?: number;
  /** A batch this large is written at once instead of waiting for the timer; default 10,000. */
  maxPending?: number;
  now?: () => number;
  onError?: (err: unknown) => void;
}

export class AccessTracker {
  private manifests = new Map<string, { repo: string; digest: string; at: number }>();
  private blobs = new Map<string, number>();
  private readonly timer: NodeJS.Timeout;
  private flushing: Promise<void> = Promise.resolve();
  private closed = false;
  private readonly maxPending: number;
  private readonly now: () => number;

  constructor(
    private readonly metadata: RegistryMetadata,
    private readonly opts: AccessTrackerOptions = {},
  ) {
    this.maxPending = opts.maxPending ?? 10_000;
    this.now = opts.now ?? Date.now;
    this.timer = setInterval(() => void this.flush(), opts.intervalMs ?? 5000);
    this.timer.unref();
  }

  touchManifest(repo: string, digest: string): void {
    if (this.closed) return;
    this.manifests.set(`${repo}@${digest}`, { repo, digest, at: this.now() });
    this.maybeFlush();
  }

  touchBlob(digest: string): void {
    if (this.closed) return;
    this.blobs.set(digest, this.now());
    this.maybeFlush();
  }

  /** Writes what is pending; resolves once written (failures go to onError, the batch is dropped). */
  flush(): Promise<void> {
    // Flushes run one after another, so a later batch never lands before an earlier one.
    this.flushing = this.flushing.then(() => this.write());
    return this.flushing;
  }

  /** Stops the timer and writes what is pending; call before closing the metadata database. */
  async close(): Promise<void> {
    if (this.closed) return this.flushing;
    this.closed = true;
    clearInterval(this.timer);
    await this.flush();
  }

  private maybeFlush(): void {
    if (this.manifests.size + this.blobs.size >= this.maxPending) void this.flush();
  }

  private async write(): Promise<void> {
    if (this.manifests.size === 0 && this.blobs.size === 0) return;
    const manifests = [...this.manifests.values()];
    const blobs = [...this.blobs].map(([digest, at]) => ({ digest, at }));
    this.manifests = new Map();
    this.blobs = new Map();
    try {
      await this.metadata.touchAccess({ manifests, blobs });
    } catch (err) {
      this.opts.onError?.(err);
    }
  }
}
