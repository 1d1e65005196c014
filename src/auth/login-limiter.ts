// Slows down password guessing: after too many failed logins for one user name, or from one client
// address, further attempts are refused (429 with Retry-After) until the window passes.
//
// Fixed windows, one per user name and one per address: a window opens at the first failure and
// lasts `windowMs`; once it holds `perUser` (or `perAddress`) failures, attempts for that name (or
// from that address) are refused until it closes. The next failure after that opens a new window.
// Attempts refused while blocked are not counted, so a client that keeps knocking does not extend
// its own block. A fixed window keeps one counter per key, whatever the limits are configured to.
//
// Users and addresses are counted independently: a name blocked by failures from one address is
// blocked from every address (that is what stops a spread-out guess at one password), and an
// address blocked for spraying names is blocked for every name; but one blocked name never blocks
// another name, and one blocked address never blocks another address.
//
// IPv6 clients are counted per /64, the block a single host or site usually gets, because stepping
// through addresses inside it costs an attacker nothing. IPv4-mapped IPv6 addresses (::ffff:a.b.c.d)
// count as the IPv4 address.
//
// Memory is bounded: each table keeps at most `maxEntries` keys, least recently used dropped first,
// and an entry expires with its window.

import { isIPv6 } from 'node:net';
import { LRUCache } from 'lru-cache';

export interface LoginLimiterOptions {
  /** Failed logins allowed per user name within the window. */
  perUser: number;
  /** Failed logins allowed per client address within the window. */
  perAddress: number;
  windowMs: number;
  /** Entries kept per table (user names, addresses); default 10000. */
  maxEntries?: number;
  /** Clock, for tests; default Date.now. */
  now?: () => number;
}

interface Window {
  failures: number;
  /** When the window closes (ms, on the limiter's clock). */
  endsAt: number;
}

class FailureTable {
  readonly #windows: LRUCache<string, Window>;

  constructor(
    readonly limit: number,
    readonly windowMs: number,
    maxEntries: number,
    readonly now: () => number,
  ) {
    // The entry's own endsAt decides; the TTL (on the same clock) only lets expired entries go.
    this.#windows = new LRUCache<string, Window>({ max: maxEntries, ttl: windowMs, ttlResolution: 0, perf: { now } });
  }

  /** Milliseconds until `key` may try again, or 0. */
  blockedFor(key: string): number {
    const w = this.#windows.get(key);
    if (w === undefined) return 0;
    const left = w.endsAt - this.now();
    return w.failures >= this.limit && left > 0 ? left : 0;
  }

  failed(key: string): void {
    const now = this.now();
    const w = this.#windows.get(key);
    if (w === undefined || w.endsAt <= now) {
      this.#windows.set(key, { failures: 1, endsAt: now + this.windowMs });
    } else {
      w.failures++;
    }
  }

  clear(key: string): void {
    this.#windows.delete(key);
  }
}

export class LoginLimiter {
  readonly #users: FailureTable;
  readonly #addresses: FailureTable;

  constructor(opts: LoginLimiterOptions) {
    if (!(opts.windowMs > 0)) throw new RangeError(`login limiter: windowMs must be > 0, got ${opts.windowMs}`);
    if (!(opts.perUser >= 1) || !(opts.perAddress >= 1)) {
      throw new RangeError(`login limiter: perUser and perAddress must be >= 1, got ${opts.perUser} and ${opts.perAddress}`);
    }
    const now = opts.now ?? Date.now;
    const max = opts.maxEntries ?? 10_000;
    this.#users = new FailureTable(opts.perUser, opts.windowMs, max, now);
    this.#addresses = new FailureTable(opts.perAddress, opts.windowMs, max, now);
  }

  /**
   * Before checking a password: undefined = go ahead; otherwise how many seconds (integer >= 1)
   * until this user name (when given) and this address may both try again.
   */
  blocked(user: string | undefined, address: string): { retryAfterSeconds: number } | undefined {
    const ms = Math.max(user === undefined ? 0 : this.#users.blockedFor(user), this.#addresses.blockedFor(addressKey(address)));
    return ms > 0 ? { retryAfterSeconds: Math.max(1, Math.ceil(ms / 1000)) } : undefined;
  }

  /** Records a failed attempt against the user name (when given) and the address. */
  failed(user: string | undefined, address: string): void {
    if (user !== undefined) this.#users.failed(user);
    this.#addresses.failed(addressKey(address));
  }

  /**
   * A successful login clears the user's failures (not the address's: one valid account must not
   * reset the count of an address that is trying many names).
   */
  succeeded(user: string, _address: string): void {
    this.#users.clear(user);
  }
}

/** The key an address is counted under: IPv4 as is, IPv4-mapped IPv6 as IPv4, other IPv6 by /64. */
export function addressKey(address: string): string {
  if (!isIPv6(address)) return address;
  const groups = expandIPv6(address);
  if (groups === undefined) return address;
  if (groups.slice(0, 5).every((g) => g === 0) && groups[5] === 0xffff) {
    const [hi = 0, lo = 0] = groups.slice(6);
    return `${hi >> 8}.${hi & 0xff}.${lo >> 8}.${lo & 0xff}`;
  }
  return `${groups
    .slice(0, 4)
    .map((g) => g.toString(16))
    .join(':')}::/64`;
}

/** The eight 16-bit groups of a valid IPv6 address (zone id dropped). */
function expandIPv6(address: string): number[] | undefined {
  let s = address.replace(/%.*$/, '').toLowerCase();
  const v4 = /(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(s);
  if (v4) {
    const [a, b, c, d] = v4.slice(1).map(Number) as [number, number, number, number];
    s = `${s.slice(0, v4.index)}${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
  }
  const [head = '', tail] = s.split('::');
  const headParts = head === '' ? [] : head.split(':');
  const tailParts = tail === undefined || tail === '' ? [] : tail.split(':');
  const zeros = tail === undefined ? 0 : 8 - headParts.length - tailParts.length;
  const parts = [...headParts, ...Array<string>(Math.max(0, zeros)).fill('0'), ...tailParts];
  if (parts.length !== 8) return undefined;
  return parts.map((p) => parseInt(p, 16));
}
