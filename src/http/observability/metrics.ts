// GET /metrics (issue 13): Prometheus metrics through prom-client, in a registry of this app's own
// (no process-global state: two apps in one process, as tests run them, count apart). Label values
// are bounded: a route is the kind of endpoint (manifest, blob, upload, ...), never the URL; an
// upstream is a configured name. prom-client hashes the labels of every inc() and observe(), even
// through a child, and its histogram checks them again on each observe(): the per-request counters
// and the request latency histogram are plain numbers and bucket arrays here instead, found once
// per (route, method, status) through maps keyed by those values (no key string built per request),
// and handed to prom-client when scraped (collect, and a metric of our own for the histogram).
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics, type Metric } from 'prom-client';
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
}

interface CacheCounts {
  kind: string;
  outcome: string;
  upstream: string;
  n: number;
}

/** The `${kind} ${outcome}` keys, as constants (no string built per request). */
const KIND_OUTCOME = {
  manifest: { hit: 'manifest hit', miss: 'manifest miss', coalesced: 'manifest coalesced', stale: 'manifest stale' },
  blob: { hit: 'blob hit', miss: 'blob miss', coalesced: 'blob coalesced', stale: 'blob stale' },
} as const;

/** One (route, method) series of the request latency histogram. */
interface DurationSeries {
  labels: { route: string; method: string };
  /** Observations per bucket (not cumulative), the last one past every bound (+Inf). */
  buckets: Float64Array;
  sum: number;
  count: number;
}

/** A (route, method): its histogram series and its counts by status. */
interface MethodCounts {
  duration: DurationSeries;
  statuses: Map<number | null, RequestCounts>;
}

interface ValuePair {
  labels: Record<string, string | number>;
  sharedLabels: Record<string, string>;
  value: number;
  metricName: string;
}

/**
 * wharf_http_request_duration_seconds: prom-client's Histogram as scraped (the same lines, labels in
 * the same order), counted in plain arrays (observe() costs a bucket search and three additions).
 */
class DurationHistogram {
  readonly name = 'wharf_http_request_duration_seconds';
  readonly help = 'time from a request to the end of its response, by route kind and method';
  readonly type = 'histogram';
  readonly aggregator = 'sum';
  readonly series: DurationSeries[] = [];

  add(route: string, method: string): DurationSeries {
    const s: DurationSeries = { labels: { route, method }, buckets: new Float64Array(LATENCY_BUCKETS.length + 1), sum: 0, count: 0 };
    this.series.push(s);
    return s;
  }

  getForPromString(): Promise<{ name: string; help: string; type: string; values: ValuePair[]; aggregator: string }> {
    const values: ValuePair[] = [];
    const bucket = `${this.name}_bucket`;
    for (const s of this.series) {
      let acc = 0;
      LATENCY_BUCKETS.forEach((le, i) => {
        acc += s.buckets[i] as number;
        values.push({ labels: { le }, sharedLabels: s.labels, value: acc, metricName: bucket });
      });
      values.push({ labels: { le: '+Inf' }, sharedLabels: s.labels, value: s.count, metricName: bucket });
      values.push({ labels: {}, sharedLabels: s.labels, value: s.sum, metricName: `${this.name}_sum` });
      values.push({ labels: {}, sharedLabels: s.labels, value: s.count, metricName: `${this.name}_count` });
    }
    return Promise.resolve({ name: this.name, help: this.help, type: this.type, values, aggregator: this.aggregator });
  }

  async get(): Promise<{ name: string; help: string; type: string; values: ValuePair[]; aggregator: string }> {
    const data = await this.getForPromString();
    return { ...data, values: data.values.map((v) => ({ ...v, labels: { ...v.labels, ...v.sharedLabels }, sharedLabels: {} })) };
  }

  reset(): void {
    for (const s of this.series) {
      s.buckets.fill(0);
      s.sum = 0;
      s.count = 0;
    }
  }
}

