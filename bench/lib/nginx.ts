// nginx for the benchmarks, run in the foreground (daemon off) with its own prefix, configuration, pid
// file, temp paths and logs in a temp dir, on a port of its own: a reverse proxy in front of the origin
// registry that logs every request (to count upstream fetches), and a static server with sendfile that
// serves the same blobs and manifests at the registry's URL paths (the physical limit).
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from '../../test/helpers/docker-registry.js';
import { poll, spawnTracked, stopChild, type Scope } from './proc.js';

export const NGINX = process.env.BENCH_NGINX ?? '/usr/sbin/nginx';

export interface Nginx {
  url: string;
  port: number;
  pid: number;
  dir: string;
  /** The access log ('' when the configuration has none). */
  accessLog: string;
}

/**
 * Starts nginx with `server` (the body of one server block; `PORT` and `PREFIX` are replaced) inside an
 * http block that also gets `httpExtra`. Workers run as root when we are root: the temp dirs are 0700.
 */
export async function startNginx(scope: Scope, opts: { name: string; workers: number; server: string; httpExtra?: string; accessLog?: boolean }): Promise<Nginx> {
  const dir = mkdtempSync(join(tmpdir(), `wharf-bench-nginx-${opts.name}-`));
  scope.teardown(() => rmSync(dir, { recursive: true, force: true }));
  for (const d of ['logs', 'tmp']) mkdirSync(join(dir, d));
  const port = await freePort();
  const accessLog = opts.accessLog ? join(dir, 'logs/access.log') : '';
  const conf = `
${process.getuid?.() === 0 ? 'user root;' : ''}
daemon off;
master_process on;
worker_processes ${opts.workers};
pid ${dir}/nginx.pid;
error_log ${dir}/logs/error.log warn;
events { worker_connections 4096; }
http {
  types {}
  default_type application/octet-stream;
  client_body_temp_path ${dir}/tmp/body;
  proxy_temp_path ${dir}/tmp/proxy;
  fastcgi_temp_path ${dir}/tmp/fastcgi;
  uwsgi_temp_path ${dir}/tmp/uwsgi;
  scgi_temp_path ${dir}/tmp/scgi;
  log_format count '$request_method $uri $status $body_bytes_sent $request_time';
  ${accessLog ? `access_log ${accessLog} count;` : 'access_log off;'}
  keepalive_requests 1000000;
  keepalive_timeout 60s;
  server_tokens off;
  ${opts.httpExtra ?? ''}
  server {
    listen 127.0.0.1:${port};
    ${opts.server.replaceAll('PREFIX', dir)}
  }
}
`;
  const confFile = join(dir, 'nginx.conf');
  writeFileSync(confFile, conf);
  const child = spawnTracked(NGINX, ['-p', dir, '-c', confFile, '-e', join(dir, 'logs/error.log')], { stdio: ['ignore', 'ignore', 'inherit'], group: true });
  scope.teardown(() => stopChild(child, 'SIGTERM'));
  const spawnError = new Promise<never>((_, reject) => child.once('error', reject));
  const url = `http://127.0.0.1:${port}`;
  const ready = poll(async () => {
    if (child.exitCode !== null) throw new Error(`nginx ${opts.name} exited with ${child.exitCode}: ${readTail(join(dir, 'logs/error.log'))}`);
    try {
      const res = await fetch(`${url}/nginx-ready-probe`, { signal: AbortSignal.timeout(1_000) });
      await res.arrayBuffer();
      return true;
    } catch {
      return undefined;
    }
  }, 10_000);
  if (!(await Promise.race([ready, spawnError]))) throw new Error(`nginx ${opts.name} not ready after 10 s: ${readTail(join(dir, 'logs/error.log'))}`);
  return { url, port, pid: child.pid ?? 0, dir, accessLog };
}

function readTail(file: string): string {
  return existsSync(file) ? readFileSync(file, 'utf8').split('\n').slice(-10).join('\n') : '';
}

/** A reverse proxy to `origin` that streams (no buffering either way) and logs every request. */
export function startFront(scope: Scope, origin: string): Promise<Nginx> {
  const host = new URL(origin).host;
  return startNginx(scope, {
    name: 'front',
    workers: 1,
    accessLog: true,
    httpExtra: `upstream origin { server ${host}; keepalive 64; }`,
    server: `
    client_max_body_size 0;
    proxy_buffering off;
    proxy_request_buffering off;
    proxy_http_version 1.1;
    proxy_set_header Connection "";
    proxy_set_header Host $http_host;
    proxy_read_timeout 300s;
    location / { proxy_pass http://origin; }`,
  });
}

export interface StaticManifest {
  /** URL paths that serve it: /v2/NAME/manifests/TAG and /v2/NAME/manifests/DIGEST. */
  paths: string[];
  digest: string;
}

/**
 * Serves `root` (laid out as v2/NAME/blobs/DIGEST and v2/NAME/manifests/REF files) with sendfile: blobs
 * as application/octet-stream with the digest from their path, manifests as `mediaType` (every one of
 * them: default_type takes no variable) with their digest from a map keyed by path.
 */
export function startStatic(scope: Scope, root: string, manifests: StaticManifest[], mediaType: string, workers: number): Promise<Nginx> {
  const q = (s: string) => `"${s.replace(/["\\]/g, '\\$&')}"`;
  const entries = (f: (m: StaticManifest) => string) => manifests.flatMap((m) => m.paths.map((p) => `    ${q(p)} ${q(f(m))};`)).join('\n');
  return startNginx(scope, {
    name: 'static',
    workers,
    httpExtra: `
  sendfile on;
  tcp_nopush on;
  map_hash_bucket_size 256;
  map $uri $manifest_digest {
    default "";
${entries((m) => m.digest)}
  }`,
    server: `
    root ${root};
    location ~ "^/v2/.+/blobs/(sha256:[0-9a-f]{64})$" {
      add_header Docker-Content-Digest $1 always;
    }
    location ~ ^/v2/.+/manifests/[^/]+$ {
      default_type ${mediaType};
      add_header Docker-Content-Digest $manifest_digest always;
    }
    location / { return 404; }`,
  });
}
