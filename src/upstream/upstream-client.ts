// The client for one upstream registry: a keep-alive undici Pool for its origin, the auth flow
// (cached bearer token or Basic, one retry after following a 401 challenge), manual redirects (a CDN on
// another host gets no credentials and goes through the client's own Agent), rate-limit headers, and
// network failures turned into UpstreamErrors.
//
// Why a loop here and not undici interceptors (STYLE habit 8): a hop may change dispatcher (Pool for our
// origin, Agent for a CDN) and the auth step awaits a shared token store between the 401 and the retry;
// written as one loop both stay readable, and every body we do not hand back is dumped in one place.
import type { Readable } from 'node:stream';
import { setFlagsFromString } from 'node:v8';
import type { Dispatcher } from 'undici';
import type Keyv from 'keyv';
import type { UpstreamConfig, UpstreamProxy } from '../config/schema.js';
import { UpstreamError, displayUrl, isAbort, toUpstreamError, type UpstreamRef } from './upstream-errors.js';
import { silentLogger, type UpstreamLogger } from './upstream-logger.js';
import type { UpstreamObserver } from './upstream-observer.js';
import { Agent, Pool, envHttpProxyAgent } from './undici-dispatchers.js';
import { readFileSync } from 'node:fs';
import type { ConnectionOptions } from 'node:tls';
import { TokenAuth, basicAuthorization, bearerChallenge, parseWwwAuthenticate, type BearerChallenge, type Credentials } from './token-auth.js';

// undici parses HTTP/1.1 with llhttp compiled to WebAssembly, and V8 tiers the hot parse function up
// to its optimising compiler a few MiB into the first large body: about 0.4 s of CPU on another
// thread and 40 MB of compiler memory, on the machine's second core while a cold pull needs it
// (measured: a fresh process's first 256 MiB pull ~30% slower, peak RSS +40 MB). The baseline code
// parses a response's headers in microseconds and a body's bytes are not parsed, only delimited.
// Only WebAssembly is affected, and undici's parser is all of it in this process.
setFlagsFromString('--liftoff-only');

/** Response bytes undici may buffer before it pauses the socket: large reads keep a blob fill's
 * upstream connection streaming instead of stopping every 64 KiB (measured: about 10% faster cold pulls). */
const BODY_HIGH_WATER_MARK = 1024 * 1024;

export interface UpstreamRequest {
  method: 'GET' | 'HEAD';
  /** Path and query on the upstream, e.g. /v2/library/alpine/manifests/latest */
  path: string;
  /** Remote repository name, for the pull scope repository:<name>:pull; '' for registry-level paths such as /v2/. */
  repository: string;
  /** Extra request headers (Accept, Range, If-None-Match, ...). Authorization and Host are ours and are ignored. */
  headers?: Record<string, string>;
  signal?: AbortSignal;
  /** The logger of the client request this call serves (its lines carry that request's id). */
  log?: UpstreamLogger;
}

export interface UpstreamResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  /** The undici body: the caller must consume or dump it. Errors while reading it map with toUpstreamError(). */
  body: Readable;
  /** Final URL after redirects (may carry a CDN signature: do not log it whole). */
  url: string;
}

export interface RateLimit {
  limit?: number;
  remaining?: number;
  /** When these values were read. */
  at: Date;
}

/** A RateLimit as it is stored in the shared cache (JSON: the time in ms). */
interface SharedRateLimit {
  limit?: number;
  remaining?: number;
  at: number;
}

export interface UpstreamClientDeps {
  tokens: Keyv;
  /** Where every node writes the last rate-limit values it saw, keyed by upstream name. Default: none. */
  rateLimits?: Keyv;
  logger?: UpstreamLogger;
  /** Told of every exchange and of the body bytes received (metrics, /api/stats). */
  observer?: UpstreamObserver;
  /** Forward proxies for upstream traffic (HTTPS_PROXY, HTTP_PROXY, NO_PROXY). Default: none. */
  proxy?: UpstreamProxy;
}

