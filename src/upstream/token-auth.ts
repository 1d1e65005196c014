// Upstream authentication: parsing WWW-Authenticate challenges, deciding whether a token realm may see our
// credentials, and fetching + caching bearer tokens (the Docker token protocol:
// https://distribution.github.io/distribution/spec/auth/token/).
import { createRequire } from 'node:module';
import { isIP } from 'node:net';
import type { Dispatcher } from 'undici';
import type Keyv from 'keyv';
import { UpstreamError, displayUrl, toUpstreamError, type UpstreamRef } from './upstream-errors.js';
import { silentLogger, type UpstreamLogger } from './upstream-logger.js';

export interface Challenge {
  /** Lower-case auth scheme: 'bearer', 'basic', ... */
  scheme: string;
  /** Parameter names are lower-case; values as sent (quotes and escapes removed). */
  params: Record<string, string>;
  token68?: string;
}

export interface BearerChallenge {
  realm: string;
  service?: string;
  /** As sent: several scopes are separated by spaces. */
  scope?: string;
}

export interface Credentials {
  username: string;
  password: string;
}

const TCHAR = /[!#$%&'*+.^_`|~0-9A-Za-z-]/;
const TOKEN68 = /[0-9A-Za-z._~+/-]/;

/**
 * Parse WWW-Authenticate (RFC 9110 §11.6.1): several challenges per header and several headers,
 * auth-params with token or quoted-string values (commas allowed inside quotes), token68.
 * Lenient where registries are sloppy: an unquoted value runs to the next comma or space.
 */
export function parseWwwAuthenticate(value: string | string[] | undefined): Challenge[] {
  const out: Challenge[] = [];
  for (const header of Array.isArray(value) ? value : value === undefined ? [] : [value]) parseHeader(header, out);
  return out;
}

function parseHeader(s: string, out: Challenge[]): void {
  let i = 0;
  let current: Challenge | undefined;
  const skipWs = (): void => {
    while (i < s.length && (s[i] === ' ' || s[i] === '\t')) i++;
  };
  while (i < s.length) {
    while (i < s.length && (s[i] === ' ' || s[i] === '\t' || s[i] === ',')) i++;
    const start = i;
    while (i < s.length && TOKEN68.test(s[i]!)) i++;
    if (i === start) {
      i++; // a stray character: skip it rather than give up on the header
      continue;
    }
    const word = s.slice(start, i);
    skipWs();
    if (s[i] === '=') {
      let eq = i;
      while (s[eq] === '=') eq++;
      let next = eq;
      while (s[next] === ' ' || s[next] === '\t') next++;
      const isParam = eq - i === 1 && next < s.length && (s[next] === '"' || TCHAR.test(s[next]!)) && /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/.test(word);
      if (current && isParam) {
        i = next;
        current.params[word.toLowerCase()] = readValue();
        continue;
      }
      if (current && current.token68 === undefined && Object.keys(current.params).length === 0) {
        current.token68 = word + s.slice(i, eq);
        i = eq;
        continue;
      }
      i = eq; // malformed: '=' with nothing to attach to
      continue;
    }
    current = { scheme: word.toLowerCase(), params: {} };
    out.push(current);
    // A token68 right after the scheme, with no '=' padding (e.g. "Negotiate abc"): a word followed by
    // the end or a comma, not by '='.
    const save = i;
    const t0 = i;
    while (i < s.length && TOKEN68.test(s[i]!)) i++;
    const after = i;
    skipWs();
    if (after > t0 && (i >= s.length || s[i] === ',')) current.token68 = s.slice(t0, after);
    else i = save;
  }

  function readValue(): string {
    if (s[i] === '"') {
      i++;
      let v = '';
      while (i < s.length && s[i] !== '"') {
        if (s[i] === '\\' && i + 1 < s.length) i++;
        v += s[i];
        i++;
      }
      i++; // closing quote
      return v;
    }
    const start = i;
    while (i < s.length && s[i] !== ',' && s[i] !== ' ' && s[i] !== '\t') i++;
    return s.slice(start, i);
  }
}

/** The first Bearer challenge with a usable http(s) realm, if any. */
export function bearerChallenge(challenges: Challenge[]): BearerChallenge | undefined {
  for (const c of challenges) {
    const realm = c.params.realm;
    if (c.scheme !== 'bearer' || !realm) continue;
    try {
      const u = new URL(realm);
      if (u.protocol !== 'https:' && u.protocol !== 'http:') continue;
    } catch {
      continue;
    }
    return { realm, service: c.params.service, scope: c.params.scope };
  }
  return undefined;
}

/**
 * The registrable domain of a host name (registry-1.docker.io → docker.io, a.b.example.co.uk →
 * example.co.uk), from the Public Suffix List, private suffixes included: two apps under
 * *.herokuapp.com are two domains. Undefined for IP literals, single labels (localhost) and public
 * suffixes themselves: such hosts share nothing with any other host.
 */
export function registrableDomain(hostname: string): string | undefined {
  const h = hostname.toLowerCase().replace(/^\[|\]$/g, '').replace(/\.$/, '');
  if (isIP(h)) return undefined;
  tldts ??= loadCjs('tldts') as typeof import('tldts');
  return tldts.getDomain(h, { allowPrivateDomains: true }) ?? undefined;
}

// tldts (the Public Suffix List: ~1.5 MiB of heap once loaded) is loaded the first time a token realm
// on another host is checked, not at start-up: most upstreams never send one.
const loadCjs = createRequire(import.meta.url);
let tldts: typeof import('tldts') | undefined;

const DEFAULT_PORTS: Record<string, string> = { 'https:': '443', 'http:': '80' };
const portOf = (u: URL): string => u.port || (DEFAULT_PORTS[u.protocol] ?? '');

/**
 * May a token realm receive the upstream's credentials? Never over plain http when the upstream
 * itself is https. Then only:
 * - the upstream's own origin (same scheme, host and port: another port on the same host may be
 *   another user's service);
 * - a realm on the upstream's registrable domain, on the upstream's port or its scheme's default
 *   port (auth.docker.io for registry-1.docker.io); an IP literal has no registrable domain;
 * - a host listed in allowedRealms ("host" for any port, or "host:port").
 */
export function mayReceiveCredentials(realm: URL, upstream: URL, allowedRealms: readonly string[]): boolean {
  if (upstream.protocol === 'https:' && realm.protocol !== 'https:') return false;
  const allowed = allowedRealms.map((h) => h.toLowerCase());
  if (allowed.includes(realm.host.toLowerCase()) || allowed.includes(realm.hostname.toLowerCase())) return true;
  if (realm.protocol === upstream.protocol && realm.host === upstream.host) return true;
  const domain = registrableDomain(realm.hostname);
  if (domain === undefined || domain !== registrableDomain(upstream.hostname)) return false;
  const port = portOf(realm);
  return port === portOf(upstream) || port === DEFAULT_PORTS[realm.protocol];
}

export function basicAuthorization(c: Credentials): string {
  return `Basic ${Buffer.from(`${c.username}:${c.password}`, 'utf8').toString('base64')}`;
}

/** The pull scope for a remote repository name; '' (registry-level requests such as /v2/) has none. */
export function pullScope(repository: string): string | undefined {
  return repository ? `repository:${repository}:pull` : undefined;
}

interface StoredToken {
  token: string;
  expiresAt: number;
}

export interface TokenAuthOptions {
  upstream: UpstreamRef;
  credentials?: Credentials;
  allowedRealms: readonly string[];
  /** Shared TTL store (in memory, or PostgreSQL when several nodes share tokens). */
  tokens: Keyv;
  /** The dispatcher to reach a realm URL with (the upstream's pool for its own origin, an agent otherwise). */
  dispatcherFor: (url: URL) => Dispatcher;
  logger?: UpstreamLogger;
}

const DEFAULT_EXPIRES_IN_S = 60; // the token spec's default when expires_in is absent
const MAX_TOKEN_RESPONSE = 1024 * 1024;

/** Bearer tokens for one upstream: cache lookups, fetches from the realm (one at a time per scope). */
export class TokenAuth {
  private readonly upstream: UpstreamRef;
  private readonly upstreamUrl: URL;
  private readonly credentials: Credentials | undefined;
  private readonly allowedRealms: readonly string[];
  private readonly tokens: Keyv;
  private readonly dispatcherFor: (url: URL) => Dispatcher;
  private readonly log: UpstreamLogger;
  private readonly inflight = new Map<string, Promise<string>>();
  private warnedRealms = new Set<string>();

  constructor(opts: TokenAuthOptions) {
    this.upstream = opts.upstream;
    this.upstreamUrl = new URL(opts.upstream.url);
    this.credentials = opts.credentials;
    this.allowedRealms = opts.allowedRealms;
    this.tokens = opts.tokens;
    this.dispatcherFor = opts.dispatcherFor;
    this.log = opts.logger ?? silentLogger;
  }

  /** Cache key: upstream + credential identity (the user name, never the password) + scope. */
  private key(repository: string): string {
    const identity = this.credentials ? `user:${this.credentials.username}` : 'anonymous';
    return `wharf:upstream-token:${this.upstream.name}:${identity}:${pullScope(repository) ?? 'registry'}`;
  }

  /** A cached, unexpired token for the repository's pull scope. A failing store counts as a miss. */
  async cached(repository: string): Promise<string | undefined> {
    try {
      const v = (await this.tokens.get(this.key(repository))) as StoredToken | undefined;
      if (v && typeof v.token === 'string' && v.expiresAt > Date.now()) return v.token;
    } catch (err) {
      this.log.warn({ upstream: this.upstream.name, err: String(err) }, 'upstream token cache unavailable; fetching a new token');
    }
    return undefined;
  }

  async forget(repository: string): Promise<void> {
    try {
      await this.tokens.delete(this.key(repository));
    } catch {
      // a store that cannot delete will expire the entry anyway
    }
  }

  /** Fetch a fresh token for the challenge and the repository's pull scope, and cache it. Concurrent callers share one fetch. */
  token(challenge: BearerChallenge, repository: string, signal?: AbortSignal): Promise<string> {
    const key = this.key(repository);
    let p = this.inflight.get(key);
    if (!p) {
      // The shared fetch must not die with the first caller's signal: others may still want it.
      p = this.fetchToken(challenge, repository).finally(() => this.inflight.delete(key));
      this.inflight.set(key, p);
    }
    return signal ? raceAbort(p, signal) : p;
  }

  private async fetchToken(challenge: BearerChallenge, repository: string): Promise<string> {
    const realm = new URL(challenge.realm);
    const scopes = new Set<string>();
    const own = pullScope(repository);
    if (own) scopes.add(own);
    for (const s of (challenge.scope ?? '').split(/\s+/)) if (s) scopes.add(s);
    if (challenge.service) realm.searchParams.set('service', challenge.service);
    for (const s of scopes) realm.searchParams.append('scope', s);

    const headers: Record<string, string> = { accept: 'application/json', 'user-agent': 'wharf' };
    let withCredentials = false;
    if (this.credentials) {
      if (mayReceiveCredentials(realm, this.upstreamUrl, this.allowedRealms)) {
        headers.authorization = basicAuthorization(this.credentials);
        withCredentials = true;
      } else if (!this.warnedRealms.has(realm.host)) {
        this.warnedRealms.add(realm.host);
        this.log.warn(
          { upstream: this.upstream.name, realm: displayUrl(realm) },
          `token realm ${realm.origin} is not the upstream's origin nor on its registrable domain: asking it anonymously; add ${realm.host} to upstreams[].allowedRealms if it should get the credentials`,
        );
      }
    }
    this.log.debug({ upstream: this.upstream.name, realm: displayUrl(realm), service: challenge.service, scopes: [...scopes], withCredentials }, 'fetching upstream token');

    let res: Dispatcher.ResponseData;
    try {
      res = await this.dispatcherFor(realm).request({ origin: realm.origin, path: realm.pathname + realm.search, method: 'GET', headers });
    } catch (err) {
      throw toUpstreamError(err, this.upstream, realm);
    }
    if (res.statusCode !== 200) {
      await res.body.dump().catch(() => {});
      const hint =
        res.statusCode === 401 || res.statusCode === 403
          ? withCredentials
            ? 'check the username and password configured for this upstream'
            : 'the token service wants credentials: configure username and password for this upstream'
          : 'the token service is failing';
      throw new UpstreamError(res.statusCode === 401 || res.statusCode === 403 ? 'denied' : 'protocol', this.upstream, `token service ${displayUrl(realm)} answered ${res.statusCode} for ${[...scopes].join(' ') || 'registry access'}; ${hint}`);
    }
    let text: string | undefined;
    try {
      text = await readLimited(res.body, MAX_TOKEN_RESPONSE);
    } catch (err) {
      throw toUpstreamError(err, this.upstream, realm);
    }
    if (text === undefined) throw new UpstreamError('protocol', this.upstream, `token service ${displayUrl(realm)} sent a response larger than ${MAX_TOKEN_RESPONSE} bytes`);
    let body: { token?: unknown; access_token?: unknown; expires_in?: unknown };
    try {
      body = JSON.parse(text) as typeof body;
    } catch {
      throw new UpstreamError('protocol', this.upstream, `token service ${displayUrl(realm)} answered with something that is not JSON`);
    }
    const token = typeof body.token === 'string' && body.token ? body.token : typeof body.access_token === 'string' && body.access_token ? body.access_token : undefined;
    if (!token) throw new UpstreamError('protocol', this.upstream, `token service ${displayUrl(realm)} answered without a token or access_token`);

    const expiresIn = typeof body.expires_in === 'number' && body.expires_in > 0 ? body.expires_in : DEFAULT_EXPIRES_IN_S;
    const lifetime = expiresIn * 1000;
    // Stop using a token a little before it expires: a request sent at the last moment would bounce.
    const ttl = lifetime - Math.min(10_000, lifetime / 10);
    try {
      await this.tokens.set(this.key(repository), { token, expiresAt: Date.now() + ttl } satisfies StoredToken, ttl);
    } catch (err) {
      this.log.warn({ upstream: this.upstream.name, err: String(err) }, 'could not cache the upstream token');
    }
    return token;
  }
}

/** The body as text, or undefined (and the body destroyed) when it is larger than the limit. */
async function readLimited(body: AsyncIterable<Buffer> & { destroy(err?: Error): void }, limit: number): Promise<string | undefined> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of body) {
    size += chunk.length;
    if (size > limit) {
      body.destroy();
      return undefined;
    }
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString('utf8');
}

function raceAbort<T>(p: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(signal.reason ?? new DOMException('aborted', 'AbortError'));
  return new Promise<T>((resolve, reject) => {
    const onAbort = (): void => reject(signal.reason ?? new DOMException('aborted', 'AbortError'));
    signal.addEventListener('abort', onAbort, { once: true });
    p.then(
      (v) => {
        signal.removeEventListener('abort', onAbort);
        resolve(v);
      },
      (e: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(e);
      },
    );
  });
}
