// Pull-through benchmark: Wharf (dist/main.js) against the reference registry (distribution 2.8,
// /usr/bin/docker-registry) in proxy mode, both in front of the same origin docker-registry, each with
// its own empty data directory. One run, loopback only.
//
//   cold   first GET of a 256 MiB layer through the proxy, read fully, sha256 verified (MiB/s)
//   warm   the same GET again, median of 3 (the reference is first given time to store the blob)
//   herd   16 concurrent GETs of a second cold 64 MiB layer; GETs of that digest at the origin
//   manif. warm manifest by tag, 16 keep-alive connections (http.Agent), 5 s of GET then 5 s of HEAD
//   rss    the proxy process's VmHWM right after the cold 256 MiB pull (nothing ran before it)
//
// Usage: npm run bench:proxy   (builds first; or: node --import tsx bench/pull-through.ts)
// Environment: BENCH_BIG_MIB (256), BENCH_HERD_MIB (64), BENCH_SECONDS (5), WHARF_LOG_LEVEL (warn).
// Prints a table, then one JSON line with every figure. Exit status 1 when a download fails to
// verify; targets are reported, not enforced.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { Agent } from 'undici';
import { stringify as toYaml } from 'yaml';
import { pushTestImage, startDockerRegistry, type DockerRegistry } from '../test/helpers/docker-registry.js';
import { MiB, cpuSecondsOf, download, findPid, load, mbps, median, memOf, mib, sampleRss, type LoadResult } from './lib/measure.js';
import { MANIFEST_ACCEPT } from './lib/clients.js';

const BIG = Number(process.env.BENCH_BIG_MIB ?? 256) * MiB;
const HERD = Number(process.env.BENCH_HERD_MIB ?? 64) * MiB;
const LOAD_MS = Number(process.env.BENCH_SECONDS ?? 5) * 1000;
const HERD_CLIENTS = 16;
const CONNECTIONS = 16;
const WARM_RUNS = 3;
const WATCHDOG_MS = 300_000;
const ACCEPT = MANIFEST_ACCEPT;
const root = fileURLToPath(new URL('..', import.meta.url));

const teardowns: Array<() => unknown> = [];
const t = { teardown: (fn: () => unknown) => void teardowns.push(fn) };
async function teardown(): Promise<void> {
  for (const fn of teardowns.splice(0).reverse()) {
    try {
      await fn();
    } catch (err) {
      console.error(`teardown: ${(err as Error).message}`);
    }
  }
}

const log = (msg: string) => console.error(`[bench ${(performance.now() / 1000).toFixed(1)}s] ${msg}`);

interface Proxy {
  name: 'wharf' | 'reference';
  url: string;
  pid: number;
  /** Resolves once the proxy holds `digest` in its own storage (bounded). */
  stored(digest: string, size: number): Promise<boolean>;
}

async function startWharfProcess(upstream: string): Promise<Proxy> {
  const dir = mkdtempSync(join(tmpdir(), 'wharf-bench-proxy-'));
  const data = join(dir, 'data');
  const configFile = join(dir, 'wharf.yaml');
  writeFileSync(configFile, toYaml({ upstreams: [{ name: 'hub', url: upstream, registry: 'docker.io', default: true }] }));
  const child: ChildProcess = spawn(
    process.execPath,
    [...(process.env.BENCH_WHARF_NODE_ARGS ?? '').split(' ').filter(Boolean), join(root, 'dist/main.js'), 'serve', '--config', configFile, '--listen', '127.0.0.1:0', '--data', data],
    { stdio: ['ignore', 'pipe', 'inherit'], env: { ...process.env, WHARF_LOG_LEVEL: process.env.WHARF_LOG_LEVEL ?? 'warn' } },
  );
  const exit = () => child.kill('SIGKILL');
  process.once('exit', exit);
  t.teardown(async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      const exited = await Promise.race([new Promise((r) => child.once('exit', () => r(true))), sleep(10_000).then(() => false)]);
      if (!exited) child.kill('SIGKILL');
    }
    process.off('exit', exit);
    rmSync(dir, { recursive: true, force: true });
  });
  const url = await new Promise<string>((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => reject(new Error('wharf did not start within 20 s')), 20_000);
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /listening on (http:\/\/[^\s"]+)/.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]!);
      }
      if (out.length > 1_000_000) out = out.slice(-10_000);
    });
    child.once('exit', (code) => reject(new Error(`wharf exited with ${code}`)));
  });
  return {
    name: 'wharf',
    url,
    pid: child.pid!,
    // The fill commits before the last byte goes out: stored once the client has everything.
    stored: async (digest, size) => {
      const hex = digest.slice('sha256:'.length);
      return poll(() => statSync(join(data, 'blobs', 'sha256', hex.slice(0, 2), hex), { throwIfNoEntry: false })?.size === size);
    },
  };
}