/** How the upstream's certificate is verified: tls.ca, or not at all with tls.insecureSkipVerify. */
function tlsOptions(config: UpstreamConfig): ConnectionOptions {
  const tls = config.tls as UpstreamConfig['tls'] | undefined;
  if (tls?.insecureSkipVerify) return { rejectUnauthorized: false };
  // The loader has read the file (config/checks.ts); a configuration built in memory names it only.
  const ca = tls?.caPem ?? (tls?.ca !== undefined ? readFileSync(tls.ca, 'utf8') : undefined);
  return ca !== undefined ? { ca } : {};
}

const REDIRECTS = new Set([301, 302, 303, 307, 308]);
const MAX_REDIRECTS = 5;
const KEEP_ALIVE_MS = 30_000;
/**
 * How long a shared rate-limit value lives. Short on purpose: another node's in-process LRU in front
 * of the shared cache keeps an entry until it expires, so it may answer a value this stale at most.
 */
const RATE_LIMIT_TTL_MS = 60_000;

type Scheme = 'unknown' | 'none' | 'basic' | 'bearer';

export class UpstreamClient {
  readonly name: string;
  /** The upstream's origin, e.g. https://registry-1.docker.io */
  readonly origin: string;
  private readonly ref: UpstreamRef;
  private readonly credentials: Credentials | undefined;
  /** For the upstream's origin: a Pool, or the proxy agent. */
  private readonly pool: Dispatcher;
  /** For other hosts (redirects, token realms): an Agent, or the proxy agent. */
  private readonly agent: Dispatcher;
  private readonly auth: TokenAuth;
  private readonly log: UpstreamLogger;
  private readonly rateLimits: Keyv | undefined;
  private readonly observer: UpstreamObserver | undefined;
  /** How the upstream wants to be authenticated, learnt from its last challenge. */
  private scheme: Scheme = 'unknown';
  private challenge: BearerChallenge | undefined;
  private lastRateLimit: RateLimit | undefined;

  constructor(config: UpstreamConfig, deps: UpstreamClientDeps) {
    const url = new URL(config.url);
    this.name = config.name;
    this.origin = url.origin;
    this.ref = { name: config.name, url: config.url };
    this.log = deps.logger ?? silentLogger;
    this.rateLimits = deps.rateLimits;
    this.observer = deps.observer;
    this.credentials = config.username && config.password ? { username: config.username, password: config.password } : undefined;
    if (config.username && !config.password) {
      this.log.warn({ upstream: config.name }, 'upstream has a username but no password: pulling anonymously');
    }
    // The upstream's CA (tls.ca) is trusted instead of the system's, for its origin and for the hosts
    // it redirects to (a private registry's storage sits behind the same private CA).
    const tls = tlsOptions(config);
    const options = {
      connect: { timeout: config.timeouts.connect, ...tls },
      headersTimeout: config.timeouts.headers,
      bodyTimeout: config.timeouts.bodyIdle,
      keepAliveTimeout: KEEP_ALIVE_MS,
    };
    if (deps.proxy) {
      // HTTPS_PROXY / HTTP_PROXY / NO_PROXY (config/checks.ts reads them): one agent for the origin and
      // for redirects, tunnelling with CONNECT where a proxy applies. Through the tunnel the TLS
      // options go in requestTls (the agent's own connect is the tunnel's).
      const agent = envHttpProxyAgent({ ...options, ...deps.proxy, noProxy: deps.proxy.noProxy ?? '', requestTls: { timeout: config.timeouts.connect, ...tls } });
      this.pool = agent;
      this.agent = agent;
    } else {
      this.pool = new Pool(this.origin, options);
      this.agent = new Agent(options);
    }
    this.auth = new TokenAuth({
      upstream: this.ref,
      credentials: this.credentials,
      allowedRealms: config.allowedRealms,
      tokens: deps.tokens,
      dispatcherFor: (u) => this.dispatcherFor(u),
      logger: this.log,
    });
  }

