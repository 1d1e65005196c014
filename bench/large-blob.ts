// Large-blob benchmark: pushes a generated blob (1 GiB by default) through a chunked upload into a
// Wharf process, pulls it back, verifies the digest, and samples the server's RSS all along.
// Usage: npm run build && node --import tsx bench/large-blob.ts [sizeMiB]
// Prints one JSON line with throughput and the server's peak RSS (VmHWM) and sampled max RSS.
import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { fileURLToPath } from 'node:url';

const MiB = 1024 * 1024;
const sizeMiB = Number(process.argv[2] ?? 1024);
const size = sizeMiB * MiB;
const chunkSize = 64 * MiB;
const root = fileURLToPath(new URL('..', import.meta.url));

function rssOf(pid: number): { rss: number; hwm: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (key: string) => Number(new RegExp(`${key}:\\s+(\\d+)`).exec(status)?.[1] ?? 0) * 1024;
  return { rss: kb('VmRSS'), hwm: kb('VmHWM') };
}

/** A deterministic pseudo-random stream: a 1 MiB block repeated with a counter mixed in. */
function generate(bytes: number, offset: number): Readable {
  const block = randomBytes(MiB);
  let sent = 0;
  return new Readable({
    read() {
      if (sent >= bytes) return this.push(null);
      const n = Math.min(MiB, bytes - sent);
      const chunk = Buffer.from(block.subarray(0, n));
      chunk.writeUInt32BE(((offset + sent) / MiB) >>> 0, 0);
      sent += n;
      this.push(chunk);
    },
  });
}

async function main(): Promise<void> {
  const data = mkdtempSync(join(tmpdir(), 'wharf-bench-'));
  const server = spawn(process.execPath, [join(root, 'dist/main.js'), 'serve', '--listen', '127.0.0.1:0', '--data', data], {
    stdio: ['ignore', 'pipe', 'inherit'],
    env: { ...process.env, WHARF_LOG_LEVEL: 'warn' },
  });
  const base = await new Promise<string>((resolve, reject) => {
    let out = '';
    server.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /listening on (http:\/\/[^\s"]+)/.exec(out);
      if (m) resolve(m[1] as string);
    });
    server.once('exit', (code) => reject(new Error(`server exited with ${code}`)));
  });
  const pid = server.pid as number;
  let maxRss = 0;
  const sampler = setInterval(() => (maxRss = Math.max(maxRss, rssOf(pid).rss)), 50);
  const idle = rssOf(pid).rss;

  // Push: POST, PATCH 64 MiB chunks, PUT ?digest=.
  const hash = createHash('sha256');
  const t0 = performance.now();
  let location = (await fetch(`${base}/v2/local/bench/blobs/uploads/`, { method: 'POST' })).headers.get('location') as string;
  for (let off = 0; off < size; off += chunkSize) {
    const n = Math.min(chunkSize, size - off);
    const body = generate(n, off);
    body.on('data', (c: Buffer) => hash.update(c));
    const res = await fetch(new URL(location, base), {
      method: 'PATCH',
      body: Readable.toWeb(body) as ReadableStream,
      duplex: 'half',
      headers: { 'content-range': `${off}-${off + n - 1}`, 'content-length': String(n), 'content-type': 'application/octet-stream' },
    });
    if (res.status !== 202) throw new Error(`PATCH: ${res.status} ${await res.text()}`);
    location = res.headers.get('location') as string;
  }
  const digest = `sha256:${hash.digest('hex')}`;
  const put = await fetch(new URL(`${location}?digest=${digest}`, base), { method: 'PUT' });
  if (put.status !== 201) throw new Error(`PUT: ${put.status} ${await put.text()}`);
  const pushSeconds = (performance.now() - t0) / 1000;
  const afterPush = rssOf(pid);

  // Pull and verify.
  const t1 = performance.now();
  const res = await fetch(`${base}/v2/local/bench/blobs/${digest}`);
  const pullHash = createHash('sha256');
  let received = 0;
  for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
    pullHash.update(chunk);
    received += chunk.length;
  }
  const pullSeconds = (performance.now() - t1) / 1000;
  const pulled = `sha256:${pullHash.digest('hex')}`;
  clearInterval(sampler);
  const end = rssOf(pid);
  server.kill('SIGTERM');
  await new Promise((r) => server.once('exit', r));
  rmSync(data, { recursive: true, force: true });

  const mb = (b: number) => Math.round((b / MiB) * 10) / 10;
  console.log(
    JSON.stringify({
      bench: 'large-blob',
      sizeMiB,
      pushMBps: mb(size / pushSeconds),
      pullMBps: mb(received / pullSeconds),
      verified: pulled === digest && received === size,
      serverRssIdleMiB: mb(idle),
      serverRssAfterPushMiB: mb(afterPush.rss),
      serverRssSampledMaxMiB: mb(maxRss),
      serverPeakRssMiB: mb(end.hwm),
    }),
  );
  if (pulled !== digest || received !== size) process.exitCode = 1;
}

await main();