async function startReference(upstream: string): Promise<Proxy> {
  const reg = await startDockerRegistry(t, { proxy: { remoteurl: upstream } });
  return {
    name: 'reference',
    url: reg.url,
    pid: findPid(['docker-registry', 'serve', reg.configFile]),
    // 2.8 stores a proxied blob from a second upstream fetch in the background (storeLocal).
    stored: async (digest, size) => {
      const hex = digest.slice('sha256:'.length);
      const file = join(reg.dataDir, 'docker/registry/v2/blobs/sha256', hex.slice(0, 2), hex, 'data');
      return poll(() => statSync(file, { throwIfNoEntry: false })?.size === size);
    },
  };
}

/** Polls `check` every 100 ms for at most 60 s. */
async function poll(check: () => boolean, ms = 60_000): Promise<boolean> {
  const deadline = Date.now() + ms;
  for (let i = 0; i < 1000 && Date.now() < deadline; i++) {
    if (check()) return true;
    await sleep(100);
  }
  return check();
}

interface Figures {
  coldMBps: number;
  /** CPU seconds the proxy process used for the cold pull, and per warm pull (median). */
  coldCpuS: number;
  /** CPU seconds used while the cold pull was being read: proxy, origin, and this client (which hashes). */
  coldTransferCpu: { proxy: number; origin: number; client: number };
  warmCpuS: number;
  coldVerified: boolean;
  coldOriginGets: number;
  warmMBps: number;
  warmRunsMBps: number[];
  warmVerified: boolean;
  herdOriginGets: number;
  herdVerified: number;
  herdSeconds: number;
  manifestGet: LoadResult;
  manifestHead: LoadResult;
  peakRssMiB: number;
  sampledMaxRssMiB: number;
  idleRssMiB: number;
}

