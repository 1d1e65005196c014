// The HTTP face of access control: the guard every /v2 request passes, the Docker token endpoint
// (/auth/token, GET and the OAuth2 POST form docker login uses) and the management API for
// service tokens (/api/tokens, admins only).
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { AccessControl, Caller } from '../../auth/access-control.js';
import { publicView } from '../../auth/service-tokens.js';
import { MANAGE_SCOPE, subjectOf, type Action, type TokenScope } from '../../auth/types.js';
import type { ServiceTokenRecord } from '../../auth/service-token-store.js';
import { decodeDuration } from '../../config/schema.js';
import { RegistryError } from '../../registry/errors.js';
import type { Registry } from '../../registry/registry.js';
import { queryValue, queryValues, readBody } from '../request-helpers.js';
import type { V2Route } from '../v2-path.js';
import type { MayPull } from '../../ledger/blob-ledger.js';

/** Where clients fetch tokens: `<publicUrl>/auth/token`, or built from the request's Host. */
export function realmOf(request: FastifyRequest, publicUrl: string | undefined): string {
  if (publicUrl) return `${publicUrl.replace(/\/+$/, '')}/auth/token`;
  const forwarded = request.headers['x-forwarded-proto'];
  const proto = typeof forwarded === 'string' && /^https?$/.test(forwarded) ? forwarded : 'http';
  const host = request.headers.host;
  const safeHost = typeof host === 'string' && /^[A-Za-z0-9.:[\]-]{1,300}$/.test(host) ? host : `${request.hostname || 'localhost'}`;
  return `${proto}://${safeHost}/auth/token`;
}

const actionOf = (method: string): Action => (method === 'GET' || method === 'HEAD' ? 'pull' : method === 'DELETE' ? 'delete' : 'push');

/** What a /v2 route may see: undefined = everything. */
export interface V2Access {
  /** Catalogue entries shown (canonical names). */
  visible?: (canonical: string) => Promise<boolean>;
  /** Sources (stored names) a mount without `from` may take a blob from. */
  mayPull?: MayPull;
  /** The signed-in caller's name (the events' actor); none for anonymous. */
  user?: string;
}

/**
 * Checks a /v2 request against the caller's rights; throws 401/403/429 as RegistryErrors. Upload
 * status (GET on a session) is a push; a cross-repository mount also needs pull on `from`, and one
 * without `from` takes the blob only from a repository the caller may pull (the same check).
 */
export async function guardV2(
  access: AccessControl,
  registry: Registry,
  request: FastifyRequest,
  route: V2Route,
  publicUrl: string | undefined,
): Promise<V2Access> {
  const realm = realmOf(request, publicUrl);
  const caller = await callerOf(access, request, realm);
  const name = subjectOf(caller.identity);
  const user = name === '' ? {} : { user: name };
  if (route.kind === 'base') {
    // The ping: clients learn the realm from the 401 (docker login, dockerd).
    if (!caller.presented) throw access.unauthorized(realm, 'authentication required');
    return user;
  }
  if (route.kind === 'catalog') {
    if (!caller.presented) throw access.unauthorized(realm, 'authentication required to list repositories', 'registry:catalog:*');
    // Only what the caller may pull; a Bearer caller is judged by its token's holder.
    const identity = caller.identity;
    const visible = async (canonical: string): Promise<boolean> => (await access.granted(identity, registry.route(canonical))).includes('pull');
    return { visible, ...user };
  }
  // Judged on the repository actually served, under its canonical name, however it was spelled.
  const ns = queryValue(request, 'ns');
  const target = registry.route(route.name, ns);
  const action = route.kind === 'upload' ? 'push' : actionOf(request.method);
  const scopeActions: Action[] = action === 'pull' ? ['pull'] : ['pull', action];
  await access.require(caller, target, action, realm, scopeActions);
  if (route.kind === 'uploads' && request.method === 'POST' && queryValue(request, 'mount') !== undefined) {
    const from = queryValue(request, 'from');
    if (from !== undefined) await access.require(caller, registry.route(from, ns), 'pull', realm);
    // The same check as `from`, on each stored repository that holds the blob (as the catalogue names it).
    else return { mayPull: async (repo) => (await access.allowed(caller, registry.route(registry.canonicalOf(repo)))).includes('pull'), ...user };
  }
  return user;
}

interface TokenForm {
  grant_type?: string;
  username?: string;
  password?: string;
  refresh_token?: string;
  scope?: string;
  service?: string;
  access_type?: string;
  client_id?: string;
}

/** The caller behind a request's Authorization header (401/429 for bad or too many credentials). */
export async function callerOf(access: AccessControl, request: FastifyRequest, realm: string): Promise<Caller> {
  const caller = await access.identify({ authorization: request.headers.authorization, address: request.ip }, realm);
  // For the request's log line.
  if (caller.identity.kind !== 'anonymous') request.state.user = caller.identity.name;
  return caller;
}

/** Whether `caller` may use the management API (AccessControl.mayManage: an admin, by Basic credentials or a token with the wharf:api:manage scope). */
export function mayManage(access: AccessControl, caller: Caller): boolean {
  return access.mayManage(caller);
}

/**
 * Throws unless the request comes from an admin (auth.adminGroup) signed in with Basic credentials or
 * an access token Wharf issued with the `wharf:api:manage` scope; the admin's name. An admin's token
 * without that scope gets 401 insufficient_scope naming it (the Docker token flow's way to ask for a better token).
 */
