// Cluster benchmark: three Wharf nodes sharing one PostgreSQL schema and one S3 bucket on Ceph's RADOS
// Gateway, under concurrent manifest and blob pulls, and the S3 driver's warm blob throughput next to
// the filesystem driver's.
//
// Set-up (every process started here, in its own temp dir, on its own port; all torn down at the end,
// on failure and on SIGINT/SIGTERM):
//   upstream   docker-registry holding the test images, behind a front nginx whose access log counts the
//              upstream GETs per blob (bench/lib/nginx.ts).
//   ceph       a throwaway single-node Ceph with radosgw (test/helpers/ceph.ts), one bucket.
//   postgres   a fresh schema on 127.0.0.1:5432 (test/helpers/postgres.ts), dropped at the end.
//   nodes      3 × `node --max-semi-space-size=2 dist/main.js serve`, each with its own scratch
//              storage.path and port, sharing the schema, the bucket and a cluster secret.
//   fs node    one more node on the filesystem driver (no cluster), for the warm comparison.
// Load (BENCH_CLUSTER_SECONDS, default 60; BENCH_QUICK=1: 10 s and smaller images), all at once:
//   manifests  one wrk per node (-t1 -c8) round-robin over the tags (bench/lib/manifests.lua);
//   blobs      first every distinct blob pulled cold from the three nodes at once (two blobs at a time:
//              one fill in the cluster, the other nodes' clients stream from the filling node), then
//              4 curl loops pulling random blobs from random nodes until the time is up. Every body is
//              hashed and checked against its digest.
// Then: upstream GETs per distinct blob from the front's log (must be 1 each), and the warm throughput
// of one 256 MiB blob (BENCH_WARM_MIB) from a cluster node (S3) and from the filesystem node: one
// hashed pull to fill, then curl -o /dev/null BENCH_WARM_ROUNDS (5) times; medians. Beside them, the
// same rounds of curl straight from radosgw (a presigned URL of the object): the S3 driver's ceiling.
//
// Usage: npm run bench:cluster (builds first), under `flock -x /tmp/wharf-bench.lock`. Needs nginx, wrk,
// curl, docker-registry, Ceph (ceph-mon ceph-osd radosgw ceph-common) and PostgreSQL on 127.0.0.1:5432.
// Output: a table, then one JSON line of every figure. Exit 1 on any error or a blob fetched upstream
// more than once.
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { CreateBucketCommand, GetObjectCommand } from '@aws-sdk/client-s3';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import { startCeph } from '../test/helpers/ceph.js';
import { startDockerRegistry } from '../test/helpers/docker-registry.js';
import { POSTGRES_URL, tempSchema } from '../test/helpers/postgres.js';
import { curlGet, round, wrkLoad, type Load, type Pull } from './lib/clients.js';
import { buildImage, pushImage, writeRandomFile, type BlobFile, type Image } from './lib/fixtures.js';
import { MiB } from './lib/measure.js';
import { startFront, type Nginx } from './lib/nginx.js';
import { Scope } from './lib/proc.js';
import { stats } from './lib/report.js';
import { startWharf, type WharfProcess } from './lib/wharf-process.js';

const QUICK = process.env.BENCH_QUICK === '1';
const num = (name: string, full: number, quick: number): number => {
  const v = process.env[name];
  return v !== undefined && v !== '' ? Number(v) : QUICK ? quick : full;
};
const C = {
  seconds: num('BENCH_CLUSTER_SECONDS', 60, 10),
  tags: num('BENCH_TAGS', 10, 4),
  /** Layer sizes: each image has a small and a medium layer; two images also a big one. */
  smallMiB: num('BENCH_SMALL_MIB', 1, 1),
  mediumMiB: num('BENCH_MEDIUM_MIB', 4, 2),
  bigMiB: num('BENCH_BIG_MIB', 64, 16),
  warmMiB: num('BENCH_WARM_MIB', 256, 64),
  warmRounds: num('BENCH_WARM_ROUNDS', 5, 2),
  blobLoops: num('BENCH_BLOB_LOOPS', 4, 4),
  connections: num('BENCH_CONNECTIONS', 8, 8),
};
const NODES = 3;
/** Bounds of every loop, whatever the clock says. */
const MAX_PULLS_PER_LOOP = 100_000;

