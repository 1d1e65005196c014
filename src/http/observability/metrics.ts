// GET /metrics (issue 13): Prometheus metrics through prom-client, in a registry of this app's own
// (no process-global state: two apps in one process, as tests run them, count apart). Label values
// are bounded: a route is the kind of endpoint (manifest, blob, upload, ...), never the URL; an
// upstream is a configured name. prom-client hashes the labels of every inc() and observe(), even
// through a child: the per-request counters are plain numbers here instead, one map lookup per
// request, handed to prom-client when scraped (collect); only the latency histogram observes per request.
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { GcReport } from '../../gc/collector.js';
import type { UpstreamExchange, UpstreamObserver } from '../../upstream/upstream-observer.js';
import type { RequestEnd } from '../request-log.js';

/** What the gauges read when scraped. */
export interface MetricsSources {
  fillsInFlight(): number;
  /** Bytes of every blob recorded; undefined when the metadata store cannot say now. */
  storageBytes(): Promise<number | undefined>;
  rateLimits(): Promise<Array<{ upstream: string; limit?: number; remaining?: number }>>;
}

const LATENCY_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300];

interface RequestCounts {
  route: string;
  method: string;
  status: string;
  count: number;
  bytes: number;
  duration: { observe(v: number): void };
}

export class WharfMetrics implements UpstreamObserver {
  readonly registry = new Registry();
  readonly contentType = this.registry.contentType;
  private readonly requests: Counter<'route' | 'method' | 'status'>;
  private readonly duration: Histogram<'route' | 'method'>;
  private readonly responseBytes: Counter<'route'>;
  private readonly cache: Counter<'kind' | 'outcome' | 'upstream'>;
  private readonly upstreamRequests: Counter<'upstream' | 'method' | 'status'>;
  private readonly upstreamErrors: Counter<'upstream'>;
  private readonly upstreamBytes: Counter<'upstream'>;
  private readonly upstreamDuration: Histogram<'upstream' | 'method'>;
  private readonly gcRuns: Counter<'dry_run'>;
  private readonly gcReclaimed: Counter;
  private readonly counts = new Map<string, RequestCounts>();
  private readonly cacheCounts = new Map<string, { kind: string; outcome: string; upstream: string; n: number }>();

