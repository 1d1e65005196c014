// The real clients the mirror benchmark drives: curl for blob pulls (one, or a herd of processes),
// wrk (with manifests.lua) and ab for manifest load, curl -T for pushes streamed from files, and the
// single-core SHA-256 rates (openssl speed, node:crypto) the targets are relative to.
import { createHash, randomBytes } from 'node:crypto';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { run, spawnTracked } from './proc.js';

const CURL_FMT = '%{http_code} %{size_download} %{time_starttransfer} %{time_total}';
export const MANIFEST_ACCEPT = [
  'application/vnd.oci.image.index.v1+json',
  'application/vnd.oci.image.manifest.v1+json',
  'application/vnd.docker.distribution.manifest.list.v2+json',
  'application/vnd.docker.distribution.manifest.v2+json',
].join(', ');
const WRK_SCRIPT = fileURLToPath(new URL('manifests.lua', import.meta.url));

export interface Pull {
  status: number;
  bytes: number;
  /** curl's time_starttransfer and time_total, seconds. */
  firstByte: number;
  total: number;
  /** sha256:... of the body when it was hashed, else undefined. */
  digest?: string;
  /** curl's exit code (0 = transfer complete). */
  exit: number | null;
}

/**
 * `curl -s -o /dev/null` of `url`; with `hash`, the body comes to us on a pipe and is hashed here
 * instead (curl then writes its -w line to stderr).
 */
