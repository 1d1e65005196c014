// Turns every error into the distribution-spec body {"errors":[{code,message,detail}]}.
// Domain errors carry their code; framework errors are mapped by status; anything else is a 500
// that is logged with the request id and never leaks internals.
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { RegistryError, asRegistryErrorOrFull, type ErrorCode } from '../../registry/errors.js';
import { MetadataUnavailableError } from '../../metadata/metadata-errors.js';
import { API_VERSION, API_VERSION_HEADER } from '../oci-headers.js';
import { clientGone, noteError } from '../request-log.js';

export function errorBody(code: ErrorCode, message: string, detail: unknown = null) {
  return { errors: [{ code, message, detail }] };
}

function fromFramework(err: FastifyError): RegistryError | undefined {
  const status = err.statusCode;
  if (status === undefined || status < 400 || status >= 500) return undefined;
  const code: ErrorCode =
    status === 413 ? 'SIZE_INVALID' : status === 415 || status === 405 ? 'UNSUPPORTED' : status === 404 ? 'NOT_FOUND' : 'BLOB_UPLOAD_INVALID';
  return new RegistryError(code, err.message, { status });
}

export function sendError(request: FastifyRequest, reply: FastifyReply, err: RegistryError): FastifyReply {
  // A request body we did not read (an early error on an upload) must not be drained at length:
  // close the connection instead of reading gigabytes nobody wants.
  const declared = request.headers['content-length'];
  const hasBody = (declared !== undefined && declared !== '0') || request.headers['transfer-encoding'] !== undefined;
  if (hasBody && !request.raw.complete) reply.header('connection', 'close');
  // Headers set for a success that did not happen (a blob's length, digest, range) must not go out.
  for (const name of ['content-length', 'content-range', 'docker-content-digest', 'accept-ranges']) reply.removeHeader(name);
  reply.header(API_VERSION_HEADER, API_VERSION);
  for (const [name, value] of Object.entries(err.headers)) reply.header(name, value);
  reply.code(err.status).type('application/json');
  noteError(request, err.code, err.message);
  if (request.method === 'HEAD') return reply.send();
  return reply.send(errorBody(err.code, err.message, err.detail));
}

export function registerErrorHandler(app: FastifyInstance): void {
  app.setErrorHandler((error: FastifyError, request, reply) => {
    if (clientGone(request, reply)) {
      // The client left (an upload it stopped sending, a download it dropped): its request's line
      // says so; there is nobody to answer and nothing to fix.
      request.log.debug({ err: error }, 'client went away');
      return reply.hijack();
    }
    const err = asRegistryErrorOrFull(error) ?? fromFramework(error);
    if (err) {
      // A full disk or a metadata database out of reach is the operator's to fix, not a fault in
      // the code: the request's own line says so, without a stack per request of an outage.
      if (err.status >= 500 && err.code !== 'STORAGE_FULL' && !(err.cause instanceof MetadataUnavailableError)) {
        request.log.error({ err: error }, 'request failed');
      }
      return sendError(request, reply, err);
    }
    request.log.error({ err: error }, 'unexpected error');
    return sendError(
      request,
      reply,
      new RegistryError('INTERNAL_ERROR', `internal error (request ${request.id}); the server log has the details`, {
        detail: { requestId: request.id },
      }),
    );
  });

  app.setNotFoundHandler((request, reply) => {
    const path = request.url.split('?')[0] ?? '';
    return sendError(
      request,
      reply,
      new RegistryError('NOT_FOUND', `no endpoint ${request.method} ${path.slice(0, 200)}`, { detail: { method: request.method } }),
    );
  });
}

