// The users who may sign in with a password: those defined inline in config (auth.users) and those
// in an htpasswd file (auth.htpasswd), with their groups (the inline entry's groups plus auth.groups).
//
// Only bcrypt hashes are accepted ($2a$, $2b$, $2y$: `htpasswd -B`); the older htpasswd schemes
// (MD5 apr1, SHA1, crypt) are too cheap to brute-force. A name defined both inline and in the file
// uses the inline entry.
//
// The file is re-read when it changes (mtime, ctime, size or inode; looked at no more than once a
// second, on the next password check or has() call). If the new version cannot be read or parsed,
// the last version that loaded stays in force and the error goes to `onReloadError`, once per version.
//
// bcrypt is slow on purpose (tens of milliseconds at cost 10 in pure JS), and registry clients send
// Basic credentials with every request, so a successful check is remembered for five minutes. The
// memo is keyed by an HMAC of name and password under a key made at start-up, so the process never
// holds anything from which a password could be guessed offline faster than from the bcrypt hash.

import { createHmac, randomBytes } from 'node:crypto';
import { readFile, stat } from 'node:fs/promises';
import { compare } from 'bcryptjs';
import { LRUCache } from 'lru-cache';
import type { Identity } from './types.js';
import { ConfigKeyError } from '../config/key-error.js';

export interface UserDirectoryOptions {
  /** Path of an htpasswd file: lines `name:$2y$...`; blank lines and lines starting with '#' ignored. */
  htpasswd?: string;
  /** Users defined inline; password is a bcrypt hash. */
  users: ReadonlyArray<{ name: string; password: string; groups: string[] }>;
  /** Extra memberships: group -> user names (for htpasswd users too). */
  groups: Readonly<Record<string, readonly string[]>>;
  /** Called when a changed htpasswd file cannot be loaded (the previous version stays in force). */
  onReloadError?: (err: Error) => void;
  /** Clock for the once-a-second file check and the memo's expiry, for tests; default Date.now. */
  now?: () => number;
}

export type UserIdentity = Identity & { kind: 'user' };

/** Longer passwords are refused without hashing: bcrypt reads 72 bytes, the rest is only cost. */
const MAX_PASSWORD_BYTES = 1024;
const FILE_CHECK_INTERVAL_MS = 1000;
const MEMO_TTL_MS = 5 * 60_000;
const MEMO_MAX = 1000;

const BCRYPT_HASH = /^\$2[aby]\$(\d\d)\$[./A-Za-z0-9]{53}$/;
// bcrypt accepts costs 4..31; the pattern already limits the digits.
const MIN_COST = 4;
const MAX_COST = 31;
/** Cost for the dummy comparison when no user is defined at all (the htpasswd -B default is 5). */
const DEFAULT_COST = 10;
/** Salt and checksum of the dummy hash; it matches no password in practice. */
const DUMMY_TAIL = 'WharfUnknownUser.DummyHashForEqualTiming.NeverMatches';

/** The cost of a bcrypt hash, or undefined when `hash` is not one this directory accepts. */
function bcryptCost(hash: string): number | undefined {
  const m = BCRYPT_HASH.exec(hash);
  if (!m) return undefined;
  const cost = Number(m[1]);
  return cost >= MIN_COST && cost <= MAX_COST ? cost : undefined;
}

/** Parses htpasswd text into name -> hash. Errors name the file and line, never a hash. */
export function parseHtpasswd(text: string, file: string): Map<string, string> {
  const users = new Map<string, string>();
  const lineOf = new Map<string, number>();
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!.trim();
    const where = `${file}:${i + 1}`;
    if (line === '' || line.startsWith('#')) continue;
    const colon = line.indexOf(':');
    // Without a colon the line may be a password pasted by mistake: print nothing of it.
    if (colon <= 0) throw new Error(`${where}: expected name:bcrypt-hash`);
    const name = line.slice(0, colon);
    const hash = line.slice(colon + 1);
    if (bcryptCost(hash) === undefined) {
      throw new Error(
        `${where}: user "${name}": the password is not a bcrypt hash with cost ${MIN_COST}-${MAX_COST} ($2a$, $2b$ or $2y$; create it with htpasswd -B)`,
      );
    }
    const earlier = lineOf.get(name);
    if (earlier !== undefined) throw new Error(`${where}: user "${name}" is already defined on line ${earlier}`);
    users.set(name, hash);
    lineOf.set(name, i + 1);
  }
  return users;
}

