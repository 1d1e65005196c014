// Service tokens: long random secrets for automation, used as the Basic-auth password
// (`skopeo --creds ci:wharf_<id>_<secret>`). Only a hash of the secret is stored, so a copy of the
// metadata database does not hand out credentials; the token string is shown once, at creation.
//
// The id travels inside the token, so verification is one lookup by primary key and one constant-time
// comparison. SHA-256 rather than a slow password hash: the secret has 256 bits of entropy, so there is
// nothing for a slow hash to protect against, and every request carrying a token pays for the check.
import { createHash, randomBytes, randomInt, timingSafeEqual } from 'node:crypto';
import type { ServiceTokenRecord, ServiceTokenStore } from './service-token-store.js';
import type { ActionPattern, TokenScope } from './types.js';

export const TOKEN_PREFIX = 'wharf_';

/** `wharf_` + 12-character id + `_` + 32 bytes in base64url (43 characters, which may contain `_`). */
const TOKEN_SHAPE = /^wharf_([a-z0-9]{12})_([A-Za-z0-9_-]{43})$/;
const ID_ALPHABET = 'abcdefghijklmnopqrstuvwxyz0123456789';
const ID_LENGTH = 12;
const SECRET_BYTES = 32;
/** Longer passwords are refused before any parsing or hashing. */
const MAX_PASSWORD_LENGTH = 1024;
/** lastUsedAt is written at most this often per token: a busy CI job must not turn every pull into a write. */
const TOUCH_INTERVAL_MS = 60_000;

const NAME_SHAPE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;
const MAX_GLOB_LENGTH = 512;
const ACTION_PATTERNS: readonly ActionPattern[] = ['pull', 'push', 'delete', '*'];

export interface CreateServiceTokenInput {
  name: string;
  scopes: TokenScope[];
  /** Lifetime from now; undefined = the token does not expire. */
  expiresInMs?: number;
}

/** A token as shown to operators (CLI, management API): never the secret, never its hash. */
export type PublicServiceToken = Omit<ServiceTokenRecord, 'secretHash'>;

export function publicView(rec: ServiceTokenRecord): PublicServiceToken {
  const { secretHash: _hidden, ...rest } = rec;
  return { ...rest, scopes: rec.scopes.map((s) => ({ repositories: [...s.repositories], actions: [...s.actions] })) };
}

/** Whether `password` has the shape of a service token (it may still be unknown, revoked or wrong). */
export function looksLikeServiceToken(password: string): boolean {
  return typeof password === 'string' && password.length <= MAX_PASSWORD_LENGTH && TOKEN_SHAPE.test(password);
}

/** Throws an Error naming the problem when `name` cannot be a token name (a Basic-auth user name). */
export function validateTokenName(name: unknown): asserts name is string {
  if (typeof name !== 'string' || !NAME_SHAPE.test(name)) {
    throw new Error(
      `invalid token name ${JSON.stringify(name)}: 1 to 64 characters from A-Z a-z 0-9 . _ -, starting with a letter or digit`,
    );
  }
}

/** Throws an Error naming the first problem when the scopes are not a non-empty list of valid scopes. */
export function validateScopes(scopes: unknown): asserts scopes is TokenScope[] {
  if (!Array.isArray(scopes) || scopes.length === 0) throw new Error('a token needs at least one scope');
  scopes.forEach((scope: unknown, i) => {
    const where = `scope ${i + 1}`;
    if (typeof scope !== 'object' || scope === null) throw new Error(`${where}: expected {repositories, actions}`);
    const { repositories, actions } = scope as Partial<Record<keyof TokenScope, unknown>>;
    if (!Array.isArray(repositories) || repositories.length === 0) {
      throw new Error(`${where}: needs at least one repository glob`);
    }
    for (const glob of repositories as unknown[]) {
      if (typeof glob !== 'string' || glob.length === 0 || glob.length > MAX_GLOB_LENGTH || /\s/.test(glob)) {
        throw new Error(
          `${where}: invalid repository glob ${JSON.stringify(glob)}: 1 to ${MAX_GLOB_LENGTH} characters, no whitespace`,
        );
      }
    }
    if (!Array.isArray(actions) || actions.length === 0) throw new Error(`${where}: needs at least one action`);
    for (const action of actions as unknown[]) {
      if (!ACTION_PATTERNS.includes(action as ActionPattern)) {
        throw new Error(`${where}: invalid action ${JSON.stringify(action)}: one of ${ACTION_PATTERNS.join(', ')}`);
      }
    }
  });
}

/** `GLOB[,GLOB...]:ACTION[,ACTION...]` (the CLI's --scope) → a validated scope. */
export function parseScope(text: string): TokenScope {
  // Repository names never contain ':', so the last one separates globs from actions.
  const colon = text.lastIndexOf(':');
  if (colon < 0) throw new Error(`invalid scope "${text}": expected GLOB[,GLOB...]:ACTION[,ACTION...]`);
  const scope = {
    repositories: text.slice(0, colon).split(','),
    actions: text.slice(colon + 1).split(',') as ActionPattern[],
  };
  try {
    validateScopes([scope]);
  } catch (err) {
    throw new Error(`invalid scope "${text}": ${(err as Error).message.replace(/^scope 1: /, '')}`);
  }
  return scope;
}

