// Mirror benchmark: Wharf beside the reference registry (distribution 2.8, /usr/bin/docker-registry, in
// proxy mode) and nginx (the physical limit), side by side in one run, loopback only, every target of
// the performance work reported with its ratio.
//
// Set-up (every process started here, in its own temp dir, on its own port; all torn down at the end,
// on failure, on SIGINT/SIGTERM, and by a watchdog):
//   origin     docker-registry holding the test images, behind a front nginx (reverse proxy, proxy_buffering
//              and proxy_request_buffering off, 1 worker) whose access log counts upstream GETs per blob.
//              Wharf and the reference both point at the front; the images are pushed to the origin directly.
//   wharf      node dist/main.js serve, default upstream = the front, log level info (Wharf's default;
//              BENCH_WHARF_LOG_LEVEL changes it), stdout+stderr to a log file in its temp dir.
//   reference  docker-registry with proxy.remoteurl = the front, its own storage dir.
//   nginx      nginx (2 workers, sendfile on, tcp_nopush) serving the same bytes at the same URL paths from
//              files (manifests with their Content-Type and Docker-Content-Digest; blobs with the digest).
// A fresh process with empty storage for every cold, herd, 4 GiB and push round (Wharf and reference);
// warm and manifest figures come from one long-lived process each. Rounds alternate between servers.
//
// Figures (MB = 10^6 bytes; client MB/s = size_download / time_total):
//   sha        one core: `openssl speed -evp sha256 -bytes 16384 -seconds 2` and node:crypto over 1 MiB
//              updates for 2 s, measured first; the targets use the node figure (Wharf hashes with it).
//   cold       curl -s -o /dev/null of a cold 256 MiB blob (5 rounds): MB/s, first byte (time_starttransfer);
//              the nginx column is "upstream direct", curl straight from the front (the cold ceiling).
//   warm       the same blob once cached (7 rounds, after one pull that fills the cache).
//   herd       16 curls at once on one cold 256 MiB blob (3 rounds): wall time from the first spawn to the
//              last exit, and GETs of that digest the front saw (counted after the server is stopped).
//   manifests  20 tags of small distinct images; one GET of every path (tag and digest) first, then
//              wrk -t2 -c32 -d8s round-robin over the 20 tags (and, apart, the 20 digests) with the Accept
//              of the OCI and Docker manifest and index types (bench/lib/manifests.lua): req/s, p99.
//              HEAD: ab -k -i -c32 takes one URL, so it runs over the 20 paths in turn with the same -n for
//              each, sized from the GET rate so that the 20 runs take about 8 s (-t caps each run);
//              req/s = requests / summed time, p50/p99 from the union of the runs' percentile tables.
//   memory     from /proc/PID/status (VmRSS, VmHWM = peak, RssAnon, RssFile): idle 2 s after start-up and
//              2 s after the manifest load, and at rest BENCH_REST_SECONDS (30) after it; VmHWM at the end of each cold and herd round (fresh process);
//              one cold pull of a 4 GiB layer (Wharf and reference) with its MB/s and VmHWM.
//   push       a 1 GiB layer pushed with curl streaming from files: monolithic = POST, then one PUT
//              ?digest= with the whole body (curl -T FILE); chunked = POST, PATCHes of 64 MiB chunk files
//              (curl -T, Content-Range start-end), PUT ?digest=. MB/s over the summed curl time_total of
//              the requests (3 rounds). Against Wharf with no upstream and a plain docker-registry.
// Integrity: one extra cold pull per server (untimed) and one warm pull per server are hashed; in every
// herd round the first client's body is hashed (here, off a pipe); every manifest path is GET once and
// checked (status, Docker-Content-Digest, body digest); pushes must answer 201 with the digest. The 4 GiB
// pull checks status and size only.
//
// Usage: npm run bench:mirror  (builds first), under `flock -x /tmp/wharf-bench.lock` on a shared machine.
// Needs Debian packages: nginx, wrk, apache2-utils (ab), curl, docker-registry, openssl; ~14 GiB free
// in the temp dir for the 4 GiB layer (checked; skipped with a note when short).
// Environment: BENCH_QUICK=1 (small blobs, 1-2 rounds, 2 s loads: a smoke run); BENCH_COLD_ROUNDS (5),
// BENCH_WARM_ROUNDS (7), BENCH_HERD_ROUNDS (3), BENCH_PUSH_ROUNDS (3), BENCH_HERD_CLIENTS (16),
// BENCH_BLOB_MIB (256), BENCH_HUGE=0 (skip the 4 GiB layer), BENCH_HUGE_MIB (4096), BENCH_PUSH_MIB (1024),
// BENCH_CHUNK_MIB (64), BENCH_TAGS (20), BENCH_LOAD_SECONDS (8), BENCH_REST_SECONDS (30), BENCH_CONNECTIONS (32),
// BENCH_WATCHDOG_S (900), BENCH_WHARF_LOG_LEVEL, BENCH_WHARF_NODE_ARGS; BENCH_PARTS (cold,herd,warm,huge,push:
// the parts to run, comma-separated; warm includes the manifest load and the RSS at rest).
// Every cold and herd round also logs where the CPU went while it ran: seconds of user+system time of the
// server, the front nginx, the origin docker-registry, and the whole machine (the rest is mostly curl).
// Output: a table (figure | wharf | reference | nginx | ratio | target | met?) of medians with min-max,
// then one JSON line with every raw figure. Exit 1 when a download or a verification fails, 2 on the
// watchdog; a missed target does not change the exit status.
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, statfsSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { startDockerRegistry } from '../test/helpers/docker-registry.js';
import { abHeadLoad, curlGet, curlHerd, nodeSha256, opensslSha256, pushChunked, pushMonolithic, round, wrkLoad, type Load, type Pull, type Push } from './lib/clients.js';
import { OCI_MANIFEST, buildImage, layOut, pushImage, writeRandomFile, type BlobFile, type Image } from './lib/fixtures.js';
import { MiB, findPid, machineBusySeconds, procStatus, treeCpuSecondsOf, type ProcStatus } from './lib/measure.js';
import { startFront, startStatic, type Nginx } from './lib/nginx.js';
import { Scope, poll } from './lib/proc.js';
import { startWharf } from './lib/wharf-process.js';
import { formatTable, stats, type Row } from './lib/report.js';

