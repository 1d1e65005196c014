// What the platform itself allows on this machine: a minimal pass-through on node:http + undici
// (no framework, no cache), in front of the same origin as bench/pull-through.ts, read by a client
// in its own process. Four variants: plain; with SHA-256 of the bytes; with a write of them to a
// file; with both (the least work a verifying cache must do in the transfer). It bounds what the
// cold pull-through figure can reach here, independent of Wharf's code.
//
// Usage: node --import tsx bench/passthrough-floor.ts   (BENCH_BIG_MIB, default 256)
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { open } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { Pool } from 'undici';
import { pushTestImage, startDockerRegistry } from '../test/helpers/docker-registry.js';

const BIG = Number(process.env.BENCH_BIG_MIB ?? 256) * 1024 * 1024;
const RUNS = 3;
const run = promisify(execFile);
const client = fileURLToPath(new URL('./lib/download-client.ts', import.meta.url));
const teardowns: Array<() => unknown> = [];
const t = { teardown: (fn: () => unknown) => void teardowns.push(fn) };
const scratch = mkdtempSync(join(tmpdir(), 'wharf-floor-'));

try {
  const origin = await startDockerRegistry(t);
  const image = await pushTestImage(origin, 'library/big', 'v1', { seed: 'floor', layerSize: BIG, timeoutMs: 300_000 });
  const big = image.blobs.reduce((a, b) => (b.size > a.size ? b : a));
  const pool = new Pool(origin.url, { connections: 4 });
  let variant = 'plain';
  let n = 0;
  const server = http.createServer((req, res) => {
    void (async () => {
      const up = await pool.request({ path: req.url ?? '/', method: 'GET', highWaterMark: 1024 * 1024 });
      res.writeHead(up.statusCode, { 'content-length': String(big.size) });
      const hash = variant.includes('hash') ? createHash('sha256') : undefined;
      const file = variant.includes('write') ? await open(join(scratch, `blob-${n++}`), 'w') : undefined;
      let queued: Buffer[] = [];
      let writing: Promise<void> | undefined;
      let at = 0;
      const pump = (): void => {
        if (!file || writing || queued.length === 0) return;
        const batch = queued;
        queued = [];
        const bytes = batch.reduce((s, b) => s + b.length, 0);
        writing = file.writev(batch, at).then(() => {
          at += bytes;
          writing = undefined;
          pump();
        });
      };
      for await (const chunk of up.body as AsyncIterable<Buffer>) {
        hash?.update(chunk);
        if (file) {
          queued.push(chunk);
          pump();
        }
        if (!res.write(chunk)) await new Promise((r) => res.once('drain', r));
      }
      while (writing) await writing;
      await file?.close();
      res.end();
    })().catch((err: unknown) => res.destroy(err as Error));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/v2/library/big/blobs/${big.digest}`;
  const results: Record<string, number[]> = {};
  for (variant of ['plain', 'hash', 'write', 'hash+write']) {
    const rates: number[] = [];
    results[variant] = rates;
    for (let i = 0; i < RUNS; i++) {
      const { stdout } = await run(process.execPath, ['--import', 'tsx', client, url, big.digest], { encoding: 'utf8' });
      const [rate, verified] = stdout.trim().split(' ');
      if (verified !== 'true') throw new Error(`${variant}: the download did not verify`);
      rates.push(Number(rate));
    }
    console.error(`pass-through ${variant.padEnd(10)} ${rates.join(' / ')} MiB/s`);
  }
  console.log(JSON.stringify({ bench: 'passthrough-floor', mib: BIG / 1024 / 1024, results }));
  server.close();
  await pool.close();
} finally {
  for (const fn of teardowns.reverse()) await fn();
  rmSync(scratch, { recursive: true, force: true });
}