export async function requireAdmin(access: AccessControl, request: FastifyRequest, publicUrl: string | undefined): Promise<string> {
  const realm = realmOf(request, publicUrl);
  const caller = await callerOf(access, request, realm);
  if (!caller.presented) throw access.unauthorized(realm, 'the management API needs an admin identity', MANAGE_SCOPE.text);
  if (access.mayManage(caller)) return subjectOf(caller.identity);
  if (access.lacksManageScope(caller)) {
    throw access.unauthorized(realm, `the token does not grant the management API; request a token with scope ${MANAGE_SCOPE.text}`, MANAGE_SCOPE.text, 'insufficient_scope');
  }
  throw new RegistryError(
    'DENIED',
    `the management API is for members of the admin group (auth.adminGroup), signed in with Basic credentials or a token from this registry with scope ${MANAGE_SCOPE.text}`,
  );
}

/** Registers /auth/token and /api/tokens. */
export function registerAuthRoutes(app: FastifyInstance, access: AccessControl, publicUrl: string | undefined): void {
  const checkService = (service: string | undefined) => {
    if (service !== undefined && service !== access.service) {
      throw invalidRequest(`this registry issues tokens for service "${access.service}", not "${service.slice(0, 100)}"`);
    }
  };

  app.get('/auth/token', async (request, reply) => {
    const realm = realmOf(request, publicUrl);
    checkService(queryValue(request, 'service'));
    const caller = await callerOf(access, request, realm);
    if (caller.access) throw access.unauthorized(realm, 'use Basic credentials (or none) to request a token, not a Bearer token');
    // Several scope parameters, each possibly holding several space-separated scopes.
    const scopes = queryValues(request, 'scope').flatMap((s) => s.split(' ')).filter(Boolean);
    const offline = queryValue(request, 'offline_token') === 'true';
    return noStore(reply).send(await access.issue(caller.identity, scopes.slice(0, 64), offline));
  });

  app.post('/auth/token', async (request, reply) => {
    const realm = realmOf(request, publicUrl);
    const form = Object.fromEntries(new URLSearchParams((await readBody(request, 64 * 1024)).toString('utf8'))) as TokenForm;
    checkService(form.service);
    const scopes = (form.scope ?? '').split(' ').filter(Boolean).slice(0, 64);
    let identity;
    let offline = false;
    if (form.grant_type === 'password') {
      if (!form.username || form.password === undefined) throw invalidRequest('grant_type=password needs username and password');
      identity = await access.login(form.username, form.password, request.ip, realm);
      offline = form.access_type === 'offline';
    } else if (form.grant_type === 'refresh_token') {
      if (!form.refresh_token) throw invalidRequest('grant_type=refresh_token needs refresh_token');
      identity = await access.refresh(form.refresh_token, realm);
    } else {
      throw invalidRequest('grant_type must be password or refresh_token');
    }
    const issued = await access.issue(identity, scopes, offline);
    return noStore(reply).send({ ...issued, scope: scopes.join(' ') });
  });

  // Management API: service tokens. Admins only (auth.adminGroup).
  const admin = (request: FastifyRequest) => requireAdmin(access, request, publicUrl);

  app.get('/api/tokens', async (request, reply) => {
    await admin(request);
    const tokens = await access.tokens.list();
    return noStore(reply).send({ tokens: tokens.map(publicToken) });
  });

  app.post('/api/tokens', async (request, reply) => {
    await admin(request);
    let body: { name?: unknown; scopes?: unknown; expiresIn?: unknown };
    try {
      body = JSON.parse((await readBody(request, 64 * 1024)).toString('utf8')) as typeof body;
    } catch {
      throw invalidRequest('the body must be JSON: {"name": "...", "scopes": [{"repositories": ["..."], "actions": ["pull"]}], "expiresIn": "90d"}');
    }
    if (typeof body !== 'object' || body === null || typeof body.name !== 'string' || !Array.isArray(body.scopes)) {
      throw invalidRequest('name (a string) and scopes (a list of {repositories, actions}) are required');
    }
    let expiresInMs: number | undefined;
    if (body.expiresIn !== undefined) {
      try {
        expiresInMs = decodeDuration(String(body.expiresIn));
      } catch (err) {
        throw invalidRequest(`expiresIn: ${(err as Error).message}`);
      }
    }
    let created;
    try {
      created = await access.tokens.create({ name: body.name, scopes: body.scopes as TokenScope[], expiresInMs });
    } catch (err) {
      throw invalidRequest((err as Error).message);
    }
    return noStore(reply).code(201).send({ ...publicToken(created.record), token: created.token });
  });

  app.delete('/api/tokens/:id', async (request, reply) => {
    await admin(request);
    const { id } = request.params as { id: string };
    const revoked = await access.tokens.revoke(id);
    if (!revoked) throw new RegistryError('NOT_FOUND', `no active service token with id or name "${id.slice(0, 100)}"`);
    return noStore(reply).send(publicToken(revoked));
  });
}

/** A token as the API shows it: no hash, times as ISO strings. */
function publicToken(record: ServiceTokenRecord) {
  const iso = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());
  const t = publicView(record);
  return { ...t, createdAt: iso(t.createdAt), expiresAt: iso(t.expiresAt), revokedAt: iso(t.revokedAt), lastUsedAt: iso(t.lastUsedAt) };
}

function noStore(reply: FastifyReply): FastifyReply {
  return reply.header('cache-control', 'no-store').type('application/json');
}

function invalidRequest(message: string): RegistryError {
  return new RegistryError('INVALID_REQUEST', message);
}
