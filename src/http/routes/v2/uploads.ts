// Blob uploads: POST /v2/<name>/blobs/uploads/ (start, monolithic, mount) and
// GET/PATCH/PUT/DELETE /v2/<name>/blobs/uploads/<uuid>.
import type { FastifyReply, FastifyRequest } from 'fastify';
import { RegistryError } from '../../../registry/errors.js';
import { assertName, parseDigest } from '../../../registry/reference.js';
import { rangeHeaders, type ChunkRange, type UploadState } from '../../../registry/upload-service.js';
import type { Registry } from '../../../registry/registry.js';
import type { MayPull } from '../../../ledger/blob-ledger.js';
import { CHUNK_MIN_LENGTH, CONTENT_DIGEST, UPLOAD_UUID } from '../../oci-headers.js';
import { contentLength, hasBody, queryValue } from '../../request-helpers.js';
import { NO_REQUEST_EVENTS, type RequestEvents } from '../../request-events.js';

function sessionReply(reply: FastifyReply, state: UploadState, status: number): FastifyReply {
  reply.code(status).header('location', `/v2/${state.repo}/blobs/uploads/${state.id}`).header(UPLOAD_UUID, state.id);
  for (const [k, v] of Object.entries(rangeHeaders(state.offset))) reply.header(k, v);
  return reply;
}

/** A blob pushed (an upload completed, monolithic or chunked): its event, then the 201. */
function pushed(reply: FastifyReply, events: RequestEvents, name: string, stored: string, digest: string, size: number): FastifyReply {
  events.notify('push', name, stored, { digest, mediaType: 'application/octet-stream', size }, 'blobs');
  return created(reply, name, digest);
}

function created(reply: FastifyReply, name: string, digest: string): FastifyReply {
  return reply.code(201).header('location', `/v2/${name}/blobs/${digest}`).header(CONTENT_DIGEST, digest).send();
}

/** Fails closed: a mount without `from` takes a blob only where a `mayPull` the caller was given says so. */
const nobody: MayPull = async () => false;

export async function startUpload(request: FastifyRequest, reply: FastifyReply, registry: Registry, name: string, mayPull: MayPull = nobody, events = NO_REQUEST_EVENTS) {
  const ns = queryValue(request, 'ns');
  const repo = registry.repository(name, ns);
  const { uploads } = repo;
  const mount = queryValue(request, 'mount');
  const from = queryValue(request, 'from');
  const digest = queryValue(request, 'digest');
  if (mount !== undefined) {
    const { digest: mounted } = parseDigest(mount);
    // Without `from` the blob is taken from any repository the caller may pull; when no source
    // holds it, the spec asks for an ordinary session.
    const source = from === undefined ? undefined : registry.route(assertName(from), ns).repo;
    if (await uploads.mount(mounted, source, mayPull)) return created(reply, name, mounted);
  } else if (digest !== undefined) {
    parseDigest(digest);
    const stored = await uploads.monolithic(digest, request.raw, contentLength(request));
    return pushed(reply, events, name, repo.name, stored.digest, stored.size);
  }
  const state = await uploads.start();
  return sessionReply(reply, state, 202).header(CHUNK_MIN_LENGTH, String(uploads.chunkMinLength)).send();
}

export async function uploadStatus(request: FastifyRequest, reply: FastifyReply, registry: Registry, name: string, id: string) {
  const { uploads } = registry.repository(name, queryValue(request, 'ns'));
  const state = await uploads.status(id);
  return sessionReply(reply, state, 204).send();
}

function parseContentRange(value: string | undefined): ChunkRange | undefined {
  if (value === undefined) return undefined;
  const m = /^(?:bytes[ =])?(\d+)-(\d+)(?:\/(?:\d+|\*))?$/.exec(value.trim());
  if (!m || Number(m[2]) < Number(m[1])) {
    throw new RegistryError('BLOB_UPLOAD_INVALID', `Content-Range "${value.slice(0, 60)}" is not <start>-<end>`, { status: 416 });
  }
  return { start: Number(m[1]), end: Number(m[2]) };
}

export async function patchUpload(request: FastifyRequest, reply: FastifyReply, registry: Registry, name: string, id: string) {
  const { uploads } = registry.repository(name, queryValue(request, 'ns'));
  const range = parseContentRange(request.headers['content-range']);
  const state = await uploads.append(id, request.raw, range, contentLength(request));
  return sessionReply(reply, state, 202).send();
}

export async function completeUpload(request: FastifyRequest, reply: FastifyReply, registry: Registry, name: string, id: string, events = NO_REQUEST_EVENTS) {
  const repo = registry.repository(name, queryValue(request, 'ns'));
  const { uploads } = repo;
  const digest = queryValue(request, 'digest');
  if (digest === undefined) {
    throw new RegistryError('DIGEST_INVALID', 'the digest query parameter is required to complete an upload: PUT ...?digest=<digest>');
  }
  parseDigest(digest);
  const body = hasBody(request) ? request.raw : undefined;
  const range = body ? parseContentRange(request.headers['content-range']) : undefined;
  const stored = await uploads.complete(id, digest, body, body ? contentLength(request) : undefined, range);
  return pushed(reply, events, name, repo.name, stored.digest, stored.size);
}

export async function cancelUpload(request: FastifyRequest, reply: FastifyReply, registry: Registry, name: string, id: string) {
  const { uploads } = registry.repository(name, queryValue(request, 'ns'));
  await uploads.cancel(id);
  return reply.code(204).send();
}
