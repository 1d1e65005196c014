// buildApp(config) → a ready Fastify instance: the stores, the registry services, and the HTTP layer.
import { join } from 'node:path';
import Fastify, { LogController, type FastifyInstance } from 'fastify';
import type { WharfConfig } from './config/schema.js';
import { FsBlobStore } from './storage/fs-blob-store.js';
import { SqliteMetadataStore } from './metadata/sqlite-metadata-store.js';
import type { MetadataStore } from './metadata/metadata-store.js';
import type { BlobStore } from './storage/blob-store.js';
import { RegistryService } from './registry/registry-service.js';
import { registerErrorHandler } from './http/plugins/error-handler.js';
import { registerV2Routes } from './http/routes/v2/index.js';

export interface AppDeps {
  metadata?: MetadataStore;
  blobs?: BlobStore;
}

export async function buildApp(config: WharfConfig, deps: AppDeps = {}): Promise<FastifyInstance> {
  const blobs = deps.blobs ?? (await FsBlobStore.open(config.storage.path));
  const metadata = deps.metadata ?? SqliteMetadataStore.open(join(config.storage.path, 'metadata.db'));
  const registry = new RegistryService(metadata, blobs, { chunkMinLength: config.uploads.chunkMinLength });

  const app = Fastify({
    logger: { level: config.log.level },
    exposeHeadRoutes: false,
    // One line per request from the onResponse hook below instead of fastify's two.
    logController: new LogController({ disableRequestLogging: true }),
    routerOptions: { maxParamLength: 2048 },
    // Uploads can take long; the connection is not cut while bytes are flowing.
    requestTimeout: 0,
    return503OnClosing: true,
  });

  // Bodies are read by the routes themselves (streamed uploads, size-limited manifests):
  // no content type is parsed or refused up front.
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', (_request, _payload, done) => done(null));

  app.addHook('onResponse', async (request, reply) => {
    request.log.info(
      { method: request.method, url: request.url.slice(0, 300), status: reply.statusCode, ms: Math.round(reply.elapsedTime) },
      'request',
    );
  });

  registerErrorHandler(app);
  app.get('/healthz', async (_req, reply) => reply.code(200).send({ status: 'ok' }));
  registerV2Routes(app, registry);

  app.addHook('onClose', async () => {
    await registry.close();
  });
  await app.ready();
  return app;
}
