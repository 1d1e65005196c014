// Real container clients (podman, containerd + ctr, dockerd + docker) configured the way production
// installs point them at a docker.io mirror, but isolated from the host: every store, socket, state
// and config file lives in a temp dir given by the caller, and podman, containerd and dockerd run in a
// private mount namespace whose /run and /var/lib are directories of that temp dir too (the sandbox), so
// a path they hard-code (dockerd 20.10's /run/docker/plugins, containerd's /run/containerd/s) is never
// created on the host, and another containerd or dockerd on the host is never seen or touched.
// Commands are bounded by timeouts (SIGKILL), daemons run in their own process group and are stopped
// in t.teardown (SIGTERM, then SIGKILL of the group) and at process exit. Nothing here removes a path
// it did not create: the caller removes its temp dir.
//
// Debian packages: skopeo, podman, containerd (containerd + ctr), docker.io (dockerd + docker),
// util-linux and mount (unshare, mount: always there). Runs as root (the mount namespace needs it).
// A missing binary throws an error naming the package to install (never a skip).
import { spawn, type ChildProcess } from 'node:child_process';
import { accessSync, closeSync, constants, mkdirSync, openSync, readdirSync, readFileSync, readlinkSync, writeFileSync } from 'node:fs';
import { delimiter, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { waitExit } from './docker-registry.js';

interface Teardownable {
  teardown(fn: () => unknown): void;
}

/** Which Debian package provides each client binary. */
export const DEBIAN_PACKAGE: Record<string, string> = {
  skopeo: 'skopeo',
  podman: 'podman',
  containerd: 'containerd',
  ctr: 'containerd',
  dockerd: 'docker.io',
  docker: 'docker.io',
  unshare: 'util-linux',
};

/** Full path of `name` in PATH (plus the sbin dirs, where Debian puts dockerd), or undefined. */
export function findBinary(name: string): string | undefined {
  const dirs = [...(process.env.PATH ?? '').split(delimiter), '/usr/local/sbin', '/usr/sbin', '/sbin'];
  for (const dir of dirs) {
    if (!dir) continue;
    const p = join(dir, name);
    try {
      accessSync(p, constants.X_OK);
      return p;
    } catch {
      // not here
    }
  }
  return undefined;
}

/** Full path of `name`; throws "X not found: apt-get install ... PKG" when it is missing. */
export function requireBinary(name: string): string {
  const p = findBinary(name);
  if (p) return p;
  const pkg = DEBIAN_PACKAGE[name] ?? name;
  throw new Error(
    `${name} not found in PATH: the mirror-clients e2e tests need it ` +
      `(Debian/Ubuntu: apt-get install -y --no-install-recommends ${pkg})`,
  );
}

export interface RunResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  ms: number;
}

export interface RunOptions {
  env?: NodeJS.ProcessEnv;
  /** SIGKILL after this long (default 120 s). */
  timeoutMs?: number;
  cwd?: string;
}

const MAX_OUTPUT = 4 * 1024 * 1024;

/** Runs a command to completion (stdin closed), bounded by a timeout. Never throws for a non-zero exit. */
export function run(bin: string, args: string[], opts: RunOptions = {}): Promise<RunResult> {
  const started = Date.now();
  return new Promise((resolve, reject) => {
    const child = spawn(bin, args, {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: opts.env ?? process.env,
      ...(opts.cwd ? { cwd: opts.cwd } : {}),
    });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => {
      if (stdout.length < MAX_OUTPUT) stdout += d;
    });
    child.stderr.setEncoding('utf8').on('data', (d: string) => {
      if (stderr.length < MAX_OUTPUT) stderr += d;
    });
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, opts.timeoutMs ?? 120_000);
    child.once('error', (err: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      if (err.code === 'ENOENT') {
        const name = bin.split('/').pop() ?? bin;
        reject(new Error(`${bin}: not found (apt-get install -y --no-install-recommends ${DEBIAN_PACKAGE[name] ?? name})`));
      } else reject(err);
    });
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      if (timedOut) stderr += `\n[killed after ${opts.timeoutMs ?? 120_000} ms]`;
      resolve({ code, signal, stdout, stderr, ms: Date.now() - started });
    });
  });
}

