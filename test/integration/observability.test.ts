// Metrics, statistics and the request log after real pulls through a real upstream (the reference
// registry): /metrics counts requests by route kind and status, cache outcomes, upstream requests
// and bytes, GC runs; GET /api/stats says the same in the management API's shape, with a per-minute
// history on an injected clock; every request's line carries its cache outcome, and the upstream
// calls it made carry its request id (issue 13).
import bcrypt from 'bcryptjs';
import t from 'tap';
import { freePort, pushTestImage, startDockerRegistry } from '../helpers/docker-registry.js';
import { LogCapture } from '../helpers/log-capture.js';
import { startWharf, tempDir } from '../helpers/server.js';
import { rmSync } from 'node:fs';

t.setTimeout(120_000);

/** Prometheus text → "name{labels}" → value (labels as written, in the registry's order). */
function parseMetrics(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const at = line.lastIndexOf(' ');
    out.set(line.slice(0, at), Number(line.slice(at + 1)));
  }
  return out;
}

async function scrape(url: string, headers: Record<string, string> = {}): Promise<Map<string, number>> {
  const res = await fetch(`${url}/metrics`, { headers });
  if (res.status !== 200) throw new Error(`/metrics: ${res.status} ${await res.text()}`);
  if (!res.headers.get('content-type')?.startsWith('text/plain')) throw new Error(`/metrics content-type ${res.headers.get('content-type')}`);
  return parseMetrics(await res.text());
}

interface Stats {
  cache: { hits: number; misses: number; coalesced: number; stale: number; hitRatio: number | null; bytesServed: number; bytesServedFromCache: number; fillsInFlight: number };
  upstreams: Array<{ name: string; url: string; requests: number; errors: number; bytesFetched: number; lastError: string | null; lastErrorAt: string | null; health: string; rateLimit: { limit: number | null; remaining: number | null } }>;
  storage: { totalBytes: number; namespaces: Array<{ namespace: string; bytes: number; repositories: number }> };
  history: Array<{ at: string; hits: number; misses: number; bytesFetched: number }>;
}

async function stats(url: string): Promise<Stats> {
  const res = await fetch(`${url}/api/stats`);
  if (res.status !== 200) throw new Error(`/api/stats: ${res.status} ${await res.text()}`);
  return (await res.json()) as Stats;
}

async function get(url: string, init?: RequestInit): Promise<Response> {
  const res = await fetch(url, init);
  await res.arrayBuffer();
  return res;
}