const QUICK = process.env.BENCH_QUICK === '1';
const num = (name: string, full: number, quick: number): number => {
  const v = process.env[name];
  return v !== undefined && v !== '' ? Number(v) : QUICK ? quick : full;
};
const C = {
  blob: num('BENCH_BLOB_MIB', 256, 32) * MiB,
  huge: process.env.BENCH_HUGE === '0' ? 0 : num('BENCH_HUGE_MIB', 4096, 256) * MiB,
  push: num('BENCH_PUSH_MIB', 1024, 128) * MiB,
  chunk: num('BENCH_CHUNK_MIB', 64, 16) * MiB,
  coldRounds: num('BENCH_COLD_ROUNDS', 5, 2),
  warmRounds: num('BENCH_WARM_ROUNDS', 7, 2),
  herdRounds: num('BENCH_HERD_ROUNDS', 3, 1),
  pushRounds: num('BENCH_PUSH_ROUNDS', 3, 1),
  herdClients: num('BENCH_HERD_CLIENTS', 16, 16),
  tags: num('BENCH_TAGS', 20, 20),
  loadSeconds: num('BENCH_LOAD_SECONDS', 8, 2),
  restSeconds: num('BENCH_REST_SECONDS', 30, 0),
  connections: num('BENCH_CONNECTIONS', 32, 32),
  shaSeconds: QUICK ? 1 : 2,
  watchdogS: num('BENCH_WATCHDOG_S', 900, 300),
};
const SETTLE_MS = 2_000;
const PARTS = new Set((process.env.BENCH_PARTS ?? 'cold,herd,warm,huge,push').split(',').map((p) => p.trim()));
if (!PARTS.has('huge')) C.huge = 0;
if (!PARTS.has('push')) C.push = 0;

const t0 = performance.now();
const log = (msg: string) => console.error(`[mirror ${((performance.now() - t0) / 1000).toFixed(1)}s] ${msg}`);
const main$ = new Scope();
const failures: string[] = [];
const fail = (what: string) => {
  failures.push(what);
  log(`FAILED: ${what}`);
};

type Kind = 'wharf' | 'reference' | 'nginx';
const KINDS: Kind[] = ['wharf', 'reference', 'nginx'];

interface Env {
  work: string;
  origin: { url: string; pid: number };
  front: Nginx;
  statics: Nginx;
  big: { repo: string; blob: BlobFile };
  huge?: { repo: string; blob: BlobFile };
  push: BlobFile & { chunks: Array<{ file: string; size: number }> };
  images: Image[];
}

/** GETs of `digest` in the front's access log, once the log has stopped growing (bounded). */
async function frontGets(front: Nginx, digest: string): Promise<number> {
  let prev = -1;
  for (let i = 0; i < 30; i++) {
    const size = existsSync(front.accessLog) ? statSync(front.accessLog).size : 0;
    if (size === prev) break;
    prev = size;
    await sleep(i === 0 ? 50 : 150);
  }
  const text = existsSync(front.accessLog) ? readFileSync(front.accessLog, 'utf8') : '';
  return text.split('\n').filter((l) => l.startsWith('GET ') && l.includes(`/blobs/${digest} `)).length;
}