/** The index of the first bound `v` is at or under (LATENCY_BUCKETS.length: past them all). */
function bucketOf(v: number): number {
  let i = 0;
  while (i < LATENCY_BUCKETS.length && v > (LATENCY_BUCKETS[i] as number)) i++;
  return i;
}

export class WharfMetrics implements UpstreamObserver {
  readonly registry = new Registry();
  readonly contentType = this.registry.contentType;
  private readonly requests: Counter<'route' | 'method' | 'status'>;
  private readonly duration = new DurationHistogram();
  private readonly responseBytes: Counter<'route'>;
  private readonly cache: Counter<'kind' | 'outcome' | 'upstream'>;
  private readonly upstreamRequests: Counter<'upstream' | 'method' | 'status'>;
  private readonly upstreamErrors: Counter<'upstream'>;
  private readonly upstreamBytes: Counter<'upstream'>;
  private readonly upstreamDuration: Histogram<'upstream' | 'method'>;
  private readonly gcRuns: Counter<'dry_run'>;
  private readonly gcReclaimed: Counter;
  private readonly counts: RequestCounts[] = [];
  /** route -> method -> its counts. */
  private readonly byRoute = new Map<string, Map<string, MethodCounts>>();
  private readonly cacheCounts: CacheCounts[] = [];
  /** `${kind} ${outcome}` -> upstream -> its count (kind and outcome are few and fixed). */
  private readonly byCache = new Map<string, Map<string, CacheCounts>>();

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
        for (const c of counts) this.inc({ route: c.route, method: c.method, status: c.status }, c.count);
      },
    });
    this.registry.registerMetric(this.duration as unknown as Metric);
    this.responseBytes = new Counter({
      name: 'wharf_http_response_bytes_total',
      help: 'body bytes of completed responses, by route kind',
      labelNames: ['route'],
      registers,
      collect() {
        this.reset();
        for (const c of counts) if (c.bytes > 0) this.inc({ route: c.route }, c.bytes);
      },
    });
    this.cache = new Counter({
      name: 'wharf_cache_requests_total',
      help: 'pull-through cache answers: hit (from the cache), miss (fetched), coalesced (joined a fetch under way), stale (cached copy, upstream failing)',
      labelNames: ['kind', 'outcome', 'upstream'],
      registers,
      collect() {
        this.reset();
        for (const c of cacheCounts) this.inc({ kind: c.kind, outcome: c.outcome, upstream: c.upstream }, c.n);
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
    let methods = this.byRoute.get(end.route);
    if (!methods) {
      methods = new Map();
      this.byRoute.set(end.route, methods);
    }
    let m = methods.get(end.method);
    if (!m) {
      m = { duration: this.duration.add(end.route, end.method), statuses: new Map() };
      methods.set(end.method, m);
    }
    let c = m.statuses.get(end.status);
    if (!c) {
      c = { route: end.route, method: end.method, status: end.status === null ? 'none' : String(end.status), count: 0, bytes: 0 };
      m.statuses.set(end.status, c);
      this.counts.push(c);
    }
    c.count++;
    if (end.bytes) c.bytes += end.bytes;
    const d = m.duration;
    const seconds = end.seconds;
    if (Number.isFinite(seconds)) {
      const b = bucketOf(seconds);
      d.buckets[b] = (d.buckets[b] as number) + 1;
      d.sum += seconds;
      d.count++;
    }
    const cache = end.cache;
    if (cache) {
      const ko = KIND_OUTCOME[cache.kind][cache.outcome];
      let ups = this.byCache.get(ko);
      if (!ups) {
        ups = new Map();
        this.byCache.set(ko, ups);
      }
      const cc = ups.get(cache.upstream);
      if (cc) cc.n++;
      else {
        const c = { kind: cache.kind, outcome: cache.outcome, upstream: cache.upstream, n: 1 };
        ups.set(cache.upstream, c);
        this.cacheCounts.push(c);
      }
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