/** run(), throwing (with the command line and its output) unless it exits 0. */
export async function runOk(bin: string, args: string[], opts: RunOptions = {}): Promise<RunResult> {
  const r = await run(bin, args, opts);
  if (r.code !== 0) {
    throw new Error(
      `${bin} ${args.join(' ')} failed (code ${String(r.code)}, signal ${String(r.signal)}, ${r.ms} ms)\n` +
        `stderr:\n${r.stderr.slice(-8000)}\nstdout:\n${r.stdout.slice(-4000)}`,
    );
  }
  return r;
}

/** A minimal environment whose HOME, TMPDIR and XDG dirs are under `root` (created). */
export function isolatedEnv(root: string, extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  const home = join(root, 'home');
  const tmp = join(root, 'tmp');
  const runtime = join(root, 'xdg-run');
  for (const d of [home, tmp, runtime]) mkdirSync(d, { recursive: true, mode: 0o700 });
  return {
    PATH: process.env.PATH ?? '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
    HOME: home,
    TMPDIR: tmp,
    XDG_RUNTIME_DIR: runtime,
    XDG_CONFIG_HOME: join(home, '.config'),
    XDG_DATA_HOME: join(home, '.local', 'share'),
    XDG_CACHE_HOME: join(home, '.cache'),
    ...extra,
  };
}

/**
 * containers-registries.conf(5) making `mirrorHost` (127.0.0.1:PORT, plain HTTP) the mirror of
 * docker.io, with docker.io itself blocked: a failing mirror never falls back to the real Hub.
 */
export function mirrorRegistriesConf(mirrorHost: string): string {
  return [
    'unqualified-search-registries = ["docker.io"]',
    '',
    '[[registry]]',
    'prefix = "docker.io"',
    'location = "docker.io"',
    'blocked = true',
    '',
    '[[registry.mirror]]',
    `location = "${mirrorHost}"`,
    'insecure = true',
    '',
  ].join('\n');
}

// ---------------------------------------------------------------------------------------------
// The sandbox

/**
 * A private mount namespace in which the host's /run and /var/lib are replaced by directories under
 * `root` (bind mounts, private propagation: the host never sees them, and they go when the last process
 * in the namespace exits). What a client writes there instead of the host stays in `root`.
 */
export interface Sandbox {
  /** Host path → the directory standing for it inside the namespace. */
  dirs: Readonly<Record<'/run' | '/var/lib', string>>;
  /** The command line that runs `bin args` inside a fresh namespace. */
  wrap(bin: string, args: string[]): [string, string[]];
  /** Files and directories written under the sandbox dirs, as the paths they had inside (e.g. /run/docker/plugins). */
  writes(): string[];
}

export function makeSandbox(root: string): Sandbox {
  const unshare = requireBinary('unshare');
  const dirs = { '/run': join(root, 'sandbox', 'run'), '/var/lib': join(root, 'sandbox', 'var-lib') } as const;
  for (const d of Object.values(dirs)) mkdirSync(d, { recursive: true });
  // $1 and $2 are the directories, the rest is the command; exec keeps the pid (and process group) the same.
  // -n: libmount keeps no record (it would create /run/mount on the host before /run is replaced).
  const script = 'mount -n --bind "$1" /run && mount -n --bind "$2" /var/lib && shift 2 && exec "$@"';
  const list = (dir: string, shown: string): string[] =>
    readdirSync(dir, { withFileTypes: true }).flatMap((e) => [
      `${shown}/${e.name}`,
      ...(e.isDirectory() ? list(join(dir, e.name), `${shown}/${e.name}`) : []),
    ]);
  return {
    dirs,
    wrap: (bin, args) => [
      unshare,
      ['--mount', '--propagation', 'private', '--', '/bin/sh', '-c', script, 'sandbox', dirs['/run'], dirs['/var/lib'], bin, ...args],
    ],
    writes: () => Object.entries(dirs).flatMap(([shown, dir]) => list(dir, shown)),
  };
}

/** Whether process `pid` lives in another mount namespace than this process (so in its sandbox). */
export function inOwnMountNamespace(pid: number): boolean {
  return readlinkSync(`/proc/${pid}/ns/mnt`) !== readlinkSync('/proc/self/ns/mnt');
}

// ---------------------------------------------------------------------------------------------
// Daemons

interface Daemon {
  child: ChildProcess;
  logFile: string;
  /** SIGTERM, wait up to 15 s, then SIGKILL the whole process group. Idempotent. */
  stop(): Promise<void>;
}

/** Process groups of daemons still running, killed if the test process exits without teardown. */
const liveGroups = new Set<number>();
process.once('exit', () => {
  for (const pgid of liveGroups) {
    try {
      process.kill(-pgid, 'SIGKILL');
    } catch {
      // gone
    }
  }
});

