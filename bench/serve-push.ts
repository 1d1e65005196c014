// Warm blob and push benchmark: the two parts of bench/mirror.ts that need no upstream, on their own, so
// that a change to the serving or the upload path can be measured in a minute instead of five.
//   warm   a blob pushed to a long-lived Wharf (no upstream) and laid out for nginx (sendfile, 2 workers),
//          then curl -s -o /dev/null rounds alternating between the two: client MB/s, ratio to nginx.
//   push   a layer pushed with curl -T to a fresh Wharf per round: monolithic (POST, PUT ?digest= with
//          the body) and chunked (PATCHes of BENCH_CHUNK_MIB, PUT ?digest=), ratio to node:crypto
//          SHA-256 on one core measured first (1 MiB updates), as in bench/mirror.ts. Before each round the
//          layer is also copied to a fresh file in the same temp dir (8 MiB writes, no hash, one thread):
//          what the filesystem takes for new blocks, the ceiling of any push that stores the bytes there.
// Environment: BENCH_PARTS (warm,push), BENCH_BLOB_MIB (256), BENCH_WARM_ROUNDS (7), BENCH_PUSH_MIB (1024),
// BENCH_CHUNK_MIB (64), BENCH_PUSH_ROUNDS (3), BENCH_WHARF_NODE_ARGS, BENCH_WHARF_LOG_LEVEL.
// Usage: npm run bench:serve-push (builds first), under `flock -x /tmp/wharf-bench.lock` on a shared machine.
// Prints one line per figure and a JSON line; the Wharf pid is printed before each measured part so
// that perf/strace can attach.
import { closeSync, mkdtempSync, openSync, readSync, rmSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { curlGet, nodeSha256, pushChunked, pushMonolithic, round, type Push } from './lib/clients.js';
import { OCI_MANIFEST, buildImage, layOut, writeRandomFile } from './lib/fixtures.js';
import { MiB } from './lib/measure.js';
import { startStatic } from './lib/nginx.js';
import { Scope } from './lib/proc.js';
import { stats } from './lib/report.js';
import { startWharf } from './lib/wharf-process.js';

const num = (name: string, dflt: number): number => (process.env[name] ? Number(process.env[name]) : dflt);
const parts = new Set((process.env.BENCH_PARTS ?? 'warm,push').split(','));
const C = {
  blob: num('BENCH_BLOB_MIB', 256) * MiB,
  warmRounds: num('BENCH_WARM_ROUNDS', 7),
  push: num('BENCH_PUSH_MIB', 1024) * MiB,
  chunk: num('BENCH_CHUNK_MIB', 64) * MiB,
  pushRounds: num('BENCH_PUSH_ROUNDS', 3),
};
const log = (msg: string) => console.error(`[serve-push] ${msg}`);
const fmt = (xs: number[]) => {
  const s = stats(xs);
  return `${s.median} (${s.min}-${s.max})`;
};
const rate = (p: { bytes: number; seconds: number }) => round(p.bytes / 1e6 / p.seconds, 1);

/** Copies `from` to a new file `to` in 8 MiB writes: MB/s of the writes (the source is in the page cache). */
function copyRate(from: string, to: string): number {
  const buf = Buffer.allocUnsafe(8 * MiB);
  const src = openSync(from, 'r');
  const dst = openSync(to, 'w');
  let bytes = 0;
  let seconds = 0;
  try {
    for (let n; (n = readSync(src, buf, 0, buf.length, null)) > 0; bytes += n) {
      const t = performance.now();
      writeSync(dst, buf, 0, n);
      seconds += (performance.now() - t) / 1000;
    }
  } finally {
    closeSync(src);
    closeSync(dst);
    rmSync(to);
  }
  return rate({ bytes, seconds });
}

const scope = new Scope();
const out: Record<string, unknown> = { config: C };
try {
  const work = mkdtempSync(join(tmpdir(), 'wharf-bench-serve-push-'));
  scope.teardown(() => rmSync(work, { recursive: true, force: true }));
  const sha = nodeSha256(2);
  out.sha = sha;
  log(`SHA-256 node:crypto one core: ${sha} MB/s`);

  if (parts.has('warm')) {
    const blob = writeRandomFile(join(work, 'warm.blob'), C.blob, 'serve-push-warm');
    const img = buildImage('bench/warm', 'v1', [blob]);
    const statics = await startStatic(scope, join(work, 'static'), [{ paths: layOut(join(work, 'static'), img), digest: img.digest }], OCI_MANIFEST, 2);
    const wharf = await startWharf(scope, {});
    const pushed = await pushMonolithic(wharf.url, 'bench/warm', blob.file, blob.size, blob.digest);
    if (!pushed.ok) throw new Error(`warm blob push: ${pushed.detail}`);
    const path = `/v2/bench/warm/blobs/${blob.digest}`;
    for (const base of [wharf.url, statics.url]) {
      const p = await curlGet(base + path, { hash: true });
      if (p.status !== 200 || p.digest !== blob.digest) throw new Error(`warm check ${base}: ${p.status} ${p.digest}`);
    }
    log(`warm: wharf pid ${wharf.pid}, ${C.warmRounds} rounds`);
    const w: number[] = [];
    const n: number[] = [];
    for (let i = 0; i < C.warmRounds; i++) {
      for (const [base, into] of [
        [wharf.url, w],
        [statics.url, n],
      ] as const) {
        const p = await curlGet(base + path);
        if (p.status !== 200 || p.bytes !== blob.size) throw new Error(`warm ${base}: ${p.status} ${p.bytes}`);
        into.push(round(p.bytes / 1e6 / p.total, 1));
      }
    }
    const ratios = w.map((x, i) => round(x / (n[i] ?? 1), 3));
    out.warm = { wharf: w, nginx: n, ratios };
    console.log(`warm ${C.blob / MiB} MiB MB/s: wharf ${fmt(w)}, nginx ${fmt(n)}, ratio of medians ${round(stats(w).median / stats(n).median, 3)}, per-round ratios ${ratios.join(' ')}`);
    rmSync(blob.file);
  }

  if (parts.has('push')) {
    const layer = writeRandomFile(join(work, 'push.blob'), C.push, 'serve-push-push', C.chunk);
    const res: Record<'mono' | 'chunked', Push[]> = { mono: [], chunked: [] };
    const fsRates: number[] = [];
    for (let i = 0; i < C.pushRounds; i++) {
      fsRates.push(copyRate(layer.file, join(work, 'copy.blob')));
      for (const mode of ['mono', 'chunked'] as const) {
        const round$ = new Scope();
        try {
          const wharf = await startWharf(round$, {});
          log(`push ${mode} round ${i}: wharf pid ${wharf.pid}`);
          const p = mode === 'mono' ? await pushMonolithic(wharf.url, 'push/r', layer.file, layer.size, layer.digest) : await pushChunked(wharf.url, 'push/r', layer.chunks, layer.digest);
          if (!p.ok) throw new Error(`push ${mode}: ${p.detail}`);
          res[mode].push(p);
        } finally {
          await round$.close();
        }
      }
    }
    out.push = { fs: fsRates, mono: res.mono.map(rate), chunked: res.chunked.map(rate) };
    console.log(`fresh-file write ${C.push / MiB} MiB (8 MiB writes) MB/s: ${fmt(fsRates)}`);
    for (const mode of ['mono', 'chunked'] as const) {
      const r = res[mode].map(rate);
      console.log(`push ${C.push / MiB} MiB ${mode} MB/s: ${fmt(r)} = ${round(stats(r).median / sha, 3)}x SHA ${sha}`);
    }
  }
  console.log(JSON.stringify(out));
} finally {
  await scope.close();
}