interface Server {
  base: string;
  pid?: number;
}

/** A fresh proxy of `kind` (empty storage) in `scope`; nginx is the front (cold) or the static server. */
async function freshServer(env: Env, kind: Kind, scope: Scope, nginx: 'front' | 'static'): Promise<Server> {
  if (kind === 'wharf') {
    const w = await startWharf(scope, { upstream: env.front.url });
    return { base: w.url, pid: w.pid };
  }
  if (kind === 'reference') {
    const r = await startDockerRegistry(scope, { proxy: { remoteurl: env.front.url } });
    return { base: r.url, pid: findPid(['docker-registry', 'serve', r.configFile]) };
  }
  return { base: nginx === 'front' ? env.front.url : env.statics.url };
}

/** CPU seconds (user + system) spent during a round by each process and by the whole machine. */
interface CpuSplit {
  server: number;
  front: number;
  origin: number;
  machine: number;
}

/** Starts counting CPU time; the returned function gives the split since then. */
function cpuMeter(env: Env, serverPid: number | undefined): () => CpuSplit {
  const now = () => ({
    server: serverPid ? treeCpuSecondsOf(serverPid) : 0,
    front: treeCpuSecondsOf(env.front.pid),
    origin: treeCpuSecondsOf(env.origin.pid),
    machine: machineBusySeconds(),
  });
  const before = now();
  return () => {
    const after = now();
    return {
      server: round(after.server - before.server, 2),
      front: round(after.front - before.front, 2),
      origin: round(after.origin - before.origin, 2),
      machine: round(after.machine - before.machine, 2),
    };
  };
}

const cpuLine = (c: CpuSplit | undefined) => (c ? `cpu s: server ${c.server}, front ${c.front}, origin ${c.origin}, machine ${c.machine}` : '');

interface PullRound {
  pull: Pull;
  mem?: ProcStatus;
  upstreamGets: number;
  cpu?: CpuSplit;
}

async function coldRound(env: Env, kind: Kind, blob: { repo: string; blob: BlobFile }, hash: boolean): Promise<PullRound> {
  const scope = new Scope();
  const before = await frontGets(env.front, blob.blob.digest);
  let pull: Pull;
  let mem: ProcStatus | undefined;
  let cpu: CpuSplit;
  try {
    const s = await freshServer(env, kind, scope, 'front');
    const meter = cpuMeter(env, s.pid);
    pull = await curlGet(`${s.base}/v2/${blob.repo}/blobs/${blob.blob.digest}`, { hash });
    cpu = meter();
    if (s.pid) mem = procStatus(s.pid);
  } finally {
    await scope.close();
  }
  const upstreamGets = (await frontGets(env.front, blob.blob.digest)) - before;
  checkPull(`${kind} cold${hash ? ' (hashed)' : ''}`, pull, blob.blob);
  log(`  ${kind} cold ${mbps(pull)} MB/s, ${cpuLine(cpu)}`);
  return { pull, ...(mem ? { mem } : {}), upstreamGets, cpu };
}

interface HerdRound {
  wall: number;
  upstreamGets: number;
  mem?: ProcStatus;
  ok: number;
  cpu?: CpuSplit;
}

async function herdRound(env: Env, kind: Kind): Promise<HerdRound> {
  const scope = new Scope();
  const { repo, blob } = env.big;
  const before = await frontGets(env.front, blob.digest);
  let herd;
  let mem: ProcStatus | undefined;
  let cpu: CpuSplit;
  try {
    const s = await freshServer(env, kind, scope, 'static');
    const meter = cpuMeter(env, s.pid);
    herd = await curlHerd(`${s.base}/v2/${repo}/blobs/${blob.digest}`, C.herdClients);
    cpu = meter();
    if (s.pid) mem = procStatus(s.pid);
  } finally {
    await scope.close();
  }
  const upstreamGets = (await frontGets(env.front, blob.digest)) - before;
  let ok = 0;
  herd.pulls.forEach((p, i) => (checkPull(`${kind} herd client ${i}`, p, blob) ? ok++ : 0));
  log(`  ${kind} herd ${round(herd.wall, 3)} s, ${upstreamGets} upstream GETs, ${cpuLine(cpu)}`);
  return { wall: round(herd.wall, 3), upstreamGets, ...(mem ? { mem } : {}), ok, cpu };
}

