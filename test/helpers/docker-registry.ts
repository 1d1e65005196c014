// The real reference registry (distribution 2.8, Debian's docker-registry package: /usr/bin/docker-registry)
// as an upstream for integration tests: filesystem storage in a temp dir, no auth, htpasswd Basic auth
// (bcrypt via bcryptjs) or token auth against test/helpers/token-server.ts, optionally in its own
// pull-through proxy mode. Its combined-format access log (stdout) and its logrus log (stderr) go to
// one file, `logFile`; countRequests parses the access-log lines.
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, existsSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { get as httpGet } from 'node:http';
import { get as httpsGet } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import bcrypt from 'bcryptjs';
import { stringify as toYaml } from 'yaml';
import { OciLayoutWriter, type Descriptor } from './oci-layout.js';
import { runSkopeo } from './skopeo.js';
import { startTokenServer, type TokenServer } from './token-server.js';

export type { TokenServer } from './token-server.js';

export const DOCKER_REGISTRY = process.env.DOCKER_REGISTRY ?? 'docker-registry';
const READY_TIMEOUT_MS = 20_000;
const STOP_TERM_MS = 5_000;
const STOP_KILL_MS = 5_000;

interface Teardownable {
  teardown(fn: () => unknown): void;
}

export interface RegistryUser {
  username: string;
  password: string;
}

export interface DockerRegistryOptions {
  auth?: 'none' | 'basic' | 'token';
  /** Users for basic/token auth; default [{ username: 'wharf', password: 'wharf-secret' }]. */
  users?: RegistryUser[];
  /** Fixed port (default: a free one). */
  port?: number;
  /** Storage root (default: a temp dir removed at teardown; a given one is kept). */
  dataDir?: string;
  /** Run as a pull-through cache of `remoteurl` (distribution's proxy mode). */
  proxy?: { remoteurl: string; username?: string; password?: string };
  /** Token mode only: the token server grants pull to anonymous requests. */
  anonymousPull?: boolean;
  /** Serve HTTPS with this certificate and key (PEM files); url is then https://. */
  tls?: { cert: string; key: string };
}

export interface RequestFilter {
  method?: string;
  /** Matched against the request URI (path and query) as logged. */
  pathIncludes?: string | RegExp;
  status?: number;
}

export interface AccessLogEntry {
  method: string;
  uri: string;
  status: number;
  bytes: number;
}

export interface DockerRegistry {
  /** http://127.0.0.1:PORT */
  url: string;
  /** 127.0.0.1:PORT */
  host: string;
  port: number;
  dataDir: string;
  configFile: string;
  logFile: string;
  users: RegistryUser[];
  /** "user:password" of the first user (for skopeo --creds), undefined without auth. */
  creds?: string;
  tokenServer?: TokenServer;
  /** SIGTERM, then SIGKILL after 5 s; resolves when the process has exited. Idempotent. */
  stop(): Promise<void>;
  /** Starts again on the same port with the same data (after stop()). */
  start(): Promise<void>;
  /** Access-log lines so far (waits until the log stops growing, at most ~2 s). */
  accessLog(): Promise<AccessLogEntry[]>;
  countRequests(filter?: RequestFilter): Promise<number>;
}

export const DEFAULT_USERS: RegistryUser[] = [{ username: 'wharf', password: 'wharf-secret' }];

/** Processes still running, killed if the test process exits without its teardown. */
const live = new Set<ChildProcess>();
process.once('exit', () => {
  for (const c of live) c.kill('SIGKILL');
});

/** A port that was free a moment ago (listen on :0, close). */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as AddressInfo;
      srv.close(() => resolve(port));
    });
  });
}

/**
 * An htpasswd line for the registry. bcryptjs 3 makes "$2b$" hashes; distribution's htpasswd uses
 * golang.org/x/crypto/bcrypt, which accepts "$2a$", "$2b$" and "$2y$" alike (checked against
 * docker-registry 2.8.2). Cost 5 keeps tests fast.
 */
export function htpasswdLine(user: RegistryUser, prefix: '$2a$' | '$2b$' | '$2y$' = '$2y$'): string {
  const hash = bcrypt.hashSync(user.password, 5);
  return `${user.username}:${prefix}${hash.slice(4)}`;
}

