// The pull-through path under upstream faults (DESIGN.md "The pull-through path"), end to end: a real
// Wharf in front of test/helpers/fault-upstream.ts. The invariant checked everywhere: a client never
// receives a complete body with the wrong digest, nothing unverified is committed, and the cache
// recovers once the upstream does.
import t, { type Test } from 'tap';
import { existsSync, readdirSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { startWharf, type TestServer } from '../helpers/server.js';
import { contentEntry, startFaultUpstream, type FaultContent, type FaultUpstream } from '../helpers/fault-upstream.js';
import { bulkBytes, sha256 } from '../helpers/oci-layout.js';

const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
const REPO = 'team/app';
const BLOB_SIZE = 512 * 1024;
const REQUEST_TIMEOUT = 20_000;
t.setTimeout(180_000);

interface Outcome {
  status: number;
  headers: Headers;
  bytes: Buffer;
  /** The Content-Length the response announced. */
  length: number | undefined;
  /** Set when reading the body rejected (the connection was cut). */
  error: unknown;
  ms: number;
}

/** GET/HEAD and read the whole body, recording a cut connection instead of throwing. */
async function get(url: string, init: RequestInit = {}): Promise<Outcome> {
  const started = Date.now();
  const res = await fetch(url, { signal: AbortSignal.timeout(REQUEST_TIMEOUT), ...init });
  const chunks: Buffer[] = [];
  let error: unknown;
  try {
    if (res.body) for await (const c of res.body) chunks.push(Buffer.from(c));
  } catch (err) {
    error = err;
  }
  const cl = res.headers.get('content-length');
  return { status: res.status, headers: res.headers, bytes: Buffer.concat(chunks), length: cl === null ? undefined : Number(cl), error, ms: Date.now() - started };
}

function complete(o: Outcome): boolean {
  return o.status === 200 && o.error === undefined && (o.length === undefined || o.bytes.length === o.length);
}

/** Never a complete body with the wrong digest: a 200 that is complete must be the right bytes. */
function neverWrong(t: Test, o: Outcome, digest: string, what: string): void {
  if (complete(o)) t.equal(sha256(o.bytes), digest, `${what}: a complete 200 body has the right digest`);
  else t.pass(`${what}: incomplete (status ${o.status}, ${o.bytes.length}/${o.length} bytes, error ${String(o.error)})`);
}

/** The client was cut off (or refused): never handed a complete blob. */
function cut(t: Test, o: Outcome, what: string): void {
  t.notOk(complete(o), `${what}: not a complete 200 (status ${o.status}, ${o.bytes.length}/${o.length} bytes, error ${String(o.error)})`);
  if (o.status === 200) t.ok(o.error !== undefined || o.bytes.length < (o.length ?? Infinity), `${what}: connection cut before Content-Length`);
}

function blobFile(dataDir: string, digest: string): string {
  const hex = digest.slice('sha256:'.length);
  return join(dataDir, 'blobs', 'sha256', hex.slice(0, 2), hex);
}

/** Writers' files left in the data directory (a fill's among them; these tests start no upload). */
function fillFiles(dataDir: string): string[] {
  try {
    return readdirSync(join(dataDir, 'uploads'));
  } catch {
    return [];
  }
}

async function until(cond: () => boolean, ms: number): Promise<boolean> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (cond()) return true;
    await sleep(20);
  }
  return cond();
}

/** Nothing committed for `digest` and no fill file left behind (waits briefly for the fill to end). */
async function nothingCommitted(t: Test, w: TestServer, digest: string, what: string): Promise<void> {
  await until(() => fillFiles(w.dataDir).length === 0, 3000);
  t.notOk(existsSync(blobFile(w.dataDir, digest)), `${what}: no blob file for ${digest.slice(0, 19)}`);
  t.same(fillFiles(w.dataDir), [], `${what}: no temporary fill file left`);
}

function image(seed: string) {
  const layer = contentEntry(bulkBytes(`layer-${seed}`, BLOB_SIZE));
  const small = contentEntry(bulkBytes(`small-${seed}`, 64 * 1024));
  const config = contentEntry(Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', seed })));
  const body = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: OCI_MANIFEST,
      config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: config.digest, size: config.body.length },
      layers: [
        { mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: layer.digest, size: layer.body.length },
        { mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: small.digest, size: small.body.length },
      ],
    }),
  );
  const manifest = { repo: REPO, tag: 'v1', mediaType: OCI_MANIFEST, ...contentEntry(body) };
  return { layer, small, config, manifest };
}

