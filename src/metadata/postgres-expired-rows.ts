// Rows of the shared database that expire and that nothing else deletes: entries of the shared TTL
// caches (the `keyv` table, postgres-keyv.ts; keyv drops an expired entry only when it is read
// again, and many never are) and fill leases whose holder died without releasing them
// (postgres-fill-leases.ts). Each node purges them now and then, a bounded number per statement, on
// the database's clock; several nodes doing so at once skip each other's rows (SKIP LOCKED).
import { DB_NOW_MS as NOW_MS, type PostgresDatabase } from './postgres-database.js';

/** Rows purged by one pass. */
export interface PurgedRows {
  cacheEntries: number;
  fillLeases: number;
}

export interface ExpiredRowsOptions {
  /** Most rows of each table deleted by one pass (default 1000). */
  limit?: number;
  /**
   * How long past its expiry a cache entry is kept (default 5 minutes): keyv writes the expiry on
   * the writing node's clock, which may run behind the database's. An entry purged early is a miss.
   */
  cacheSlackMs?: number;
  /**
   * How long past its expiry a fill lease is kept (default 1 hour): a node taking a dead node's
   * fill over within that time finds the writer it stored bytes in; and a node following the fill
   * sees the lease expire (to take it over) rather than vanish (which reads as a fill that ended).
   */
  leaseKeepMs?: number;
}

/** The expiry keyv writes last in each entry ({"value":...,"expires":<ms>}); absent for entries that never expire. */
const KEYV_EXPIRES = `substring(value from '"expires":(\\d{1,15})[}]$')::bigint`;

export class PostgresExpiredRows {
  private readonly limit: number;
  private readonly cacheSlackMs: number;
  private readonly leaseKeepMs: number;
  private timer: NodeJS.Timeout | undefined;
  private pass: Promise<unknown> | undefined;
  private closed = false;

  constructor(
    private readonly db: PostgresDatabase,
    opts: ExpiredRowsOptions = {},
  ) {
    this.limit = opts.limit ?? 1000;
    this.cacheSlackMs = opts.cacheSlackMs ?? 5 * 60_000;
    this.leaseKeepMs = opts.leaseKeepMs ?? 60 * 60_000;
  }

  /** One pass: at most `limit` expired rows of each table deleted. */
  async purge(): Promise<PurgedRows> {
    const cache = await this.db.query(
      `DELETE FROM keyv WHERE key IN (
         SELECT key FROM keyv WHERE ${KEYV_EXPIRES} < ${NOW_MS} - $1 LIMIT $2 FOR UPDATE SKIP LOCKED)`,
      [this.cacheSlackMs, this.limit],
    );
    // The expiry is checked again on the row deleted: a lease renewed or taken over meanwhile stays.
    const leases = await this.db.query(
      `DELETE FROM fill_leases WHERE expires_at < ${NOW_MS} - $1 AND digest IN (
         SELECT digest FROM fill_leases WHERE expires_at < ${NOW_MS} - $1 LIMIT $2 FOR UPDATE SKIP LOCKED)`,
      [this.leaseKeepMs, this.limit],
    );
    return { cacheEntries: cache.rowCount ?? 0, fillLeases: leases.rowCount ?? 0 };
  }

  /**
   * Purges every `intervalMs`, the first pass after `firstMs` (default: a random point of the first
   * interval, so nodes started together do not purge together); a pass that hit the limit is
   * followed by another after a second. `onPass` hears each pass's outcome.
   */
  start(intervalMs: number, onPass: (purged: PurgedRows | undefined, err?: unknown) => void, firstMs = Math.round(intervalMs * Math.random())): void {
    const schedule = (ms: number): void => {
      if (this.closed) return;
      this.timer = setTimeout(() => {
        const p = this.purge().then(
          (purged) => {
            onPass(purged);
            schedule(purged.cacheEntries >= this.limit || purged.fillLeases >= this.limit ? 1000 : intervalMs);
          },
          (err: unknown) => {
            onPass(undefined, err);
            schedule(intervalMs);
          },
        );
        this.pass = p;
        void p.finally(() => {
          if (this.pass === p) this.pass = undefined;
        });
      }, ms);
      this.timer.unref();
    };
    schedule(firstMs);
  }

  /** Stops the timer and waits for a pass under way (before the database closes). */
  async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.timer);
    await this.pass?.catch(() => undefined);
  }
}