const t0 = performance.now();
const log = (msg: string) => console.error(`[cluster ${((performance.now() - t0) / 1000).toFixed(1)}s] ${msg}`);
const failures: string[] = [];
const fail = (what: string) => {
  failures.push(what);
  log(`FAILED: ${what}`);
};

interface Blob {
  repo: string;
  digest: string;
  size: number;
}

/** GETs of each digest in the front's access log, once the log has stopped growing (bounded). */
async function upstreamGets(front: Nginx, digests: string[]): Promise<Map<string, number>> {
  let prev = -1;
  for (let i = 0; i < 30; i++) {
    const size = existsSync(front.accessLog) ? statSync(front.accessLog).size : 0;
    if (size === prev) break;
    prev = size;
    await sleep(i === 0 ? 50 : 200);
  }
  const lines = (existsSync(front.accessLog) ? readFileSync(front.accessLog, 'utf8') : '').split('\n').filter((l) => l.startsWith('GET '));
  return new Map(digests.map((d) => [d, lines.filter((l) => l.includes(`/blobs/${d} `)).length]));
}

function checkPull(what: string, p: Pull, blob: Blob): boolean {
  const ok = p.exit === 0 && p.status === 200 && p.bytes === blob.size && p.digest === blob.digest;
  if (!ok) fail(`${what}: exit ${p.exit}, status ${p.status}, ${p.bytes}/${blob.size} bytes, ${p.digest ?? 'no digest'}`);
  return ok;
}

interface BlobFigures {
  pulls: number;
  errors: number;
  bytes: number;
  seconds: number;
  perNode: number[];
  coldSeconds: number;
}

/**
 * The blob clients: the cold pass (each blob from every node at once, two blobs at a time), then
 * `loops` loops of random blobs from random nodes until `deadline` (performance.now() ms).
 */
async function blobLoad(nodes: WharfProcess[], blobs: Blob[], deadline: number, loops: number): Promise<BlobFigures> {
  const f: BlobFigures = { pulls: 0, errors: 0, bytes: 0, seconds: 0, perNode: nodes.map(() => 0), coldSeconds: 0 };
  const start = performance.now();
  const pull = async (blob: Blob, n: number, what: string) => {
    const maxSeconds = Math.max(5, Math.ceil((deadline - performance.now()) / 1000) + 60);
    const p = await curlGet(`${nodes[n]!.url}/v2/${blob.repo}/blobs/${blob.digest}`, { hash: true, maxSeconds });
    f.pulls++;
    f.perNode[n]!++;
    if (checkPull(`${what} ${blob.digest.slice(0, 19)} from node ${n + 1}`, p, blob)) f.bytes += p.bytes;
    else f.errors++;
  };
  let next = 0;
  const cold = async () => {
    for (let i = 0; i < blobs.length && next < blobs.length; i++) {
      const blob = blobs[next++]!;
      await Promise.all(nodes.map((_, n) => pull(blob, n, 'cold')));
    }
  };
  await Promise.all([cold(), cold()]);
  f.coldSeconds = round((performance.now() - start) / 1000, 2);
  log(`  cold pass: ${blobs.length} blobs × ${nodes.length} nodes in ${f.coldSeconds} s`);
  const random = async () => {
    for (let i = 0; i < MAX_PULLS_PER_LOOP && performance.now() < deadline; i++) {
      await pull(blobs[Math.floor(Math.random() * blobs.length)]!, Math.floor(Math.random() * nodes.length), 'warm');
    }
  };
  await Promise.all(Array.from({ length: loops }, random));
  f.seconds = round((performance.now() - start) / 1000, 2);
  return f;
}

/**
 * One hashed pull (fills the node), then `rounds` timed pulls to /dev/null: MB/s of each. `url` is
 * the blob's URL at a node, or a presigned URL of its object on radosgw (the S3 driver's ceiling).
 */
async function warmThroughput(what: string, url: string, repo: string, blob: BlobFile): Promise<number[]> {
  checkPull(`${what} first pull`, await curlGet(url, { hash: true }), { repo, ...blob });
  const out: number[] = [];
  for (let i = 0; i < C.warmRounds; i++) {
    const p = await curlGet(url, { maxSeconds: 300 });
    if (p.exit !== 0 || p.status !== 200 || p.bytes !== blob.size) fail(`${what} warm round ${i}: exit ${p.exit}, status ${p.status}, ${p.bytes}/${blob.size} bytes`);
    else out.push(round(p.bytes / 1e6 / p.total, 1));
  }
  log(`  ${what} warm MB/s: ${out.join(', ')}`);
  return out;
}

