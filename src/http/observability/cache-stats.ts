// The numbers behind GET /api/stats (issue 13): how the pull-through cache answered, the bytes it
// served, each upstream's requests, errors and bytes, and a per-minute history of the last hour in a
// ring buffer. Counted in memory by this node since it started (metrics are the place for sums over
// a cluster: Prometheus adds the nodes up). The clock is injected: tests move time, never sleep.
import type { CacheOutcome } from '../../registry/registry.js';
import type { UpstreamExchange, UpstreamObserver } from '../../upstream/upstream-observer.js';

const MINUTE_MS = 60_000;
export const HISTORY_MINUTES = 60;
/** Consecutive failed exchanges after which an upstream is "down". */
const DOWN_AFTER = 3;
/** An upstream that failed within this long is "degraded". */
const DEGRADED_FOR_MS = 5 * MINUTE_MS;

export interface HistorySample {
  /** The minute's start, ISO-8601. */
  at: string;
  /** Requests served from the cache (hit or stale) in that minute. */
  hits: number;
  /** Requests that went to an upstream (miss, or joined a fetch under way). */
  misses: number;
  /** Bytes received from upstreams. */
  bytesFetched: number;
}

export type UpstreamHealth = 'ok' | 'degraded' | 'down' | 'unknown';

export interface UpstreamCounts {
  requests: number;
  errors: number;
  bytesFetched: number;
  lastError: string | null;
  lastErrorAt: string | null;
  health: UpstreamHealth;
}

interface UpstreamState {
  requests: number;
  errors: number;
  bytesFetched: number;
  consecutiveErrors: number;
  lastError: string | undefined;
  lastErrorAt: number | undefined;
}

interface Slot {
  minute: number;
  hits: number;
  misses: number;
  bytesFetched: number;
}

export class CacheStats implements UpstreamObserver {
  hits = 0;
  misses = 0;
  coalesced = 0;
  stale = 0;
  /** Body bytes of manifest and blob responses. */
  bytesServed = 0;
  /** Of which from the cache (a hit or a stale copy). */
  bytesServedFromCache = 0;
  private readonly upstreams = new Map<string, UpstreamState>();
  private readonly ring: Slot[] = Array.from({ length: HISTORY_MINUTES }, () => ({ minute: -1, hits: 0, misses: 0, bytesFetched: 0 }));

  constructor(private readonly now: () => number = Date.now) {}

  /** A manifest or blob response finished: how the cache answered (undefined: a local repository) and its body bytes. */
  served(outcome: CacheOutcome | undefined, bytes: number): void {
    this.bytesServed += bytes;
    if (outcome === undefined) return;
    const slot = this.slot();
    switch (outcome) {
      case 'hit':
        this.hits++;
        break;
      case 'stale':
        this.stale++;
        break;
      case 'miss':
        this.misses++;
        break;
      case 'coalesced':
        this.coalesced++;
        break;
    }
    if (outcome === 'hit' || outcome === 'stale') {
      slot.hits++;
      this.bytesServedFromCache += bytes;
    } else slot.misses++;
  }

  /** (hit + stale) / every cache answer; null before the first. */
  get hitRatio(): number | null {
    const all = this.hits + this.stale + this.misses + this.coalesced;
    return all === 0 ? null : (this.hits + this.stale) / all;
  }

  exchange(e: UpstreamExchange): void {
    const u = this.upstream(e.upstream);
    u.requests++;
    if (e.error === undefined) {
      u.consecutiveErrors = 0;
      return;
    }
    u.errors++;
    u.consecutiveErrors++;
    u.lastError = e.error.slice(0, 500);
    u.lastErrorAt = this.now();
  }

  bytes(upstream: string, n: number): void {
    this.upstream(upstream).bytesFetched += n;
    this.slot().bytesFetched += n;
  }

  upstreamCounts(name: string): UpstreamCounts {
    const u = this.upstreams.get(name);
    if (!u) return { requests: 0, errors: 0, bytesFetched: 0, lastError: null, lastErrorAt: null, health: 'unknown' };
    return {
      requests: u.requests,
      errors: u.errors,
      bytesFetched: u.bytesFetched,
      lastError: u.lastError ?? null,
      lastErrorAt: u.lastErrorAt === undefined ? null : new Date(u.lastErrorAt).toISOString(),
      health: this.health(u),
    };
  }

  /** The last HISTORY_MINUTES minutes, oldest first, the current minute last; minutes without traffic are zeros. */
  history(): HistorySample[] {
    const current = Math.floor(this.now() / MINUTE_MS);
    const out: HistorySample[] = [];
    for (let m = current - HISTORY_MINUTES + 1; m <= current; m++) {
      const slot = this.ring[m % HISTORY_MINUTES] as Slot;
      const live = slot.minute === m;
      out.push({ at: new Date(m * MINUTE_MS).toISOString(), hits: live ? slot.hits : 0, misses: live ? slot.misses : 0, bytesFetched: live ? slot.bytesFetched : 0 });
    }
    return out;
  }

  private health(u: UpstreamState): UpstreamHealth {
    if (u.requests === 0) return 'unknown';
    if (u.consecutiveErrors >= DOWN_AFTER) return 'down';
    if (u.lastErrorAt !== undefined && this.now() - u.lastErrorAt < DEGRADED_FOR_MS) return 'degraded';
    return 'ok';
  }

  private upstream(name: string): UpstreamState {
    let u = this.upstreams.get(name);
    if (!u) {
      u = { requests: 0, errors: 0, bytesFetched: 0, consecutiveErrors: 0, lastError: undefined, lastErrorAt: undefined };
      this.upstreams.set(name, u);
    }
    return u;
  }

  /** This minute's slot, cleared when it last held an older minute. */
  private slot(): Slot {
    const minute = Math.floor(this.now() / MINUTE_MS);
    const slot = this.ring[minute % HISTORY_MINUTES] as Slot;
    if (slot.minute !== minute) {
      slot.minute = minute;
      slot.hits = 0;
      slot.misses = 0;
      slot.bytesFetched = 0;
    }
    return slot;
  }
}
