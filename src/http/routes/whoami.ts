// GET /api/whoami: who the request's credentials name and whether they open the management API.
// Any caller may ask: the dashboard checks a user name and password with it before it signs in.
// Wrong credentials get the 401 (or, after repeated failures, the 429) every route gives them, so a
// bad password is told apart from a user who is not an admin. With auth off the API is open to all.
import type { FastifyInstance } from 'fastify';
import type { AccessControl } from '../../auth/access-control.js';
import { callerOf, mayManage, realmOf } from './auth.js';

export interface Whoami {
  /** The user or service token named by the credentials; null when none were sent (or auth is off). */
  user: string | null;
  /** Whether this caller may use /api (admins with Basic credentials; everyone when auth is off). */
  admin: boolean;
  authEnabled: boolean;
}

export function registerWhoamiRoute(app: FastifyInstance, access: AccessControl | undefined, publicUrl: string | undefined): void {
  app.get('/api/whoami', async (request, reply) => {
    let answer: Whoami;
    if (!access) {
      answer = { user: null, admin: true, authEnabled: false };
    } else {
      const caller = await callerOf(access, request, realmOf(request, publicUrl));
      const identity = caller.identity;
      answer = { user: identity.kind === 'anonymous' ? null : identity.name, admin: mayManage(access, caller), authEnabled: true };
    }
    return reply.header('cache-control', 'no-store').type('application/json').send(answer);
  });
}