async function setup(t: Test, opts: { supportsRange?: boolean; extra?: (c: FaultContent) => void; timeouts?: Record<string, unknown> } = {}) {
  const img = image(t.name);
  const content: FaultContent = { manifests: [img.manifest], blobs: [img.layer, img.small, img.config] };
  opts.extra?.(content);
  const up: FaultUpstream = await startFaultUpstream(t, content, { supportsRange: opts.supportsRange ?? false });
  const w = await startWharf(t, {
    upstreams: [
      {
        name: 'faulty',
        url: up.url,
        registry: 'faults.test',
        default: true,
        tagTTL: '1s',
        timeouts: { connect: '2s', headers: '2s', bodyIdle: '300ms', ...opts.timeouts },
      },
    ],
  });
  const blobUrl = (digest: string) => `${w.url}/v2/${REPO}/blobs/${digest}`;
  const manifestUrl = (ref: string) => `${w.url}/v2/${REPO}/manifests/${ref}`;
  const blobGets = (digest: string) => up.count('GET', `/blobs/${digest}`);
  return { ...img, up, w, blobUrl, manifestUrl, blobGets };
}

t.test('dropped connection mid-blob', async (t) => {
  t.test('supportsRange: the fill resumes with Range: bytes=N- and the client gets the whole blob', async (t) => {
    const s = await setup(t, { supportsRange: true });
    s.up.setFault({ kind: 'drop', afterBytes: 100_000, match: '/blobs/', times: 1 });
    const o = await get(s.blobUrl(s.layer.digest));
    t.equal(o.status, 200);
    t.equal(o.error, undefined, 'client body read did not fail');
    t.equal(o.bytes.length, BLOB_SIZE);
    t.equal(sha256(o.bytes), s.layer.digest);
    const gets = s.up.requests.filter((r) => r.method === 'GET' && r.path.includes(`/blobs/${s.layer.digest}`));
    t.equal(gets.length, 2, 'one GET and one resume');
    t.equal(gets[0]?.headers.range, undefined, 'first GET is not ranged');
    const m = /^bytes=(\d+)-$/.exec(String(gets[1]?.headers.range));
    t.ok(m, `resume is a ranged GET (range: ${gets[1]?.headers.range})`);
    const n = Number(m?.[1]);
    t.ok(n > 0 && n <= 100_000, `resumed at ${n}, after what had arrived`);
    t.ok(await until(() => existsSync(blobFile(s.w.dataDir, s.layer.digest)), 3000), 'blob committed');
    const again = await get(s.blobUrl(s.layer.digest));
    t.equal(sha256(again.bytes), s.layer.digest);
    t.equal(s.blobGets(s.layer.digest), 2, 'served from the cache afterwards');
  });

  t.test('no Range support: the fill restarts, skips what it has, and the client gets the whole blob', async (t) => {
    const s = await setup(t, { supportsRange: false });
    s.up.setFault({ kind: 'drop', afterBytes: 100_000, match: '/blobs/', times: 1 });
    const o = await get(s.blobUrl(s.layer.digest));
    t.equal(o.status, 200);
    t.equal(o.error, undefined);
    t.equal(o.bytes.length, BLOB_SIZE);
    t.equal(sha256(o.bytes), s.layer.digest);
    t.equal(s.blobGets(s.layer.digest), 2);
    t.ok(await until(() => existsSync(blobFile(s.w.dataDir, s.layer.digest)), 3000), 'blob committed');
  });

  t.test('no Range support, every response dropped: the client is cut, nothing committed, then recovery', async (t) => {
    const s = await setup(t, { supportsRange: false });
    s.up.setFault({ kind: 'drop', afterBytes: 100_000, match: '/blobs/', times: 100 });
    const o = await get(s.blobUrl(s.layer.digest));
    cut(t, o, 'retries exhausted');
    neverWrong(t, o, s.layer.digest, 'retries exhausted');
    const tries = s.blobGets(s.layer.digest);
    t.ok(tries >= 2 && tries <= 10, `bounded retries (${tries} GETs)`);
    await nothingCommitted(t, s.w, s.layer.digest, 'after exhausted retries');
    s.up.setFault(undefined);
    const ok = await get(s.blobUrl(s.layer.digest));
    t.equal(ok.status, 200);
    t.equal(sha256(ok.bytes), s.layer.digest, 'recovers once the upstream does');
  });
});