const ACCESS_LINE = /^\S+ \S+ \S+ \[[^\]]*\] "(\S+) (\S+) HTTP\/[\d.]+" (\d{3}) (\d+|-)/;

export function parseAccessLog(text: string): AccessLogEntry[] {
  const out: AccessLogEntry[] = [];
  for (const line of text.split('\n')) {
    const m = ACCESS_LINE.exec(line);
    if (!m) continue;
    out.push({ method: m[1]!, uri: m[2]!, status: Number(m[3]), bytes: m[4] === '-' ? 0 : Number(m[4]) });
  }
  return out;
}

/** The status of GET url (an https one without verifying: the test made the certificate). */
function getStatus(url: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = (url.startsWith('https:') ? httpsGet : httpGet)(url, { rejectUnauthorized: false, timeout: 2_000, agent: false }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.once('timeout', () => req.destroy(new Error('timeout')));
    req.once('error', reject);
  });
}

async function waitReady(url: string, child: ChildProcess, logFile: string): Promise<void> {
  const deadline = Date.now() + READY_TIMEOUT_MS;
  while (Date.now() < deadline) {
    if (child.exitCode !== null || child.signalCode !== null) {
      throw new ExitedEarly(child.exitCode, child.signalCode, readLog(logFile));
    }
    try {
      const status = await getStatus(`${url}/v2/`);
      if (status === 200 || status === 401) return;
    } catch {
      // not listening yet
    }
    await sleep(50);
  }
  throw new Error(`docker-registry at ${url} not ready after ${READY_TIMEOUT_MS} ms\n${readLog(logFile)}`);
}

class ExitedEarly extends Error {
  constructor(
    readonly code: number | null,
    readonly signal: string | null,
    readonly log: string,
  ) {
    super(`docker-registry exited early (code ${String(code)}, signal ${String(signal)})\n${log}`);
  }
  get addrInUse(): boolean {
    return /address already in use/i.test(this.log);
  }
}

function readLog(file: string): string {
  try {
    return readFileSync(file, 'utf8').split('\n').slice(-40).join('\n');
  } catch {
    return '';
  }
}

/** Whether `child` exited within `ms`. */
export function waitExit(child: ChildProcess, ms: number): Promise<boolean> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(true);
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      child.off('exit', onExit);
      resolve(false);
    }, ms);
    const onExit = (): void => {
      clearTimeout(timer);
      resolve(true);
    };
    child.once('exit', onExit);
  });
}