async function measure(
  p: Proxy,
  origin: DockerRegistry,
  big: { repo: string; digest: string; size: number },
  herd: { repo: string; digest: string; size: number },
  small: { repo: string; tag: string },
): Promise<Figures> {
  const agent = new Agent({ connections: HERD_CLIENTS, keepAliveTimeout: 10_000 });
  try {
    const originGets = (digest: string) => origin.countRequests({ method: 'GET', pathIncludes: `/blobs/${digest}` });
    const bigUrl = `${p.url}/v2/${big.repo}/blobs/${big.digest}`;

    // Cold: nothing has run through this proxy yet, so VmHWM afterwards is the cold pull's peak.
    const idle = memOf(p.pid).rss;
    const before = await originGets(big.digest);
    log(`${p.name}: cold GET of ${mib(big.size)} MiB`);
    const sampler = sampleRss(p.pid);
    const cpu0 = cpuSecondsOf(p.pid);
    const originPid = findPid(['docker-registry', 'serve', origin.configFile]);
    const originCpu0 = cpuSecondsOf(originPid);
    const clientCpu0 = process.cpuUsage();
    const cold = await download(bigUrl, big.digest, agent);
    const clientCpu = process.cpuUsage(clientCpu0);
    log(`${p.name}: cold ${mbps(cold.bytes, cold.seconds)} MiB/s, verified ${cold.verified}`);
    const coldTransferCpu = {
      proxy: round2(cpuSecondsOf(p.pid) - cpu0),
      origin: round2(cpuSecondsOf(originPid) - originCpu0),
      client: round2((clientCpu.user + clientCpu.system) / 1e6),
    };
    const sampledMax = sampler.stop();
    const peak = memOf(p.pid).hwm;
    if (!(await p.stored(big.digest, big.size))) log(`${p.name}: blob not stored after 60 s`);
    const coldCpuS = cpuSecondsOf(p.pid) - cpu0; // the reference's background store included
    const coldOriginGets = (await originGets(big.digest)) - before;

    log(`${p.name}: warm GETs x${WARM_RUNS}`);
    const warm = [];
    const warmCpu: number[] = [];
    for (let i = 0; i < WARM_RUNS; i++) {
      const c0 = cpuSecondsOf(p.pid);
      warm.push(await download(bigUrl, big.digest, agent));
      warmCpu.push(cpuSecondsOf(p.pid) - c0);
    }

    log(`${p.name}: herd of ${HERD_CLIENTS} on a cold ${mib(herd.size)} MiB blob`);
    const herdBefore = await originGets(herd.digest);
    const h0 = performance.now();
    const herdUrl = `${p.url}/v2/${herd.repo}/blobs/${herd.digest}`;
    const herdResults = await Promise.allSettled(Array.from({ length: HERD_CLIENTS }, () => download(herdUrl, herd.digest, agent)));
    const herdSeconds = (performance.now() - h0) / 1000;
    if (!(await p.stored(herd.digest, herd.size))) log(`${p.name}: herd blob not stored after 60 s`);
    const herdOriginGets = (await originGets(herd.digest)) - herdBefore;
    for (const r of herdResults) if (r.status === 'rejected') log(`${p.name}: herd client failed: ${(r.reason as Error).message}`);

    // Warm the tag (first GET fills the cache), then measure.
    const path = `/v2/${small.repo}/manifests/${small.tag}`;
    const first = await fetch(`${p.url}${path}`, { headers: { accept: ACCEPT }, signal: AbortSignal.timeout(30_000) });
    await first.arrayBuffer();
    if (first.status !== 200) throw new Error(`${p.name}: manifest GET ${path}: ${first.status}`);
    const loadOpts = { path, headers: { accept: ACCEPT }, connections: CONNECTIONS, durationMs: LOAD_MS, maxRequests: 5_000_000 };
    log(`${p.name}: manifest GET load, ${LOAD_MS / 1000} s`);
    const manifestGet = await load(p.url, { ...loadOpts, method: 'GET' });
    log(`${p.name}: manifest HEAD load, ${LOAD_MS / 1000} s`);
    const manifestHead = await load(p.url, { ...loadOpts, method: 'HEAD' });

    return {
      coldMBps: mbps(cold.bytes, cold.seconds),
      coldCpuS: Math.round(coldCpuS * 100) / 100,
      coldTransferCpu,
      warmCpuS: Math.round(median(warmCpu) * 100) / 100,
      coldVerified: cold.verified,
      coldOriginGets,
      warmMBps: median(warm.map((w) => mbps(w.bytes, w.seconds))),
      warmRunsMBps: warm.map((w) => mbps(w.bytes, w.seconds)),
      warmVerified: warm.every((w) => w.verified),
      herdOriginGets,
      herdVerified: herdResults.filter((r) => r.status === 'fulfilled' && r.value.verified).length,
      herdSeconds: Math.round(herdSeconds * 100) / 100,
      manifestGet,
      manifestHead,
      peakRssMiB: mib(peak),
      sampledMaxRssMiB: mib(sampledMax),
      idleRssMiB: mib(idle),
    };
  } finally {
    await agent.close();
  }
}