/** The inverse of parseScope: how a scope is shown in lists. */
export const formatScope = (scope: TokenScope): string => `${scope.repositories.join(',')}:${scope.actions.join(',')}`;

const sha256Hex = (s: string): string => createHash('sha256').update(s).digest('hex');

function newId(): string {
  let id = '';
  for (let i = 0; i < ID_LENGTH; i++) id += ID_ALPHABET[randomInt(ID_ALPHABET.length)];
  return id;
}

const isUsable = (rec: ServiceTokenRecord, now: number): boolean =>
  rec.revokedAt === null && (rec.expiresAt === null || now < rec.expiresAt);

/** Why a repository glob can match no canonical name (auth/repository-globs.ts), or undefined. */
export type GlobCheck = (glob: string) => string | undefined;

export class ServiceTokens {
  readonly #store: ServiceTokenStore;
  readonly #now: () => number;
  readonly #checkGlob: GlobCheck;

  /** `checkGlob` refuses scopes that name no canonical repository (the configuration's routing decides). */
  constructor(store: ServiceTokenStore, now: () => number = Date.now, checkGlob: GlobCheck = () => undefined) {
    this.#store = store;
    this.#now = now;
    this.#checkGlob = checkGlob;
  }

  /** Creates a token and returns its string: the only time it exists outside the caller's hands. */
  async create(input: CreateServiceTokenInput): Promise<{ token: string; record: ServiceTokenRecord }> {
    validateTokenName(input.name);
    validateScopes(input.scopes);
    input.scopes.forEach((scope, i) => {
      for (const glob of scope.repositories) {
        const problem = this.#checkGlob(glob);
        if (problem !== undefined) throw new Error(`scope ${i + 1}: ${problem}`);
      }
    });
    const { expiresInMs } = input;
    if (expiresInMs !== undefined && !(Number.isSafeInteger(expiresInMs) && expiresInMs > 0)) {
      throw new Error(`invalid token lifetime ${expiresInMs}: a positive whole number of milliseconds`);
    }
    const secret = randomBytes(SECRET_BYTES).toString('base64url');
    const now = this.#now();
    const record: ServiceTokenRecord = {
      id: newId(),
      name: input.name,
      secretHash: sha256Hex(secret),
      scopes: input.scopes.map((s) => ({ repositories: [...s.repositories], actions: [...s.actions] })),
      createdAt: now,
      expiresAt: expiresInMs === undefined ? null : now + expiresInMs,
      revokedAt: null,
      lastUsedAt: null,
    };
    await this.#store.createServiceToken(record);
    return { token: `${TOKEN_PREFIX}${record.id}_${secret}`, record };
  }

  /** The record by id, whatever its state (see isActive). */
  get(id: string): Promise<ServiceTokenRecord | undefined> {
    return this.#store.getServiceToken(id);
  }

  list(): Promise<ServiceTokenRecord[]> {
    return this.#store.listServiceTokens();
  }

  /**
   * Revokes by id, else by the name of a token that is not revoked (an expired one included, so its
   * name can be freed). Returns the revoked record, or undefined when there was nothing to revoke.
   */
  async revoke(idOrName: string): Promise<ServiceTokenRecord | undefined> {
    let target = await this.#store.getServiceToken(idOrName);
    if (target === undefined || target.revokedAt !== null) {
      target = (await this.#store.listServiceTokens()).find((r) => r.name === idOrName && r.revokedAt === null);
    }
    if (target === undefined) return undefined;
    const at = this.#now();
    // false: another process revoked it between the lookup and now; nothing left to do here.
    if (!(await this.#store.revokeServiceToken(target.id, at))) return undefined;
    return { ...target, revokedAt: at };
  }

  async verify(username: string, password: string): Promise<ServiceTokenRecord | undefined> {
    if (typeof username !== 'string' || !looksLikeServiceToken(password)) return undefined;
    const [, id, secret] = TOKEN_SHAPE.exec(password)!;
    const rec = await this.#store.getServiceToken(id!);
    const now = this.#now();
    if (rec === undefined || rec.name !== username || !isUsable(rec, now)) return undefined;

    const expected = Buffer.from(rec.secretHash, 'hex');
    const actual = createHash('sha256').update(secret!).digest();
    if (expected.length !== actual.length || !timingSafeEqual(expected, actual)) return undefined;

    if (rec.lastUsedAt === null || now - rec.lastUsedAt >= TOUCH_INTERVAL_MS) {
      try {
        await this.#store.touchServiceToken(rec.id, now);
        return { ...rec, lastUsedAt: now };
      } catch {
        // lastUsedAt is bookkeeping for operators: a failed write (a busy database) must not turn a
        // valid credential into a refusal. The next request tries again.
      }
    }
    return rec;
  }

  async isActive(id: string): Promise<boolean> {
    const rec = await this.#store.getServiceToken(id);
    return rec !== undefined && isUsable(rec, this.#now());
  }
}