t.test('corrupt bytes (same length): client cut, nothing committed, recovery', async (t) => {
  const s = await setup(t);
  s.up.setFault({ kind: 'corrupt', match: '/blobs/' });
  const o = await get(s.blobUrl(s.layer.digest));
  cut(t, o, 'corrupt');
  neverWrong(t, o, s.layer.digest, 'corrupt');
  t.equal(s.blobGets(s.layer.digest), 1, 'a digest mismatch is not retried within the fill');
  await nothingCommitted(t, s.w, s.layer.digest, 'corrupt');

  const second = await get(s.blobUrl(s.layer.digest));
  cut(t, second, 'corrupt again');
  t.equal(s.blobGets(s.layer.digest), 2, 'the next request refetches (nothing cached)');
  await nothingCommitted(t, s.w, s.layer.digest, 'corrupt again');

  const head = await get(s.blobUrl(s.layer.digest), { method: 'HEAD' });
  t.equal(head.status, 200, 'HEAD still answers from the upstream');
  t.notOk(existsSync(blobFile(s.w.dataDir, s.layer.digest)));

  s.up.setFault(undefined);
  const ok = await get(s.blobUrl(s.layer.digest));
  t.equal(ok.status, 200);
  t.equal(ok.error, undefined);
  t.equal(sha256(ok.bytes), s.layer.digest, 'correct bytes once the fault is gone');
  t.equal(s.blobGets(s.layer.digest), 3);
  t.ok(await until(() => existsSync(blobFile(s.w.dataDir, s.layer.digest)), 3000), 'committed after recovery');
});

t.test('truncated body (fewer bytes, clean close)', async (t) => {
  t.test('every response truncated, no Range: client cut, nothing committed, recovery', async (t) => {
    const s = await setup(t, { supportsRange: false });
    s.up.setFault({ kind: 'truncate', bytes: 200_000, match: '/blobs/' });
    const o = await get(s.blobUrl(s.layer.digest));
    cut(t, o, 'truncated');
    neverWrong(t, o, s.layer.digest, 'truncated');
    await nothingCommitted(t, s.w, s.layer.digest, 'truncated');
    s.up.setFault(undefined);
    const ok = await get(s.blobUrl(s.layer.digest));
    t.equal(ok.status, 200);
    t.equal(sha256(ok.bytes), s.layer.digest);
  });

  t.test('every response truncated, with Range: resumes make progress but run out; client cut', async (t) => {
    const s = await setup(t, { supportsRange: true });
    s.up.setFault({ kind: 'truncate', bytes: 1000, match: '/blobs/' });
    const o = await get(s.blobUrl(s.layer.digest));
    cut(t, o, 'truncated with range');
    neverWrong(t, o, s.layer.digest, 'truncated with range');
    await nothingCommitted(t, s.w, s.layer.digest, 'truncated with range');
    s.up.setFault(undefined);
    const ok = await get(s.blobUrl(s.layer.digest));
    t.equal(sha256(ok.bytes), s.layer.digest, 'recovers');
  });

  t.test('one truncated response, with Range: resumed to a correct blob', async (t) => {
    const s = await setup(t, { supportsRange: true });
    s.up.setFault({ kind: 'truncate', bytes: 200_000, match: '/blobs/', times: 1 });
    const o = await get(s.blobUrl(s.layer.digest));
    t.equal(o.status, 200);
    t.equal(o.error, undefined);
    t.equal(sha256(o.bytes), s.layer.digest);
    const ranged = s.up.requests.filter((r) => r.method === 'GET' && r.path.includes('/blobs/') && r.headers.range !== undefined);
    t.equal(ranged.length, 1, 'one ranged resume');
  });
});