function groupAlive(pgid: number): boolean {
  try {
    process.kill(-pgid, 0);
    return true;
  } catch {
    return false;
  }
}

function exited(child: ChildProcess): boolean {
  return child.exitCode !== null || child.signalCode !== null;
}

export function tailLog(file: string, lines = 40): string {
  try {
    return readFileSync(file, 'utf8').split('\n').slice(-lines).join('\n');
  } catch {
    return '';
  }
}

async function startDaemon(
  t: Teardownable,
  name: string,
  sandbox: Sandbox,
  bin: string,
  args: string[],
  env: NodeJS.ProcessEnv,
  logFile: string,
  ready: () => Promise<boolean>,
  readyTimeoutMs: number,
): Promise<Daemon> {
  const fd = openSync(logFile, 'a');
  let child: ChildProcess;
  try {
    // detached: its own process group, so children it spawns (dockerd's containerd) can be reaped.
    const [wrapper, wrapped] = sandbox.wrap(bin, args);
    child = spawn(wrapper, wrapped, { stdio: ['ignore', fd, fd], env, detached: true });
  } finally {
    closeSync(fd);
  }
  const pgid = child.pid;
  if (pgid !== undefined) liveGroups.add(pgid);
  let stopped: Promise<void> | undefined;
  const stop = (): Promise<void> =>
    (stopped ??= (async () => {
      if (!exited(child)) {
        child.kill('SIGTERM');
        if (!(await waitExit(child, 15_000))) child.kill('SIGKILL');
        await waitExit(child, 5_000);
      }
      if (pgid !== undefined) {
        // Anything of its group left behind (e.g. a containerd whose dockerd was killed).
        for (let i = 0; i < 50 && groupAlive(pgid); i++) {
          try {
            process.kill(-pgid, i < 30 ? 'SIGTERM' : 'SIGKILL');
          } catch {
            break;
          }
          await sleep(100);
        }
        liveGroups.delete(pgid);
      }
    })());
  t.teardown(stop);

  const spawnError = new Promise<never>((_, reject) => {
    child.once('error', (err: NodeJS.ErrnoException) => {
      reject(err.code === 'ENOENT' ? new Error(`${bin}: not found (apt-get install -y --no-install-recommends ${DEBIAN_PACKAGE[name] ?? name})`) : err);
    });
  });
  const waitReady = async (): Promise<void> => {
    const deadline = Date.now() + readyTimeoutMs;
    while (Date.now() < deadline) {
      if (exited(child)) {
        throw new Error(`${name} exited early (code ${String(child.exitCode)}, signal ${String(child.signalCode)})\n${tailLog(logFile)}`);
      }
      if (await ready()) {
        if (!inOwnMountNamespace(child.pid!)) throw new Error(`${name} (pid ${child.pid}) is not in its own mount namespace`);
        return;
      }
      await sleep(100);
    }
    throw new Error(`${name} not ready after ${readyTimeoutMs} ms\n${tailLog(logFile)}`);
  };
  try {
    await Promise.race([waitReady(), spawnError]);
  } catch (err) {
    await stop();
    throw err;
  }
  return { child, logFile, stop };
}

// ---------------------------------------------------------------------------------------------
// podman

export type Runner = (args: string[], opts?: { timeoutMs?: number }) => Promise<RunResult>;

export interface Podman {
  root: string;
  /** Runs podman with the isolated globals, in its sandbox; throws unless it exits 0. */
  podman: Runner;
  policy: string;
  /** Its image store (vfs graph root). */
  storage: string;
  sandbox: Sandbox;
}

/**
 * A rootful podman whose storage (vfs), run root, tmp dir, locks (file locks instead of the shared
 * /dev/shm/libpod_lock), events log, network config, auth file and blob info cache all live under
 * `root`, and whose registries.conf mirrors docker.io to `mirrorHost`.
 */
