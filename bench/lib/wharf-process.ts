// A Wharf server process for the benchmarks: `node dist/main.js serve` with a config file of its own, an
// empty data directory in a temp dir, on a port of its own, at its default log level unless told
// otherwise, its stdout and stderr (the log) going to a file in that temp dir.
import { closeSync, existsSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { stringify as toYaml } from 'yaml';
import { poll, spawnTracked, stopChild, type Scope } from './proc.js';

const root = fileURLToPath(new URL('../..', import.meta.url));

export interface WharfProcess {
  url: string;
  pid: number;
  dir: string;
  logFile: string;
  stop(): Promise<void>;
}

/**
 * Starts Wharf with `upstream` as its default upstream (none: every name is local) and waits for its
 * "listening on" line; `config` adds top-level keys (storage, metadata, cluster, gc) to its
 * configuration. BENCH_WHARF_NODE_ARGS adds node flags (e.g. --cpu-prof); BENCH_WHARF_LOG_LEVEL
 * sets log.level (default: Wharf's own, info). No WHARF_* variable of ours reaches it.
 */
export async function startWharf(scope: Scope, opts: { upstream?: string; config?: Record<string, unknown> }): Promise<WharfProcess> {
  const dir = mkdtempSync(join(tmpdir(), 'wharf-bench-wharf-'));
  const data = join(dir, 'data');
  const configFile = join(dir, 'wharf.yaml');
  const logFile = join(dir, 'wharf.log');
  const level = process.env.BENCH_WHARF_LOG_LEVEL;
  writeFileSync(
    configFile,
    toYaml({
      ...(opts.upstream ? { upstreams: [{ name: 'origin', url: opts.upstream, registry: 'docker.io', default: true }] } : {}),
      ...(level ? { log: { level } } : {}),
      ...opts.config,
    }),
  );
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('WHARF_')));
  const nodeArgs = (process.env.BENCH_WHARF_NODE_ARGS ?? '').split(' ').filter(Boolean);
  const fd = openSync(logFile, 'a');
  let child;
  try {
    // Launched with the node flags bin/wharf.js and the Dockerfile give it; BENCH_WHARF_NODE_ARGS come after.
    child = spawnTracked(process.execPath, ['--max-semi-space-size=2', ...nodeArgs, join(root, 'dist/main.js'), 'serve', '--config', configFile, '--listen', '127.0.0.1:0', '--data', data], {
      stdio: ['ignore', fd, fd],
      env,
      cwd: dir,
    });
  } finally {
    closeSync(fd);
  }
  const c = child;
  const stop = async () => {
    await stopChild(c, 'SIGTERM', 10_000);
    rmSync(dir, { recursive: true, force: true });
  };
  scope.teardown(stop);
  const url = await poll(() => {
    if (c.exitCode !== null || c.signalCode !== null) throw new Error(`wharf exited (${c.exitCode ?? c.signalCode}): ${tail(logFile)}`);
    return /listening on (http:\/\/[^\s"]+)/.exec(existsSync(logFile) ? readFileSync(logFile, 'utf8') : '')?.[1];
  }, 30_000, 5);
  if (!url) throw new Error(`wharf did not start within 30 s: ${tail(logFile)}`);
  return { url, pid: c.pid ?? 0, dir, logFile, stop };
}

function tail(file: string): string {
  return existsSync(file) ? readFileSync(file, 'utf8').split('\n').slice(-10).join('\n') : '';
}