  constructor(sources: MetricsSources) {
    const registers = [this.registry];
    const counts = this.counts;
    const cacheCounts = this.cacheCounts;
    this.requests = new Counter({
      name: 'wharf_http_requests_total',
      help: 'HTTP requests answered, by route kind, method and status',
      labelNames: ['route', 'method', 'status'],
      registers,
      collect() {
        this.reset();
        for (const c of counts.values()) this.inc({ route: c.route, method: c.method, status: c.status }, c.count);
      },
    });
    this.duration = new Histogram({
      name: 'wharf_http_request_duration_seconds',
      help: 'time from a request to the end of its response, by route kind and method',
      labelNames: ['route', 'method'],
      buckets: LATENCY_BUCKETS,
      registers,
    });
    this.responseBytes = new Counter({
      name: 'wharf_http_response_bytes_total',
      help: 'body bytes of completed responses, by route kind',
      labelNames: ['route'],
      registers,
      collect() {
        this.reset();
        for (const c of counts.values()) if (c.bytes > 0) this.inc({ route: c.route }, c.bytes);
      },
    });
    this.cache = new Counter({
      name: 'wharf_cache_requests_total',
      help: 'pull-through cache answers: hit (from the cache), miss (fetched), coalesced (joined a fetch under way), stale (cached copy, upstream failing)',
      labelNames: ['kind', 'outcome', 'upstream'],
      registers,
      collect() {
        this.reset();
        for (const c of cacheCounts.values()) this.inc({ kind: c.kind, outcome: c.outcome, upstream: c.upstream }, c.n);
      },
    });
    this.upstreamRequests = new Counter({ name: 'wharf_upstream_requests_total', help: 'requests to upstreams, by status ("error": no response)', labelNames: ['upstream', 'method', 'status'], registers });
    this.upstreamErrors = new Counter({ name: 'wharf_upstream_errors_total', help: 'upstream requests that failed: no response, a 5xx or a 429', labelNames: ['upstream'], registers });
    this.upstreamBytes = new Counter({ name: 'wharf_upstream_bytes_total', help: 'body bytes received from upstreams', labelNames: ['upstream'], registers });
    this.upstreamDuration = new Histogram({
      name: 'wharf_upstream_request_duration_seconds',
      help: 'time to an upstream response\'s headers (or its failure)',
      labelNames: ['upstream', 'method'],
      buckets: LATENCY_BUCKETS,
      registers,
    });
    this.gcRuns = new Counter({ name: 'wharf_gc_runs_total', help: 'garbage collections finished by this node', labelNames: ['dry_run'], registers });
    this.gcReclaimed = new Counter({ name: 'wharf_gc_bytes_reclaimed_total', help: 'blob bytes removed by garbage collections of this node', registers });
    new Gauge({
      name: 'wharf_fills_in_flight',
      help: 'blob fills from upstreams running on this node',
      registers,
      collect() {
        this.set(sources.fillsInFlight());
      },
    });
    new Gauge({
      name: 'wharf_storage_bytes',
      help: 'bytes of every blob recorded in the metadata store (shared by a cluster)',
      registers,
      async collect() {
        const bytes = await sources.storageBytes();
        if (bytes !== undefined) this.set(bytes);
      },
    });
    new Gauge({
      name: 'wharf_upstream_rate_limit_remaining',
      help: 'requests the upstream said are left in its rate-limit window (ratelimit-remaining), newest value any node saw',
      labelNames: ['upstream'],
      registers,
      async collect() {
        const all = await sources.rateLimits();
        this.reset();
        for (const r of all) if (r.remaining !== undefined) this.set({ upstream: r.upstream }, r.remaining);
      },
    });
    new Gauge({
      name: 'wharf_upstream_rate_limit_limit',
      help: 'the upstream\'s rate-limit window size (ratelimit-limit)',
      labelNames: ['upstream'],
      registers,
      async collect() {
        const all = await sources.rateLimits();
        this.reset();
        for (const r of all) if (r.limit !== undefined) this.set({ upstream: r.upstream }, r.limit);
      },
    });
    // Memory, CPU, event-loop delay, handles: read when scraped.
    collectDefaultMetrics({ register: this.registry, prefix: 'wharf_' });
  }

  /** Counts a finished request (called once per request, the hot manifest path included). */
  request(end: RequestEnd): void {
    const status = end.status === null ? 'none' : String(end.status);
    const key = `${end.route} ${end.method} ${status}`;
    let c = this.counts.get(key);
    if (!c) {
      c = { route: end.route, method: end.method, status, count: 0, bytes: 0, duration: this.duration.labels(end.route, end.method) };
      this.counts.set(key, c);
    }
    c.count++;
    if (end.bytes) c.bytes += end.bytes;
    c.duration.observe(end.seconds);
    const cache = end.cache;
    if (cache) {
      const ck = `${cache.kind} ${cache.outcome} ${cache.upstream}`;
      const cc = this.cacheCounts.get(ck);
      if (cc) cc.n++;
      else this.cacheCounts.set(ck, { kind: cache.kind, outcome: cache.outcome, upstream: cache.upstream, n: 1 });
    }
  }

  exchange(e: UpstreamExchange): void {
    this.upstreamRequests.inc({ upstream: e.upstream, method: e.method, status: e.status === undefined ? 'error' : String(e.status) });
    this.upstreamDuration.observe({ upstream: e.upstream, method: e.method }, e.ms / 1000);
    if (e.error !== undefined) this.upstreamErrors.inc({ upstream: e.upstream });
  }

  bytes(upstream: string, n: number): void {
    this.upstreamBytes.inc({ upstream }, n);
  }

  gcRun(report: GcReport): void {
    this.gcRuns.inc({ dry_run: String(report.dryRun) });
    if (!report.dryRun) this.gcReclaimed.inc(report.bytesReclaimed);
  }

  scrape(): Promise<string> {
    return this.registry.metrics();
  }
}