t.test('after real pulls, /metrics and /api/stats count requests, cache outcomes, upstream traffic and GC runs', async (t) => {
  const upstream = await startDockerRegistry(t);
  const image = await pushTestImage(upstream, 'library/observed', 'v1', { seed: 'observed' });
  let clock = Date.parse('2026-11-30T10:00:30Z');
  const logs = new LogCapture();
  const w = await startWharf(
    t,
    { upstreams: [{ name: 'hub', url: upstream.url, registry: 'docker.io', default: true }], local: { namespaces: ['local'] }, gc: { interval: '0s' } },
    { logs, now: () => clock },
  );

  const before = await stats(w.url);
  t.same(before.cache, { hits: 0, misses: 0, coalesced: 0, stale: 0, hitRatio: null, bytesServed: 0, bytesServedFromCache: 0, fillsInFlight: 0 }, 'nothing yet');
  t.match(before.upstreams, [{ name: 'hub', url: upstream.url, requests: 0, errors: 0, bytesFetched: 0, lastError: null, health: 'unknown', rateLimit: { limit: null, remaining: null } }]);
  t.equal(before.history.length, 60, 'an hour of minutes');
  t.equal(before.history[59]?.at, '2026-11-30T10:00:00.000Z', 'the current minute last');

  // A cold pull: the manifest by tag and every blob; then the same again, warm.
  const manifestUrl = `${w.url}/v2/library/observed/manifests/v1`;
  t.equal((await get(manifestUrl)).status, 200);
  for (const b of image.blobs) t.equal((await get(`${w.url}/v2/library/observed/blobs/${b.digest}`)).status, 200);
  clock += 60_000;
  t.equal((await get(manifestUrl)).status, 200, 'warm: answered from memory before routing');
  for (const b of image.blobs) t.equal((await get(`${w.url}/v2/library/observed/blobs/${b.digest}`)).status, 200);
  t.equal((await get(`${w.url}/v2/library/observed/manifests/nope`)).status, 404);
  t.equal((await get(`${w.url}/v2/library/observed/blobs/${image.blobs[0]?.digest}`, { method: 'HEAD' })).status, 200, 'HEAD of a cached blob');

  const n = image.blobs.length;
  const blobBytes = image.blobs.reduce((s, b) => s + b.size, 0);
  const m = await scrape(w.url);
  const cache = (kind: string, outcome: string) => m.get(`wharf_cache_requests_total{kind="${kind}",outcome="${outcome}",upstream="hub"}`);
  t.equal(cache('manifest', 'miss'), 2, 'the cold manifest and the unknown tag');
  t.equal(cache('manifest', 'hit'), 1, 'the warm manifest (the hot path counts too)');
  t.equal(cache('blob', 'miss'), n, 'one miss per blob');
  t.equal(cache('blob', 'hit'), n + 1, 'then hits, the HEAD too');
  t.equal(m.get('wharf_http_requests_total{route="manifest",method="GET",status="200"}'), 2);
  t.equal(m.get('wharf_http_requests_total{route="manifest",method="GET",status="404"}'), 1);
  t.equal(m.get('wharf_http_requests_total{route="blob",method="GET",status="200"}'), 2 * n);
  t.equal(m.get('wharf_http_requests_total{route="blob",method="HEAD",status="200"}'), 1);
  t.equal(m.get('wharf_http_requests_total{route="api",method="GET",status="200"}'), 1, 'the first /api/stats');
  t.equal(m.get('wharf_http_request_duration_seconds_count{route="manifest",method="GET"}'), 3);
  t.ok((m.get('wharf_http_request_duration_seconds_bucket{le="+Inf",route="blob",method="GET"}') ?? 0) >= 2 * n, 'a latency histogram per route kind');
  t.equal(m.get('wharf_http_response_bytes_total{route="blob"}'), 2 * blobBytes, 'blob bytes served (HEAD has none)');
  t.equal(m.get('wharf_upstream_requests_total{upstream="hub",method="GET",status="200"}'), 1 + n, 'one GET for the manifest and one per blob');
  t.equal(m.get('wharf_upstream_requests_total{upstream="hub",method="HEAD",status="200"}'), 1, 'the tag resolved with a HEAD');
  t.equal(m.get('wharf_upstream_requests_total{upstream="hub",method="HEAD",status="404"}'), 1, 'the unknown tag');
  t.equal(m.get('wharf_upstream_errors_total{upstream="hub"}'), undefined, 'a 404 is no upstream error');
  t.ok((m.get('wharf_upstream_bytes_total{upstream="hub"}') ?? 0) >= blobBytes + image.manifest.length, 'every byte received counted');
  t.equal(m.get('wharf_upstream_request_duration_seconds_count{upstream="hub",method="GET"}'), 1 + n);
  t.equal(m.get('wharf_fills_in_flight'), 0);
  t.ok((m.get('wharf_storage_bytes') ?? 0) >= blobBytes + image.manifest.length, 'storage bytes from the metadata');
  t.ok(m.has('wharf_process_resident_memory_bytes'), 'process metrics, prefixed');

  const s = await stats(w.url);
  t.same(s.cache, {
    hits: n + 2,
    misses: n + 2,
    coalesced: 0,
    stale: 0,
    hitRatio: (n + 2) / (2 * n + 4),
    bytesServed: 2 * blobBytes + 2 * image.manifest.length,
    bytesServedFromCache: blobBytes + image.manifest.length,
    fillsInFlight: 0,
  });
  const hub = s.upstreams[0];
  t.match(hub, { name: 'hub', requests: n + 3, errors: 0, lastError: null, health: 'ok' });
  t.equal(hub?.bytesFetched, m.get('wharf_upstream_bytes_total{upstream="hub"}'), 'the same bytes as the metric');
  t.same(s.storage.namespaces.map((x) => x.namespace), ['docker.io'], 'cached content lives under its registry host');
  t.ok((s.storage.namespaces[0]?.bytes ?? 0) >= blobBytes);
  t.equal(s.storage.namespaces[0]?.repositories, 1);
  t.same(s.history.slice(-2).map(({ at, hits, misses }) => ({ at, hits, misses })), [
    { at: '2026-11-30T10:00:00.000Z', hits: 0, misses: n + 1 },
    { at: '2026-11-30T10:01:00.000Z', hits: n + 2, misses: 1 },
  ], 'per minute, on the injected clock');
  t.equal(s.history.slice(-2).reduce((x, h) => x + h.bytesFetched, 0), hub?.bytesFetched, 'bytes fetched per minute add up');
  clock += 61 * 60_000;
  t.same((await stats(w.url)).history.filter((h) => h.hits + h.misses > 0), [], 'an hour later the samples have left the window');

  // A collection: counted with the bytes it reclaimed.
  t.equal((await get(`${w.url}/api/gc`, { method: 'POST' })).status, 200);
  const g = await scrape(w.url);
  t.equal(g.get('wharf_gc_runs_total{dry_run="false"}'), 1);
  t.equal(g.get('wharf_gc_bytes_reclaimed_total'), 0, 'nothing to reclaim within the grace period');

  // The log: one line per request with its cache outcome; the upstream calls carry the request's id.
  const cold = logs.lines.find((l) => l.msg === 'request' && l.url === '/v2/library/observed/manifests/v1');
  t.match(cold, { reqId: String, client: '127.0.0.1', user: null, method: 'GET', route: 'manifest', status: 200, bytes: image.manifest.length, ms: Number, cache: 'miss', upstream: 'hub' });
  const calls = logs.lines.filter((l) => l.msg === 'upstream request' && l.reqId === cold?.reqId);
  t.same(calls.map((l) => [l.method, l.status]), [['HEAD', 200], ['GET', 200]], 'the upstream calls of the cold pull, under its request id');
  const warm = logs.lines.filter((l) => l.msg === 'request' && l.url === '/v2/library/observed/manifests/v1')[1];
  t.match(warm, { reqId: String, route: 'manifest', status: 200, bytes: image.manifest.length, cache: 'hit' }, 'the hot path logs the same fields');
  t.not(warm?.reqId, cold?.reqId);
  const blobLine = logs.lines.find((l) => l.msg === 'request' && l.url === `/v2/library/observed/blobs/${image.blobs[0]?.digest}`);
  t.match(blobLine, { route: 'blob', cache: 'miss', bytes: image.blobs[0]?.size });
  t.match(logs.lines.find((l) => l.msg === 'request' && typeof l.url === 'string' && l.url.startsWith('/api/stats')), { route: 'api', status: 200 });
});

