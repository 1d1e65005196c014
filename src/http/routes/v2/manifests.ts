// GET/HEAD/PUT/DELETE /v2/<name>/manifests/<reference>
import type { FastifyReply, FastifyRequest } from 'fastify';
import { MAX_MANIFEST_BYTES } from '../../../registry/manifest.js';
import { baseMediaType } from '../../../oci/media-types.js';
import type { Registry } from '../../../registry/registry.js';
import { CONTENT_DIGEST, OCI_SUBJECT, OCI_TAG } from '../../oci-headers.js';
import { queryValue, queryValues, readBody } from '../../request-helpers.js';

export async function getManifest(request: FastifyRequest, reply: FastifyReply, registry: Registry, name: string, reference: string) {
  const head = request.method === 'HEAD';
  const m = await registry.repository(name, queryValue(request, 'ns')).manifests.get(reference, { head });
  if (m.warning) reply.header('warning', m.warning);
  return reply
    .code(200)
    .header('content-type', m.mediaType)
    .header(CONTENT_DIGEST, m.digest)
    .header('content-length', m.size)
    .send(head ? undefined : m.body);
}

export async function putManifest(request: FastifyRequest, reply: FastifyReply, registry: Registry, name: string, reference: string) {
  const body = await readBody(request, MAX_MANIFEST_BYTES);
  // ?tag= on a PUT by digest tags it too (distribution-spec main branch, "Pushing Manifests with tags").
  const result = await registry.repository(name, queryValue(request, 'ns')).manifests.put(reference, body, baseMediaType(request.headers['content-type']), queryValues(request, 'tag'));
  reply.code(201).header('location', `/v2/${name}/manifests/${result.digest}`).header(CONTENT_DIGEST, result.digest);
  if (result.subject) reply.header(OCI_SUBJECT, result.subject);
  if (result.tags.length > 0) reply.header(OCI_TAG, result.tags);
  return reply.send();
}

export async function deleteManifest(request: FastifyRequest, reply: FastifyReply, registry: Registry, name: string, reference: string) {
  await registry.repository(name, queryValue(request, 'ns')).manifests.delete(reference);
  return reply.code(202).send();
}
