// Who is asking and what they may do: the one place that turns an Authorization header into an
// Identity, an Identity into granted actions, and a refusal into the right answer (401 with the
// Docker token challenge, 403 DENIED, 429 after repeated failed logins).
//
//   Authorization: Basic   a user (auth.users / htpasswd) or a service token as the password
//   Authorization: Bearer  a JWT from /auth/token (or a trusted external issuer): its `access` claim
//                          is what it may do, checked for the exact repository and action
//
// The management API (/api) takes an admin's Basic credentials, or an access token Wharf issued to a
// user with the `wharf:api:manage` scope (MANAGE_SCOPE, granted only to members of auth.adminGroup);
// the membership is looked up again on every request, so a user who leaves the group loses /api at
// once. Service tokens, external issuers' tokens and anonymous callers never manage.
//
// Every decision is made on the canonical name of the repository actually served (RouteTarget.canonical,
// src/registry/router.ts), however the client spelled it; token `access` claims name the same.
//   none                   anonymous, under the same policies
import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import { LRUCache } from 'lru-cache';
import type { AuthConfig, WharfConfig } from '../config/schema.js';
import { RegistryError } from '../registry/errors.js';
import type { RouteTarget } from '../registry/router.js';
import type { RegistryMetadata } from '../metadata/registry-metadata.js';
import type { ServiceTokenStore } from './service-token-store.js';
import { loadOrCreateSigningKey, loadVerificationKeys, signJwt, verificationKeyOf, verifyJwt, JwtError, type JwtClaims, type SigningKey, type VerificationKey } from './jwt.js';
import { LoginLimiter } from './login-limiter.js';
import { Policy, type RepositoryFacts, type RepositoryZone } from './policy.js';
import { ServiceTokens, looksLikeServiceToken } from './service-tokens.js';
import { globChecker, type RouteName } from './repository-globs.js';
import { ANONYMOUS, expandActions, MANAGE_SCOPE, subjectOf, type Action, type Identity } from './types.js';
import { UserDirectory } from './users.js';

/** Longest Authorization header looked at; longer ones are refused unread. */
const MAX_AUTHORIZATION = 8192;

