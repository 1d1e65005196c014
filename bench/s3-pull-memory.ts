// S3 blob-serving memory: a 64 MiB blob pushed (monolithic POST) into a Wharf process on a radosgw
// bucket, then pulled by N clients at once; prints the server's peak RSS (VmHWM) and RSS after.
// Usage: npm run build && node --import tsx bench/s3-pull-memory.ts [clients] [sizeMiB]
// BENCH_S3_FS=1 runs the same on the filesystem store (the baseline); BENCH_WHARF_NODE_ARGS adds node
// flags to the pulling process (e.g. --trace-gc).
import { createHash, randomBytes } from 'node:crypto';
import { closeSync, existsSync, openSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { CreateBucketCommand } from '@aws-sdk/client-s3';
import { startCeph } from '../test/helpers/ceph.js';
import { poll, Scope, spawnTracked, stopChild } from './lib/proc.js';
import { startWharf, type WharfProcess } from './lib/wharf-process.js';

const clients = Number(process.argv[2] ?? 8);
const size = Number(process.argv[3] ?? 64) * 1024 * 1024;
const mib = (pid: number, key: string) => Number(new RegExp(`${key}:\\s+(\\d+)`).exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0) / 1024;

const scope = new Scope();
try {
  const rgw = await startCeph(scope);
  await rgw.client().send(new CreateBucketCommand({ Bucket: 'bench' }));
  process.env.BENCH_S3_SECRET = rgw.secretAccessKey;
  const s3 = { endpoint: rgw.endpoint, region: rgw.region, bucket: 'bench', forcePathStyle: true, accessKeyId: rgw.accessKeyId, secretAccessKeyEnv: 'BENCH_S3_SECRET' };
  const first = await startWharf(scope, { config: process.env.BENCH_S3_FS ? {} : { storage: { s3 } } });
  const blob = randomBytes(size);
  const digest = `sha256:${createHash('sha256').update(blob).digest('hex')}`;
  const put = await fetch(`${first.url}/v2/bench/blob/blobs/uploads/?digest=${digest}`, { method: 'POST', body: blob, headers: { 'content-type': 'application/octet-stream' } });
  if (put.status !== 201) throw new Error(`push: ${put.status} ${await put.text()}`);
  // The pulls run on a fresh process over the same data directory and bucket, so the push's own
  // peak does not hide theirs.
  const w = await restart(scope, first);
  const before = { rss: mib(w.pid, 'VmRSS'), hwm: mib(w.pid, 'VmHWM') };
  const t0 = Date.now();
  const got = await Promise.all(
    Array.from({ length: clients }, async () => {
      const res = await fetch(`${w.url}/v2/bench/blob/blobs/${digest}`);
      const h = createHash('sha256');
      for await (const c of res.body!) h.update(c as Uint8Array);
      return `sha256:${h.digest('hex')}`;
    }),
  );
  const ms = Date.now() - t0;
  if (got.some((d) => d !== digest)) throw new Error('a pull got other bytes');
  await new Promise((r) => setTimeout(r, 500));
  console.log(JSON.stringify({ clients, sizeMiB: size / 1048576, ms, idleRssMiB: +before.rss.toFixed(1), afterPushHwmMiB: +before.hwm.toFixed(1), peakHwmMiB: +mib(w.pid, 'VmHWM').toFixed(1), rssAfterMiB: +mib(w.pid, 'VmRSS').toFixed(1) }));
} finally {
  await scope.close();
}

async function restart(scope: Scope, w: WharfProcess): Promise<{ url: string; pid: number }> {
  process.kill(w.pid, 'SIGTERM');
  await poll(() => (existsSync(`/proc/${w.pid}`) ? undefined : true), 10_000, 10);
  const log = join(w.dir, 'wharf2.log');
  const fd = openSync(log, 'a');
  const main = fileURLToPath(new URL('../dist/main.js', import.meta.url));
  const c = spawnTracked(process.execPath, ['--max-semi-space-size=2', ...(process.env.BENCH_WHARF_NODE_ARGS ?? '').split(' ').filter(Boolean), main, 'serve', '--config', join(w.dir, 'wharf.yaml'), '--listen', '127.0.0.1:0', '--data', join(w.dir, 'data')], { stdio: ['ignore', fd, fd], cwd: w.dir });
  closeSync(fd);
  scope.teardown(() => stopChild(c, 'SIGTERM', 10_000));
  const url = await poll(() => /listening on (http:\/\/[^\s"]+)/.exec(readFileSync(log, 'utf8'))?.[1], 30_000, 5);
  if (!url) throw new Error(`wharf did not restart: ${readFileSync(log, 'utf8')}`);
  return { url, pid: c.pid ?? 0 };
}
