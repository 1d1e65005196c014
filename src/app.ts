// buildApp(config) → a ready Fastify instance: the stores, the registry services, and the HTTP layer.
import Fastify, { type FastifyInstance } from 'fastify';
import type { DestinationStream } from 'pino';
import type { WharfConfig } from './config/schema.js';
import type { BlobStore } from './storage/blob-store.js';
import { openBlobStore } from './storage/open-blob-store.js';
import { changeSignalPath, metadataPath } from './storage/paths.js';
import { storageFullCode } from './storage/storage-errors.js';
import type { SqliteDatabase } from './metadata/sqlite-database.js';
import { openMetadataStores, sqliteStores } from './stores.js';
import type { RegistryMetadata } from './metadata/registry-metadata.js';
import type { UploadSessions } from './metadata/upload-sessions.js';
import { BlobLedger } from './ledger/blob-ledger.js';
import { LocalRegistry } from './registry/local-registry.js';
import { PullThroughRegistry } from './proxy/pull-through-registry.js';
import { registerErrorHandler, sendError } from './http/plugins/error-handler.js';
import { RegistryError } from './registry/errors.js';
import { Upstreams } from './upstream/upstream-pool.js';
import { registerV2Routes } from './http/routes/v2/index.js';
import { AccessTracker } from './metadata/access-tracker.js';
import { GarbageCollector, GcBusyError } from './gc/collector.js';
import { gcOptionsFrom } from './gc/options.js';
import { registerGcRoutes } from './http/routes/gc.js';
import { registerRepositoryRoutes } from './http/routes/repositories.js';
import { registerOpenApiRoute } from './http/routes/openapi.js';
import { ManagementService } from './registry/management-service.js';
import { registerWhoamiRoute } from './http/routes/whoami.js';
import { registerDashboardRoutes } from './http/routes/dashboard.js';
import { capConnectionsPerAddress, timeBodyIdle } from './http/connection-limits.js';
import { trustedProxies } from './http/trusted-proxies.js';
import { RequestLogController, registerRequestLog } from './http/request-log.js';
import { TurnBufferedDestination } from './http/log-destination.js';
import { serveHotManifests } from './http/hot-manifests.js';
import { ChangeSignal } from './metadata/change-signal.js';
import { ClusterFills } from './proxy/cluster-fills.js';
import { registerInternalFillRoutes } from './http/routes/internal-fills.js';
import { advertiseUrl, nodeId } from './http/advertise-url.js';
import { WarmService } from './warm/warm-service.js';
import { WarmSchedule, type WarmTimer } from './warm/warm-schedule.js';
import { warmRequestFromConfig } from './warm/warm-config.js';
import { registerWarmRoutes } from './http/routes/warm.js';
import { openEvents } from './events/open-events.js';
import { withCanonicalNames } from './events/event.js';
import { tlsServerOptions, watchKeyPair, type SecureServer } from './http/tls-server.js';
import { PrettyDestination } from './http/log-pretty.js';
import { CacheStats } from './http/observability/cache-stats.js';
import { cachedFor } from './http/observability/cached.js';
import { Readiness } from './http/observability/readiness.js';
import type { WharfMetrics } from './http/observability/metrics.js';
import type { UpstreamObserver } from './upstream/upstream-observer.js';
import { adminGuard, registerHealthRoutes, registerMetricsRoute, registerStatsRoute } from './http/routes/observability.js';
import type { RequestEnd } from './http/request-log.js';

/** How often a node purges expired rows of the shared database (PostgreSQL). */
const EXPIRED_ROWS_INTERVAL_MS = 10 * 60_000;

export interface AppDeps {
  /** The metadata database (default: SQLite in the data directory); closed with the app. */
  database?: SqliteDatabase;
  /** Used instead of the SQLite stores over `database` (tests make them fail). */
  metadata?: RegistryMetadata;
  uploads?: UploadSessions;
  blobs?: BlobStore;
  /** Where the log goes (default stdout): tests read it. */
  logStream?: DestinationStream;
  /** Probe each upstream once when ready, so the first pull finds a connection (`serve` does). */
  warmUpstreams?: boolean;
  /** Runs warm.images now and every warm.interval (tests drive it themselves). */
  warmTimer?: WarmTimer;
  /** Told of every route as it is registered (a test checks /api/openapi.json describes each /api route). */
  onRoute?: (route: { method: string; url: string }) => void;
  /** The clock of the statistics' history and of the readiness answer's lifetime (tests move it). */
  now?: () => number;
  /** The clock of auth: token times, the failed-login window, the htpasswd file's re-read (tests move it). */
  authNow?: () => number;
}