/** Where auth reports failed logins and bad reloads (a pino logger fits). */
export interface AuthLog {
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

/** One entry of a token's `access` claim (Docker token spec). */
export interface AccessEntry {
  type: string;
  name: string;
  actions: string[];
}

/** A caller as established from the request's credentials. */
export interface Caller {
  identity: Identity;
  /** Present for Bearer tokens: what the token grants, and nothing else. */
  access?: AccessEntry[];
  /** For Bearer tokens: whether Wharf signed it (false for a trusted external issuer's). */
  ownToken?: boolean;
  /** Whether credentials were presented at all (anonymous callers get the challenge). */
  presented: boolean;
}

export interface RequestInfo {
  authorization: string | undefined;
  address: string;
}

export interface IssuedToken {
  token: string;
  access_token: string;
  expires_in: number;
  issued_at: string;
  refresh_token?: string;
}

/** A requested scope, `repository:<name>:<actions>` (the name may itself contain a colon: host:port). */
export interface RequestedScope {
  type: string;
  name: string;
  actions: string[];
}

export function parseRequestedScope(scope: string): RequestedScope | undefined {
  const first = scope.indexOf(':');
  const last = scope.lastIndexOf(':');
  if (first <= 0 || last <= first) return undefined;
  const type = scope.slice(0, first);
  const name = scope.slice(first + 1, last);
  const actions = scope.slice(last + 1).split(',').filter(Boolean);
  if (name === '' || name.length > 512) return undefined;
  return { type, name, actions };
}

const challengeValue = (s: string) => s.replace(/["\\]/g, '');

export class AccessControl {
  /**
   * Recorded owners (local repository → user name). A claim, once made, never changes, so pushes and
   * owner rules ask the metadata store once per repository, not once per request.
   */
  readonly #owners = new LRUCache<string, string>({ max: 10_000 });

  private constructor(
    private readonly auth: AuthConfig,
    private readonly users: UserDirectory,
    private readonly metadata: RegistryMetadata,
    private readonly route: RouteName,
    readonly tokens: ServiceTokens,
    readonly policy: Policy,
    private readonly limiter: LoginLimiter,
    private readonly signingKey: SigningKey,
    /** Our own key, for our own issuer name only. */
    private readonly ownKeys: VerificationKey[],
    /** An external issuer's name and keys: its keys are never trusted for another issuer name. */
    private readonly trusted: { issuer: string; keys: VerificationKey[] } | undefined,
    private readonly log: AuthLog,
    private readonly now: () => number,
  ) {}

  static async create(
    config: WharfConfig & { auth: AuthConfig },
    /** Repository owners are recorded in the registry's metadata; tokens in their own store. */
    stores: { metadata: RegistryMetadata; tokens: ServiceTokenStore },
    route: RouteName,
    log: AuthLog,
    now: () => number = Date.now,
  ): Promise<AccessControl> {
    const auth = config.auth;
    const users = await UserDirectory.open({
      now,
      htpasswd: auth.htpasswd,
      users: auth.users,
      groups: auth.groups,
      onReloadError: (err) => log.error({ err: { message: err.message } }, 'htpasswd reload failed; the last good version stays in force'),
    });
    const policy = new Policy(auth.policies, { defaults: auth.defaultPolicies, zone: (repo) => zoneOf(route, repo), adminGroup: auth.adminGroup });
    const limiter = new LoginLimiter({
      perUser: auth.failedLogins.perUser,
      perAddress: auth.failedLogins.perAddress,
      windowMs: auth.failedLogins.window,
      now,
    });
    const keyFile = auth.token.key ?? join(config.storage.path, 'auth', 'token-key.pem');
    const signingKey = await loadOrCreateSigningKey(keyFile, auth.token.algorithm);
    const trusted = auth.token.trust ? { issuer: auth.token.trust.issuer, keys: loadVerificationKeys(auth.token.trust.keys) } : undefined;
    return new AccessControl(auth, users, stores.metadata, route, new ServiceTokens(stores.tokens, now, globChecker({ route, upstreams: config.upstreams })), policy, limiter, signingKey, [verificationKeyOf(signingKey)], trusted, log, now);
  }

  get service(): string {
    return this.auth.token.service;
  }

  /** The `WWW-Authenticate` value for a 401: the token realm, the service, and the scope when there is one. */
  challenge(realm: string, scope?: string, error?: string): string {
    let value = `Bearer realm="${challengeValue(realm)}",service="${challengeValue(this.service)}"`;
    if (scope) value += `,scope="${challengeValue(scope)}"`;
    if (error) value += `,error="${error}"`;
    return value;
  }

  /**
   * The caller behind a request's credentials. Bad credentials are a 401 (with the challenge from
   * `realm`), too many failed logins a 429 with Retry-After.
   */
  async identify(req: RequestInfo, realm: string): Promise<Caller> {
    const header = req.authorization;
    if (header === undefined || header === '') return { identity: ANONYMOUS, presented: false };
    if (header.length > MAX_AUTHORIZATION) throw this.unauthorized(realm, 'the Authorization header is too long');
    const space = header.indexOf(' ');
    const scheme = (space < 0 ? header : header.slice(0, space)).toLowerCase();
    const value = space < 0 ? '' : header.slice(space + 1).trim();
    if (scheme === 'basic') {
      const creds = decodeBasic(value);
      if (!creds) throw this.unauthorized(realm, 'malformed Basic credentials');
      return { identity: await this.login(creds.user, creds.password, req.address, realm), presented: true };
    }
    if (scheme === 'bearer') {
      if (value === '') throw this.unauthorized(realm, 'empty Bearer token');
      const { claims, own } = await this.verifyAccessToken(value, realm);
      // The subject's groups are read from the user directory as it is now (an htpasswd file changed
      // since the token was issued included), never from the token.
      await this.users.refresh();
      return { identity: this.identityOf(claims), access: accessOf(claims), ownToken: own, presented: true };
    }
    throw this.unauthorized(realm, `unsupported authorization scheme; use Basic or Bearer`);
  }

  /**
   * Checks a user name and password (or service token). The attempt is counted against the limits
   * before the password is checked (concurrent guesses cannot all slip under the limit) and handed
   * back when it succeeds.
   */
  async login(user: string, password: string, address: string, realm: string): Promise<Identity> {
    const isToken = looksLikeServiceToken(password);
    // Service tokens are checked by a hash lookup, not bcrypt: any name may be tried at a throttled address.
    const attempt = this.limiter.attempt(user, address, { knownUser: isToken || this.users.has(user) });
    if (!attempt.ok) {
      const who = attempt.reason === 'user' ? 'for this user name' : 'from this address';
      throw new RegistryError('TOOMANYREQUESTS', `too many failed logins ${who}; try again in ${attempt.retryAfterSeconds} s`, {
        headers: { 'retry-after': String(attempt.retryAfterSeconds) },
      });
    }
    let identity: Identity | undefined;
    if (isToken) {
      const token = await this.tokens.verify(user, password);
      if (token) identity = { kind: 'token', name: token.name, tokenId: token.id, scopes: token.scopes };
    } else {
      identity = await this.users.verify(user, password);
    }
    if (!identity) {
      this.log.warn({ user: user.slice(0, 128), address }, 'failed login');
      throw this.unauthorized(realm, 'invalid username or password');
    }
    attempt.succeeded();
    return identity;
  }

  /** What `caller` may do to the routed repository `target`. */
  async allowed(caller: Caller, target: RouteTarget): Promise<Action[]> {
    if (caller.access) {
      const granted = new Set<string>();
      for (const entry of caller.access) {
        if (entry.type === 'repository' && entry.name === target.canonical) for (const a of entry.actions) granted.add(a);
      }
      return expandActions([...granted]);
    }
    return this.policy.allowed(caller.identity, target.canonical, await this.facts(target, caller.identity));
  }

  /** What the policy grants `identity` on `target`, tokens' `access` claims aside. */
  async granted(identity: Identity, target: RouteTarget): Promise<Action[]> {
    return this.policy.allowed(identity, target.canonical, await this.facts(target, identity));
  }

  /**
   * Throws unless `caller` may do `action` to `target`: anonymous callers and Bearer tokens that lack
   * the scope (but whose holder could get it) get 401 with a challenge for it; others 403 DENIED.
   * A user's push to a local repository nobody owns yet makes that user its owner.
   */
  async require(caller: Caller, target: RouteTarget, action: Action, realm: string, scopeActions: Action[] = [action]): Promise<void> {
    const repo = target.canonical;
    const who = caller.identity;
    if ((await this.allowed(caller, target)).includes(action)) {
      if (action !== 'push' || target.kind !== 'local' || who.kind !== 'user') return;
      const owner = this.#owners.get(target.repo) ?? this.#remember(target.repo, await this.metadata.claimRepository(target.repo, who.name));
      // Two users pushing a new repository at once: the one whose claim lost is judged again as a non-owner.
      if (owner === who.name || !this.policy.usesOwners || this.policy.permits(who, repo, action, { owner })) return;
    } else if (who.kind === 'anonymous') {
      throw this.unauthorized(realm, `authentication required to ${action} ${repo}`, `repository:${repo}:${scopeActions.join(',')}`);
    } else if (caller.access && (await this.granted(who, target)).includes(action)) {
      throw this.unauthorized(
        realm,
        `the token does not grant ${action} on ${repo}; request a token with that scope`,
        `repository:${repo}:${scopeActions.join(',')}`,
        'insufficient_scope',
      );
    }
    throw new RegistryError('DENIED', `${describe(who)} may not ${action} repository ${repo}`, { detail: { name: repo, action } });
  }

  /** The owner the policy's `owner` subject is matched against; a local repository not yet pushed is the caller's to take. */
  private async facts(target: RouteTarget, identity: Identity): Promise<RepositoryFacts> {
    if (target.kind !== 'local' || !this.policy.usesOwners) return {};
    const owner = this.#owners.get(target.repo) ?? this.#remember(target.repo, await this.metadata.repositoryOwner(target.repo));
    if (owner !== undefined) return { owner };
    if (identity.kind === 'user' && !(await this.metadata.repositoryExists(target.repo))) return { owner: identity.name };
    return {};
  }

  #remember<T extends string | undefined>(repo: string, owner: T): T {
    if (owner !== undefined) this.#owners.set(repo, owner);
    return owner;
  }

  isAdmin(identity: Identity): boolean {
    return this.policy.isAdmin(identity);
  }

  /**
   * Whether `caller` may use the management API: a member of the admin group, signed in with Basic
   * credentials or holding an access token Wharf issued with the MANAGE_SCOPE. The group is the one
   * the user is in now, whatever it was when the token was issued.
   */
  mayManage(caller: Caller): boolean {
    if (!caller.presented || !this.isAdmin(caller.identity)) return false;
    return caller.access === undefined || (caller.ownToken === true && grantsManage(caller.access));
  }

  /** Whether a Bearer caller lacks only the scope: an admin with a token of Wharf's own without MANAGE_SCOPE. */
  lacksManageScope(caller: Caller): boolean {
    return caller.access !== undefined && caller.ownToken === true && this.isAdmin(caller.identity) && !grantsManage(caller.access);
  }

  /**
   * Issues an access token for the requested scopes: each one narrowed to what the policy grants
   * (an ungranted scope is left out, not an error). `offline` adds a refresh token for signed-in callers.
   */
  async issue(identity: Identity, scopes: string[], offline: boolean): Promise<IssuedToken> {
    const access: AccessEntry[] = [];
    for (const raw of scopes) {
      const scope = parseRequestedScope(raw);
      if (!scope) continue;
      if (scope.type === 'repository' || scope.type.startsWith('repository(')) {
        // The token flow has no `?ns=`: the scope's name is routed as a bare name, and the claim names
        // its canonical name, the one requests are checked against.
        let target: RouteTarget;
        try {
          target = this.route(scope.name);
        } catch {
          continue;
        }
        const allowed = await this.granted(identity, target);
        const granted = expandActions(scope.actions).filter((a) => allowed.includes(a));
        if (granted.length > 0) access.push({ type: 'repository', name: target.canonical, actions: granted });
      } else if (scope.type === 'registry' && scope.name === 'catalog' && identity.kind !== 'anonymous') {
        access.push({ type: 'registry', name: 'catalog', actions: ['*'] });
      } else if (scope.type === MANAGE_SCOPE.type && scope.name === MANAGE_SCOPE.name && scope.actions.includes(MANAGE_SCOPE.action)) {
        // Users of the admin group only (never a service token); asked by others, it is left out.
        if (identity.kind === 'user' && this.isAdmin(identity) && !access.some(grantsManageEntry)) {
          access.push({ type: MANAGE_SCOPE.type, name: MANAGE_SCOPE.name, actions: [MANAGE_SCOPE.action] });
        }
      }
    }
    const nowS = Math.floor(this.now() / 1000);
    const lifetime = Math.max(1, Math.floor(this.auth.token.lifetime / 1000));
    const base = this.baseClaims(identity, nowS);
    const token = await signJwt(this.signingKey, { ...base, exp: nowS + lifetime, access });
    const issued: IssuedToken = { token, access_token: token, expires_in: lifetime, issued_at: new Date(nowS * 1000).toISOString() };
    if (offline && identity.kind !== 'anonymous') {
      const refreshLifetime = Math.floor(this.auth.token.refreshLifetime / 1000);
      issued.refresh_token = await signJwt(this.signingKey, { ...base, exp: nowS + refreshLifetime, use: 'refresh' });
    }
    return issued;
  }

  /** The identity a refresh token was issued to, if it is still valid and its holder still exists. */
  async refresh(refreshToken: string, realm: string): Promise<Identity> {
    const { claims } = await this.verify(refreshToken, realm, false);
    await this.users.refresh();
    if (claims['use'] !== 'refresh') throw this.unauthorized(realm, 'not a refresh token');
    const identity = await this.liveIdentity(claims);
    if (!identity) throw this.unauthorized(realm, 'the refresh token no longer names a valid user or service token');
    return identity;
  }

  private baseClaims(identity: Identity, nowS: number): Record<string, unknown> {
    const claims: Record<string, unknown> = {
      iss: this.auth.token.issuer,
      sub: subjectOf(identity),
      aud: this.service,
      iat: nowS,
      nbf: nowS,
      jti: randomUUID(),
      kind: identity.kind,
    };
    if (identity.kind === 'token') claims['tid'] = identity.tokenId;
    return claims;
  }

  private async verifyAccessToken(token: string, realm: string): Promise<{ claims: JwtClaims; own: boolean }> {
    const verified = await this.verify(token, realm, true);
    const claims = verified.claims;
    if (claims['use'] !== undefined) throw this.unauthorized(realm, 'a refresh token is not an access token', undefined, 'invalid_token');
    // A token issued for a service token stops working as soon as that token is revoked.
    if (claims['kind'] === 'token' && claims.iss === this.auth.token.issuer) {
      const tid = claims['tid'];
      if (typeof tid !== 'string' || !(await this.tokens.isActive(tid))) {
        throw this.unauthorized(realm, 'the service token behind this token was revoked or has expired', undefined, 'invalid_token');
      }
    }
    return verified;
  }

  /** Our own tokens, then (when `external`) the trusted issuer's: each key set only with its own issuer name. */
  private async verify(token: string, realm: string, external: boolean): Promise<{ claims: JwtClaims; own: boolean }> {
    const nowSeconds = Math.floor(this.now() / 1000);
    try {
      return { claims: await verifyJwt(token, { keys: this.ownKeys, issuer: this.auth.token.issuer, audience: this.service, nowSeconds }), own: true };
    } catch (err) {
      if (!(err instanceof JwtError)) throw err;
      if (external && this.trusted) {
        try {
          return { claims: await verifyJwt(token, { keys: this.trusted.keys, issuer: this.trusted.issuer, audience: this.service, nowSeconds }), own: false };
        } catch (second) {
          if (!(second instanceof JwtError)) throw second;
          // The external issuer's reason is the useful one when the token names it.
          if (claimedIssuer(token) === this.trusted.issuer) throw this.unauthorized(realm, `invalid token: ${second.message}`, undefined, 'invalid_token');
        }
      }
      throw this.unauthorized(realm, `invalid token: ${err.message}`, undefined, 'invalid_token');
    }
  }

  /** The identity named by a token's claims, for policy checks (groups looked up now). */
  private identityOf(claims: JwtClaims): Identity {
    const sub = typeof claims.sub === 'string' ? claims.sub : '';
    if (claims['kind'] === 'anonymous' || sub === '') return ANONYMOUS;
    if (claims['kind'] === 'token' && typeof claims['tid'] === 'string') {
      return { kind: 'token', name: sub, tokenId: claims['tid'], scopes: [] };
    }
    return { kind: 'user', name: sub, groups: this.users.has(sub) ? this.users.groupsOf(sub) : [] };
  }

  private async liveIdentity(claims: JwtClaims): Promise<Identity | undefined> {
    const sub = typeof claims.sub === 'string' ? claims.sub : '';
    if (claims['kind'] === 'token') {
      const tid = claims['tid'];
      if (typeof tid !== 'string') return undefined;
      const record = await this.tokens.get(tid);
      if (!record || !(await this.tokens.isActive(tid))) return undefined;
      return { kind: 'token', name: record.name, tokenId: record.id, scopes: record.scopes };
    }
    if (claims['kind'] === 'user' && this.users.has(sub)) return { kind: 'user', name: sub, groups: this.users.groupsOf(sub) };
    return undefined;
  }

  unauthorized(realm: string, message: string, scope?: string, error?: string): RegistryError {
    return new RegistryError('UNAUTHORIZED', message, { headers: { 'www-authenticate': this.challenge(realm, scope, error) } });
  }
}

/** Where a canonical name is routed, for the built-in rules; a name that cannot be routed gets the narrowest zone. */
export function zoneOf(route: RouteName, repo: string): RepositoryZone {
  let target: RouteTarget;
  try {
    target = route(repo);
  } catch {
    return 'private-upstream';
  }
  if (target.kind === 'local') return 'local';
  return target.private ? 'private-upstream' : 'public-upstream';
}

function describe(identity: Identity): string {
  if (identity.kind === 'user') return `user ${identity.name}`;
  if (identity.kind === 'token') return `service token ${identity.name}`;
  return 'an anonymous caller';
}

function decodeBasic(value: string): { user: string; password: string } | undefined {
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(value)) return undefined;
  const decoded = Buffer.from(value, 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  if (colon <= 0) return undefined;
  return { user: decoded.slice(0, colon), password: decoded.slice(colon + 1) };
}

const grantsManageEntry = (e: AccessEntry): boolean => e.type === MANAGE_SCOPE.type && e.name === MANAGE_SCOPE.name && e.actions.includes(MANAGE_SCOPE.action);
const grantsManage = (access: readonly AccessEntry[]): boolean => access.some(grantsManageEntry);

function accessOf(claims: JwtClaims): AccessEntry[] {
  const raw = claims['access'];
  if (!Array.isArray(raw)) return [];
  const out: AccessEntry[] = [];
  for (const e of raw as unknown[]) {
    if (typeof e !== 'object' || e === null) continue;
    const { type, name, actions } = e as Record<string, unknown>;
    if (typeof type !== 'string' || typeof name !== 'string' || !Array.isArray(actions)) continue;
    out.push({ type, name, actions: actions.filter((a): a is string => typeof a === 'string') });
  }
  return out;
}

/** The unverified `iss` of a token, only to pick which failure to report. */
function claimedIssuer(token: string): unknown {
  try {
    return (JSON.parse(Buffer.from(token.split('.')[1] ?? '', 'base64url').toString('utf8')) as { iss?: unknown }).iss;
  } catch {
    return undefined;
  }
}
