// GET and HEAD of a manifest that memory alone can answer, before fastify sees the request. Pulls
// ask for the same few manifests over and over (every node of a cluster, every CI job), and once a
// manifest is in memory (registry/manifest-cache.ts) the answer is a handful of headers and a
// buffer: fastify's routing, hooks, child logger and reply machinery cost several times more than
// that. Everything else, a miss included, goes through fastify as before; so does every request
// when access control is on (its checks run per request, on the name actually served).
//
// The answer is the one the route gives (routes/v2/manifests.ts): the same status, headers in the
// same order, no body for HEAD, and the same request log line (request-log.ts).
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { RequestServer } from './connection-limits.js';
import { performance } from 'node:perf_hooks';
import type { Registry, RequestContext } from '../registry/registry.js';
import { API_VERSION, API_VERSION_HEADER, CONTENT_DIGEST } from './oci-headers.js';
import type { EventSink } from '../events/event.js';
import { eventRequest } from './request-events.js';
import { bodyBytes, type RequestObserver } from './request-log.js';

interface RequestLogger {
  info(obj: object, msg: string): void;
}

export interface HotManifestOptions {
  /** The request id, from the same sequence fastify's requests get theirs. */
  nextId: () => string;
  log: RequestLogger;
  redactUrl: (url: string) => string;
  /** True once the server is closing: requests then get fastify's 503. */
  closing: () => boolean;
  /** Where pull events go (a GET answered here is a pull as the route's is). */
  events?: EventSink;
  publicUrl?: string;
  /** Whether an address is a reverse proxy of http.trustProxy (the client is then named in X-Forwarded-For). */
  isTrustedProxy?: (address: string) => boolean;
  /** Told of each request answered here, as of those fastify answers (metrics, statistics). */
  observe?: RequestObserver;
}

const MANIFESTS = '/manifests/';

/** The request line of a hot pull: the fields of request-log.ts's, in its order. */
interface HotLine {
  reqId: string;
  client: string;
  user: null;
  method: string;
  route: 'manifest';
  url: string;
  status: number | null;
  bytes: number | null;
  ms: number;
  outcome: 'completed' | 'client gone';
  cache?: string;
  upstream?: string;
}

/** Answers hot manifest pulls on `server` ahead of its other 'request' listeners (fastify's). */
export function serveHotManifests(server: RequestServer, registry: Registry, opts: HotManifestOptions): void {
  const emit = server.emit.bind(server) as (event: string | symbol, ...args: unknown[]) => boolean;
  // http.Server announces each request with emit('request'); one answered here reaches no listener.
  server.emit = ((event: string | symbol, ...args: unknown[]): boolean => {
    if (event === 'request' && answer(args[0] as IncomingMessage, args[1] as ServerResponse, registry, opts)) return true;
    return emit(event, ...args);
  }) as typeof server.emit;
}

function answer(req: IncomingMessage, res: ServerResponse, registry: Registry, opts: HotManifestOptions): boolean {
  const method = req.method;
  if (method !== 'GET' && method !== 'HEAD') return false;
  const url = req.url ?? '';
  if (!url.startsWith('/v2/')) return false;
  const headers = req.headers;
  if (headers['content-length'] !== undefined || headers['transfer-encoding'] !== undefined || opts.closing()) return false;
  const q = url.indexOf('?');
  const path = q < 0 ? url : url.slice(0, q);
  const at = path.lastIndexOf(MANIFESTS);
  if (at <= 3) return false;
  const reference = path.slice(at + MANIFESTS.length);
  if (reference === '' || reference.includes('/')) return false;
  let ns: string | undefined;
  if (q >= 0) {
    // Only ?ns= (containerd's mirror parameter) changes what is served; any other query the route ignores too.
    const values = new URLSearchParams(url.slice(q + 1)).getAll('ns');
    if (values.length > 1) return false;
    ns = values[0];
  }
  let m;
  // Where the pull-through cache notes a hit (none for a local repository).
  const ctx: RequestContext = {};
  try {
    m = registry.hotManifest(path.slice(4, at), ns, reference, ctx);
  } catch {
    // A name the router refuses: the route says why.
    return false;
  }
  const head = method === 'HEAD';
  if (m === undefined || (!head && m.body === undefined)) return false;
  const start = performance.now();
  const id = opts.nextId();
  if (req.httpVersionMajor === 2) {
    // HTTP/2's compatibility API takes headers as an object only.
    res.writeHead(200, { [API_VERSION_HEADER]: API_VERSION, 'content-type': m.mediaType, [CONTENT_DIGEST]: m.digest, 'content-length': String(m.size) });
  } else {
    res.writeHead(200, [API_VERSION_HEADER, API_VERSION, 'content-type', m.mediaType, CONTENT_DIGEST, m.digest, 'content-length', String(m.size)]);
  }
  res.end(head ? undefined : m.body);
  if (!head && opts.events?.enabled) {
    // Access control is off on this path: the actor is anonymous, the address the socket's.
    const name = path.slice(4, at);
    const base = opts.publicUrl ? opts.publicUrl.replace(/\/+$/, '') : `http://${/^[A-Za-z0-9.:[\]-]{1,300}$/.test(headers.host ?? '') ? headers.host : 'localhost'}`;
    opts.events.emit({
      action: 'pull',
      target: {
        repository: registry.route(name, ns).canonical,
        digest: m.digest,
        mediaType: m.mediaType,
        size: m.size,
        ...(reference.includes(':') ? {} : { tag: reference }),
        url: `${base}/v2/${name}/manifests/${m.digest}`,
      },
      request: eventRequest(req, id, clientAddress(req, opts.isTrustedProxy), undefined),
    });
  }
  // One listener, no closure beyond it, no object spread: this runs for every hot pull.
  res.on('close', () => {
    const completed = res.writableFinished;
    const status = res.headersSent ? res.statusCode : null;
    const seconds = (performance.now() - start) / 1000;
    const bytes = bodyBytes(method, completed, m.size);
    const cache = ctx.cache;
    const line: HotLine = {
      reqId: id,
      client: clientAddress(req, opts.isTrustedProxy),
      user: null,
      method,
      route: 'manifest',
      url: opts.redactUrl(url).slice(0, 300),
      status,
      bytes,
      ms: Math.round(seconds * 1000),
      outcome: completed ? 'completed' : 'client gone',
    };
    if (cache) {
      line.cache = cache.outcome;
      line.upstream = cache.upstream;
    }
    opts.log.info(line, 'request');
    opts.observe?.({ route: 'manifest', method, status, seconds, bytes, cache });
  });
  return true;
}

/**
 * The client's address as fastify's request.ip gives it: the socket's, or, from a trusted proxy, the
 * nearest address in X-Forwarded-For that is not one of the trusted proxies.
 */
function clientAddress(req: IncomingMessage, isTrustedProxy: ((address: string) => boolean) | undefined): string {
  let addr = req.socket.remoteAddress ?? '';
  if (!isTrustedProxy?.(addr)) return addr;
  const forwarded = req.headers['x-forwarded-for'];
  const hops = (Array.isArray(forwarded) ? forwarded.join(',') : (forwarded ?? '')).split(',').map((h) => h.trim()).filter(Boolean);
  for (let hop = hops.pop(); hop !== undefined; hop = hops.pop()) {
    addr = hop;
    if (!isTrustedProxy(addr)) break;
  }
  return addr;
}
