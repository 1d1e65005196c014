// One log line per request, however it ended: completed, cut by us after the headers went out (a
// failed fill), or abandoned by the client. fastify's own request lines are off: they skip hijacked
// replies (blob bodies) and responses that never finish, which are exactly the ones worth seeing.
// A client going away is an outcome, not an error: no stack, no error level.
import { performance } from 'node:perf_hooks';
import { LogController, type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';

declare module 'fastify' {
  interface FastifyRequest {
    /** What went wrong with the response, for its log line (the error handler, the blob route). */
    outcome: RequestOutcome | null;
  }
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

/** Logs each request once, when its response closes, with how it ended. */
export function registerRequestLog(app: FastifyInstance, redactUrl: (url: string) => string): void {
  app.decorateRequest('outcome', null);
  app.addHook('onRequest', async (request, reply) => {
    const start = performance.now();
    reply.raw.once('close', () => {
      const res = reply.raw;
      const outcome = request.outcome;
      const how = res.writableFinished ? 'completed' : outcome?.cut !== undefined ? 'cut' : 'client gone';
      const line = {
        method: request.method,
        url: redactUrl(request.url).slice(0, 300),
        status: res.headersSent ? res.statusCode : null,
        ms: Math.round(performance.now() - start),
        outcome: how,
        ...(outcome?.error ? { error: outcome.error } : {}),
        ...(how === 'cut' ? { reason: outcome?.cut } : {}),
      };
      // A full disk is the operator's to fix: said at warn, once, on the request it failed.
      if (outcome?.error?.code === 'STORAGE_FULL') request.log.warn(line, 'request');
      else request.log.info(line, 'request');
    });
  });
}