function checkPull(what: string, p: Pull, blob: BlobFile): boolean {
  const ok = p.exit === 0 && p.status === 200 && p.bytes === blob.size && (p.digest === undefined || p.digest === blob.digest);
  if (!ok) fail(`${what}: exit ${p.exit}, status ${p.status}, ${p.bytes}/${blob.size} bytes${p.digest ? `, ${p.digest}` : ''}`);
  return ok;
}

const mbps = (p: { bytes: number; total: number }) => round(p.bytes / 1e6 / p.total, 1);

async function buildEnv(scope: Scope): Promise<Env> {
  const work = mkdtempSync(join(tmpdir(), 'wharf-bench-mirror-'));
  scope.teardown(() => rmSync(work, { recursive: true, force: true }));
  log('origin docker-registry and its nginx front');
  const originRegistry = await startDockerRegistry(scope);
  const origin = { url: originRegistry.url, pid: findPid(['docker-registry', 'serve', originRegistry.configFile]) };
  const front = await startFront(scope, origin.url);

  log(`writing test blobs (${C.blob / MiB} MiB, push ${C.push / MiB} MiB${C.huge ? `, huge ${C.huge / MiB} MiB` : ''})`);
  const bigBlob = writeRandomFile(join(work, 'big.blob'), C.blob, 'mirror-big');
  // No push part: a token file stands in (nothing reads it).
  const push = writeRandomFile(join(work, 'push.blob'), C.push || 1, 'mirror-push', C.chunk);
  const images: Image[] = [];
  for (let i = 0; i < C.tags; i++) {
    images.push(buildImage('bench/small', `t${String(i).padStart(2, '0')}`, [{ bytes: randomBytes(1024 + i * 37) }, { bytes: randomBytes(4096 + i * 101) }]));
  }
  const bigImage = buildImage('bench/big', 'v1', [bigBlob]);
  log('pushing to the origin');
  for (const img of [...images, bigImage]) await pushImage(origin.url, img, work);

  let huge: Env['huge'];
  if (C.huge) {
    const free = (() => {
      const s = statfsSync(work);
      return s.bavail * s.bsize;
    })();
    // The source file, the origin's copy, one proxy's copy, and room to spare.
    const need = 3 * C.huge + 2 * 1024 * MiB;
    if (free < need) {
      log(`skipping the ${C.huge / MiB} MiB layer: ${Math.floor(free / MiB)} MiB free in ${tmpdir()}, ${need / MiB} MiB needed`);
    } else {
      const hugeBlob = writeRandomFile(join(work, 'huge.blob'), C.huge, 'mirror-huge');
      log(`pushing the ${C.huge / MiB} MiB layer to the origin`);
      await pushImage(origin.url, buildImage('bench/huge', 'v1', [hugeBlob]), work);
      rmSync(hugeBlob.file);
      huge = { repo: 'bench/huge', blob: hugeBlob };
    }
  }

  const root = join(work, 'static');
  const manifests = [...images, bigImage].map((img) => ({ paths: layOut(root, img), digest: img.digest }));
  const statics = await startStatic(scope, root, manifests, OCI_MANIFEST, 2);
  return { work, origin, front, statics, big: { repo: 'bench/big', blob: bigBlob }, ...(huge ? { huge } : {}), push, images };
}

/** GET of every path (status, Docker-Content-Digest and body digest checked): fills a cache, proves the bytes. */
async function getAll(kind: Kind, base: string, images: Image[]): Promise<void> {
  const { createHash } = await import('node:crypto');
  for (const img of images) {
    for (const ref of [img.tag, img.digest]) {
      const res = await fetch(`${base}/v2/${img.repo}/manifests/${ref}`, {
        headers: { accept: 'application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json' },
        signal: AbortSignal.timeout(30_000),
      });
      const body = Buffer.from(await res.arrayBuffer());
      const got = `sha256:${createHash('sha256').update(body).digest('hex')}`;
      if (res.status !== 200 || got !== img.digest || res.headers.get('docker-content-digest') !== img.digest) {
        fail(`${kind} manifest ${img.repo}:${ref}: ${res.status}, body ${got}, header ${res.headers.get('docker-content-digest')}`);
      }
    }
  }
}

interface Figures {
  sha: { openssl: number; node: number };
  idleStart: Partial<Record<Kind, ProcStatus>>;
  idleAfterLoad: Partial<Record<Kind, ProcStatus>>;
  restAfterLoad: Partial<Record<Kind, ProcStatus>>;
  cold: Record<Kind, PullRound[]>;
  coldVerify: Partial<Record<Kind, PullRound>>;
  herd: Record<Kind, HerdRound[]>;
  warm: Record<Kind, Pull[]>;
  manifests: Record<'getTag' | 'getDigest' | 'headTag' | 'headDigest', Partial<Record<Kind, Load>>>;
  huge: Partial<Record<Kind, PullRound>>;
  push: Record<'wharf' | 'registry', { mono: Push[]; chunked: Push[] }>;
}

