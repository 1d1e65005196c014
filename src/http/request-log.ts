// One log line per request, however it ended: completed, cut by us after the headers went out (a
// failed fill), or abandoned by the client. fastify's own request lines are off: they skip hijacked
// replies (blob bodies) and responses that never finish, which are exactly the ones worth seeing.
// A client going away is an outcome, not an error: no stack, no error level.
// The line names the request id, the client's address, the user, the method, the kind of route,
// the status, the body bytes, the duration and how the pull-through cache answered (issue 13); the
// same facts go to the metrics and statistics (RequestEnd).
import { performance } from 'node:perf_hooks';
import { LogController, type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import type { RequestContext } from '../registry/registry.js';

declare module 'fastify' {
  interface FastifyRequest {
    /** What went wrong with the response, for its log line (the error handler, the blob route). */
    outcome: RequestOutcome | null;
    /** What the request carries down to the registry, and what the routes learn about it. */
    state: RequestState;
  }
}

export interface RequestState extends RequestContext {
  /** The kind of route (RouteKind), set by the route once it knows. */
  route?: string;
  /** The user who signed in, when one did. */
  user?: string;
}

/**
 * The kinds of route the log, the metrics and the statistics name a request by: bounded, never the
 * URL (metric labels stay few).
 */
export type RouteKind = 'base' | 'manifest' | 'blob' | 'upload' | 'catalog' | 'tags' | 'referrers' | 'api' | 'auth' | 'metrics' | 'health' | 'internal' | 'v2' | 'other';

/** A finished request, as the metrics and the statistics count it. */
export interface RequestEnd {
  route: string;
  method: string;
  status: number | null;
  seconds: number;
  /** Body bytes of a completed response (0 for HEAD); null when it did not complete. */
  bytes: number | null;
  cache?: RequestContext['cache'];
}

export type RequestObserver = (end: RequestEnd) => void;

/** The route kind of a fastify route pattern; /v2 routes name theirs (RequestState.route). */
function routeKindOf(pattern: string | undefined): RouteKind {
  if (pattern === undefined) return 'other';
  if (pattern.startsWith('/v2')) return 'v2';
  if (pattern.startsWith('/api/')) return 'api';
  if (pattern.startsWith('/auth/')) return 'auth';
  if (pattern === '/metrics') return 'metrics';
  if (pattern === '/healthz' || pattern === '/readyz') return 'health';
  if (pattern.startsWith('/internal/')) return 'internal';
  return 'other';
}

export interface RequestOutcome {
  /** The OCI error the response carried. */
  error?: { code: string; message: string };
  /** Why we cut the response after its headers went out. */
  cut?: string;
}

export function noteError(request: FastifyRequest, code: string, message: string): void {
  request.outcome = { ...request.outcome, error: { code, message: message.slice(0, 500) } };
}

/** Marks the response as cut by us (call before destroying it). */
export function noteCut(request: FastifyRequest, reason: string): void {
  request.outcome = { ...request.outcome, cut: reason.slice(0, 500) };
}

/** Whether the client has closed the connection (so an error now is its leaving, not a fault). */
export function clientGone(request: FastifyRequest, reply: FastifyReply): boolean {
  return reply.raw.destroyed && !reply.raw.writableFinished && request.outcome?.cut === undefined;
}

/**
 * fastify's per-request lines off; a reply stream that fails after the headers (not a premature
 * close, which is the client leaving) is noted as cut for the request's line.
 */
export class RequestLogController extends LogController {
  constructor() {
    super({ disableRequestLogging: true });
  }

  override streamError(error: Error, request: FastifyRequest): void {
    if ((error as NodeJS.ErrnoException).code !== 'ERR_STREAM_PREMATURE_CLOSE') noteCut(request, error.message);
  }
}

/** A request's log line (the hot manifest path writes the same fields, with reqId first). */
interface RequestLine {
  client: string;
  user: string | null;
  method: string;
  route: string;
  url: string;
  status: number | null;
  bytes: number | null;
  ms: number;
  outcome: 'completed' | 'cut' | 'client gone';
  cache?: string;
  upstream?: string;
  error?: { code: string; message: string };
  reason?: string | undefined;
}

/** The body bytes a response announced, when it completed. */
export function bodyBytes(method: string, completed: boolean, contentLength: unknown): number | null {
  if (!completed) return null;
  if (method === 'HEAD') return 0;
  const n = Number(contentLength ?? 0);
  return Number.isSafeInteger(n) && n >= 0 ? n : null;
}

/**
 * Logs each request once, when its response closes, with how it ended; `observe` (metrics,
 * statistics) is told of it at the same moment.
 */
export function registerRequestLog(app: FastifyInstance, redactUrl: (url: string) => string, observe?: RequestObserver): void {
  app.decorateRequest('outcome', null);
  app.decorateRequest('state', null as unknown as RequestState);
  // A callback hook, not an async one: no promise per request.
  app.addHook('onRequest', (request, reply, done) => {
    const start = performance.now();
    // Upstream calls made for this request log through its logger, with its id.
    request.state = { log: request.log };
    reply.raw.on('close', () => {
      const res = reply.raw;
      const outcome = request.outcome;
      const state = request.state;
      const completed = res.writableFinished;
      const how = completed ? 'completed' : outcome?.cut !== undefined ? 'cut' : 'client gone';
      const route = state.route ?? routeKindOf(request.routeOptions.url);
      const status = res.headersSent ? res.statusCode : null;
      const seconds = (performance.now() - start) / 1000;
      const bytes = bodyBytes(request.method, completed, reply.getHeader('content-length'));
      const cache = state.cache;
      const line: RequestLine = {
        client: request.ip,
        user: state.user ?? null,
        method: request.method,
        route,
        url: redactUrl(request.url).slice(0, 300),
        status,
        bytes,
        ms: Math.round(seconds * 1000),
        outcome: how,
      };
      // Optional fields assigned, not spread in: this runs for every request.
      if (cache) {
        line.cache = cache.outcome;
        line.upstream = cache.upstream;
      }
      if (outcome?.error) line.error = outcome.error;
      if (how === 'cut') line.reason = outcome?.cut;
      // A full disk is the operator's to fix: said at warn, once, on the request it failed.
      if (outcome?.error?.code === 'STORAGE_FULL') request.log.warn(line, 'request');
      else request.log.info(line, 'request');
      observe?.({ route, method: request.method, status, seconds, bytes, cache });
    });
    done();
  });
}

/** The request's state with its event identity set (when events are on), to hand to the registry. */
export function withEvent(state: RequestState, event: RequestContext['event']): RequestState {
  if (event) state.event = event;
  return state;
}