export async function startDockerRegistry(t: Teardownable, opts: DockerRegistryOptions = {}): Promise<DockerRegistry> {
  const auth = opts.auth ?? 'none';
  const scheme = opts.tls ? 'https' : 'http';
  const users = opts.users ?? DEFAULT_USERS;
  const root = mkdtempSync(join(tmpdir(), 'wharf-docker-registry-'));
  const dataDir = opts.dataDir ?? join(root, 'data');
  const configFile = join(root, 'config.yml');
  const logFile = join(root, 'registry.log');
  let child: ChildProcess | undefined;
  let port = opts.port ?? 0;

  const stop = async (): Promise<void> => {
    const c = child;
    if (!c) return;
    child = undefined;
    if (c.exitCode === null && c.signalCode === null) {
      c.kill('SIGTERM');
      if (!(await waitExit(c, STOP_TERM_MS))) {
        c.kill('SIGKILL');
        await waitExit(c, STOP_KILL_MS);
      }
    }
    live.delete(c);
  };

  let tokenServer: TokenServer | undefined;
  t.teardown(async () => {
    await stop();
    rmSync(root, { recursive: true, force: true });
  });
  if (auth === 'token') {
    tokenServer = await startTokenServer(t, {
      users,
      service: 'wharf-test-registry',
      issuer: 'wharf-test-issuer',
      anonymousPull: opts.anonymousPull ?? false,
    });
  }

  const config = (p: number): Record<string, unknown> => {
    const cfg: Record<string, unknown> = {
      version: 0.1,
      log: { level: 'info', formatter: 'text', accesslog: { disabled: false } },
      storage: {
        filesystem: { rootdirectory: dataDir },
        delete: { enabled: true },
        maintenance: { uploadpurging: { enabled: false } },
      },
      http: {
        addr: `127.0.0.1:${p}`,
        secret: 'wharf-test-http-secret',
        ...(opts.tls ? { tls: { certificate: opts.tls.cert, key: opts.tls.key } } : {}),
      },
    };
    if (auth === 'basic') {
      const htpasswd = join(root, 'htpasswd');
      if (!existsSync(htpasswd)) writeFileSync(htpasswd, users.map((u) => htpasswdLine(u)).join('\n') + '\n');
      cfg.auth = { htpasswd: { realm: 'wharf-test-registry', path: htpasswd } };
    } else if (auth === 'token') {
      const ts = tokenServer!;
      cfg.auth = {
        token: { realm: ts.realm, service: ts.service, issuer: ts.issuer, rootcertbundle: ts.certFile },
      };
    }
    if (opts.proxy) {
      cfg.proxy = {
        remoteurl: opts.proxy.remoteurl,
        ...(opts.proxy.username !== undefined ? { username: opts.proxy.username } : {}),
        ...(opts.proxy.password !== undefined ? { password: opts.proxy.password } : {}),
      };
    }
    return cfg;
  };

  const spawnOnce = async (p: number): Promise<void> => {
    writeFileSync(configFile, toYaml(config(p)));
    const fd = openSync(logFile, 'a');
    let c: ChildProcess;
    try {
      c = spawn(DOCKER_REGISTRY, ['serve', configFile], {
        stdio: ['ignore', fd, fd],
        // No REGISTRY_* variables from the environment: they would override the config.
        env: { PATH: process.env.PATH ?? '/usr/local/bin:/usr/bin:/bin', HOME: root },
      });
    } finally {
      closeSync(fd);
    }
    live.add(c);
    child = c;
    const spawnError = new Promise<never>((_, reject) => {
      c.once('error', (err: NodeJS.ErrnoException) => {
        reject(
          err.code === 'ENOENT'
            ? new Error(`docker-registry not found (${DOCKER_REGISTRY}): apt-get install docker-registry`)
            : err,
        );
      });
    });
    try {
      await Promise.race([waitReady(`${scheme}://127.0.0.1:${p}`, c, logFile), spawnError]);
    } catch (err) {
      await stop();
      throw err;
    }
  };

  const start = async (): Promise<void> => {
    if (child && child.exitCode === null && child.signalCode === null) return;
    if (child) await stop();
    const fixed = port !== 0;
    for (let attempt = 1; ; attempt++) {
      const p = fixed ? port : await freePort();
      try {
        await spawnOnce(p);
        port = p;
        return;
      } catch (err) {
        if (!(err instanceof ExitedEarly && err.addrInUse) || attempt >= 5) throw err;
        // Another process took the port between our probe and the registry's bind (or a restart
        // on a fixed port raced the old socket): try again.
        if (fixed) await sleep(200 * attempt);
      }
    }
  };

  await start();
  const host = `127.0.0.1:${port}`;

  const accessLog = async (): Promise<AccessLogEntry[]> => {
    // The registry logs a request after its handler returns, which can be after the client has the
    // whole response: wait until the log stops changing (bounded).
    let prev = -1;
    let text = '';
    for (let i = 0; i < 20; i++) {
      text = existsSync(logFile) ? readFileSync(logFile, 'utf8') : '';
      if (text.length === prev) break;
      prev = text.length;
      await sleep(i === 0 ? 30 : 100);
    }
    return parseAccessLog(text);
  };

  const users_ = auth === 'none' ? [] : users;
  return {
    url: `${scheme}://${host}`,
    host,
    port,
    dataDir,
    configFile,
    logFile,
    users: users_,
    ...(users_[0] ? { creds: `${users_[0].username}:${users_[0].password}` } : {}),
    ...(tokenServer ? { tokenServer } : {}),
    stop,
    start,
    accessLog,
    async countRequests(filter: RequestFilter = {}): Promise<number> {
      const entries = await accessLog();
      return entries.filter((e) => {
        if (filter.method && e.method.toUpperCase() !== filter.method.toUpperCase()) return false;
        if (filter.status !== undefined && e.status !== filter.status) return false;
        const p = filter.pathIncludes;
        if (p !== undefined && !(typeof p === 'string' ? e.uri.includes(p) : p.test(e.uri))) return false;
        return true;
      }).length;
    },
  };
}

