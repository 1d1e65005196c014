// GET /v2/<name>/tags/list, GET /v2/_catalog, GET /v2/<name>/referrers/<digest>
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { Registry } from '../../../registry/registry.js';
import { OCI_FILTERS_APPLIED } from '../../oci-headers.js';
import { nextLink, pageOf, queryValue } from '../../request-helpers.js';

export async function listTags(request: FastifyRequest, reply: FastifyReply, registry: Registry, name: string) {
  const page = pageOf(request);
  const ns = queryValue(request, 'ns');
  const listing = await registry.repository(name, ns, request.state).tags.list(page);
  if (listing.warning) reply.header('warning', listing.warning);
  if (listing.next !== undefined && page.n !== undefined) reply.header('link', nextLink(`/v2/${name}/tags/list`, page.n, listing.next, ns));
  return reply.code(200).type('application/json').send({ name, tags: listing.items });
}

export async function listCatalog(request: FastifyRequest, reply: FastifyReply, registry: Registry, visible?: (canonical: string) => Promise<boolean>) {
  const page = pageOf(request);
  const listing = await registry.catalog(page, visible);
  if (listing.next !== undefined && page.n !== undefined) reply.header('link', nextLink('/v2/_catalog', page.n, listing.next));
  return reply.code(200).type('application/json').send({ repositories: listing.items });
}

export async function listReferrers(request: FastifyRequest, reply: FastifyReply, registry: Registry, name: string, digest: string) {
  const artifactType = queryValue(request, 'artifactType');
  const { filtered, warning, ...index } = await registry.repository(name, queryValue(request, 'ns'), request.state).referrers.list(digest, artifactType);
  if (filtered) reply.header(OCI_FILTERS_APPLIED, 'artifactType');
  if (warning) reply.header('warning', warning);
  return reply.code(200).header('content-type', index.mediaType).send(Buffer.from(JSON.stringify(index)));
}
