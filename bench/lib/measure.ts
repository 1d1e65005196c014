// Shared bits for the benchmarks: /proc memory readings, a verified blob download, and a bounded
// fixed-duration request loop over a keep-alive http.Agent.
import { createHash } from 'node:crypto';
import { readFileSync, readdirSync } from 'node:fs';
import http from 'node:http';
import { request, type Dispatcher } from 'undici';

export const MiB = 1024 * 1024;

export interface Mem {
  /** Current resident set, bytes. */
  rss: number;
  /** Peak resident set since the process started (VmHWM), bytes. */
  hwm: number;
}

export function memOf(pid: number): Mem {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (key: string) => Number(new RegExp(`${key}:\\s+(\\d+)`).exec(status)?.[1] ?? 0) * 1024;
  return { rss: kb('VmRSS'), hwm: kb('VmHWM') };
}

/** CPU seconds (user + system, every thread) the process has used so far. */
export function cpuSecondsOf(pid: number): number {
  // Fields after the parenthesised command name: state is field 3, utime 14, stime 15 (proc(5)).
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100; // USER_HZ is 100 on Linux
}

/** CPU seconds used so far by `pid` and every process below it (nginx's workers under its master). */
export function treeCpuSecondsOf(pid: number): number {
  const children = new Map<number, number[]>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      children.set(ppid, [...(children.get(ppid) ?? []), Number(entry)]);
    } catch {
      // gone meanwhile
    }
  }
  let total = 0;
  const visit = (p: number): void => {
    try {
      total += cpuSecondsOf(p);
    } catch {
      return;
    }
    for (const c of children.get(p) ?? []) visit(c);
  };
  visit(pid);
  return total;
}

/** CPU seconds the whole machine has spent busy (every state but idle and iowait) since boot. */
export function machineBusySeconds(): number {
  const [, ...f] = (readFileSync('/proc/stat', 'utf8').split('\n')[0] ?? '').trim().split(/\s+/);
  const n = f.map(Number);
  const all = n.slice(0, 8).reduce((a, b) => a + b, 0);
  return (all - (n[3] ?? 0) - (n[4] ?? 0)) / 100;
}

/** The pid of the one process whose command line contains every one of `parts` (read-only /proc scan). */
export function findPid(parts: string[]): number {
  const found: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    let cmd: string;
    try {
      cmd = readFileSync(`/proc/${entry}/cmdline`, 'utf8').split('\0').join(' ');
    } catch {
      continue;
    }
    if (parts.every((p) => cmd.includes(p))) found.push(Number(entry));
  }
  if (found.length !== 1) throw new Error(`expected one process matching ${parts.join(' ')}, found ${found.length}`);
  return found[0]!;
}

/** Samples VmRSS of `pid` every `everyMs` until stopped; returns the highest value seen. */
export function sampleRss(pid: number, everyMs = 50): { stop(): number } {
  let max = 0;
  const tick = () => {
    try {
      max = Math.max(max, memOf(pid).rss);
    } catch {
      // process gone
    }
  };
  tick();
  const timer = setInterval(tick, everyMs);
  return {
    stop() {
      clearInterval(timer);
      tick();
      return max;
    },
  };
}

export interface Download {
  status: number;
  bytes: number;
  seconds: number;
  digest: string;
  verified: boolean;
}

/** GETs `url`, reads the whole body while hashing it, and checks it against `expected` (sha256:...). */
export async function download(url: string, expected: string, dispatcher: Dispatcher, timeoutMs = 120_000): Promise<Download> {
  const t0 = performance.now();
  const res = await request(url, { dispatcher, signal: AbortSignal.timeout(timeoutMs), headersTimeout: timeoutMs, bodyTimeout: 30_000 });
  const hash = createHash('sha256');
  let bytes = 0;
  for await (const chunk of res.body as AsyncIterable<Buffer>) {
    hash.update(chunk);
    bytes += chunk.length;
  }
  const seconds = (performance.now() - t0) / 1000;
  const digest = `sha256:${hash.digest('hex')}`;
  return { status: res.statusCode, bytes, seconds, digest, verified: res.statusCode === 200 && digest === expected };
}

export interface LoadResult {
  requests: number;
  errors: number;
  /** TCP connections the client opened (16 when keep-alive held throughout). */
  connections: number;
  seconds: number;
  rps: number;
  p50ms: number;
  p99ms: number;
  maxMs: number;
}

/**
 * `connections` workers, each sending one request at a time through a keep-alive http.Agent of that
 * many sockets, for `durationMs` (and at most `maxRequests` in all). Non-200 answers count as errors.
 * node:http rather than undici: undici closes the connection after every HEAD (nodejs/undici#258),
 * which would measure connection setup instead of the registry.
 */
export async function load(
  origin: string,
  opts: { method: 'GET' | 'HEAD'; path: string; headers: Record<string, string>; connections: number; durationMs: number; maxRequests: number },
): Promise<LoadResult> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: opts.connections, maxFreeSockets: opts.connections, keepAliveMsecs: 30_000 });
  const target = new URL(opts.path, origin);
  const sockets = new WeakSet<object>();
  let opened = 0;
  const once = () =>
    new Promise<number>((resolve, reject) => {
      const req = http.request(target, { method: opts.method, headers: opts.headers, agent, timeout: 10_000 }, (res) => {
        res.on('data', () => {});
        res.on('end', () => resolve(res.statusCode ?? 0));
        res.on('error', reject);
      });
      req.on('socket', (s) => {
        if (!sockets.has(s)) {
          sockets.add(s);
          opened++;
        }
      });
      req.on('timeout', () => req.destroy(new Error('timeout')));
      req.on('error', reject);
      req.end();
    });
  const latencies: number[] = [];
  let errors = 0;
  let issued = 0;
  const t0 = performance.now();
  const deadline = t0 + opts.durationMs;
  const worker = async () => {
    while (performance.now() < deadline && issued < opts.maxRequests) {
      issued++;
      const s = performance.now();
      try {
        if ((await once()) !== 200) errors++;
      } catch {
        errors++;
      }
      latencies.push(performance.now() - s);
    }
  };
  await Promise.all(Array.from({ length: opts.connections }, worker));
  const seconds = (performance.now() - t0) / 1000;
  agent.destroy();
  latencies.sort((a, b) => a - b);
  const pct = (p: number) => latencies[Math.min(latencies.length - 1, Math.floor((p / 100) * latencies.length))] ?? 0;
  const r2 = (x: number) => Math.round(x * 100) / 100;
  return {
    requests: latencies.length,
    errors,
    connections: opened,
    seconds: r2(seconds),
    rps: Math.round(latencies.length / seconds),
    p50ms: r2(pct(50)),
    p99ms: r2(pct(99)),
    maxMs: r2(latencies[latencies.length - 1] ?? 0),
  };
}

export const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};

export const mbps = (bytes: number, seconds: number): number => Math.round((bytes / MiB / seconds) * 10) / 10;
export const mib = (bytes: number): number => Math.round((bytes / MiB) * 10) / 10;

export interface ProcStatus {
  /** VmRSS, VmHWM (peak resident set since start), RssAnon, RssFile: MiB. */
  rss: number;
  hwm: number;
  anon: number;
  file: number;
}

/** The memory lines of /proc/PID/status, in MiB (one decimal). */
export function procStatus(pid: number): ProcStatus {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (key: string) => Number(new RegExp(`${key}:\\s+(\\d+)`).exec(status)?.[1] ?? 0) * 1024;
  return { rss: mib(kb('VmRSS')), hwm: mib(kb('VmHWM')), anon: mib(kb('RssAnon')), file: mib(kb('RssFile')) };
}
