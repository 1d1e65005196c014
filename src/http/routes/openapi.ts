// GET /api/openapi.json: the description of the management API (http/openapi-document.ts). Open to
// any caller, auth on or off: it describes the endpoints and holds nothing of this registry's content.
import type { FastifyInstance } from 'fastify';
import { openApiDocument } from '../openapi-document.js';

export function registerOpenApiRoute(app: FastifyInstance): void {
  const body = JSON.stringify(openApiDocument);
  app.get('/api/openapi.json', async (_request, reply) => reply.header('cache-control', 'no-cache').type('application/json').send(body));
}
