// Warm blob throughput of the S3 store: one blob pushed into a Wharf process on a radosgw bucket, then
// pulled with curl to /dev/null, whole and in 16 MiB ranges, next to the same blob straight from radosgw
// (curl of a presigned URL of its object: the S3 driver's ceiling) and from a Wharf on the filesystem.
// The smaller sibling of bench/cluster.ts's warm comparison, without PostgreSQL or the cluster.
// Usage: npm run build && node --import tsx bench/s3-warm.ts [sizeMiB] [rounds]
import { createHash, randomBytes } from 'node:crypto';
import { CreateBucketCommand, GetObjectCommand } from '@aws-sdk/client-s3';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import { startCeph } from '../test/helpers/ceph.js';
import { curlGet, round } from './lib/clients.js';
import { Scope, spawnTracked } from './lib/proc.js';
import { startWharf } from './lib/wharf-process.js';

const size = Number(process.argv[2] ?? 256) * 1024 * 1024;
const rounds = Number(process.argv[3] ?? 5);
const RANGE = 16 * 1024 * 1024;

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? 0;

async function whole(what: string, url: string, digest: string): Promise<number> {
  const first = await curlGet(url, { hash: true });
  if (first.status !== 200 || first.digest !== digest) throw new Error(`${what}: first pull ${first.status} ${first.digest ?? ''}`);
  const out: number[] = [];
  for (let i = 0; i < rounds; i++) {
    const p = await curlGet(url, { maxSeconds: 300 });
    if (p.exit !== 0 || p.status !== 200 || p.bytes !== size) throw new Error(`${what} round ${i}: exit ${p.exit}, status ${p.status}, ${p.bytes}/${size} bytes`);
    out.push(round(p.bytes / 1e6 / p.total, 1));
  }
  console.error(`${what} whole MB/s: ${out.join(', ')}`);
  return median(out);
}

/** The blob in 16 MiB ranges, one curl per range (a keep-alive connection between them), MB/s overall. */
async function ranged(what: string, url: string): Promise<number> {
  const out: number[] = [];
  for (let i = 0; i < rounds; i++) {
    const args = ['-s', '-o', '/dev/null', '-w', '%{http_code} %{size_download}\n'];
    for (let at = 0; at < size; at += RANGE) args.push('-r', `${at}-${Math.min(size, at + RANGE) - 1}`, url, ...(at + RANGE < size ? ['--next', '-s', '-o', '/dev/null', '-w', '%{http_code} %{size_download}\n'] : []));
    const t0 = performance.now();
    const child = spawnTracked('curl', args, { stdio: ['ignore', 'pipe', 'inherit'] });
    let text = '';
    child.stdout?.setEncoding('utf8').on('data', (d: string) => (text += d));
    await new Promise((r) => child.once('close', r));
    const s = (performance.now() - t0) / 1000;
    const lines = text.trim().split('\n').map((l) => l.split(' ').map(Number));
    const bytes = lines.reduce((a, [, n]) => a + (n ?? 0), 0);
    if (bytes !== size || lines.some(([c]) => c !== 206)) throw new Error(`${what} ranged round ${i}: ${text}`);
    out.push(round(size / 1e6 / s, 1));
  }
  console.error(`${what} ranged MB/s: ${out.join(', ')}`);
  return median(out);
}

const scope = new Scope();
try {
  const rgw = await startCeph(scope);
  await rgw.client().send(new CreateBucketCommand({ Bucket: 'bench' }));
  process.env.BENCH_S3_SECRET = rgw.secretAccessKey;
  const s3 = { endpoint: rgw.endpoint, region: rgw.region, bucket: 'bench', forcePathStyle: true, accessKeyId: rgw.accessKeyId, secretAccessKeyEnv: 'BENCH_S3_SECRET' };
  const onS3 = await startWharf(scope, { config: { storage: { s3 } } });
  const onFs = await startWharf(scope, {});
  const blob = randomBytes(size);
  const digest = `sha256:${createHash('sha256').update(blob).digest('hex')}`;
  for (const w of [onS3, onFs]) {
    const put = await fetch(`${w.url}/v2/bench/warm/blobs/uploads/?digest=${digest}`, { method: 'POST', body: blob, headers: { 'content-type': 'application/octet-stream' } });
    if (put.status !== 201) throw new Error(`push: ${put.status} ${await put.text()}`);
  }
  const path = `/v2/bench/warm/blobs/${digest}`;
  const direct = await getSignedUrl(rgw.client(), new GetObjectCommand({ Bucket: 'bench', Key: `blobs/${digest.replace(':', '/')}` }), { expiresIn: 600 });
  const figures = {
    sizeMiB: size / 1048576,
    rounds,
    s3: await whole('s3 node', `${onS3.url}${path}`, digest),
    rgw: await whole('radosgw direct', direct, digest),
    fs: await whole('fs node', `${onFs.url}${path}`, digest),
    s3Ranged: await ranged('s3 node', `${onS3.url}${path}`),
    rgwRanged: await ranged('radosgw direct', direct),
  };
  console.log(JSON.stringify({ ...figures, s3OverRgw: round(figures.s3 / figures.rgw, 2), s3RangedOverRgw: round(figures.s3Ranged / figures.rgwRanged, 2) }));
} finally {
  await scope.close();
}