/** How long a readiness answer is kept: probes within it share one check of the stores. */
const READINESS_CACHE_MS = 1500;
/** How long the storage-use query's answer is kept (/metrics, /api/stats). */
const STORAGE_USE_CACHE_MS = 5000;

export async function buildApp(config: WharfConfig, deps: AppDeps = {}): Promise<FastifyInstance> {
  const blobs = deps.blobs ?? (await openBlobStore(config.storage));
  // SQLite in the data directory, or the PostgreSQL database of metadata.postgres (src/stores.ts).
  let idleErrorLogged = 0;
  const stores = deps.database
    ? await sqliteStores(deps.database, metadataPath(config.storage.path))
    : await openMetadataStores(config, {
        // A connection lost while idle (the server restarted) is dropped and reopened on demand:
        // worth a line, not one per connection of the pool.
        onIdleError: (err) => {
          if (Date.now() - idleErrorLogged < 10_000) return;
          idleErrorLogged = Date.now();
          app.log.warn({ component: 'metadata', err }, 'metadata database connection lost; reconnecting on the next request');
        },
      });
  const metadata = deps.metadata ?? stores.metadata;
  const uploads = deps.uploads ?? stores.uploads;
  const gcState = stores.gc;
  const tokens = stores.tokens;
  const isTrustedProxy = trustedProxies(config.http.trustProxy);
  // Standard output unless told otherwise, written once per event-loop turn (log-destination.ts).
  let ownLog: TurnBufferedDestination | undefined;
  const destination: DestinationStream = deps.logStream ?? (ownLog = new TurnBufferedDestination());
  // log.format: pretty by default at a terminal, JSON for everything else (log-pretty.ts).
  const stdoutTTY = !deps.logStream && process.stdout.isTTY === true;
  // As `wharf serve` decides it for its own lines (cli/serve-log.ts).
  const format = config.log.format ?? (stdoutTTY ? 'pretty' : 'json');
  const logStream = format === 'pretty' ? new PrettyDestination(destination, stdoutTTY) : destination;
  const now = deps.now ?? Date.now;
  // The statistics of /api/stats, always kept; the Prometheus metrics when metrics.enabled (prom-client
  // is not even loaded otherwise).
  const stats = new CacheStats(now);
  let metrics: WharfMetrics | undefined;
  const observer: UpstreamObserver = {
    exchange: (e) => {
      stats.exchange(e);
      metrics?.exchange(e);
    },
    bytes: (upstream, n) => {
      stats.bytes(upstream, n);
      metrics?.bytes(upstream, n);
    },
  };
  const observe = (end: RequestEnd): void => {
    // Bytes served are those of content: an error body is none.
    if (end.route === 'manifest' || end.route === 'blob') stats.served(end.cache?.outcome, end.status !== null && end.status < 300 ? (end.bytes ?? 0) : 0);
    metrics?.request(end);
  };
  // One sequence of request ids for fastify's requests and the hot manifests answered before it.
  let lastReqId = 0;
  const nextReqId = (): string => `req-${(++lastReqId).toString(36)}`;
  let closing = false;
  // HTTPS (and HTTP/2 beside HTTP/1.1) with tls; the files are read here, checked by preflight before.
  const tlsOptions: object = config.tls ? tlsServerOptions(config.tls) : {};
  const app = Fastify({
    ...tlsOptions,
    genReqId: nextReqId,
    logger: { level: config.log.level, stream: logStream },
    exposeHeadRoutes: false,
    // One line per request, however it ended (src/http/request-log.ts), instead of fastify's two.
    logController: new RequestLogController(),
    routerOptions: { maxParamLength: 2048 },
    // Uploads can take long; the connection is not cut while bytes are flowing.
    requestTimeout: 0,
    // X-Forwarded-For counts only from the configured proxies (request.ip is then the client).
    trustProxy: config.http.trustProxy.length > 0 ? (address: string) => isTrustedProxy(address) : false,
    return503OnClosing: true,
    // No route declares a schema (the handlers validate what they take), so fastify's compilers,
    // ajv and fast-json-stringify with their dependencies, are never loaded.
    schemaController: { compilersFactory: { buildValidator: noSchemas, buildSerializer: noSchemas } },
    frameworkErrors: (error, request, reply) => {
      // A malformed percent-encoding in the path: still an OCI error body.
      sendError(request, reply, new RegistryError('NAME_INVALID', `malformed path: ${error.message}`, { status: 400 }));
    },
  });

  const onRoute = deps.onRoute;
  if (onRoute) {
    app.addHook('onRoute', (route) => {
      for (const method of [route.method].flat()) onRoute({ method, url: route.url });
    });
  }
  const logger = app.log;
  const tlsWatch = config.tls ? watchKeyPair(app.server as unknown as SecureServer, config.tls, logger) : undefined;
  // Requests are not timed as a whole (uploads may take hours), but their bodies must keep arriving,
  // and one address may hold only so many connections.
  timeBodyIdle(app.server, config.http.bodyIdleTimeout, logger.child({ component: 'http' }));
  capConnectionsPerAddress(app.server, config.http.maxConnectionsPerAddress, isTrustedProxy, logger.child({ component: 'http' }));
  // With several nodes, tag confirmations, upstream tokens, rate limits and listings are shared through the
  // database (keyv on PostgreSQL, memory in front); a failure there is a miss, said once in a while.
  let cacheErrorLogged = 0;
  const shared = (namespace: string) =>
    stores.sharedCache?.(namespace, (err) => {
      if (Date.now() - cacheErrorLogged < 10_000) return;
      cacheErrorLogged = Date.now();
      logger.warn({ component: 'metadata', err }, 'shared cache not reached: asking the upstream instead');
    });
  const upstreams = new Upstreams(config, { logger: logger.child({ component: 'upstream' }), tokens: shared('tokens'), rateLimits: shared('ratelimits'), observer });
  const ledger = new BlobLedger(metadata, blobs, gcState);
  const local = new LocalRegistry({
    metadata,
    uploads,
    blobStore: blobs,
    ledger,
    chunkMinLength: config.uploads.chunkMinLength,
    maxDescriptors: config.manifests.maxDescriptors,
    manifestCacheBytes: config.manifests.cacheSize,
    redirectBlobs: config.storage.s3?.redirect ?? false,
    // Pull times, batched: a pull never waits on a metadata write (eviction reads them).
    accessTracker: new AccessTracker(metadata, {
      intervalMs: 5000,
      // Called once per failed flush. A full disk is the operator's to fix: one short line, no stack.
      onError: (err) => {
        const reason = storageFullCode(err);
        if (reason) logger.warn({ reason }, `access times not recorded: the registry's storage is full (${reason})`);
        else logger.warn({ err }, 'access times not recorded');
      },
    }),
  });
  // Several nodes on one PostgreSQL: a cold blob is fetched once in the cluster (proxy/cluster-fills.ts).
  const clusterConfig = config.cluster;
  let cluster: ClusterFills | undefined;
  if (clusterConfig && stores.fillLeases) {
    if (clusterConfig.secret === undefined) throw new Error('cluster: the nodes need a shared secret (cluster.secretFile or cluster.secret)');
    const fillLog = logger.child({ component: 'fill' });
    let leaseErrorLogged = 0;
    cluster = new ClusterFills({
      leases: stores.fillLeases,
      node: nodeId(),
      url: () => advertiseUrl(clusterConfig.advertiseUrl, app.server, config.tls ? 'https' : 'http'),
      secret: clusterConfig.secret,
      heartbeatMs: clusterConfig.heartbeat,
      leaseMs: clusterConfig.leaseTimeout,
      // While the database is away every heartbeat fails: a line now and then, not one per beat.
      onEvent: (event, detail) => {
        if (Date.now() - leaseErrorLogged < 10_000) return;
        leaseErrorLogged = Date.now();
        fillLog.warn({ event, ...detail }, `fill lease ${event}: other nodes may take these fills over once their leases expire`);
      },
    });
  }
  // Push, pull, delete, fill and evict events to NATS and webhooks (events/); off without events.nats or events.webhooks.
  const events = openEvents(config.events, {
    log: logger.child({ component: 'events' }),
    // distribution's source.addr: this node as the others reach it (host:port).
    sourceAddr: () => {
      try {
        return new URL(advertiseUrl(config.cluster?.advertiseUrl, app.server)).host;
      } catch {
        return config.listen;
      }
    },
  });
  // The one Registry the routes see: names routed to an upstream go through the pull-through cache.
  const registry = new PullThroughRegistry(local, {
    cache: shared('proxy'),
    ledger,
    blobStore: blobs,
    localNamespaces: config.local.namespaces,
    upstreams: config.upstreams.map((u) => ({ config: u, client: upstreams.get(u.name) })),
    ...(cluster ? { cluster } : {}),
    sink: events.sink,
    events: {
      onFill: (event, detail) => {
        // A failed fill cut its clients: say which upstream and blob, and why.
        if (event === 'failed') {
          const { error, ...rest } = detail;
          logger.warn({ component: 'fill', event, ...rest, reason: error }, `blob fill failed: ${String(error)}`);
        } else logger.debug({ component: 'fill', event, ...detail }, `blob fill ${event}`);
      },
    },
  });
  // Manifests removed by a collector, this process's or another's on the same store (`wharf gc`),
  // leave the in-memory cache at once (metadata/change-signal.ts says why a watched file).
  const changes = new ChangeSignal(changeSignalPath(config.storage.path));
  const watchChanges = changes.watch(
    () => {
      local.dropCachedManifests();
      logger.info({ component: 'gc' }, 'content removed by another process on this store: manifests held in memory dropped');
    },
    { onError: (err) => logger.warn({ component: 'gc', err }, 'cannot watch the store for removals by other processes') },
  );
  // Tags moved or deleted and manifests removed by other nodes on the same PostgreSQL leave memory
  // as their messages arrive (metadata/postgres-change-feed.ts).
  const unsubscribe = stores.changes?.subscribe((change) => local.metadataChanged(change));
  const collector = new GarbageCollector({ gc: gcState, uploads }, ledger, {
    activeFills: () => registry.activeFills(),
    log: logger.child({ component: 'gc' }),
    // Evictions name the repository as the catalogue does.
    events: withCanonicalNames(events.sink, (stored) => registry.canonicalOf(stored)),
    finished: (report) => metrics?.gcRun(report),
    manifestsRemoved: () => {
      local.dropCachedManifests();
      try {
        changes.bump();
      } catch (err) {
        logger.warn({ component: 'gc', err }, 'other servers on this store not told of removed manifests');
      }
    },
  });

  // Bodies are read by the routes themselves (streamed uploads, size-limited manifests):
  // no content type is parsed or refused up front.
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', (_request, _payload, done) => done(null));

  registerRequestLog(app, redactUrl, observe);

  registerErrorHandler(app);
  registerHealthRoutes(
    app,
    new Readiness(
      [
        { name: 'metadata', where: stores.where, check: () => stores.ping() },
        // A digest nobody stores: a stat (on S3, a HEAD) that proves the store answers.
        { name: 'blobs', where: config.storage.s3 ? `bucket ${config.storage.s3.bucket}` : config.storage.path, check: () => blobs.stat(`sha256:${'0'.repeat(64)}`) },
      ],
      { cacheMs: READINESS_CACHE_MS, now },
    ),
  );
  const storageUse = cachedFor(STORAGE_USE_CACHE_MS, () => metadata.storageUse(), now);
  const rateLimits = () =>
    Promise.all(config.upstreams.map(async (u) => ({ upstream: u.name, ...(await upstreams.get(u.name).sharedRateLimit()) })));
  if (config.metrics.enabled) {
    const { WharfMetrics } = await import('./http/observability/metrics.js');
    metrics = new WharfMetrics({
      fillsInFlight: () => registry.fillsInFlight(),
      storageBytes: () => storageUse().then((s) => s.totalBytes, () => undefined),
      rateLimits,
    });
  }
  // Loaded only with auth on: an open registry never needs jose, bcrypt or the token routes.
  const access = config.auth
    ? await (await import('./auth/access-control.js')).AccessControl.create(
        { ...config, auth: config.auth },
        { metadata, tokens },
        (name, ns) => registry.route(name, ns),
        logger.child({ component: 'auth' }),
        deps.authNow,
      )
    : undefined;
  if (access) (await import('./http/routes/auth.js')).registerAuthRoutes(app, access, config.publicUrl);
  else logger.warn('no auth configured: anyone who can reach this registry may pull, push and delete');
  registerV2Routes(app, registry, { access, publicUrl: config.publicUrl, events: events.sink });
  const admin = adminGuard(access, config.publicUrl);
  if (metrics) registerMetricsRoute(app, metrics, config.metrics.auth ? admin : undefined);
  registerStatsRoute(
    app,
    {
      stats,
      fillsInFlight: () => registry.fillsInFlight(),
      storage: storageUse,
      upstreams: async () => {
        const limits = await rateLimits();
        return config.upstreams.map((u, i) => ({ name: u.name, url: u.url, rateLimit: limits[i] }));
      },
    },
    admin,
  );
  // With access control on, every pull goes through its checks in the routes.
  if (!access) {
    serveHotManifests(app.server, registry, { nextId: nextReqId, log: logger, redactUrl, closing: () => closing, events: events.sink, isTrustedProxy, observe, ...(config.publicUrl ? { publicUrl: config.publicUrl } : {}) });
  }
  if (cluster && clusterConfig?.secret !== undefined) {
    registerInternalFillRoutes(app, { secret: clusterConfig.secret, localFill: (digest, range) => registry.localFill(digest, range) });
  }
  registerGcRoutes(app, collector, (dryRun) => gcOptionsFrom(config, dryRun), access, config.publicUrl);
  // Repositories as operators see them, by their stored names (cached ones from their upstream).
  const management = new ManagementService({ metadata, store: local, route: (name) => registry.route(name) });
  registerRepositoryRoutes(app, management, access, config.publicUrl, { sink: events.sink, canonicalOf: (stored) => registry.canonicalOf(stored) });
  // Pre-warming: jobs through the API (`wharf warm`) and warm.images on a schedule (src/warm/).
  const warmLog = logger.child({ component: 'warm' });
  const warm = new WarmService(registry, { log: warmLog });
  registerWarmRoutes(app, warm, access, config.publicUrl);
  const warmRequest = warmRequestFromConfig(config);
  const warmSchedule = warmRequest
    ? new WarmSchedule(warm, warmRequest, config.warm.interval, (err) => warmLog.error({ err }, `scheduled warm not started: ${(err as Error).message}`), deps.warmTimer)
    : undefined;
  registerOpenApiRoute(app);
  registerWhoamiRoute(app, access, config.publicUrl);
  // The page at / (dashboard/ beside src and dist); its data comes from the routes above.
  registerDashboardRoutes(app, logger.child({ component: 'dashboard' }));

  // The collector on a schedule; a run already in progress (POST /api/gc, `wharf gc` in another
  // process) is left alone.
  let collecting: Promise<void> | undefined;
  const intervalMs = config.gc.interval;
  const schedule =
    intervalMs > 0
      ? setInterval(() => {
          if (collecting) return;
          collecting = collector
            .run(gcOptionsFrom(config))
            // The collector logs its own report.
            .then(
              () => undefined,
              (err: unknown) => {
                if (err instanceof GcBusyError) logger.info({ component: 'gc' }, 'garbage collection skipped: another run is in progress');
                else logger.error({ component: 'gc', err }, 'garbage collection failed');
              },
            )
            .finally(() => (collecting = undefined));
        }, intervalMs).unref()
      : undefined;

  // Shared-cache entries and fill leases that expired and that nothing reads or releases any more
  // leave the database, a bounded number per pass (metadata/postgres-expired-rows.ts).
  stores.expiredRows?.start(EXPIRED_ROWS_INTERVAL_MS, (purged, err) => {
    if (err) logger.warn({ component: 'metadata', err }, 'expired shared-cache entries and fill leases not purged; trying again later');
    else if (purged && purged.cacheEntries + purged.fillLeases > 0) logger.info({ component: 'metadata', purged }, 'expired shared-cache entries and fill leases purged');
  });

  // close() reaps idle keep-alive connections once; a connection whose response is still finishing
  // becomes idle a moment later and would hold close() until the keep-alive timeout. Reap again
  // until the server has closed (in-flight requests still finish).
  let reaper: NodeJS.Timeout | undefined;
  app.addHook('preClose', async () => {
    closing = true;
    // An HTTP/2 server has no such method: fastify closes its sessions itself.
    const server = app.server as Partial<Pick<typeof app.server, 'closeIdleConnections'>>;
    if (server.closeIdleConnections) reaper = setInterval(() => server.closeIdleConnections?.call(app.server), 100).unref();
  });
  app.addHook('onClose', async () => {
    clearInterval(reaper);
    tlsWatch?.close();
    clearInterval(schedule);
    // The schedule stops at once; running jobs start no more fetches.
    const scheduled = warmSchedule?.close();
    await warm.close();
    await scheduled;
    watchChanges.close();
    unsubscribe?.();
    await collecting;
    await registry.close();
    await stores.expiredRows?.close();
    await events.close();
    await stores.close();
    await upstreams.close();
    ownLog?.close();
  });
  await app.ready();
  if (deps.warmUpstreams) upstreams.warm();
  warmSchedule?.start();
  return app;
}

function noSchemas(): never {
  throw new Error('route schemas are not used: a route validates its input in its handler');
}

/** Query parameters that may carry a secret are logged as `[redacted]`. */
function redactUrl(url: string): string {
  if (!url.includes('?')) return url;
  return url.replace(/([?&](?:password|refresh_token|access_token|token|secret)=)[^&#]*/gi, '$1[redacted]');
}
