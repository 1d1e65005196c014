// /healthz, /readyz, /metrics and GET /api/stats (issue 13).
// /healthz: the process answers (liveness). /readyz: the stores answer too (readiness.ts); 503 with
// an OCI error body naming what is down. /metrics: Prometheus text, open or admin-only
// (metrics.auth). /api/stats: the management API's cache statistics (admin, like the rest of /api).
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { AccessControl } from '../../auth/access-control.js';
import type { StorageUse } from '../../metadata/registry-metadata.js';
import { RegistryError } from '../../registry/errors.js';
import type { CacheStats, HistorySample, UpstreamCounts } from '../observability/cache-stats.js';
import type { WharfMetrics } from '../observability/metrics.js';
import type { Readiness } from '../observability/readiness.js';
import { requireAdmin } from './auth.js';

export function registerHealthRoutes(app: FastifyInstance, readiness: Readiness): void {
  app.get('/healthz', async (_req, reply) => reply.code(200).header('cache-control', 'no-store').send({ status: 'ok' }));
  app.get('/readyz', async (_req, reply) => {
    const report = await readiness.report();
    reply.header('cache-control', 'no-store');
    if (report.ready) return reply.code(200).send({ status: 'ready', checks: report.checks });
    throw new RegistryError('UNAVAILABLE', `not ready: ${report.down.join('; ')}`, { detail: { checks: report.checks }, headers: { 'retry-after': '5' } });
  });
}

/** Admin access when auth is on (undefined: open). */
export type AdminGuard = ((request: FastifyRequest) => Promise<void>) | undefined;

export function adminGuard(access: AccessControl | undefined, publicUrl: string | undefined): AdminGuard {
  return access
    ? async (request) => {
        await requireAdmin(access, request, publicUrl);
      }
    : undefined;
}

export function registerMetricsRoute(app: FastifyInstance, metrics: WharfMetrics, guard: AdminGuard): void {
  app.get('/metrics', async (request, reply) => {
    if (guard) await guard(request);
    const text = await metrics.scrape();
    return reply.header('content-type', metrics.contentType).header('cache-control', 'no-store').send(text);
  });
}

/** An upstream as /api/stats shows it. */
export interface UpstreamStats extends UpstreamCounts {
  name: string;
  url: string;
  rateLimit: { limit: number | null; remaining: number | null };
}

export interface StatsSources {
  stats: CacheStats;
  fillsInFlight(): number;
  upstreams(): Promise<Array<{ name: string; url: string; rateLimit?: { limit?: number; remaining?: number } }>>;
  storage(): Promise<StorageUse>;
}

export interface StatsBody {
  cache: {
    hits: number;
    misses: number;
    coalesced: number;
    stale: number;
    hitRatio: number | null;
    bytesServed: number;
    bytesServedFromCache: number;
    fillsInFlight: number;
  };
  upstreams: UpstreamStats[];
  storage: StorageUse;
  history: HistorySample[];
}

export async function statsBody(sources: StatsSources): Promise<StatsBody> {
  const { stats } = sources;
  const [upstreams, storage] = await Promise.all([sources.upstreams(), sources.storage()]);
  return {
    cache: {
      hits: stats.hits,
      misses: stats.misses,
      coalesced: stats.coalesced,
      stale: stats.stale,
      hitRatio: stats.hitRatio,
      bytesServed: stats.bytesServed,
      bytesServedFromCache: stats.bytesServedFromCache,
      fillsInFlight: sources.fillsInFlight(),
    },
    upstreams: upstreams.map((u) => {
      const counts = stats.upstreamCounts(u.name);
      const remaining = u.rateLimit?.remaining ?? null;
      return {
        name: u.name,
        url: u.url,
        ...counts,
        // Nothing left of the upstream's rate limit: pulls of what is not cached will fail.
        health: remaining === 0 && counts.health === 'ok' ? 'degraded' : counts.health,
        rateLimit: { limit: u.rateLimit?.limit ?? null, remaining },
      };
    }),
    storage,
    history: stats.history(),
  };
}

export function registerStatsRoute(app: FastifyInstance, sources: StatsSources, guard: AdminGuard): void {
  app.get('/api/stats', async (request, reply) => {
    if (guard) await guard(request);
    return reply.header('cache-control', 'no-store').send(await statsBody(sources));
  });
}
