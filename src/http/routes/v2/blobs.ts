// GET/HEAD/DELETE /v2/<name>/blobs/<digest>
import type { OutgoingHttpHeaders } from 'node:http';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { isDirectBody } from '../../../storage/file-blob-stream.js';
import { parseDigest } from '../../../registry/reference.js';
import type { Registry } from '../../../registry/registry.js';
import type { BlobRead } from '../../../registry/blob-service.js';
import { CONTENT_DIGEST } from '../../oci-headers.js';
import { queryValue } from '../../request-helpers.js';
import { clientGone, noteCut } from '../../request-log.js';
import { NO_REQUEST_EVENTS } from '../../request-events.js';
import { withEvent } from '../../request-log.js';

export async function getBlob(request: FastifyRequest, reply: FastifyReply, registry: Registry, name: string, digestParam: string, events = NO_REQUEST_EVENTS) {
  const { digest } = parseDigest(digestParam);
  const head = request.method === 'HEAD';
  const repo = registry.repository(name, queryValue(request, 'ns'), withEvent(request.state, events.request));
  const read = await repo.blobs.get(digest, { rangeHeader: request.headers.range, head });
  // A blob pull is told once its answer is decided (a ranged GET too), before the bytes go out: no I/O of its own.
  if (!head) events.notify('pull', name, repo.name, { digest, mediaType: 'application/octet-stream', size: read.size }, 'blobs');
  if (read.warning) reply.header('warning', read.warning);
  return sendBlob(request, reply, digest, read);
}

/** A blob's bytes (or the range read), or the redirect to the store's own URL. */
export async function sendBlob(request: FastifyRequest, reply: FastifyReply, digest: string, read: BlobRead) {
  // The store's own URL (a presigned object URL): the client downloads from there, Range and all.
  if (read.redirect !== undefined) return reply.code(307).header(CONTENT_DIGEST, digest).header('location', read.redirect).send();
  reply.header(CONTENT_DIGEST, digest).header('accept-ranges', 'bytes').type('application/octet-stream');
  if (read.range) {
    reply
      .code(206)
      .header('content-range', `bytes ${read.range.start}-${read.range.end}/${read.size}`)
      .header('content-length', read.range.end - read.range.start + 1);
  } else {
    reply.code(200).header('content-length', read.size);
  }
  if (isDirectBody(read.body)) {
    // Large blobs go out through recycled buffers, past fastify's stream handling.
    const body = read.body;
    reply.hijack();
    const raw = reply.raw;
    raw.writeHead(reply.statusCode, reply.getHeaders() as OutgoingHttpHeaders);
    try {
      await body.writeTo(raw);
    } catch (err) {
      // Either the client left, or the fill failed and its clients are cut (never sent a short blob).
      if (!clientGone(request, reply)) noteCut(request, (err as Error).message);
      raw.destroy();
    }
    return reply;
  }
  return reply.send(read.body);
}

export async function deleteBlob(request: FastifyRequest, reply: FastifyReply, registry: Registry, name: string, digestParam: string, events = NO_REQUEST_EVENTS) {
  const { digest } = parseDigest(digestParam);
  const repo = registry.repository(name, queryValue(request, 'ns'));
  await repo.blobs.delete(digest);
  events.notify('delete', name, repo.name, { digest }, 'blobs');
  return reply.code(202).header(CONTENT_DIGEST, digest).send();
}