async function main(): Promise<number> {
  log('starting origin and pushing images');
  const origin = await startDockerRegistry(t);
  const bigImg = await pushTestImage(origin, 'bench/big', 'v1', { seed: 'bench-big', layerSize: BIG, timeoutMs: 120_000 });
  const herdImg = await pushTestImage(origin, 'bench/herd', 'v1', { seed: 'bench-herd', layerSize: HERD, timeoutMs: 120_000 });
  await pushTestImage(origin, 'bench/small', 'v1', { seed: 'bench-small' });
  const layerOf = (img: typeof bigImg) => img.blobs.reduce((a, b) => (b.size > a.size ? b : a));
  const big = { repo: 'bench/big', ...layerOf(bigImg) };
  const herd = { repo: 'bench/herd', ...layerOf(herdImg) };
  const small = { repo: 'bench/small', tag: 'v1' };

  log('starting wharf and the reference proxy');
  const wharf = await startWharfProcess(origin.url);
  const reference = await startReference(origin.url);

  const w = await measure(wharf, origin, big, herd, small);
  const r = await measure(reference, origin, big, herd, small);

  const ratio = (a: number, b: number) => (b > 0 ? Math.round((a / b) * 100) / 100 : null);
  const targets = {
    coldThroughput: w.coldMBps >= r.coldMBps,
    warmThroughput: w.warmMBps >= r.warmMBps,
    manifestGet2x: w.manifestGet.rps >= 2 * r.manifestGet.rps,
    manifestHead2x: w.manifestHead.rps >= 2 * r.manifestHead.rps,
    herdSingleFetch: w.herdOriginGets === 1,
    peakRssUnder200MB: w.peakRssMiB * MiB < 200e6,
  };

  const rows: Array<[string, string | number, string | number, string]> = [
    ['cold blob MiB/s (256 MiB)', w.coldMBps, r.coldMBps, pass(targets.coldThroughput, '>= ref')],
    ['  origin GETs / proxy CPU s', `${w.coldOriginGets} / ${w.coldCpuS}`, `${r.coldOriginGets} / ${r.coldCpuS}`, ''],
    ['  CPU s in transfer: proxy/origin/client', cpuOf(w), cpuOf(r), ''],
    ['warm blob MiB/s (median of 3)', w.warmMBps, r.warmMBps, pass(targets.warmThroughput, '>= ref')],
    ['  warm runs', w.warmRunsMBps.join(' / '), r.warmRunsMBps.join(' / '), ''],
    ['  proxy CPU s per warm pull', w.warmCpuS, r.warmCpuS, ''],
    [`herd origin GETs (${HERD_CLIENTS} clients)`, w.herdOriginGets, r.herdOriginGets, pass(targets.herdSingleFetch, '= 1')],
    ['  herd verified / wall s', `${w.herdVerified}/${HERD_CLIENTS} in ${w.herdSeconds}`, `${r.herdVerified}/${HERD_CLIENTS} in ${r.herdSeconds}`, ''],
    ['manifest GET req/s', w.manifestGet.rps, r.manifestGet.rps, pass(targets.manifestGet2x, `>= 2x ref (${ratio(w.manifestGet.rps, r.manifestGet.rps)}x)`)],
    ['  GET p50 / p99 ms', `${w.manifestGet.p50ms} / ${w.manifestGet.p99ms}`, `${r.manifestGet.p50ms} / ${r.manifestGet.p99ms}`, ''],
    ['manifest HEAD req/s', w.manifestHead.rps, r.manifestHead.rps, pass(targets.manifestHead2x, `>= 2x ref (${ratio(w.manifestHead.rps, r.manifestHead.rps)}x)`)],
    ['  HEAD p50 / p99 ms', `${w.manifestHead.p50ms} / ${w.manifestHead.p99ms}`, `${r.manifestHead.p50ms} / ${r.manifestHead.p99ms}`, ''],
    ['  errors / connections GET, HEAD', conns(w), conns(r), ''],
    ['peak RSS MiB (VmHWM, cold pull)', w.peakRssMiB, r.peakRssMiB, pass(targets.peakRssUnder200MB, 'wharf < 200 MB')],
    ['  idle / sampled max RSS MiB', `${w.idleRssMiB} / ${w.sampledMaxRssMiB}`, `${r.idleRssMiB} / ${r.sampledMaxRssMiB}`, ''],
  ];
  const widths = [0, 1, 2, 3].map((i) => Math.max(...[['', 'wharf', 'reference', 'target'], ...rows].map((row) => String(row[i]).length)));
  const line = (row: ReadonlyArray<string | number>) => row.map((c, i) => String(c).padEnd(widths[i]!)).join('  ');
  console.log(line(['', 'wharf', 'reference', 'target']));
  console.log(widths.map((n) => '-'.repeat(n)).join('  '));
  for (const row of rows) console.log(line(row));

  const verified = w.coldVerified && w.warmVerified && w.herdVerified === HERD_CLIENTS && r.coldVerified && r.warmVerified && r.herdVerified === HERD_CLIENTS;
  console.log(
    JSON.stringify({
      bench: 'pull-through',
      bigMiB: mib(big.size),
      herdMiB: mib(herd.size),
      herdClients: HERD_CLIENTS,
      connections: CONNECTIONS,
      loadSeconds: LOAD_MS / 1000,
      verified,
      wharf: w,
      reference: r,
      targets,
    }),
  );
  return verified ? 0 : 1;
}

function conns(f: Figures): string {
  return `${f.manifestGet.errors}/${f.manifestGet.connections}, ${f.manifestHead.errors}/${f.manifestHead.connections}`;
}

function pass(ok: boolean, what: string): string {
  return `${ok ? 'MET ' : 'MISS'} ${what}`;
}

const watchdog = setTimeout(() => {
  console.error(`bench: still running after ${WATCHDOG_MS / 1000} s, giving up`);
  void teardown().finally(() => process.exit(2));
  setTimeout(() => process.exit(2), 15_000).unref();
}, WATCHDOG_MS);
watchdog.unref();

let code = 1;
try {
  code = await main();
} catch (err) {
  console.error(err);
} finally {
  await teardown();
  clearTimeout(watchdog);
}
process.exitCode = code;
function round2(x: number): number {
  return Math.round(x * 100) / 100;
}
function cpuOf(f: Figures): string {
  return `${f.coldTransferCpu.proxy} / ${f.coldTransferCpu.origin} / ${f.coldTransferCpu.client}`;
}