  /** The last rate-limit values the upstream sent (Docker Hub: ratelimit-limit / ratelimit-remaining). */
  get rateLimit(): RateLimit | undefined {
    return this.lastRateLimit;
  }

  /**
   * The newest rate-limit values seen by any node: this node's own, or the shared cache's (which
   * another node may have written). Never throws: the shared cache out of reach is this node's value.
   */
  async sharedRateLimit(): Promise<RateLimit | undefined> {
    const own = this.lastRateLimit;
    let stored: SharedRateLimit | undefined;
    try {
      stored = (await this.rateLimits?.get<SharedRateLimit>(this.name)) ?? undefined;
    } catch {
      stored = undefined;
    }
    if (stored === undefined || typeof stored.at !== 'number') return own;
    if (own !== undefined && own.at.getTime() > stored.at) return own;
    return { limit: stored.limit, remaining: stored.remaining, at: new Date(stored.at) };
  }

  async request(req: UpstreamRequest): Promise<UpstreamResponse> {
    let url = new URL(req.path, this.origin);
    if (url.origin !== this.origin) throw new Error(`UpstreamClient.request: path must be a path on the upstream, got ${req.path}`);
    let method: UpstreamRequest['method'] = req.method;
    const log = req.log ?? this.log;
    for (let hops = 0; ; hops++) {
      const res = url.origin === this.origin ? await this.sendWithAuth(method, url, req) : await this.send(this.agent, method, url, baseHeaders(req.headers), req.signal, log);
      if (!REDIRECTS.has(res.statusCode)) {
        return { status: res.statusCode, headers: res.headers, body: res.body, url: url.href };
      }
      await dump(res);
      const location = header(res.headers, 'location');
      if (!location) throw new UpstreamError('protocol', this.ref, `${displayUrl(url)} answered ${res.statusCode} without a Location header`);
      if (hops >= MAX_REDIRECTS) throw new UpstreamError('protocol', this.ref, `more than ${MAX_REDIRECTS} redirects for ${displayUrl(new URL(req.path, this.origin))}`);
      const next = new URL(location, url);
      if (next.protocol !== 'https:' && next.protocol !== 'http:') throw new UpstreamError('protocol', this.ref, `redirect to an unsupported URL scheme ${next.protocol}`);
      log.debug({ upstream: this.name, status: res.statusCode, from: displayUrl(url), to: displayUrl(next) }, 'following upstream redirect');
      if (res.statusCode === 303 && method !== 'HEAD') method = 'GET';
      url = next;
    }
  }

  /** GET /v2/: true when the upstream answers as a registry (200, or 401 asking for auth). Never throws. */
  async ping(signal?: AbortSignal): Promise<boolean> {
    try {
      const url = new URL('/v2/', this.origin);
      const res = await this.send(this.pool, 'GET', url, baseHeaders(undefined), signal);
      this.learn(res);
      await dump(res);
      return res.statusCode === 200 || res.statusCode === 401;
    } catch {
      return false;
    }
  }

  async close(): Promise<void> {
    await Promise.all([...new Set([this.pool, this.agent])].map((d) => d.close()));
  }

  /** Send to the upstream's own origin with auth; on 401 follow the challenge and retry exactly once. */
  private async sendWithAuth(method: UpstreamRequest['method'], url: URL, req: UpstreamRequest): Promise<Dispatcher.ResponseData> {
    const headers = baseHeaders(req.headers);
    const sent = await this.authorization(req.repository, req.signal);
    if (sent) headers.authorization = sent;
    const first = await this.send(this.pool, method, url, headers, req.signal, req.log);
    this.noteRateLimit(first.headers);
    if (first.statusCode !== 401) {
      if (!sent && this.scheme === 'unknown') this.scheme = 'none';
      return first;
    }
    let retry: string | undefined;
    try {
      retry = await this.answer(first, req.repository, sent, req.signal);
    } catch (err) {
      await dump(first);
      throw err;
    }
    if (!retry) return first; // nothing new to try: the caller gets the 401 with its body
    await dump(first);
    headers.authorization = retry;
    const second = await this.send(this.pool, method, url, headers, req.signal, req.log);
    this.noteRateLimit(second.headers);
    return second;
  }

