// The collector through the management API: POST /api/gc runs one collection now (?dryRun=true
// reports without deleting) and answers with its report; GET /api/gc lists the last runs. Admins
// only when auth is on; 409 while another run (in this process or another) is in progress.
import type { FastifyInstance } from 'fastify';
import type { AccessControl } from '../../auth/access-control.js';
import { GcBusyError, type GarbageCollector, type GcOptions } from '../../gc/collector.js';
import { RegistryError } from '../../registry/errors.js';
import { queryValue } from '../request-helpers.js';
import { requireAdmin } from './auth.js';

export function registerGcRoutes(
  app: FastifyInstance,
  gc: GarbageCollector,
  options: (dryRun: boolean) => GcOptions,
  access: AccessControl | undefined,
  publicUrl: string | undefined,
): void {
  app.post('/api/gc', async (request, reply) => {
    if (access) await requireAdmin(access, request, publicUrl);
    const dry = queryValue(request, 'dryRun') ?? queryValue(request, 'dry-run');
    if (dry !== undefined && dry !== 'true' && dry !== 'false') {
      throw new RegistryError('INVALID_REQUEST', `dryRun must be true or false, not "${dry.slice(0, 40)}"`);
    }
    try {
      const report = await gc.run(options(dry === 'true'));
      return reply.header('cache-control', 'no-store').send(report);
    } catch (err) {
      if (err instanceof GcBusyError) {
        throw new RegistryError('TOOMANYREQUESTS', `${err.message}; try again when it has finished`, { status: 409, headers: { 'retry-after': '10' } });
      }
      throw err;
    }
  });

  app.get('/api/gc', async (request, reply) => {
    if (access) await requireAdmin(access, request, publicUrl);
    return reply.header('cache-control', 'no-store').send({ runs: await gc.recentRuns() });
  });
}