export interface PushedImage {
  /** Digest of the pushed manifest (or index). */
  manifestDigest: string;
  manifest: Buffer;
  mediaType: string;
  /** Every blob the registry now holds for it: config and layers (of every child, for an index). */
  blobs: Array<{ digest: string; size: number }>;
  /** For an index: its child manifests. */
  children: Array<{ digest: string; size: number; mediaType: string; manifest: Buffer; platform?: Descriptor['platform'] }>;
}

export interface PushOptions {
  /** Content seed (same seed, same digests); default derived from repo and tag. */
  seed?: number | string;
  /** Push a linux/amd64 + linux/arm64 index (`--all`) instead of a single image. */
  index?: boolean;
  /** "user:password" for an auth'd registry; default the registry's first user, if any. */
  creds?: string;
  /** Size of each layer's file, random bytes (e.g. 64 MiB for herd tests); default small random sizes. */
  layerSize?: number;
  /** Layers of a single image (default 3; 1 when layerSize is set). */
  layerCount?: number;
  /** skopeo timeout (default 120 s). */
  timeoutMs?: number;
}

/** Builds a deterministic image (test/helpers/oci-layout.ts) and pushes it with skopeo. */
export async function pushTestImage(
  registry: Pick<DockerRegistry, 'host'> & { creds?: string },
  repo: string,
  tag: string,
  opts: PushOptions = {},
): Promise<PushedImage> {
  const seed = `wharf-push/${String(opts.seed ?? `${repo}:${tag}`)}`;
  const dir = mkdtempSync(join(tmpdir(), 'wharf-push-'));
  try {
    const w = new OciLayoutWriter();
    let result: PushedImage;
    if (opts.index) {
      const index = w.addIndex(
        seed,
        [
          { architecture: 'amd64', os: 'linux' },
          { architecture: 'arm64', os: 'linux' },
        ],
        opts.layerSize !== undefined ? { layerSize: opts.layerSize } : {},
      );
      w.tag(index.descriptor, 'ref');
      result = {
        manifestDigest: index.descriptor.digest,
        manifest: index.indexBytes,
        mediaType: index.descriptor.mediaType,
        blobs: index.children.flatMap((c) => [c.config, ...c.layers]).map(({ digest, size }) => ({ digest, size })),
        children: index.children.map((c) => ({
          digest: c.descriptor.digest,
          size: c.descriptor.size,
          mediaType: c.descriptor.mediaType,
          manifest: c.manifestBytes,
          ...(c.descriptor.platform ? { platform: c.descriptor.platform } : {}),
        })),
      };
    } else {
      const image = w.addImage(seed, {
        layerCount: opts.layerCount ?? (opts.layerSize !== undefined ? 1 : 3),
        ...(opts.layerSize !== undefined ? { layerSize: opts.layerSize } : {}),
      });
      w.tag(image.descriptor, 'ref');
      result = {
        manifestDigest: image.descriptor.digest,
        manifest: image.manifestBytes,
        mediaType: image.descriptor.mediaType,
        blobs: [image.config, ...image.layers].map(({ digest, size }) => ({ digest, size })),
        children: [],
      };
    }
    const layout = join(dir, 'layout');
    w.write(layout);
    const digestFile = join(dir, 'digest');
    const creds = opts.creds ?? registry.creds;
    await runSkopeo(
      [
        'copy', '--quiet', '--dest-tls-verify=false', '--preserve-digests',
        ...(opts.index ? ['--all'] : []),
        ...(creds ? ['--dest-creds', creds] : []),
        '--digestfile', digestFile,
        `oci:${layout}:ref`, `docker://${registry.host}/${repo}:${tag}`,
      ],
      { timeoutMs: opts.timeoutMs ?? 120_000 },
    );
    const pushed = readFileSync(digestFile, 'utf8').trim();
    if (pushed !== result.manifestDigest) {
      throw new Error(`skopeo pushed ${pushed}, expected ${result.manifestDigest}`);
    }
    return result;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