  /** The Authorization to send before any challenge: Basic if that is what the upstream wants, else a bearer token. */
  private async authorization(repository: string, signal?: AbortSignal): Promise<string | undefined> {
    if (this.scheme === 'basic') return this.credentials ? basicAuthorization(this.credentials) : undefined;
    if (this.scheme === 'none') return undefined;
    const cached = await this.auth.cached(repository);
    if (cached) return `Bearer ${cached}`;
    // We know the realm from an earlier challenge: get the token now rather than after a 401 round trip.
    if (this.scheme === 'bearer' && this.challenge) return `Bearer ${await this.auth.token(this.challenge, repository, signal)}`;
    return undefined;
  }

  /** Follow a 401's challenge: the Authorization for the retry, or undefined when there is nothing better to send. */
  private async answer(res: Dispatcher.ResponseData, repository: string, sent: string | undefined, signal?: AbortSignal): Promise<string | undefined> {
    const challenges = this.learn(res);
    if (this.scheme === 'bearer' && this.challenge) {
      if (sent?.startsWith('Bearer ')) await this.auth.forget(repository);
      return `Bearer ${await this.auth.token(this.challenge, repository, signal)}`;
    }
    if (challenges.some((c) => c.scheme === 'basic') && this.credentials && !sent?.startsWith('Basic ')) {
      return basicAuthorization(this.credentials);
    }
    return undefined;
  }

  /** Remember how the upstream wants to be authenticated from a 401's WWW-Authenticate. */
  private learn(res: Dispatcher.ResponseData): ReturnType<typeof parseWwwAuthenticate> {
    if (res.statusCode !== 401) return [];
    const challenges = parseWwwAuthenticate(res.headers['www-authenticate']);
    const bearer = bearerChallenge(challenges);
    const previous = this.scheme;
    if (bearer) {
      this.scheme = 'bearer';
      this.challenge = { realm: bearer.realm, service: bearer.service }; // scope is per request
    } else if (challenges.some((c) => c.scheme === 'basic')) {
      this.scheme = 'basic';
    }
    if (this.scheme !== previous) this.log.debug({ upstream: this.name, scheme: this.scheme }, 'upstream auth scheme');
    return challenges;
  }

  private dispatcherFor(url: URL): Dispatcher {
    return url.origin === this.origin ? this.pool : this.agent;
  }

  /**
   * One exchange: logged (with the request id of the client request it serves, when `log` is that
   * request's logger), timed and counted for the observer.
   */
  private async send(dispatcher: Dispatcher, method: string, url: URL, headers: Record<string, string>, signal?: AbortSignal, log = this.log): Promise<Dispatcher.ResponseData> {
    const start = performance.now();
    let res: Dispatcher.ResponseData;
    try {
      res = await dispatcher.request({ origin: url.origin, path: url.pathname + url.search, method, headers, signal, highWaterMark: BODY_HIGH_WATER_MARK });
    } catch (err) {
      if (isAbort(err)) throw err;
      const mapped = toUpstreamError(err, this.ref, url);
      const ms = Math.round(performance.now() - start);
      this.observer?.exchange({ upstream: this.name, method, ms, error: mapped.message });
      log.warn({ upstream: this.name, method, target: displayUrl(url), kind: (mapped as UpstreamError).kind, code: (err as { code?: unknown }).code, ms }, mapped.message);
      throw mapped;
    }
    const ms = Math.round(performance.now() - start);
    const status = res.statusCode;
    const failed = status >= 500 || status === 429;
    if (this.observer) {
      this.observer.exchange({ upstream: this.name, method, status, ms, ...(failed ? { error: `${displayUrl(url)} answered ${status}` } : {}) });
      countBody(res.body, this.name, this.observer);
    }
    log.info({ upstream: this.name, method, target: displayUrl(url), status, ms }, 'upstream request');
    return res;
  }