const byKind = <T>(): Record<Kind, T[]> => ({ wharf: [], reference: [], nginx: [] });

async function main(): Promise<number> {
  log(`config ${JSON.stringify({ ...C, blob: C.blob / MiB, huge: C.huge / MiB, push: C.push / MiB, chunk: C.chunk / MiB, quick: QUICK })}`);
  const f: Figures = {
    sha: { openssl: 0, node: 0 },
    idleStart: {},
    idleAfterLoad: {},
    restAfterLoad: {},
    cold: byKind(),
    coldVerify: {},
    herd: byKind(),
    warm: byKind(),
    manifests: { getTag: {}, getDigest: {}, headTag: {}, headDigest: {} },
    huge: {},
    push: { wharf: { mono: [], chunked: [] }, registry: { mono: [], chunked: [] } },
  };
  log('SHA-256 on one core (openssl speed, node:crypto)');
  f.sha.openssl = await opensslSha256(C.shaSeconds);
  f.sha.node = nodeSha256(C.shaSeconds);
  log(`SHA-256: openssl ${f.sha.openssl} MB/s, node ${f.sha.node} MB/s`);

  const env = await buildEnv(main$);

  // Cold: one hashed (untimed) pull per server, then the timed rounds, alternating.
  log(`cold: ${C.blob / MiB} MiB, ${C.coldRounds} rounds (fresh process each)`);
  if (PARTS.has('cold')) {
    for (const k of KINDS) f.coldVerify[k] = await coldRound(env, k, env.big, true);
    for (let i = 0; i < C.coldRounds; i++) for (const k of KINDS) f.cold[k].push(await coldRound(env, k, env.big, false));
    log(`cold MB/s: ${KINDS.map((k) => `${k} ${f.cold[k].map((r) => mbps(r.pull)).join('/')}`).join(', ')}`);
  }

  if (PARTS.has('herd')) {
    log(`herd: ${C.herdClients} clients, ${C.herdRounds} rounds`);
    for (let i = 0; i < C.herdRounds; i++) for (const k of KINDS) f.herd[k].push(await herdRound(env, k));
    log(`herd s: ${KINDS.map((k) => `${k} ${f.herd[k].map((r) => r.wall).join('/')}`).join(', ')}`);
  }

  // Long-lived servers for warm pulls and manifests.
  const warm$ = new Scope();
  if (PARTS.has('warm')) {
    try {
      const wharf = await startWharf(warm$, { upstream: env.front.url });
      const ref = await startDockerRegistry(warm$, { proxy: { remoteurl: env.front.url } });
      const refPid = findPid(['docker-registry', 'serve', ref.configFile]);
      const servers: Record<Kind, Server> = { wharf: { base: wharf.url, pid: wharf.pid }, reference: { base: ref.url, pid: refPid }, nginx: { base: env.statics.url } };
      await sleep(SETTLE_MS);
      f.idleStart = { wharf: procStatus(wharf.pid), reference: procStatus(refPid) };
      log(`idle RSS after start-up: wharf ${f.idleStart.wharf?.rss} MiB, reference ${f.idleStart.reference?.rss} MiB`);

      const blobPath = `/v2/${env.big.repo}/blobs/${env.big.blob.digest}`;
      log('warm: filling the caches');
      for (const k of KINDS) checkPull(`${k} warm fill`, await curlGet(servers[k].base + blobPath), env.big.blob);
      const refBlob = join(ref.dataDir, 'docker/registry/v2/blobs/sha256', env.big.blob.digest.slice(7, 9), env.big.blob.digest.slice(7), 'data');
      // The reference stores a proxied blob from a second upstream fetch, in the background.
      if (!(await poll(() => (statSync(refBlob, { throwIfNoEntry: false })?.size === env.big.blob.size ? true : undefined), 120_000, 100))) {
        log('reference: blob not stored after 120 s');
      }
      for (const k of KINDS) checkPull(`${k} warm (hashed)`, await curlGet(servers[k].base + blobPath, { hash: true }), env.big.blob);
      log(`warm: ${C.warmRounds} rounds`);
      for (let i = 0; i < C.warmRounds; i++) {
        for (const k of KINDS) {
          const p = await curlGet(servers[k].base + blobPath);
          checkPull(`${k} warm`, p, env.big.blob);
          f.warm[k].push(p);
        }
      }

      log('manifests: one GET of every path');
      for (const k of KINDS) await getAll(k, servers[k].base, env.images);
      const paths = {
        Tag: env.images.map((i) => `/v2/${i.repo}/manifests/${i.tag}`),
        Digest: env.images.map((i) => `/v2/${i.repo}/manifests/${i.digest}`),
      };
      for (const by of ['Tag', 'Digest'] as const) {
        for (const k of KINDS) {
          log(`manifest GET by ${by.toLowerCase()}: ${k}, wrk ${C.loadSeconds} s`);
          try {
            f.manifests[`get${by}`][k] = await wrkLoad(servers[k].base, paths[by], { threads: 2, connections: C.connections, seconds: C.loadSeconds, workDir: env.work });
          } catch (err) {
            fail(`${k} wrk GET by ${by}: ${(err as Error).message}`);
          }
        }
      }
      for (const by of ['Tag', 'Digest'] as const) {
        for (const k of KINDS) {
          const getRps = f.manifests[`get${by}`][k]?.rps ?? 1000;
          const perPath = Math.round((getRps * C.loadSeconds) / paths[by].length);
          log(`manifest HEAD by ${by.toLowerCase()}: ${k}, ab -n ${perPath} x ${paths[by].length}`);
          try {
            f.manifests[`head${by}`][k] = await abHeadLoad(servers[k].base, paths[by], {
              connections: C.connections,
              perPath,
              maxSecondsPerPath: Math.max(1, Math.ceil((2 * C.loadSeconds) / paths[by].length)),
              workDir: env.work,
            });
          } catch (err) {
            fail(`${k} ab HEAD by ${by}: ${(err as Error).message}`);
          }
        }
      }
      await sleep(SETTLE_MS);
      f.idleAfterLoad = { wharf: procStatus(wharf.pid), reference: procStatus(refPid) };
      log(`RSS after the manifest load: wharf ${f.idleAfterLoad.wharf?.rss} MiB, reference ${f.idleAfterLoad.reference?.rss} MiB`);
      // At rest: nothing has run for a while, so V8 has had the time to shrink what the load grew (its
      // young generation shrinks some 20-40 s after the last allocations).
      if (C.restSeconds > 0) {
        await sleep(C.restSeconds * 1000);
        f.restAfterLoad = { wharf: procStatus(wharf.pid), reference: procStatus(refPid) };
        log(`RSS at rest, ${C.restSeconds} s after the load: wharf ${f.restAfterLoad.wharf?.rss} MiB, reference ${f.restAfterLoad.reference?.rss} MiB`);
      }
    } finally {
      await warm$.close();
    }
  }

  if (env.huge) {
    for (const k of ['wharf', 'reference'] as const) {
      log(`cold ${C.huge / MiB} MiB layer: ${k}`);
      f.huge[k] = await coldRound(env, k, env.huge, false);
      log(`  ${mbps(f.huge[k].pull)} MB/s, VmHWM ${f.huge[k].mem?.hwm} MiB`);
    }
  }

  if (C.push) log(`push: ${C.push / MiB} MiB, monolithic and in ${C.chunk / MiB} MiB chunks, ${C.pushRounds} rounds`);
  for (let i = 0; C.push && i < C.pushRounds; i++) {
    for (const mode of ['mono', 'chunked'] as const) {
      for (const k of ['wharf', 'registry'] as const) {
        const scope = new Scope();
        try {
          const base = k === 'wharf' ? (await startWharf(scope, {})).url : (await startDockerRegistry(scope)).url;
          const repo = `push/r${i}`;
          const p = mode === 'mono' ? await pushMonolithic(base, repo, env.push.file, env.push.size, env.push.digest) : await pushChunked(base, repo, env.push.chunks, env.push.digest);
          if (!p.ok) fail(`${k} push ${mode}: ${p.detail}`);
          else {
            const head = await fetch(`${base}/v2/${repo}/blobs/${env.push.digest}`, { method: 'HEAD', signal: AbortSignal.timeout(30_000) });
            if (head.status !== 200 || head.headers.get('content-length') !== String(env.push.size)) fail(`${k} push ${mode}: HEAD after push ${head.status}`);
          }
          f.push[k][mode].push(p);
        } finally {
          await scope.close();
        }
      }
    }
  }
  log(`push MB/s: ${(['wharf', 'registry'] as const).map((k) => `${k} mono ${f.push[k].mono.map(pushRate).join('/')} chunked ${f.push[k].chunked.map(pushRate).join('/')}`).join(', ')}`);

  report(f, env);
  return failures.length ? 1 : 0;
}