t.test('an upstream that is down: stale answers, errors and the last error per upstream', async (t) => {
  const upstream = await startDockerRegistry(t);
  const image = await pushTestImage(upstream, 'library/stale', 'v1', { seed: 'stale' });
  const dataDir = tempDir();
  t.teardown(() => rmSync(dataDir, { recursive: true, force: true }));
  const config = (url: string) => ({ upstreams: [{ name: 'hub', url, registry: 'docker.io', default: true }] });
  const first = await startWharf(t, config(upstream.url), { dataDir });
  t.equal((await get(`${first.url}/v2/library/stale/manifests/v1`)).status, 200);
  await first.close();

  // The same store, an upstream that refuses connections, no tag confirmation in memory.
  const w = await startWharf(t, config(`http://127.0.0.1:${await freePort()}`), { dataDir });
  for (let i = 0; i < 3; i++) {
    const res = await get(`${w.url}/v2/library/stale/manifests/v1`);
    t.equal(res.status, 200, 'the cached copy');
    t.match(res.headers.get('warning'), /^299 /);
  }
  t.equal((await get(`${w.url}/v2/library/stale/blobs/${image.blobs[0]?.digest}`)).status, 503, 'an uncached blob cannot be fetched');
  const m = await scrape(w.url);
  t.equal(m.get('wharf_cache_requests_total{kind="manifest",outcome="stale",upstream="hub"}'), 3);
  t.equal(m.get('wharf_upstream_requests_total{upstream="hub",method="HEAD",status="error"}'), 3);
  t.ok((m.get('wharf_upstream_errors_total{upstream="hub"}') ?? 0) >= 4);
  const s = await stats(w.url);
  t.match(s.cache, { stale: 3, hits: 0, misses: 1, hitRatio: 0.75 }, 'the blob that could not be fetched is a miss');
  t.match(s.upstreams[0], { name: 'hub', health: 'down', lastError: /ECONNREFUSED|refused|connect/i, lastErrorAt: String });
  t.ok((s.upstreams[0]?.errors ?? 0) >= 4);
});