  private noteRateLimit(headers: Dispatcher.ResponseData['headers']): void {
    const limit = leadingInt(header(headers, 'ratelimit-limit'));
    const remaining = leadingInt(header(headers, 'ratelimit-remaining'));
    if (limit === undefined && remaining === undefined) return;
    const at = new Date();
    this.lastRateLimit = { limit, remaining, at };
    // Shared with the other nodes, off the request path: a failure is only a value the others lack (the
    // shared cache reports its own failures).
    const stored: SharedRateLimit = { limit, remaining, at: at.getTime() };
    this.rateLimits?.set(this.name, stored, RATE_LIMIT_TTL_MS).catch(() => undefined);
    const fields = { upstream: this.name, limit, remaining };
    if (remaining !== undefined && (remaining === 0 || (limit !== undefined && remaining < limit * 0.1))) {
      this.log.warn(fields, `upstream "${this.name}" rate limit nearly used up: ${remaining} of ${limit ?? '?'} requests left`);
    } else {
      this.log.info(fields, 'upstream rate limit');
    }
  }
}

function baseHeaders(extra: Record<string, string> | undefined): Record<string, string> {
  const out: Record<string, string> = { 'user-agent': 'wharf' };
  for (const [k, v] of Object.entries(extra ?? {})) {
    const key = k.toLowerCase();
    if (key === 'authorization' || key === 'host') continue;
    out[key] = v;
  }
  return out;
}

function header(headers: Dispatcher.ResponseData['headers'], name: string): string | undefined {
  const v = headers[name];
  return Array.isArray(v) ? v[0] : v;
}

/** "76;w=21600" → 76 (Docker Hub sends the window after the count). */
function leadingInt(v: string | undefined): number | undefined {
  const m = v === undefined ? null : /^\s*(\d+)/.exec(v);
  return m ? Number(m[1]) : undefined;
}

/**
 * Counts a body's bytes as undici hands them over. Its body is a Readable that undici fills with
 * push(): wrapping push on this one object counts the bytes of a long download as they arrive,
 * without a listener (a 'data' listener would start the flow before the caller reads) or another
 * stream in the way of a blob. Bytes pushed before the wrap (those that came with the headers, a
 * small body whole) are added from undici's own count of the body's bytes when it closes.
 */
function countBody(body: Readable, upstream: string, observer: UpstreamObserver): void {
  let counted = 0;
  const push = body.push.bind(body);
  body.push = (chunk: unknown, encoding?: BufferEncoding): boolean => {
    if (chunk !== null && chunk !== undefined) {
      const n = (chunk as { length: number }).length;
      counted += n;
      observer.bytes(upstream, n);
    }
    return push(chunk, encoding);
  };
  body.once('close', () => {
    const total = bytesRead(body);
    if (total !== undefined && total > counted) observer.bytes(upstream, total - counted);
  });
}

/** undici's count of the bytes pushed into a response body (its kBytesRead), when it keeps one. */
let kBytesRead: symbol | undefined;
function bytesRead(body: Readable): number | undefined {
  kBytesRead ??= Object.getOwnPropertySymbols(body).find((s) => s.description === 'kBytesRead');
  const n = kBytesRead === undefined ? undefined : (body as unknown as Record<symbol, unknown>)[kBytesRead];
  return typeof n === 'number' ? n : undefined;
}

async function dump(res: Dispatcher.ResponseData): Promise<void> {
  await res.body.dump().catch(() => {});
}
