// Warming through the management API: POST /api/warm starts a job and streams its progress as NDJSON
// (one JSON object a line: start, each image's progress, the summary); GET /api/warm lists the running
// and recent jobs. Admins only when auth is on. A job goes on to its end when its client goes away.
import { PassThrough } from 'node:stream';
import type { FastifyInstance } from 'fastify';
import type { AccessControl } from '../../auth/access-control.js';
import { RegistryError } from '../../registry/errors.js';
import type { WarmService } from '../../warm/warm-service.js';
import { parseWarmRequest } from '../../warm/warm-request.js';
import { readBody } from '../request-helpers.js';
import { requireAdmin } from './auth.js';

const MAX_BODY = 1024 * 1024;

export function registerWarmRoutes(app: FastifyInstance, warm: WarmService, access: AccessControl | undefined, publicUrl: string | undefined): void {
  app.post('/api/warm', async (request, reply) => {
    if (access) await requireAdmin(access, request, publicUrl);
    let body: unknown;
    try {
      body = JSON.parse((await readBody(request, MAX_BODY)).toString('utf8'));
    } catch (err) {
      if (err instanceof RegistryError) throw err;
      throw new RegistryError('INVALID_REQUEST', 'the body must be JSON: {"images": ["docker.io/library/alpine:3.20"], "platforms": ["linux/amd64"], "referrers": false, "concurrency": 4}');
    }
    const warmRequest = parseWarmRequest(body);
    const out = new PassThrough();
    // Started before the reply, so a refusal (too many jobs) is still an error status.
    warm.start(warmRequest, {
      trigger: 'api',
      onEvent: (event) => {
        if (out.destroyed || out.writableEnded) return;
        out.write(`${JSON.stringify(event)}\n`);
        if (event.type === 'summary') out.end();
      },
    });
    return reply.header('content-type', 'application/x-ndjson').header('cache-control', 'no-store').send(out);
  });

  app.get('/api/warm', async (request, reply) => {
    if (access) await requireAdmin(access, request, publicUrl);
    return reply.header('cache-control', 'no-store').send({ jobs: warm.list() });
  });
}