const pushRate = (p: Push) => (p.seconds > 0 ? round(p.bytes / 1e6 / p.seconds, 1) : 0);

function report(f: Figures, env: Env): void {
  const sha = f.sha.node;
  const cold = (k: Kind) => stats(f.cold[k].map((r) => mbps(r.pull)));
  const ttfb = (k: Kind) => stats(f.cold[k].map((r) => round(r.pull.firstByte * 1000, 1)));
  const warm = (k: Kind) => stats(f.warm[k].map(mbps));
  const herd = (k: Kind) => stats(f.herd[k].map((r) => r.wall));
  const herdGets = (k: Kind) => stats(f.herd[k].map((r) => r.upstreamGets));
  const mem = (rounds: Array<{ mem?: ProcStatus }>, key: keyof ProcStatus) => stats(rounds.flatMap((r) => (r.mem ? [r.mem[key]] : [])));
  const load = (m: keyof Figures['manifests'], k: Kind, key: 'rps' | 'p99ms') => stats(f.manifests[m][k] ? [f.manifests[m][k][key]] : []);
  const one = (x: number | undefined) => stats(x === undefined ? [] : [x]);
  const coldW = cold('wharf');
  const coldR = cold('reference');
  const rows: Row[] = [
    { figure: `cold ${C.blob / MiB} MiB blob, client MB/s`, w: coldW, r: coldR, n: cold('nginx'), vs: sha, target: `>= 0.8x SHA (${round(0.8 * sha, 0)})`, met: coldW.median >= 0.8 * sha },
    {
      figure: '  cold vs reference',
      w: coldW,
      r: coldR,
      vs: coldR.median,
      target: '>= reference',
      met: coldR.median < sha ? coldW.median >= coldR.median : undefined,
      note: coldR.median >= sha ? 'n/a: the reference is faster than SHA' : '',
    },
    { figure: '  cold first byte ms', w: ttfb('wharf'), r: ttfb('reference'), n: ttfb('nginx'), target: '<= 25 ms', met: ttfb('wharf').median <= 25 },
    { figure: '  cold upstream GETs per round', w: stats(f.cold.wharf.map((r) => r.upstreamGets)), r: stats(f.cold.reference.map((r) => r.upstreamGets)), n: stats(f.cold.nginx.map((r) => r.upstreamGets)) },
    { figure: `warm ${C.blob / MiB} MiB blob MB/s`, w: warm('wharf'), r: warm('reference'), n: warm('nginx'), vs: warm('nginx').median, target: '>= 0.9x nginx', met: warm('wharf').median >= 0.9 * warm('nginx').median },
  ];
  for (const [m, label] of [
    ['getTag', 'manifest GET by tag'],
    ['getDigest', 'manifest GET by digest'],
    ['headTag', 'manifest HEAD by tag'],
    ['headDigest', 'manifest HEAD by digest'],
  ] as const) {
    const w = load(m, 'wharf', 'rps');
    const n = load(m, 'nginx', 'rps');
    rows.push({ figure: `${label} req/s`, w, r: load(m, 'reference', 'rps'), n, vs: n.median, target: '>= 0.3x nginx', met: w.count ? w.median >= 0.3 * n.median : false });
    const p99 = load(m, 'wharf', 'p99ms');
    rows.push({ figure: '  p99 ms', w: p99, r: load(m, 'reference', 'p99ms'), n: load(m, 'nginx', 'p99ms'), target: '< 5 ms', met: p99.count ? p99.median < 5 : false });
  }
  const hw = herd('wharf');
  const hn = herd('nginx');
  rows.push(
    { figure: `herd ${C.herdClients} x cold ${C.blob / MiB} MiB, wall s`, w: hw, r: herd('reference'), n: hn, vs: hn.median, target: '<= 1.5x nginx', met: hw.median <= 1.5 * hn.median },
    { figure: '  herd upstream GETs per round', w: herdGets('wharf'), r: herdGets('reference'), n: herdGets('nginx'), target: '1 every round', met: f.herd.wharf.every((r) => r.upstreamGets === 1) },
    { figure: 'idle RSS MiB after start-up', w: one(f.idleStart.wharf?.rss), r: one(f.idleStart.reference?.rss), target: '< 64', met: (f.idleStart.wharf?.rss ?? Infinity) < 64 },
    { figure: '  RssAnon / RssFile', text: [anonFile(f.idleStart.wharf), anonFile(f.idleStart.reference), ''] },
    { figure: 'RSS MiB after manifest load', w: one(f.idleAfterLoad.wharf?.rss), r: one(f.idleAfterLoad.reference?.rss), target: '< 64', met: (f.idleAfterLoad.wharf?.rss ?? Infinity) < 64 },
    { figure: '  RssAnon / RssFile', text: [anonFile(f.idleAfterLoad.wharf), anonFile(f.idleAfterLoad.reference), ''] },
    { figure: `RSS MiB at rest, ${C.restSeconds} s after the load`, w: one(f.restAfterLoad.wharf?.rss), r: one(f.restAfterLoad.reference?.rss), target: '< 64', met: (f.restAfterLoad.wharf?.rss ?? Infinity) < 64 },
    { figure: '  RssAnon / RssFile', text: [anonFile(f.restAfterLoad.wharf), anonFile(f.restAfterLoad.reference), ''] },
    { figure: 'peak RSS MiB, cold (VmHWM)', w: mem(f.cold.wharf, 'hwm'), r: mem(f.cold.reference, 'hwm'), target: 'max < 128', met: mem(f.cold.wharf, 'hwm').max < 128 },
    { figure: '  RssAnon / RssFile at end (median)', text: [anonFileMedian(f.cold.wharf), anonFileMedian(f.cold.reference), ''] },
    { figure: 'peak RSS MiB, herd (VmHWM)', w: mem(f.herd.wharf, 'hwm'), r: mem(f.herd.reference, 'hwm'), target: 'max < 128', met: mem(f.herd.wharf, 'hwm').max < 128 },
    { figure: '  RssAnon / RssFile at end (median)', text: [anonFileMedian(f.herd.wharf), anonFileMedian(f.herd.reference), ''] },
  );
  if (env.huge) {
    const h = (k: Kind) => f.huge[k];
    const rate = (k: Kind) => one(f.huge[k] ? mbps(f.huge[k].pull) : undefined);
    rows.push(
      { figure: `cold ${C.huge / MiB} MiB layer MB/s`, w: rate('wharf'), r: rate('reference'), vs: sha, target: '(one round; ratio to SHA)' },
      { figure: '  peak RSS MiB (VmHWM)', w: one(h('wharf')?.mem?.hwm), r: one(h('reference')?.mem?.hwm), target: '< 128', met: (h('wharf')?.mem?.hwm ?? Infinity) < 128 },
      { figure: '  RssAnon / RssFile at end', text: [anonFile(h('wharf')?.mem), anonFile(h('reference')?.mem), ''] },
    );
  } else {
    rows.push({ figure: 'cold 4 GiB layer', text: ['skipped', 'skipped', ''] });
  }
  for (const mode of ['mono', 'chunked'] as const) {
    const w = stats(f.push.wharf[mode].map(pushRate));
    rows.push({
      figure: `push ${C.push / MiB} MiB ${mode === 'mono' ? 'monolithic' : `chunked (${C.chunk / MiB} MiB)`} MB/s`,
      w,
      r: stats(f.push.registry[mode].map(pushRate)),
      vs: sha,
      target: `>= 0.8x SHA (${round(0.8 * sha, 0)})`,
      met: w.count ? w.median >= 0.8 * sha : false,
    });
  }
  console.log(`SHA-256, one core: node:crypto ${f.sha.node} MB/s (1 MiB updates; the targets use it), openssl ${f.sha.openssl} MB/s (16 KiB blocks)`);
  console.log('medians (min-max); the nginx column is the static server, "upstream direct" through the front for cold; reference = plain docker-registry for pushes');
  console.log(formatTable(rows));
  if (failures.length) console.log(`FAILED (${failures.length}): ${failures.slice(0, 10).join('; ')}`);
  console.log(JSON.stringify({ bench: 'mirror', config: { ...C, quick: QUICK }, verified: failures.length === 0, failures, figures: f }));
}

