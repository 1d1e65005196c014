// Slows down password guessing without locking out the people who know their password.
//
// Every attempt is counted *before* its password is checked, and handed back when the password turns
// out right: the check (bcrypt) takes tens of milliseconds, and counting only after it would let any
// number of concurrent attempts through a limit that each of them sees as not yet reached.
//
// Per user name: after `perUser` failures (attempts in flight included) within a window, attempts for
// that name are refused (429 with Retry-After) from every address until the window closes. That is
// what stops a guess at one password, however spread out over addresses.
//
// Per client address: after `perAddress` failures within a window, the address is *throttled*, not
// blocked, because one address can be a whole office behind NAT (or a proxy: see trustProxy) and one
// person spraying names there must not lock out everyone else. While an address is throttled:
//   - a name that logged in successfully from it during the window goes ahead as usual;
//   - a name that is not a user is refused without a password check (no bcrypt for made-up names);
//   - any other user name gets a few attempts at once (`min(3, perUser)`: a typo and a retry), then one
//     per `windowMs / perUser` from that address.
// So a user who presents valid credentials at a normal rate gets in (also after mistyping once), and an
// address that sprays names gets at most a few guesses per real user name and then one per interval, the
// rate at which the per-name limit lets guesses through anyway, instead of one per request.
//
// Windows are fixed: one opens at the first failure and lasts `windowMs`; attempts refused while
// blocked are not counted, so a client that keeps knocking does not extend its own block.
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
  /** Failed logins allowed per client address within the window before it is throttled. */
  perAddress: number;
  windowMs: number;
  /** Entries kept per table (user names, addresses, name+address pairs); default 10000. */
  maxEntries?: number;
  /** Clock, for tests; default Date.now. */
  now?: () => number;
}

/** An attempt that may go ahead: already counted as a failure until it is reported a success. */
export interface LoginAttempt {
  ok: true;
  /** The password was right: the attempt is not a failure after all. */
  succeeded(): void;
}

/** An attempt refused before its password is checked. */
export interface LoginRefusal {
  ok: false;
  /** Integer >= 1. */
  retryAfterSeconds: number;
  reason: 'user' | 'address';
}

/** Attempts a real user name gets at once through a throttled address: a typo and its retry. */
const PACED_BURST = 3;

interface Bucket {
  tokens: number;
  /** When the last whole refill was counted (ms, on the limiter's clock). */
  at: number;
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

  /** Milliseconds until `key` is under its limit again, or 0. */
  overFor(key: string): number {
    const w = this.#windows.get(key);
    if (w === undefined) return 0;
    const left = w.endsAt - this.now();
    return w.failures >= this.limit && left > 0 ? left : 0;
  }

  /** Counts one failure; returns the window it was counted in. */
  count(key: string): Window {
    const now = this.now();
    let w = this.#windows.get(key);
    if (w === undefined || w.endsAt <= now) {
      w = { failures: 1, endsAt: now + this.windowMs };
      this.#windows.set(key, w);
    } else {
      w.failures++;
    }
    return w;
  }

  /** Takes back a failure counted in `w`, unless that window has since been replaced. */
  uncount(key: string, w: Window): void {
    if (this.#windows.get(key) === w && w.failures > 0) w.failures--;
  }

  clear(key: string): void {
    this.#windows.delete(key);
  }
}

export class LoginLimiter {
  readonly #users: FailureTable;
  readonly #addresses: FailureTable;
  /** address+name pairs that logged in successfully → until when they pass a throttled address. */
  readonly #vouched: LRUCache<string, number>;
  /** address+name pairs → attempts left through a throttled address (a bucket refilled one per pace). */
  readonly #paced: LRUCache<string, Bucket>;
  readonly #paceMs: number;
  readonly #burst: number;
  readonly #windowMs: number;
  readonly #now: () => number;

  constructor(opts: LoginLimiterOptions) {
    if (!(opts.windowMs > 0)) throw new RangeError(`login limiter: windowMs must be > 0, got ${opts.windowMs}`);
    if (!(opts.perUser >= 1) || !(opts.perAddress >= 1)) {
      throw new RangeError(`login limiter: perUser and perAddress must be >= 1, got ${opts.perUser} and ${opts.perAddress}`);
    }
    const now = (this.#now = opts.now ?? Date.now);
    const max = opts.maxEntries ?? 10_000;
    this.#windowMs = opts.windowMs;
    this.#paceMs = Math.max(1, Math.floor(opts.windowMs / opts.perUser));
    this.#users = new FailureTable(opts.perUser, opts.windowMs, max, now);
    this.#addresses = new FailureTable(opts.perAddress, opts.windowMs, max, now);
    this.#vouched = new LRUCache<string, number>({ max, ttl: opts.windowMs, ttlResolution: 0, perf: { now } });
    this.#burst = Math.min(PACED_BURST, opts.perUser);
    // A bucket is full again after burst × pace; forgetting it then changes nothing.
    this.#paced = new LRUCache<string, Bucket>({ max, ttl: this.#paceMs * this.#burst, ttlResolution: 0, perf: { now } });
  }

  /**
   * Before checking a password: either a refusal (how long to wait), or an attempt that is counted
   * from now on and must be reported with succeeded() if the password is right. `knownUser` says
   * whether `user` names an account (only real names get through a throttled address).
   */
  attempt(user: string, address: string, opts: { knownUser: boolean }): LoginAttempt | LoginRefusal {
    const userMs = this.#users.overFor(user);
    if (userMs > 0) return refusal(userMs, 'user');
    const addr = addressKey(address);
    const pair = `${addr}\0${user}`;
    const addressMs = this.#addresses.overFor(addr);
    if (addressMs > 0 && !this.#isVouched(pair)) {
      if (!opts.knownUser) return refusal(addressMs, 'address');
      const waitMs = this.#takePaced(pair);
      if (waitMs > 0) return refusal(waitMs, 'address');
    }
    this.#users.count(user);
    const addressWindow = this.#addresses.count(addr);
    let settled = false;
    return {
      ok: true,
      succeeded: () => {
        if (settled) return;
        settled = true;
        // A success clears the name's failures, and hands back this attempt's count on the address
        // (not the address's other failures: one valid account must not reset an address that is
        // trying many names).
        this.#users.clear(user);
        this.#addresses.uncount(addr, addressWindow);
        this.#vouched.set(pair, this.#now() + this.#windowMs);
      },
    };
  }

  /** Takes one attempt from the pair's bucket: 0 when taken, else milliseconds until one is there. */
  #takePaced(pair: string): number {
    const now = this.#now();
    const b = this.#paced.get(pair) ?? { tokens: this.#burst, at: now };
    const refilled = Math.floor((now - b.at) / this.#paceMs);
    if (refilled > 0) {
      b.tokens = Math.min(this.#burst, b.tokens + refilled);
      b.at = b.tokens === this.#burst ? now : b.at + refilled * this.#paceMs;
    }
    if (b.tokens < 1) return b.at + this.#paceMs - now;
    if (b.tokens === this.#burst) b.at = now;
    b.tokens--;
    this.#paced.set(pair, b);
    return 0;
  }

  #isVouched(pair: string): boolean {
    const until = this.#vouched.get(pair);
    return until !== undefined && until > this.#now();
  }
}

function refusal(ms: number, reason: LoginRefusal['reason']): LoginRefusal {
  return { ok: false, retryAfterSeconds: Math.max(1, Math.ceil(ms / 1000)), reason };
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