t.test('stall longer than timeouts.bodyIdle', async (t) => {
  t.test('once, with Range: the idle timeout fires and the fill resumes long before the stall ends', async (t) => {
    const s = await setup(t, { supportsRange: true });
    s.up.setFault({ kind: 'stall', afterBytes: 100_000, ms: 10_000, match: '/blobs/', times: 1 });
    const o = await get(s.blobUrl(s.layer.digest));
    neverWrong(t, o, s.layer.digest, 'stall once');
    t.ok(complete(o), 'resumed to completion');
    t.ok(o.ms < 5000, `done in ${o.ms} ms, not after the 10 s stall (bodyIdle 300ms)`);
    t.ok(await until(() => existsSync(blobFile(s.w.dataDir, s.layer.digest)), 3000), 'committed');
  });

  t.test('every response stalls: the fill fails, nothing committed, next request recovers', async (t) => {
    const s = await setup(t, { supportsRange: true });
    s.up.setFault({ kind: 'stall', afterBytes: 1000, ms: 20_000, match: '/blobs/' });
    const o = await get(s.blobUrl(s.layer.digest));
    cut(t, o, 'always stalling');
    neverWrong(t, o, s.layer.digest, 'always stalling');
    // undici's body timer has ~1 s resolution, so each try takes up to ~1 s, not 300ms.
    t.ok(o.ms < 10_000, `gave up in ${o.ms} ms, long before the 20 s stall`);
    await nothingCommitted(t, s.w, s.layer.digest, 'always stalling');
    s.up.setFault(undefined);
    const ok = await get(s.blobUrl(s.layer.digest));
    t.equal(ok.status, 200);
    t.equal(sha256(ok.bytes), s.layer.digest);
  });
});

t.test('an upstream that trickles below timeouts.minRate: the fill ends, its clients are cut, the next request recovers', async (t) => {
  // 10 bytes every 50 ms (200 B/s) never trips bodyIdle (2 s here); 1000 B/s over 300 ms does.
  const s = await setup(t, { timeouts: { bodyIdle: '2s', minRate: 1000, minRateWindow: '300ms' } });
  s.up.setFault({ kind: 'slow', bytesPerChunk: 10, delayMs: 50, match: '/blobs/' });
  const o = await get(s.blobUrl(s.layer.digest));
  cut(t, o, 'trickling');
  neverWrong(t, o, s.layer.digest, 'trickling');
  t.ok(o.ms < 5000, `cut after ${o.ms} ms, not held for the hours the trickle would take`);
  await nothingCommitted(t, s.w, s.layer.digest, 'trickling');
  s.up.setFault(undefined);
  const ok = await get(s.blobUrl(s.layer.digest));
  t.equal(ok.status, 200);
  t.equal(sha256(ok.bytes), s.layer.digest);
});

t.test('upstream error statuses with nothing cached', async (t) => {
  const s = await setup(t);
  for (const status of [500, 503] as const) {
    s.up.setFault({ kind: 'status', status, match: `/${REPO}/` });
    for (const [what, url] of [
      ['blob', s.blobUrl(s.layer.digest)],
      ['manifest by tag', s.manifestUrl('v1')],
      ['manifest by digest', s.manifestUrl(s.manifest.digest)],
    ] as const) {
      const o = await get(url);
      t.equal(o.status, 503, `${status} on ${what} → 503`);
      const body = JSON.parse(o.bytes.toString()) as { errors: Array<{ code: string; message: string }> };
      t.equal(body.errors[0]?.code, 'UNAVAILABLE', `${status} on ${what}: UNAVAILABLE`);
      t.match(body.errors[0]?.message, /faulty/, `${status} on ${what}: names the upstream`);
    }
  }

  s.up.setFault({ kind: 'status', status: 429, retryAfter: '7', match: `/${REPO}/` });
  for (const [what, url] of [
    ['blob', s.blobUrl(s.layer.digest)],
    ['manifest by tag', s.manifestUrl('v1')],
    ['manifest by digest', s.manifestUrl(s.manifest.digest)],
  ] as const) {
    const o = await get(url);
    t.equal(o.status, 429, `429 on ${what}`);
    t.equal(o.headers.get('retry-after'), '7', `429 on ${what}: Retry-After passed on`);
    t.match(JSON.parse(o.bytes.toString()), { errors: [{ code: 'TOOMANYREQUESTS' }] });
  }

  // 401 without credentials: Wharf says the content is unknown, naming the upstream and the status.
  s.up.setFault({ kind: 'status', status: 401, match: `/${REPO}/` });
  for (const [what, url, code] of [
    ['blob', s.blobUrl(s.layer.digest), 'BLOB_UNKNOWN'],
    ['manifest by tag', s.manifestUrl('v1'), 'MANIFEST_UNKNOWN'],
    ['manifest by digest', s.manifestUrl(s.manifest.digest), 'MANIFEST_UNKNOWN'],
  ] as const) {
    const o = await get(url);
    t.equal(o.status, 404, `401 on ${what} → 404`);
    t.match(JSON.parse(o.bytes.toString()), { errors: [{ code, message: /faulty.*401/, detail: { upstream: 'faulty', status: 401 } }] }, `401 on ${what}: ${code}`);
  }
  t.notOk(existsSync(blobFile(s.w.dataDir, s.layer.digest)));
  t.notOk(existsSync(blobFile(s.w.dataDir, s.manifest.digest)));

  s.up.setFault(undefined);
  const ok = await get(s.manifestUrl('v1'));
  t.equal(ok.status, 200, 'recovers');
});