function anonFileMedian(rounds: Array<{ mem?: ProcStatus }>): string {
  const m = (key: 'anon' | 'file') => round(stats(rounds.flatMap((r) => (r.mem ? [r.mem[key]] : []))).median, 1);
  return `${m('anon')} / ${m('file')}`;
}

function anonFile(s: ProcStatus | undefined): string {
  return s ? `${s.anon} / ${s.file}` : '';
}

let exiting = false;
async function shutdown(code: number, why: string): Promise<never> {
  if (!exiting) {
    exiting = true;
    console.error(`mirror: ${why}, tearing down`);
    setTimeout(() => process.exit(code), 30_000).unref();
    await main$.close();
  }
  process.exit(code);
}
const watchdog = setTimeout(() => void shutdown(2, `still running after ${C.watchdogS} s`), C.watchdogS * 1000);
watchdog.unref();
process.once('SIGINT', () => void shutdown(130, 'SIGINT'));
process.once('SIGTERM', () => void shutdown(143, 'SIGTERM'));

let code = 1;
try {
  code = await main();
} catch (err) {
  console.error(err);
} finally {
  await main$.close();
  clearTimeout(watchdog);
}
log(`done in ${((performance.now() - t0) / 1000).toFixed(0)} s`);
process.exitCode = code;