export async function curlGet(url: string, opts: { hash?: boolean; maxSeconds?: number } = {}): Promise<Pull> {
  const hash = opts.hash ? createHash('sha256') : undefined;
  const args = ['-s', '-o', hash ? '-' : '/dev/null', '-w', `${hash ? '%{stderr}' : ''}${CURL_FMT}`, '--max-time', String(opts.maxSeconds ?? 600), url];
  const child = spawnTracked('curl', args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  if (hash) {
    child.stdout?.on('data', (d: Buffer) => hash.update(d));
    child.stderr?.setEncoding('utf8').on('data', (d: string) => (out += d));
  } else {
    child.stdout?.setEncoding('utf8').on('data', (d: string) => (out += d));
    child.stderr?.setEncoding('utf8').on('data', (d: string) => (err = (err + d).slice(-2_000)));
  }
  const exit = await new Promise<number | null>((resolve, reject) => {
    child.once('error', reject);
    child.once('close', resolve);
  });
  const [code, size, first, total] = out.trim().split(' ').map(Number);
  return {
    status: code ?? 0,
    bytes: size ?? 0,
    firstByte: first ?? 0,
    total: total ?? 0,
    exit,
    ...(hash ? { digest: `sha256:${hash.digest('hex')}` } : {}),
  };
}

export interface Herd {
  /** From spawning the first curl to the last one's exit, seconds. */
  wall: number;
  pulls: Pull[];
}

/** `clients` curls of one URL at once; the first one's body is hashed (see curlGet). */
export async function curlHerd(url: string, clients: number): Promise<Herd> {
  const t0 = performance.now();
  const pulls = await Promise.all(Array.from({ length: clients }, (_, i) => curlGet(url, { hash: i === 0 })));
  return { wall: (performance.now() - t0) / 1000, pulls };
}

export interface Load {
  tool: 'wrk' | 'ab';
  requests: number;
  seconds: number;
  rps: number;
  p50ms: number;
  p99ms: number;
  maxMs: number;
  /** Failed requests of any kind (non-2xx, socket errors, timeouts). */
  errors: number;
  /** ab only: requests served on a kept-alive connection. */
  keptAlive?: number;
}

/** wrk -t2 -cC -dDs over `paths` (round-robin, manifests.lua), GET. */
export async function wrkLoad(base: string, paths: string[], opts: { threads: number; connections: number; seconds: number; workDir: string }): Promise<Load> {
  const pathsFile = join(opts.workDir, `wrk-paths-${process.pid}.txt`);
  writeFileSync(pathsFile, paths.join('\n') + '\n');
  try {
    const r = await run(
      'wrk',
      [`-t${opts.threads}`, `-c${opts.connections}`, `-d${opts.seconds}s`, '--latency', '--timeout', '5s', '-s', WRK_SCRIPT, base, '--', pathsFile, 'GET'],
      { timeoutMs: (opts.seconds + 30) * 1000 },
    );
    const line = /WRK_JSON (\{.*\})/.exec(r.stdout)?.[1];
    if (r.code !== 0 || !line) throw new Error(`wrk failed (exit ${r.code}): ${r.stderr.slice(-500)} ${r.stdout.slice(-500)}`);
    const j = JSON.parse(line) as Record<string, number>;
    const n = (k: string) => j[k] ?? 0;
    const seconds = n('duration_us') / 1e6;
    return {
      tool: 'wrk',
      requests: n('requests'),
      seconds: round(seconds, 2),
      rps: Math.round(n('requests') / seconds),
      p50ms: round(n('p50_us') / 1000, 2),
      p99ms: round(n('p99_us') / 1000, 2),
      maxMs: round(n('max_us') / 1000, 2),
      errors: n('connect_errors') + n('read_errors') + n('write_errors') + n('status_errors') + n('timeouts'),
    };
  } finally {
    rmSync(pathsFile, { force: true });
  }
}

/**
 * HEAD load with ab, which takes one URL: `ab -k -i -cC -n N` over each path in turn, N the same for
 * every path (`perPath`), each run also cut at `maxSecondsPerPath`. Figures pool the runs: requests over
 * the summed "Time taken", percentiles from the union of each run's percentile table (ab -e, equal
 * weight per run since every run has the same N).
 */
export async function abHeadLoad(
  base: string,
  paths: string[],
  opts: { connections: number; perPath: number; maxSecondsPerPath: number; workDir: string },
): Promise<Load> {
  const csv = join(opts.workDir, `ab-${process.pid}.csv`);
  let requests = 0;
  let seconds = 0;
  let errors = 0;
  let keptAlive = 0;
  const quantiles: number[] = [];
  let maxMs = 0;
  try {
    for (const p of paths) {
      const n = Math.max(opts.connections, opts.perPath);
      const r = await run(
        'ab',
        // -t before -n: ab's -t resets the count it was given before it.
        ['-q', '-k', '-i', '-c', String(opts.connections), '-t', String(opts.maxSecondsPerPath), '-n', String(n), '-s', '10', '-e', csv, '-H', `Accept: ${MANIFEST_ACCEPT}`, `${base}${p}`],
        { timeoutMs: (opts.maxSecondsPerPath + 30) * 1000 },
      );
      if (r.code !== 0) throw new Error(`ab failed (exit ${r.code}) on ${p}: ${r.stderr.slice(-500)}`);
      const num = (label: string) => Number(new RegExp(`${label}:\\s+([\\d.]+)`).exec(r.stdout)?.[1] ?? 0);
      requests += num('Complete requests');
      seconds += num('Time taken for tests');
      errors += num('Failed requests') + num('Non-2xx responses') + num('Write errors');
      keptAlive += num('Keep-Alive requests');
      maxMs = Math.max(maxMs, Number(/100%\s+(\d+)/.exec(r.stdout)?.[1] ?? 0));
      for (const row of readFileSync(csv, 'utf8').split('\n').slice(1)) {
        const [pct, ms] = row.split(',').map(Number);
        if (pct !== undefined && ms !== undefined && Number.isFinite(ms) && pct < 100) quantiles.push(ms);
      }
    }
  } finally {
    rmSync(csv, { force: true });
  }
  quantiles.sort((a, b) => a - b);
  const q = (p: number) => quantiles[Math.min(quantiles.length - 1, Math.floor((p / 100) * quantiles.length))] ?? 0;
  return {
    tool: 'ab',
    requests,
    seconds: round(seconds, 2),
    rps: seconds > 0 ? Math.round(requests / seconds) : 0,
    p50ms: round(q(50), 2),
    p99ms: round(q(99), 2),
    maxMs,
    errors,
    keptAlive,
  };
}

export interface Push {
  ok: boolean;
  bytes: number;
  /** Sum of curl's time_total over the requests of the upload (POST, PATCHes, PUT), seconds. */
  seconds: number;
  requests: number;
  detail: string;
}

interface CurlReply {
  status: number;
  location: string;
  digest: string;
  total: number;
}

async function curlRequest(url: string, args: string[]): Promise<CurlReply> {
  const r = await run('curl', ['-s', '-D', '-', '-o', '/dev/null', '-H', 'Expect:', '-w', 'CURL_W %{http_code} %{time_total}', '--max-time', '600', ...args, url], {
    timeoutMs: 620_000,
  });
  const w = /CURL_W (\d+) ([\d.]+)/.exec(r.stdout);
  const header = (name: string) => new RegExp(`^${name}:\\s*(.*?)\\s*$`, 'im').exec(r.stdout)?.[1] ?? '';
  return { status: Number(w?.[1] ?? 0), location: new URL(header('location') || url, url).toString(), digest: header('docker-content-digest'), total: Number(w?.[2] ?? 0) };
}

const withQuery = (url: string, key: string, value: string): string => {
  const u = new URL(url);
  u.searchParams.set(key, value);
  return u.toString();
};

/** POST an upload, then PUT ?digest= with the whole file as its body (curl -T streams it). */
export async function pushMonolithic(base: string, repo: string, file: string, size: number, digest: string): Promise<Push> {
  const start = await curlRequest(`${base}/v2/${repo}/blobs/uploads/`, ['-X', 'POST']);
  if (start.status !== 202) return { ok: false, bytes: 0, seconds: start.total, requests: 1, detail: `POST ${start.status}` };
  const put = await curlRequest(withQuery(start.location, 'digest', digest), ['-T', file, '-H', 'Content-Type: application/octet-stream']);
  const ok = put.status === 201 && put.digest === digest;
  return { ok, bytes: size, seconds: start.total + put.total, requests: 2, detail: ok ? '' : `PUT ${put.status} ${put.digest}` };
}

/** POST, one PATCH per chunk file (Content-Range start-end, curl -T), then PUT ?digest= without a body. */
export async function pushChunked(base: string, repo: string, chunks: Array<{ file: string; size: number }>, digest: string): Promise<Push> {
  const start = await curlRequest(`${base}/v2/${repo}/blobs/uploads/`, ['-X', 'POST']);
  if (start.status !== 202) return { ok: false, bytes: 0, seconds: start.total, requests: 1, detail: `POST ${start.status}` };
  let seconds = start.total;
  let location = start.location;
  let offset = 0;
  for (const c of chunks) {
    const patch = await curlRequest(location, ['-X', 'PATCH', '-T', c.file, '-H', 'Content-Type: application/octet-stream', '-H', `Content-Range: ${offset}-${offset + c.size - 1}`]);
    seconds += patch.total;
    if (patch.status !== 202) return { ok: false, bytes: offset, seconds, requests: 0, detail: `PATCH at ${offset}: ${patch.status}` };
    location = patch.location;
    offset += c.size;
  }
  const put = await curlRequest(withQuery(location, 'digest', digest), ['-X', 'PUT', '-H', 'Content-Length: 0']);
  seconds += put.total;
  const ok = put.status === 201 && put.digest === digest;
  return { ok, bytes: offset, seconds, requests: chunks.length + 2, detail: ok ? '' : `PUT ${put.status} ${put.digest}` };
}

/** `openssl speed -evp sha256 -bytes 16384 -seconds S`: MB/s (10^6 bytes) at 16 KiB blocks. */
export async function opensslSha256(seconds: number): Promise<number> {
  const r = await run('openssl', ['speed', '-evp', 'sha256', '-bytes', '16384', '-seconds', String(seconds)], { timeoutMs: (seconds + 30) * 1000 });
  // "The 'numbers' are in 1000s of bytes per second processed." The row: "sha256  1234567.89k"
  const m = /^sha256\s+([\d.]+)k\s*$/m.exec(r.stdout);
  if (!m) throw new Error(`openssl speed: no sha256 row in ${r.stdout.slice(-300)} ${r.stderr.slice(-300)}`);
  return round(Number(m[1]) / 1000, 1);
}

/** node:crypto SHA-256 over 1 MiB updates on this thread for `seconds`: MB/s (10^6 bytes). */
export function nodeSha256(seconds: number): number {
  const buf = randomBytes(1024 * 1024);
  const hash = createHash('sha256');
  for (let i = 0; i < 32; i++) hash.update(buf); // warm-up
  const h = createHash('sha256');
  let bytes = 0;
  const t0 = performance.now();
  while (performance.now() - t0 < seconds * 1000) {
    for (let i = 0; i < 16; i++) h.update(buf);
    bytes += 16 * buf.length;
  }
  const s = (performance.now() - t0) / 1000;
  h.digest();
  hash.digest();
  return round(bytes / 1e6 / s, 1);
}

export function round(x: number, digits: number): number {
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}