t.test('a cached tag past its TTL is served stale with Warning: 299 when the upstream fails', async (t) => {
  const s = await setup(t);
  const first = await get(s.manifestUrl('v1'));
  t.equal(first.status, 200);
  t.ok(first.bytes.equals(s.manifest.body));
  t.equal(first.headers.get('warning'), null);

  const faults = [
    { name: '500', fault: { kind: 'status', status: 500, match: '/manifests/' } as const },
    { name: '429', fault: { kind: 'status', status: 429, retryAfter: '3', match: '/manifests/' } as const },
    { name: 'offline', fault: { kind: 'offline' } as const },
  ];
  for (const { name, fault } of faults) {
    await sleep(1100); // tagTTL 1s
    s.up.setFault(fault);
    const before = s.up.requests.length;
    const o = await get(s.manifestUrl('v1'));
    t.equal(o.status, 200, `${name}: 200`);
    t.ok(o.bytes.equals(s.manifest.body), `${name}: the cached bytes`);
    t.equal(o.headers.get('docker-content-digest'), s.manifest.digest);
    t.match(o.headers.get('warning'), /^299 - "/, `${name}: Warning: 299 (${o.headers.get('warning')})`);
    if (name !== 'offline') t.ok(s.up.requests.length > before, `${name}: the upstream was asked`);
    const head = await get(s.manifestUrl('v1'), { method: 'HEAD' });
    t.equal(head.status, 200, `${name}: HEAD 200`);
    t.match(head.headers.get('warning'), /^299 /, `${name}: HEAD carries the Warning too`);
    s.up.setFault(undefined);
  }
  await sleep(1100);
  const fresh = await get(s.manifestUrl('v1'));
  t.equal(fresh.status, 200);
  t.equal(fresh.headers.get('warning'), null, 'no warning once the upstream answers again');
});

t.test('a manifest whose bytes do not hash to its digest is refused and not stored', async (t) => {
  const good = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: OCI_MANIFEST, config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: sha256('c'), size: 1 }, layers: [] }));
  const evil = Buffer.from(good.toString().replace('"size":1', '"size":2'));
  const claimed = sha256(good);
  const actual = sha256(evil);
  const s = await setup(t, {
    extra: (c) => {
      c.manifests.push({ repo: 'team/bad', digest: claimed, mediaType: OCI_MANIFEST, body: evil });
      c.manifests.push({ repo: 'team/badtag', tag: 'v1', digest: claimed, mediaType: OCI_MANIFEST, body: evil });
    },
  });
  for (const [what, path] of [
    ['by digest', `/v2/team/bad/manifests/${claimed}`],
    ['by tag', '/v2/team/badtag/manifests/v1'],
  ] as const) {
    const o = await get(`${s.w.url}${path}`);
    t.not(o.status, 200, `${what}: not served`);
    t.ok(o.status >= 400, `${what}: an error (${o.status})`);
    t.match(JSON.parse(o.bytes.toString() || '{}'), { errors: [{ code: String }] }, `${what}: OCI error body`);
    t.notOk(o.bytes.equals(evil), `${what}: the wrong bytes are not passed on`);
    t.notOk(existsSync(blobFile(s.w.dataDir, claimed)), `${what}: nothing stored under the claimed digest`);
    t.notOk(existsSync(blobFile(s.w.dataDir, actual)), `${what}: nothing stored under the actual digest`);
  }
  const before = s.up.count('GET', `/team/bad/manifests/${claimed}`);
  const again = await get(`${s.w.url}/v2/team/bad/manifests/${claimed}`);
  t.not(again.status, 200);
  t.equal(s.up.count('GET', `/team/bad/manifests/${claimed}`), before + 1, 'asked again: nothing was cached');
  const byActual = await get(`${s.w.url}/v2/team/bad/manifests/${actual}`);
  t.not(byActual.status, 200, 'not retrievable under its actual digest either');
});

