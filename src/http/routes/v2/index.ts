// The distribution API under /v2/. Names contain slashes, so one wildcard route takes every /v2
// request, parseV2Path finds the endpoint, and the method picks the handler.
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { RegistryError } from '../../../registry/errors.js';
import type { Registry } from '../../../registry/registry.js';
import { API_VERSION, API_VERSION_HEADER } from '../../oci-headers.js';
import { parseV2Path, type V2Route } from '../../v2-path.js';
import type { AccessControl } from '../../../auth/access-control.js';
import { guardV2, type V2Access } from '../auth.js';
import { NO_REQUEST_EVENTS, requestEvents, type RequestEvents } from '../../request-events.js';
import type { EventSink } from '../../../events/event.js';
import { deleteBlob, getBlob } from './blobs.js';
import { listCatalog, listReferrers, listTags } from './listings.js';
import { deleteManifest, getManifest, putManifest } from './manifests.js';
import { cancelUpload, completeUpload, patchUpload, startUpload, uploadStatus } from './uploads.js';

type Handler = (request: FastifyRequest, reply: FastifyReply, registry: Registry, route: V2Route, access: V2Access, events: RequestEvents) => Promise<unknown>;

const base: Handler = async (_req, reply) => reply.code(200).type('application/json').send({});

/** Endpoint kind → method → handler. HEAD is listed explicitly where the spec has it. */
const HANDLERS: Record<V2Route['kind'], Partial<Record<string, Handler>>> = {
  base: { GET: base, HEAD: base },
  catalog: { GET: (q, r, s, _p, a) => listCatalog(q, r, s, a.visible) },
  tags: { GET: (q, r, s, p) => listTags(q, r, s, (p as { name: string }).name) },
  manifest: {
    GET: (q, r, s, p, _a, e) => getManifest(q, r, s, ...nameRef(p), e),
    HEAD: (q, r, s, p, _a, e) => getManifest(q, r, s, ...nameRef(p), e),
    PUT: (q, r, s, p, _a, e) => putManifest(q, r, s, ...nameRef(p), e),
    DELETE: (q, r, s, p, _a, e) => deleteManifest(q, r, s, ...nameRef(p), e),
  },
  blob: {
    GET: (q, r, s, p, _a, e) => getBlob(q, r, s, ...nameDigest(p), e),
    HEAD: (q, r, s, p, _a, e) => getBlob(q, r, s, ...nameDigest(p), e),
    DELETE: (q, r, s, p, _a, e) => deleteBlob(q, r, s, ...nameDigest(p), e),
  },
  uploads: { POST: (q, r, s, p, a, e) => startUpload(q, r, s, (p as { name: string }).name, a.mayPull, e) },
  upload: {
    GET: (q, r, s, p) => uploadStatus(q, r, s, ...nameId(p)),
    PATCH: (q, r, s, p) => patchUpload(q, r, s, ...nameId(p)),
    PUT: (q, r, s, p, _a, e) => completeUpload(q, r, s, ...nameId(p), e),
    DELETE: (q, r, s, p) => cancelUpload(q, r, s, ...nameId(p)),
  },
  referrers: { GET: (q, r, s, p) => listReferrers(q, r, s, ...nameDigest(p)) },
};

function nameRef(p: V2Route): [string, string] {
  const { name, reference } = p as { name: string; reference: string };
  return [name, reference];
}
function nameDigest(p: V2Route): [string, string] {
  const { name, digest } = p as { name: string; digest: string };
  return [name, digest];
}
function nameId(p: V2Route): [string, string] {
  const { name, id } = p as { name: string; id: string };
  return [name, id];
}

export interface V2Options {
  /** Access control; undefined = open (no auth key in the config). */
  access?: AccessControl;
  publicUrl?: string;
  /** Where push, pull and delete events go (none: events off). */
  events?: EventSink;
}

/** Without auth everything is visible and every repository may be pulled (a mount without `from` too). */
const OPEN: V2Access = { mayPull: async () => true };

export function registerV2Routes(app: FastifyInstance, registry: Registry, opts: V2Options = {}): void {
  const sink = opts.events?.enabled ? opts.events : undefined;
  const canonicalOf = (stored: string) => registry.canonicalOf(stored);
  const handle = async (request: FastifyRequest, reply: FastifyReply) => {
    reply.header(API_VERSION_HEADER, API_VERSION);
    const path = (request.url.split('?')[0] ?? '').replace(/^\/v2\/?/, '');
    const route = parseV2Path(path);
    if (route) request.state.route = route.kind === 'uploads' ? 'upload' : route.kind;
    if (!route) {
      throw new RegistryError('NOT_FOUND', `no endpoint ${request.method} /v2/${path.slice(0, 200)}`, { detail: { method: request.method } });
    }
    const byMethod = HANDLERS[route.kind];
    const handler = byMethod[request.method];
    if (!handler) {
      const allowed = Object.keys(byMethod).join(', ');
      throw new RegistryError('UNSUPPORTED', `${request.method} is not supported on this endpoint; allowed: ${allowed}`, {
        headers: { allow: allowed },
      });
    }
    const access = opts.access ? await guardV2(opts.access, registry, request, route, opts.publicUrl) : OPEN;
    const events = sink ? requestEvents(sink, canonicalOf, request, access.user, opts.publicUrl) : NO_REQUEST_EVENTS;
    return handler(request, reply, registry, route, access, events);
  };
  // OPTIONS is routed too, so it gets 405 with Allow rather than a 404.
  const methods = ['GET', 'HEAD', 'PUT', 'POST', 'PATCH', 'DELETE', 'OPTIONS'] as const;
  app.route({ method: [...methods], url: '/v2', handler: handle });
  app.route({ method: [...methods], url: '/v2/*', handler: handle });
}