export function makePodman(root: string, mirrorHost: string): Podman {
  const bin = requireBinary('podman');
  mkdirSync(root, { recursive: true });
  const p = (...s: string[]): string => join(root, ...s);
  for (const d of ['storage', 'runroot', 'tmp', 'net', 'volumes']) mkdirSync(p(d), { recursive: true });
  writeFileSync(p('registries.conf'), mirrorRegistriesConf(mirrorHost));
  writeFileSync(p('policy.json'), JSON.stringify({ default: [{ type: 'insecureAcceptAnything' }] }));
  writeFileSync(p('auth.json'), '{"auths":{}}\n');
  writeFileSync(
    p('storage.conf'),
    `[storage]\ndriver = "vfs"\nrunroot = "${p('runroot')}"\ngraphroot = "${p('storage')}"\n`,
  );
  writeFileSync(
    p('containers.conf'),
    [
      '[engine]',
      'cgroup_manager = "cgroupfs"',
      'events_logger = "file"',
      `events_logfile_path = "${p('events.log')}"`,
      `tmp_dir = "${p('tmp')}"`,
      `image_copy_tmp_dir = "${p('tmp')}"`,
      `volume_path = "${p('volumes')}"`,
      'lock_type = "file"',
      '[network]',
      // netavark (the default) keeps its rootful run dir at /run/containers/networks whatever the
      // config says; CNI has no such dir. Pulls do not touch networking either way.
      'network_backend = "cni"',
      `network_config_dir = "${p('net')}"`,
      '',
    ].join('\n'),
  );
  const env = isolatedEnv(root, {
    CONTAINERS_REGISTRIES_CONF: p('registries.conf'),
    CONTAINERS_STORAGE_CONF: p('storage.conf'),
    CONTAINERS_CONF: p('containers.conf'),
    REGISTRY_AUTH_FILE: p('auth.json'),
    // As in test/helpers/skopeo.ts: with euid 0, containers/image keeps its blob info cache in
    // /var/lib/containers/cache; a non-zero "rootless uid" moves it under XDG_DATA_HOME (our temp
    // HOME). podman itself stays rootful (its rootless check is euid != 0).
    _CONTAINERS_ROOTLESS_UID: '1000',
  });
  const globals = [
    '--root', p('storage'),
    '--runroot', p('runroot'),
    '--storage-driver', 'vfs',
    '--tmpdir', p('tmp'),
    '--cgroup-manager', 'cgroupfs',
    '--events-backend', 'file',
  ];
  const sandbox = makeSandbox(root);
  return {
    root,
    policy: p('policy.json'),
    storage: p('storage'),
    sandbox,
    podman: (args, opts = {}) => runOk(...sandbox.wrap(bin, [...globals, ...args]), { env, timeoutMs: opts.timeoutMs ?? 120_000 }),
  };
}

// ---------------------------------------------------------------------------------------------
// containerd + ctr

export interface Containerd {
  pid: number;
  address: string;
  /** Its root (the content store is under it) and state directories. */
  root: string;
  state: string;
  sandbox: Sandbox;
  /** hosts-dir for `ctr images pull --hosts-dir` (holds docker.io/hosts.toml). */
  hostsDir: string;
  logFile: string;
  ctr: Runner;
  stop(): Promise<void>;
}

/**
 * containerd with root, state, sockets and opt dir under `root` (CRI and the snapshotters that need
 * kernel support disabled), and a hosts.toml making `mirrorUrl` (http://127.0.0.1:PORT) the only
 * host for docker.io: `server` is the mirror too, so nothing falls back to registry-1.docker.io.
 * `ca`: the PEM file of the CA that signs an https mirror's certificate (hosts.toml `ca`).
 */
export async function startContainerd(t: Teardownable, root: string, mirrorUrl: string, opts: { ca?: string } = {}): Promise<Containerd> {
  const containerd = requireBinary('containerd');
  const ctrBin = requireBinary('ctr');
  mkdirSync(root, { recursive: true });
  const p = (...s: string[]): string => join(root, ...s);
  const address = p('containerd.sock');
  const hostsDir = p('certs.d');
  mkdirSync(join(hostsDir, 'docker.io'), { recursive: true });
  writeFileSync(
    join(hostsDir, 'docker.io', 'hosts.toml'),
    `server = "${mirrorUrl}"\n\n[host."${mirrorUrl}"]\n  capabilities = ["pull", "resolve"]\n${opts.ca ? `  ca = "${opts.ca}"\n` : ''}`,
  );
  writeFileSync(
    p('config.toml'),
    [
      'version = 2',
      `root = "${p('root')}"`,
      `state = "${p('state')}"`,
      'disabled_plugins = ["io.containerd.grpc.v1.cri", "io.containerd.snapshotter.v1.aufs", ' +
        '"io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.zfs"]',
      '[grpc]',
      `  address = "${address}"`,
      '[ttrpc]',
      `  address = "${address}.ttrpc"`,
      '[debug]',
      `  address = ""`,
      '[metrics]',
      `  address = ""`,
      '[plugins."io.containerd.internal.v1.opt"]',
      `  path = "${p('opt')}"`,
      '',
    ].join('\n'),
  );
  const env = isolatedEnv(root);
  const ctr: Runner = (args, opts = {}) =>
    runOk(ctrBin, ['--address', address, '--namespace', 'wharf-e2e', ...args], { env, timeoutMs: opts.timeoutMs ?? 120_000 });
  const logFile = p('containerd.log');
  const sandbox = makeSandbox(root);
  const daemon = await startDaemon(
    t, 'containerd', sandbox, containerd, ['--config', p('config.toml')], env, logFile,
    async () => (await run(ctrBin, ['--address', address, 'version'], { env, timeoutMs: 3_000 })).code === 0,
    30_000,
  );
  return { pid: daemon.child.pid!, address, root: p('root'), state: p('state'), sandbox, hostsDir, logFile, ctr, stop: daemon.stop };
}