function table(head: string[], rows: string[][]): string {
  const widths = head.map((_, i) => Math.max(...[head, ...rows].map((r) => (r[i] ?? '').length)));
  const line = (r: string[]) => `| ${r.map((c, i) => c.padEnd(widths[i]!)).join(' | ')} |`;
  return [line(head), `|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`, ...rows.map(line)].join('\n');
}

async function main(scope: Scope): Promise<number> {
  log(`config ${JSON.stringify({ ...C, quick: QUICK })}`);
  const work = mkdtempSync(join(tmpdir(), 'wharf-bench-cluster-'));
  scope.teardown(() => rmSync(work, { recursive: true, force: true }));

  log('ceph radosgw, a postgres schema, the upstream registry and its front');
  const ceph = await startCeph(scope);
  const bucket = 'wharf-bench';
  await ceph.client().send(new CreateBucketCommand({ Bucket: bucket }));
  const schema = await tempSchema(scope);
  const origin = await startDockerRegistry(scope);
  const front = await startFront(scope, origin.url);
  log(`  ceph up in ${ceph.startMs} ms`);

  log('seeding the upstream');
  const images: Image[] = [];
  for (let i = 0; i < C.tags; i++) {
    const layer = (name: string, mib: number) => writeRandomFile(join(work, `${name}-${i}.blob`), mib * MiB + i * 4099, `cluster-${name}-${i}`);
    const layers: BlobFile[] = [layer('small', C.smallMiB), layer('medium', C.mediumMiB)];
    if (i === 0 || i === Math.floor(C.tags / 2)) layers.push(layer('big', C.bigMiB));
    images.push(buildImage('bench/app', `t${String(i).padStart(2, '0')}`, layers));
  }
  const warmBlob = writeRandomFile(join(work, 'warm.blob'), C.warmMiB * MiB, 'cluster-warm');
  for (const img of [...images, buildImage('bench/warm', 'v1', [warmBlob])]) await pushImage(origin.url, img, work);
  const blobs: Blob[] = [...new Map(images.flatMap((img) => img.blobs.map((b) => [b.digest, { repo: img.repo, digest: b.digest, size: b.size }]))).values()];
  const totalMiB = round(blobs.reduce((a, b) => a + b.size, 0) / MiB, 1);
  log(`  ${images.length} images, ${blobs.length} distinct blobs, ${totalMiB} MiB`);

  const secretFile = join(work, 'secret');
  writeFileSync(secretFile, `${createHash('sha256').update(work).digest('hex')}\n`);
  const s3Key = join(work, 's3-secret');
  writeFileSync(s3Key, `${ceph.secretAccessKey}\n`);
  const clusterConfig = {
    storage: {
      s3: { endpoint: ceph.endpoint, region: ceph.region, bucket, forcePathStyle: true, accessKeyId: ceph.accessKeyId, secretAccessKeyFile: s3Key },
    },
    metadata: { postgres: { url: `${POSTGRES_URL}?options=${encodeURIComponent(`-c search_path=${schema}`)}` } },
    cluster: { secretFile },
    gc: { interval: '0s' },
  };
  log(`starting ${NODES} nodes on postgres + s3`);
  const nodes: WharfProcess[] = [];
  for (let i = 0; i < NODES; i++) nodes.push(await startWharf(scope, { upstream: front.url, config: clusterConfig }));
  log(`  ${nodes.map((n) => n.url).join(' ')}`);

  log(`load for ${C.seconds} s: wrk on manifests at every node, ${C.blobLoops} blob loops after the cold pass`);
  const paths = images.map((img) => `/v2/${img.repo}/manifests/${img.tag}`);
  const deadline = performance.now() + C.seconds * 1000;
  const [loads, blobFigures] = await Promise.all([
    Promise.all(nodes.map((n) => wrkLoad(n.url, paths, { threads: 1, connections: C.connections, seconds: C.seconds, workDir: n.dir }))),
    blobLoad(nodes, blobs, deadline, C.blobLoops),
  ]);
  const gets = await upstreamGets(
    front,
    blobs.map((b) => b.digest),
  );
  const getCounts = [...gets.values()];
  const notOnce = [...gets].filter(([, n]) => n !== 1);
  for (const [d, n] of notOnce) fail(`${d} fetched from the upstream ${n} times`);

  log(`warm ${C.warmMiB} MiB blob: cluster node (s3) and a filesystem node`);
  const warmPath = `/v2/bench/warm/blobs/${warmBlob.digest}`;
  const s3Warm = await warmThroughput('s3 node', `${nodes[0]!.url}${warmPath}`, 'bench/warm', warmBlob);
  const fsNode = await startWharf(scope, { upstream: front.url, config: { gc: { interval: '0s' } } });
  const fsWarm = await warmThroughput('fs node', `${fsNode.url}${warmPath}`, 'bench/warm', warmBlob);
  // The committed object's key (src/storage/s3-layout.ts: blobs/<algorithm>/<hex>, no prefix here).
  const key = `blobs/${warmBlob.digest.replace(':', '/')}`;
  const presigned = await getSignedUrl(ceph.client(), new GetObjectCommand({ Bucket: bucket, Key: key }), { expiresIn: 600 });
  const rgwWarm = await warmThroughput('radosgw direct', presigned, 'bench/warm', warmBlob);

  const loadErrors = loads.reduce((a, l) => a + l.errors, 0);
  const total = (f: (l: Load) => number) => loads.reduce((a, l) => a + f(l), 0);
  const fmt = (x: number) => String(round(x, 2));
  const s3 = stats(s3Warm);
  const fs = stats(fsWarm);
  const rgw = stats(rgwWarm);
  const spread = (s: ReturnType<typeof stats>) => (s.count ? `${fmt(s.median)} (${fmt(s.min)}–${fmt(s.max)})` : '—');
  const rows: string[][] = [
    ['manifest GET req/s', ...loads.map((l) => String(l.rps)), String(total((l) => l.rps))],
    ['manifest GET p99 ms', ...loads.map((l) => fmt(l.p99ms)), fmt(Math.max(...loads.map((l) => l.p99ms)))],
    ['manifest errors', ...loads.map((l) => String(l.errors)), String(loadErrors)],
    ['blob pulls (verified)', ...blobFigures.perNode.map(String), String(blobFigures.pulls)],
    ['blob errors', '', '', '', String(blobFigures.errors)],
    ['blob MB/s (all clients)', '', '', '', fmt(blobFigures.bytes / 1e6 / blobFigures.seconds)],
    ['cold pass s (all blobs × 3 nodes)', '', '', '', fmt(blobFigures.coldSeconds)],
    ['upstream GETs per distinct blob', '', '', '', `${Math.min(...getCounts)}–${Math.max(...getCounts)} over ${getCounts.length} blobs`],
    [`warm ${C.warmMiB} MiB MB/s: s3 node | fs node | rgw`, spread(s3), spread(fs), spread(rgw), fs.median > 0 ? `s3/fs ${(s3.median / fs.median).toFixed(2)}x` : ''],
  ];
  console.log(`\ncluster: ${NODES} nodes, postgres + ceph rgw s3, ${C.seconds} s, ${images.length} tags, ${blobs.length} blobs (${totalMiB} MiB)\n`);
  console.log(table(['figure', 'node 1', 'node 2', 'node 3', 'total'], rows));
  console.log(`\nerrors: ${failures.length + loadErrors}`);
  console.log(`CLUSTER_JSON ${JSON.stringify({ config: C, loads, blobs: blobFigures, upstreamGets: Object.fromEntries(gets), warm: { s3: s3Warm, fs: fsWarm, radosgwDirect: rgwWarm }, failures })}`);
  return failures.length + loadErrors > 0 ? 1 : 0;
}

const scope = new Scope();
let stopping = false;
for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  process.once(sig, () => {
    if (stopping) return;
    stopping = true;
    log(`${sig}: cleaning up`);
    void scope.close().then(() => process.exit(130));
  });
}
let code = 1;
try {
  code = await main(scope);
} catch (err) {
  log(`error: ${(err as Error).stack ?? String(err)}`);
} finally {
  await scope.close();
}
process.exit(code);