t.test('/metrics: open by default, admins only with metrics.auth, absent with metrics.enabled false; /api/stats is admin-only with auth on', async (t) => {
  const auth = { users: [{ name: 'root', password: bcrypt.hashSync('root-pw', 4), groups: ['admin'] }, { name: 'dev', password: bcrypt.hashSync('dev-pw', 4), groups: [] }] };
  const basic = (u: string, p: string) => ({ authorization: `Basic ${Buffer.from(`${u}:${p}`).toString('base64')}` });
  const open = await startWharf(t, { auth });
  t.equal((await get(`${open.url}/metrics`)).status, 200, 'open: Prometheus scrapes without credentials');
  t.equal((await get(`${open.url}/api/stats`)).status, 401, 'the management API asks for credentials');
  t.equal((await get(`${open.url}/api/stats`, { headers: basic('dev', 'dev-pw') })).status, 403, 'not an admin');
  const asAdmin = await fetch(`${open.url}/api/stats`, { headers: basic('root', 'root-pw') });
  t.equal(asAdmin.status, 200);
  t.match(await asAdmin.json(), { cache: { hits: 0 }, upstreams: [], storage: { totalBytes: 0, namespaces: [] } });

  const guarded = await startWharf(t, { auth, metrics: { auth: true } });
  t.equal((await get(`${guarded.url}/metrics`)).status, 401);
  t.equal((await get(`${guarded.url}/metrics`, { headers: basic('dev', 'dev-pw') })).status, 403);
  t.equal((await scrape(guarded.url, basic('root', 'root-pw'))).has('wharf_fills_in_flight'), true);
  // The admin's requests are logged with the user's name: checked through the metric of its route.
  const off = await startWharf(t, { metrics: { enabled: false } });
  const res = await fetch(`${off.url}/metrics`);
  t.equal(res.status, 404);
  t.match(await res.json(), { errors: [{ code: 'NOT_FOUND' }] });
});

t.test('an upstream\'s rate limit: a gauge per upstream, and in /api/stats (none left: degraded)', async (t) => {
  // An upstream that has run out of pulls: every answer carries Docker Hub's rate-limit headers.
  const { createServer } = await import('node:http');
  const server = createServer((_req, res) => {
    res.writeHead(404, { 'content-type': 'application/json', 'ratelimit-limit': '100;w=21600', 'ratelimit-remaining': '0;w=21600' });
    res.end('{"errors":[{"code":"MANIFEST_UNKNOWN","message":"no","detail":null}]}');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(() => new Promise((resolve) => server.close(resolve)));
  const { port } = server.address() as { port: number };
  const w = await startWharf(t, { upstreams: [{ name: 'hub', url: `http://127.0.0.1:${port}`, registry: 'docker.io', default: true }] });
  const m0 = await scrape(w.url);
  t.equal(m0.get('wharf_upstream_rate_limit_remaining{upstream="hub"}'), undefined, 'nothing known before the first answer');
  t.equal((await get(`${w.url}/v2/library/limited/manifests/v1`)).status, 404);
  const m = await scrape(w.url);
  t.equal(m.get('wharf_upstream_rate_limit_remaining{upstream="hub"}'), 0);
  t.equal(m.get('wharf_upstream_rate_limit_limit{upstream="hub"}'), 100);
  const s = await stats(w.url);
  t.match(s.upstreams[0], { name: 'hub', errors: 0, health: 'degraded', rateLimit: { limit: 100, remaining: 0 } });
});