// ---------------------------------------------------------------------------------------------
// dockerd + docker

export interface Dockerd {
  pid: number;
  host: string;
  /** Its --data-root (images) and --exec-root. */
  dataRoot: string;
  execRoot: string;
  sandbox: Sandbox;
  logFile: string;
  docker: Runner;
  stop(): Promise<void>;
}

/**
 * dockerd (which starts its own containerd) with data root, exec root, pid file, socket, trust key
 * and CLI config under `root`; vfs storage, no iptables, no bridge; daemon.json `registry-mirrors`
 * = [mirrorUrl]. Keep the path of `root` short: unix socket paths are limited to 107 bytes.
 */
export async function startDockerd(t: Teardownable, root: string, mirrorUrl: string): Promise<Dockerd> {
  const dockerd = requireBinary('dockerd');
  const dockerBin = requireBinary('docker');
  mkdirSync(root, { recursive: true });
  const p = (...s: string[]): string => join(root, ...s);
  const mirrorHost = new URL(mirrorUrl).host;
  writeFileSync(
    p('daemon.json'),
    JSON.stringify(
      {
        'registry-mirrors': [mirrorUrl],
        'insecure-registries': [mirrorHost],
        // 20.10 creates a libtrust key at /etc/docker/key.json unless told otherwise (config-file only).
        'deprecated-key-path': p('key.json'),
      },
      null,
      2,
    ),
  );
  const host = `unix://${p('docker.sock')}`;
  const env = isolatedEnv(root, { DOCKER_CONFIG: p('cli') });
  mkdirSync(p('cli'), { recursive: true });
  const docker: Runner = (args, opts = {}) =>
    runOk(dockerBin, ['-H', host, ...args], { env, timeoutMs: opts.timeoutMs ?? 120_000 });
  const logFile = p('dockerd.log');
  const sandbox = makeSandbox(root);
  const daemon = await startDaemon(
    t, 'dockerd', sandbox, dockerd,
    [
      '--config-file', p('daemon.json'),
      '--data-root', p('data'),
      '--exec-root', p('exec'),
      '--pidfile', p('docker.pid'),
      '-H', host,
      '--storage-driver', 'vfs',
      '--iptables=false',
      '--ip6tables=false',
      '--ip-masq=false',
      '--bridge=none',
    ],
    env, logFile,
    async () => (await run(dockerBin, ['-H', host, 'version'], { env, timeoutMs: 5_000 })).code === 0,
    60_000,
  );
  return { pid: daemon.child.pid!, host, dataRoot: p('data'), execRoot: p('exec'), sandbox, logFile, docker, stop: daemon.stop };
}

// ---------------------------------------------------------------------------------------------
// Access logs

export interface UpstreamHit {
  method: string;
  uri: string;
  status: number;
  userAgent: string;
}

const COMBINED = /^\S+ \S+ \S+ \[[^\]]*\] "(\S+) (\S+) HTTP\/[\d.]+" (\d{3}) \S+ "[^"]*" "([^"]*)"/;

/** docker-registry's combined-format access-log lines from byte `from` of its log file, with user agents. */
export function upstreamHits(logFile: string, from = 0): UpstreamHit[] {
  let text = '';
  try {
    text = readFileSync(logFile).subarray(from).toString('utf8');
  } catch {
    return [];
  }
  const out: UpstreamHit[] = [];
  for (const line of text.split('\n')) {
    const m = COMBINED.exec(line);
    if (m) out.push({ method: m[1]!, uri: m[2]!, status: Number(m[3]), userAgent: m[4]! });
  }
  return out;
}
