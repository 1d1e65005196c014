// The management API's repositories (issue 13), admins only when auth is on:
//   GET    /api/repositories?n=&last=           a page of repositories (Link: rel="next" when more)
//   GET    /api/repositories/<name>             one repository
//   GET    /api/repositories/<name>/-/tags      a page of its tags
//   GET    /api/repositories/<name>/-/manifests a page of its manifests
//   DELETE /api/repositories/<name>/-/tags/<tag>, DELETE /api/repositories/<name>  → 204
// Names contain slashes and no path component of a name is "-", so what follows "/-/" is the
// sub-resource. Pages: `n` (default 100, at most 1000) and `last`, as the catalogue takes them.
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { AccessControl } from '../../auth/access-control.js';
import { RegistryError } from '../../registry/errors.js';
import type { ManagementService, RepositorySummary } from '../../registry/management-service.js';
import type { ManifestDetail, TagDetail } from '../../metadata/registry-metadata.js';
import { nextLink, pageOf } from '../request-helpers.js';
import { requireAdmin } from './auth.js';
import type { EventSink } from '../../events/event.js';
import { eventRequest } from '../request-events.js';

/** Entries on a page when `n` is not given, and the most a page holds whatever `n` asks. */
export const DEFAULT_PAGE = 100;
export const MAX_PAGE = 1000;

const PREFIX = '/api/repositories/';

type Target =
  | { kind: 'repository'; name: string }
  | { kind: 'tags'; name: string }
  | { kind: 'manifests'; name: string }
  | { kind: 'tag'; name: string; tag: string };

export function registerRepositoryRoutes(
  app: FastifyInstance,
  management: ManagementService,
  access: AccessControl | undefined,
  publicUrl: string | undefined,
  events?: { sink: EventSink; canonicalOf: (stored: string) => string },
): void {
  const admin = async (request: FastifyRequest): Promise<string | undefined> => (access ? await requireAdmin(access, request, publicUrl) : undefined);

  app.get('/api/repositories', async (request, reply) => {
    await admin(request);
    const page = apiPage(request);
    const listing = await management.repositories(page);
    if (listing.next !== undefined) reply.header('link', nextLink('/api/repositories', page.n, listing.next));
    return noStore(reply).send({ repositories: listing.items.map(repositoryJson) });
  });

  app.get('/api/repositories/*', async (request, reply) => {
    await admin(request);
    const target = parseTarget(request);
    switch (target.kind) {
      case 'repository':
        return noStore(reply).send(repositoryJson(await management.repository(target.name)));
      case 'tags': {
        const page = apiPage(request);
        const listing = await management.tags(target.name, page);
        if (listing.next !== undefined) reply.header('link', nextLink(`${PREFIX}${listing.repo}/-/tags`, page.n, listing.next));
        return noStore(reply).send({ tags: listing.items.map(tagJson) });
      }
      case 'manifests': {
        const page = apiPage(request);
        const listing = await management.manifests(target.name, page);
        if (listing.next !== undefined) reply.header('link', nextLink(`${PREFIX}${listing.repo}/-/manifests`, page.n, listing.next));
        return noStore(reply).send({ manifests: listing.items.map(manifestJson) });
      }
      case 'tag':
        throw unsupported('DELETE');
    }
  });

  app.delete('/api/repositories/*', async (request, reply) => {
    const user = await admin(request);
    const target = parseTarget(request);
    let stored: string;
    if (target.kind === 'tag') stored = await management.deleteTag(target.name, target.tag);
    else if (target.kind === 'repository') stored = await management.deleteRepository(target.name);
    else throw unsupported('GET');
    // A delete event as for DELETE on /v2: the tag, or the whole repository (a target with no digest or tag).
    if (events?.sink.enabled) {
      events.sink.emit({
        action: 'delete',
        target: { repository: events.canonicalOf(stored), ...(target.kind === 'tag' ? { tag: target.tag } : {}) },
        request: eventRequest(request.raw, request.id, request.ip, user || undefined),
      });
    }
    return reply.code(204).header('cache-control', 'no-store').send();
  });
}

/** What the path after /api/repositories/ names (the name itself is checked by the service). */
function parseTarget(request: FastifyRequest): Target {
  const path = (request.url.split('?')[0] ?? '').slice(PREFIX.length);
  const cut = path.indexOf('/-/');
  if (cut < 0) return { kind: 'repository', name: decoded(path) };
  const name = decoded(path.slice(0, cut));
  const rest = path.slice(cut + 3);
  if (rest === 'tags') return { kind: 'tags', name };
  if (rest === 'manifests') return { kind: 'manifests', name };
  if (rest.startsWith('tags/') && rest.length > 5) return { kind: 'tag', name, tag: decoded(rest.slice(5)) };
  throw new RegistryError('NOT_FOUND', `no endpoint ${request.method} ${PREFIX}${path.slice(0, 200)}: after /-/ come tags, tags/<tag> or manifests`, {
    detail: { method: request.method },
  });
}

/**
 * A path part with its percent-escapes undone (a client may send a name's slashes as %2F); whatever
 * it then holds is judged by the name or tag grammar.
 */
function decoded(part: string): string {
  try {
    return decodeURIComponent(part);
  } catch {
    throw new RegistryError('NAME_INVALID', `malformed percent-encoding in "${part.slice(0, 200)}"`, { detail: { name: part.slice(0, 200) } });
  }
}

/** The catalogue's `n` and `last`, with this API's default and ceiling on `n`. */
function apiPage(request: FastifyRequest): { n: number; last?: string } {
  const page = pageOf(request);
  return { n: Math.min(page.n ?? DEFAULT_PAGE, MAX_PAGE), ...(page.last !== undefined ? { last: page.last } : {}) };
}

function unsupported(allowed: string): RegistryError {
  return new RegistryError('UNSUPPORTED', `this endpoint takes ${allowed} only`, { headers: { allow: allowed } });
}

const iso = (ms: number | null): string | null => (ms === null ? null : new Date(ms).toISOString());

function repositoryJson(r: RepositorySummary) {
  return {
    name: r.name,
    kind: r.kind,
    upstream: r.upstream,
    sizeBytes: r.size,
    tagCount: r.tagCount,
    manifestCount: r.manifestCount,
    lastPush: iso(r.lastPushAt),
    lastPull: iso(r.lastPullAt),
  };
}

function tagJson(t: TagDetail) {
  return { name: t.tag, digest: t.digest, mediaType: t.mediaType, sizeBytes: t.size, pushedAt: iso(t.updatedAt) };
}

function manifestJson(m: ManifestDetail) {
  return { digest: m.digest, mediaType: m.mediaType, sizeBytes: m.size, tags: m.tags, createdAt: iso(m.createdAt), lastPull: iso(m.lastPullAt) };
}

function noStore(reply: FastifyReply): FastifyReply {
  return reply.header('cache-control', 'no-store').type('application/json');
}