t.test('a client that disconnects mid-download does not stop the fill', async (t) => {
  const s = await setup(t);
  s.up.setFault({ kind: 'slow', bytesPerChunk: 16 * 1024, delayMs: 30, match: '/blobs/' });
  const ac = new AbortController();
  const timer = setTimeout(() => ac.abort(), REQUEST_TIMEOUT);
  const res = await fetch(s.blobUrl(s.layer.digest), { signal: ac.signal });
  t.equal(res.status, 200);
  const reader = res.body!.getReader();
  const first = await reader.read();
  t.ok(first.value && first.value.length > 0, 'first bytes arrived');
  ac.abort();
  clearTimeout(timer);
  await reader.read().catch(() => undefined);
  t.notOk(existsSync(blobFile(s.w.dataDir, s.layer.digest)), 'not committed yet when the client left');
  t.ok(await until(() => existsSync(blobFile(s.w.dataDir, s.layer.digest)), 10_000), 'the fill went on and committed');
  s.up.setFault(undefined);
  const o = await get(s.blobUrl(s.layer.digest));
  t.equal(o.status, 200);
  t.equal(sha256(o.bytes), s.layer.digest);
  t.equal(s.blobGets(s.layer.digest), 1, 'served from the cache: still one upstream GET');
});

t.test('a second client during a fill follows it: one upstream GET, both correct', async (t) => {
  const s = await setup(t);
  s.up.setFault({ kind: 'slow', bytesPerChunk: 16 * 1024, delayMs: 30, match: '/blobs/' });
  const res1 = await fetch(s.blobUrl(s.layer.digest), { signal: AbortSignal.timeout(REQUEST_TIMEOUT) });
  const reader = res1.body!.getReader();
  const chunks: Buffer[] = [];
  const firstChunk = await reader.read();
  chunks.push(Buffer.from(firstChunk.value ?? []));
  const rest1 = (async () => {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) return Buffer.concat(chunks);
      chunks.push(Buffer.from(value));
    }
  })();
  t.notOk(existsSync(blobFile(s.w.dataDir, s.layer.digest)), 'the fill is still running');
  const head = await get(s.blobUrl(s.layer.digest), { method: 'HEAD' });
  t.equal(head.status, 200, 'HEAD during the fill');
  t.equal(head.headers.get('content-length'), String(BLOB_SIZE));
  t.equal(s.up.count('HEAD', '/blobs/'), 0, 'HEAD during the fill answered from the fill');
  const [o2, b1] = await Promise.all([get(s.blobUrl(s.layer.digest)), rest1]);
  t.equal(o2.status, 200);
  t.equal(sha256(b1), s.layer.digest, 'first client');
  t.equal(sha256(o2.bytes), s.layer.digest, 'follower');
  t.equal(s.blobGets(s.layer.digest), 1, 'one upstream GET');
});