/** mtime, ctime, size and inode: an editor that renames a new file into place changes the inode. */
async function signatureOf(file: string): Promise<string> {
  const s = await stat(file, { bigint: true });
  return `${s.mtimeNs}:${s.ctimeNs}:${s.size}:${s.ino}`;
}

function unreadable(file: string, err: unknown): Error {
  return new ConfigKeyError('auth.htpasswd', `cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`, { cause: err });
}

async function loadHtpasswd(file: string): Promise<{ users: Map<string, string>; signature: string }> {
  let signature: string;
  let text: string;
  try {
    // Stat before reading: if the file changes in between, the next check sees a new signature.
    signature = await signatureOf(file);
    text = await readFile(file, 'utf8');
  } catch (err) {
    throw unreadable(file, err);
  }
  return { users: parseHtpasswd(text, file), signature };
}

/** The most common cost among the hashes (the higher on a tie), so unknown names cost the same. */
function typicalCost(hashes: Iterable<string>): number {
  const counts = new Map<number, number>();
  for (const h of hashes) {
    const c = bcryptCost(h);
    if (c !== undefined) counts.set(c, (counts.get(c) ?? 0) + 1);
  }
  let best = DEFAULT_COST;
  let bestCount = 0;
  for (const [cost, n] of counts) {
    if (n > bestCount || (n === bestCount && cost > best)) [best, bestCount] = [cost, n];
  }
  return best;
}

export class UserDirectory {
  readonly #opts: UserDirectoryOptions;
  readonly #now: () => number;
  /** Inline users: name -> hash. */
  readonly #inline: ReadonlyMap<string, string>;
  /** name -> sorted groups, from inline entries and the groups map. */
  readonly #groups: ReadonlyMap<string, readonly string[]>;
  #file: ReadonlyMap<string, string> = new Map();
  #fileSignature: string | undefined;
  #failedSignature: string | undefined;
  #lastCheck = 0;
  #checking: Promise<void> | undefined;
  /** Bumped on every reload, so a check that straddles one is neither trusted blindly nor memoised. */
  #generation = 0;
  #dummyHash = '';
  readonly #memoKey = randomBytes(32);
  /** HMAC(name, password) -> name, for successful checks only. */
  readonly #memo: LRUCache<string, string>;

  private constructor(opts: UserDirectoryOptions) {
    this.#opts = opts;
    this.#now = opts.now ?? Date.now;
    // ttlResolution 0: read the clock on every lookup rather than reuse a reading for 1 ms, so an
    // injected clock is obeyed exactly (reading Date.now is cheap next to anything else here).
    this.#memo = new LRUCache<string, string>({ max: MEMO_MAX, ttl: MEMO_TTL_MS, ttlResolution: 0, perf: { now: this.#now } });

    const inline = new Map<string, string>();
    const groups = new Map<string, Set<string>>();
    const addGroup = (user: string, group: string) => {
      let set = groups.get(user);
      if (set === undefined) groups.set(user, (set = new Set()));
      set.add(group);
    };
    opts.users.forEach((u, i) => {
      if (bcryptCost(u.password) === undefined) {
        throw new ConfigKeyError(`auth.users.${i}.password`, `user "${u.name}": must be a bcrypt hash with cost ${MIN_COST}-${MAX_COST}`);
      }
      if (inline.has(u.name)) throw new ConfigKeyError(`auth.users.${i}.name`, `user "${u.name}" is defined twice`);
      inline.set(u.name, u.password);
      for (const g of u.groups) addGroup(u.name, g);
    });
    for (const [group, members] of Object.entries(opts.groups)) {
      for (const m of members) addGroup(m, group);
    }
    this.#inline = inline;
    this.#groups = new Map([...groups].map(([user, set]) => [user, [...set].sort()]));
  }

