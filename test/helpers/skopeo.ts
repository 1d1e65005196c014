// Runs the real skopeo (containers/image) isolated from the host: its own HOME and XDG dirs, an
// accept-anything signature policy, an empty registries.conf and registries.d, its own auth file.
// skopeo must be installed (Debian/Ubuntu: apt-get install skopeo); a missing skopeo throws.
import { execFile as execFileCb } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

const execFile = promisify(execFileCb);
export const SKOPEO = process.env.SKOPEO ?? 'skopeo';
export const SKOPEO_TIMEOUT_MS = 60_000;

export interface SkopeoRun {
  stdout: Buffer;
  stderr: string;
}

export interface SkopeoRunOptions {
  /** Kill skopeo (SIGTERM) after this long; default 60 s. */
  timeoutMs?: number;
}

export type Skopeo = (args: string[], opts?: SkopeoRunOptions) => Promise<SkopeoRun>;

/**
 * An isolated skopeo rooted at `root` (created if needed; the caller removes it). Its blob info
 * cache is at ROOT/home/.local/share/containers/cache.
 */
export function makeSkopeo(root: string): Skopeo {
  const home = join(root, 'home');
  const runtime = join(root, 'run');
  const registriesD = join(root, 'registries.d');
  const tmp = join(root, 'tmp');
  for (const d of [home, runtime, registriesD, tmp]) mkdirSync(d, { recursive: true, mode: 0o700 });
  const policy = join(root, 'policy.json');
  writeFileSync(policy, JSON.stringify({ default: [{ type: 'insecureAcceptAnything' }] }));
  const registriesConf = join(root, 'registries.conf');
  writeFileSync(registriesConf, 'unqualified-search-registries = []\n');
  const authfile = join(root, 'auth.json');
  writeFileSync(authfile, '{"auths":{}}\n');
  const env: NodeJS.ProcessEnv = {
    PATH: process.env.PATH ?? '/usr/local/bin:/usr/bin:/bin',
    HOME: home,
    XDG_RUNTIME_DIR: runtime,
    XDG_CONFIG_HOME: join(home, '.config'),
    XDG_DATA_HOME: join(home, '.local', 'share'),
    XDG_CACHE_HOME: join(home, '.cache'),
    TMPDIR: tmp,
    REGISTRY_AUTH_FILE: authfile,
    CONTAINERS_REGISTRIES_CONF: registriesConf,
    CONTAINERS_POLICY_JSON: policy,
    // containers/image puts its blob info cache (and default sigstore dir) under /var/lib/containers
    // when euid is 0; a non-zero "rootless" uid moves them under XDG_DATA_HOME, i.e. our temp HOME.
    _CONTAINERS_ROOTLESS_UID: String(process.getuid?.() || 1000),
  };
  const globals = [
    '--policy', policy,
    '--registries-conf', registriesConf,
    '--registries.d', registriesD,
    '--tmpdir', tmp,
  ];
  return async function skopeo(args: string[], opts: SkopeoRunOptions = {}): Promise<SkopeoRun> {
    const argv = [...globals, ...args];
    try {
      const { stdout, stderr } = await execFile(SKOPEO, argv, {
        env,
        timeout: opts.timeoutMs ?? SKOPEO_TIMEOUT_MS,
        killSignal: 'SIGKILL',
        maxBuffer: 64 * 1024 * 1024,
        encoding: 'buffer',
      });
      return { stdout, stderr: stderr.toString('utf8') };
    } catch (err) {
      const e = err as NodeJS.ErrnoException & { stderr?: Buffer; stdout?: Buffer; killed?: boolean; signal?: string };
      if (e.code === 'ENOENT') {
        throw new Error(`skopeo not found (${SKOPEO}): install it (e.g. apt-get install skopeo) to run the e2e tests`);
      }
      throw new Error(
        `skopeo ${redact(argv).join(' ')} failed (code ${String(e.code)}${e.killed ? `, killed ${String(e.signal)}` : ''})\n` +
          `stderr:\n${e.stderr?.toString('utf8') ?? ''}\nstdout:\n${e.stdout?.toString('utf8') ?? ''}`,
      );
    }
  };
}

/** Hides the password part of --creds/--src-creds/--dest-creds values in error messages. */
function redact(argv: string[]): string[] {
  return argv.map((a, i) => {
    const prev = argv[i - 1] ?? '';
    if (/^--(src-|dest-)?creds$/.test(prev)) return a.replace(/:.*/, ':***');
    return a.replace(/^(--(?:src-|dest-)?creds=[^:]*):.*/, '$1:***');
  });
}

let shared: { root: string; skopeo: Skopeo } | undefined;

/**
 * Runs skopeo in a process-wide isolated environment (created on first use under the system temp
 * dir, removed when the process exits). Use makeSkopeo for an environment of your own, e.g. to
 * inspect its blob info cache.
 */
export function runSkopeo(args: string[], opts: SkopeoRunOptions = {}): Promise<SkopeoRun> {
  if (!shared) {
    const root = mkdtempSync(join(tmpdir(), 'wharf-skopeo-'));
    process.once('exit', () => rmSync(root, { recursive: true, force: true }));
    shared = { root, skopeo: makeSkopeo(root) };
  }
  return shared.skopeo(args, opts);
}