t.test('Range on a cold blob while its fill is in progress', async (t) => {
  const s = await setup(t);
  s.up.setFault({ kind: 'slow', bytesPerChunk: 16 * 1024, delayMs: 30, match: '/blobs/' });
  const full = get(s.blobUrl(s.layer.digest));
  await until(() => s.blobGets(s.layer.digest) === 1, 3000);
  await sleep(100);
  const [mid, tail, full1] = await Promise.all([
    get(s.blobUrl(s.layer.digest), { headers: { range: 'bytes=300000-300999' } }),
    get(s.blobUrl(s.layer.digest), { headers: { range: 'bytes=-1000' } }),
    full,
  ]);
  t.equal(mid.status, 206);
  t.equal(mid.headers.get('content-range'), `bytes 300000-300999/${BLOB_SIZE}`);
  t.ok(mid.bytes.equals(s.layer.body.subarray(300000, 301000)), 'middle range bytes');
  t.equal(tail.status, 206);
  t.equal(tail.headers.get('content-range'), `bytes ${BLOB_SIZE - 1000}-${BLOB_SIZE - 1}/${BLOB_SIZE}`);
  t.ok(tail.bytes.equals(s.layer.body.subarray(BLOB_SIZE - 1000)), 'suffix range bytes (waits for verification)');
  t.equal(sha256(full1.bytes), s.layer.digest);
  t.equal(s.blobGets(s.layer.digest), 1, 'ranges follow the one fill');

  // A range that itself starts the fill.
  const r = await get(s.blobUrl(s.small.digest), { headers: { range: 'bytes=5-1004' } });
  t.equal(r.status, 206);
  t.equal(r.headers.get('content-range'), `bytes 5-1004/${s.small.body.length}`);
  t.ok(r.bytes.equals(s.small.body.subarray(5, 1005)));
  t.ok(await until(() => existsSync(blobFile(s.w.dataDir, s.small.digest)), 5000), 'the fill a range started completes');
});

t.test('blob HEAD on a miss asks the upstream with HEAD only', async (t) => {
  const s = await setup(t);
  const o = await get(s.blobUrl(s.layer.digest), { method: 'HEAD' });
  t.equal(o.status, 200);
  t.equal(o.headers.get('content-length'), String(BLOB_SIZE));
  t.equal(o.headers.get('docker-content-digest'), s.layer.digest);
  t.equal(s.up.count('HEAD', `/blobs/${s.layer.digest}`), 1, 'one upstream HEAD');
  t.equal(s.blobGets(s.layer.digest), 0, 'no upstream GET');
  t.notOk(existsSync(blobFile(s.w.dataDir, s.layer.digest)));
  const missing = await get(s.blobUrl(sha256('nope')), { method: 'HEAD' });
  t.equal(missing.status, 404, 'HEAD of a blob the upstream does not have');
  t.equal(s.up.count('GET', '/blobs/'), 0);
});

t.test('an upstream that sends a blob without Content-Length (chunked): the first client gets the blob', async (t) => {
  // Registries and CDNs may answer chunked; the fault upstream always sends Content-Length, so a
  // minimal node:http upstream stands in here.
  const blob = contentEntry(bulkBytes('chunked', 200_000));
  let gets = 0;
  const server = createServer((req, res) => {
    const path = (req.url ?? '').split('?')[0]!;
    if (path === '/v2/' || path === '/v2') {
      res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
      return;
    }
    if (path.endsWith(`/blobs/${blob.digest}`) && req.method === 'GET') {
      gets++;
      res.writeHead(200, { 'content-type': 'application/octet-stream', 'docker-content-digest': blob.digest });
      for (let off = 0; off < blob.body.length; off += 32 * 1024) res.write(blob.body.subarray(off, off + 32 * 1024));
      res.end();
      return;
    }
    res.writeHead(404, { 'content-type': 'application/json' }).end('{"errors":[{"code":"NOT_FOUND","message":"no"}]}');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(() => new Promise<void>((resolve) => server.close(() => resolve())).then(() => undefined));
  const { port } = server.address() as AddressInfo;
  const w = await startWharf(t, {
    upstreams: [{ name: 'chunky', url: `http://127.0.0.1:${port}`, registry: 'chunky.test', default: true, timeouts: { connect: '2s', headers: '2s', bodyIdle: '2s' } }],
  });
  const url = `${w.url}/v2/${REPO}/blobs/${blob.digest}`;
  const first = await get(url);
  t.equal(first.status, 200, `first request: ${first.status} ${first.status === 200 ? '' : first.bytes.toString().slice(0, 200)}`);
  t.equal(sha256(first.bytes), blob.digest, 'first request: the blob');
  t.equal(gets, 1);
  const second = await get(url);
  t.equal(second.status, 200);
  t.equal(sha256(second.bytes), blob.digest, 'second request (from the cache)');
  t.equal(gets, 1, 'one upstream GET');
});