  /**
   * Reads the htpasswd file (if any). A line that is not `name:bcrypt-hash` is an Error naming the
   * file and line number (never printing the hash).
   */
  static async open(opts: UserDirectoryOptions): Promise<UserDirectory> {
    const dir = new UserDirectory(opts);
    if (opts.htpasswd !== undefined) {
      const { users, signature } = await loadHtpasswd(opts.htpasswd);
      dir.#file = users;
      dir.#fileSignature = signature;
      dir.#lastCheck = dir.#now();
    }
    dir.#dummyHash = dir.#makeDummyHash();
    return dir;
  }

  /**
   * The user's identity when the password matches; undefined otherwise. Unknown names cost one
   * bcrypt comparison too, so response times do not tell which names exist.
   */
  async verify(name: string, password: string): Promise<UserIdentity | undefined> {
    if (Buffer.byteLength(password, 'utf8') > MAX_PASSWORD_BYTES) return undefined;
    await this.#checkFile();

    const key = createHmac('sha256', this.#memoKey).update(name).update('\0').update(password).digest('base64');
    // The stored name is compared too: `a\0b` + `c` and `a` + `b\0c` hash the same input.
    if (this.#memo.get(key) === name) return this.#identity(name);

    const generation = this.#generation;
    const hash = this.#hashOf(name);
    const ok = await compare(password, hash ?? this.#dummyHash);
    if (!ok || hash === undefined) return undefined;
    if (generation !== this.#generation) {
      // The file was reloaded while bcrypt ran: accept only if the hash checked is still current.
      return this.#hashOf(name) === hash ? this.#identity(name) : undefined;
    }
    this.#memo.set(key, name);
    return this.#identity(name);
  }

  /**
   * Whether a user of that name exists, inline or in the htpasswd file as last loaded. Being
   * synchronous it cannot wait for the file; it starts the once-a-second look, so callers that only
   * check token subjects (and never a password) still see a removed user go within a call or two.
   */
  has(name: string): boolean {
    // #reload catches its own errors; only a throwing onReloadError could land here.
    this.#checkFile().catch(() => undefined);
    return this.#hashOf(name) !== undefined;
  }

  /** Re-reads the htpasswd file if it changed (looked at no more than once a second), for callers about to ask has() or groupsOf(). */
  async refresh(): Promise<void> {
    await this.#checkFile();
  }

  /** The user's groups (inline entry + auth.groups), sorted and unique; [] for an unknown name. */
  groupsOf(name: string): string[] {
    return this.has(name) ? [...(this.#groups.get(name) ?? [])] : [];
  }

  #hashOf(name: string): string | undefined {
    return this.#inline.get(name) ?? this.#file.get(name);
  }

  #identity(name: string): UserIdentity {
    return { kind: 'user', name, groups: this.groupsOf(name) };
  }

  #makeDummyHash(): string {
    const cost = typicalCost([...this.#inline.values(), ...this.#file.values()]);
    return `$2b$${String(cost).padStart(2, '0')}$${DUMMY_TAIL}`;
  }

  /** Reloads the htpasswd file if it changed, looking at most once a second; concurrent calls share one look. */
  async #checkFile(): Promise<void> {
    const file = this.#opts.htpasswd;
    if (file === undefined) return;
    if (this.#checking !== undefined) return this.#checking;
    const now = this.#now();
    if (now - this.#lastCheck < FILE_CHECK_INTERVAL_MS) return;
    this.#lastCheck = now;
    this.#checking = this.#reload(file).finally(() => {
      this.#checking = undefined;
    });
    return this.#checking;
  }

  async #reload(file: string): Promise<void> {
    let signature: string;
    try {
      signature = await signatureOf(file);
    } catch (err) {
      this.#reportOnce(`error:${(err as NodeJS.ErrnoException).code}`, unreadable(file, err));
      return;
    }
    if (signature === this.#fileSignature) {
      this.#failedSignature = undefined;
      return;
    }
    if (signature === this.#failedSignature) return;
    try {
      const loaded = await loadHtpasswd(file);
      this.#file = loaded.users;
      this.#fileSignature = loaded.signature;
      this.#failedSignature = undefined;
      this.#generation++;
      this.#memo.clear();
      this.#dummyHash = this.#makeDummyHash();
    } catch (err) {
      this.#reportOnce(signature, err as Error);
    }
  }

  #reportOnce(signature: string, err: Error): void {
    if (signature === this.#failedSignature) return;
    this.#failedSignature = signature;
    this.#opts.onReloadError?.(err);
  }
}
