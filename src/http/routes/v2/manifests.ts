// GET/HEAD/PUT/DELETE /v2/<name>/manifests/<reference>
import type { FastifyReply, FastifyRequest } from 'fastify';
import { MAX_MANIFEST_BYTES } from '../../../registry/manifest.js';
import { baseMediaType } from '../../../oci/media-types.js';
import type { Registry } from '../../../registry/registry.js';
import { CONTENT_DIGEST, OCI_SUBJECT, OCI_TAG } from '../../oci-headers.js';
import { queryValue, queryValues, readBody } from '../../request-helpers.js';
import { NO_REQUEST_EVENTS } from '../../request-events.js';
import { withEvent } from '../../request-log.js';

export async function getManifest(request: FastifyRequest, reply: FastifyReply, registry: Registry, name: string, reference: string, events = NO_REQUEST_EVENTS) {
  const head = request.method === 'HEAD';
  const repo = registry.repository(name, queryValue(request, 'ns'), withEvent(request.state, events.request));
  const m = await repo.manifests.get(reference, { head });
  if (!head) events.notify('pull', name, repo.name, { digest: m.digest, mediaType: m.mediaType, size: m.size, ...tagOf(reference) }, 'manifests');
  if (m.warning) reply.header('warning', m.warning);
  return reply
    .code(200)
    .header('content-type', m.mediaType)
    .header(CONTENT_DIGEST, m.digest)
    .header('content-length', m.size)
    .send(head ? undefined : m.body);
}

export async function putManifest(request: FastifyRequest, reply: FastifyReply, registry: Registry, name: string, reference: string, events = NO_REQUEST_EVENTS) {
  const body = await readBody(request, MAX_MANIFEST_BYTES);
  // ?tag= on a PUT by digest tags it too (distribution-spec main branch, "Pushing Manifests with tags").
  const repo = registry.repository(name, queryValue(request, 'ns'));
  const mediaType = baseMediaType(request.headers['content-type']);
  const result = await repo.manifests.put(reference, body, mediaType, queryValues(request, 'tag'));
  // One event per tag set (distribution sends one per push, with its tag), one without a tag for a push by digest alone.
  const target = { digest: result.digest, size: body.length, ...(mediaType ? { mediaType } : {}) };
  if (result.tags.length === 0) events.notify('push', name, repo.name, target, 'manifests');
  for (const tag of result.tags) events.notify('push', name, repo.name, { ...target, tag }, 'manifests');
  reply.code(201).header('location', `/v2/${name}/manifests/${result.digest}`).header(CONTENT_DIGEST, result.digest);
  if (result.subject) reply.header(OCI_SUBJECT, result.subject);
  if (result.tags.length > 0) reply.header(OCI_TAG, result.tags);
  return reply.send();
}

export async function deleteManifest(request: FastifyRequest, reply: FastifyReply, registry: Registry, name: string, reference: string, events = NO_REQUEST_EVENTS) {
  const repo = registry.repository(name, queryValue(request, 'ns'));
  await repo.manifests.delete(reference);
  events.notify('delete', name, repo.name, isDigest(reference) ? { digest: reference } : { tag: reference }, 'manifests');
  return reply.code(202).send();
}

/** The tag a manifest was asked by, for its event; none for a digest. */
function tagOf(reference: string): { tag?: string } {
  return isDigest(reference) ? {} : { tag: reference };
}

/** A digest has an algorithm and a colon; a tag never has a colon. */
function isDigest(reference: string): boolean {
  return reference.includes(':');
}
