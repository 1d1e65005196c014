// A PostgreSQL server of the test's own (Debian's binaries, a data directory in a temp dir, a free
// port on 127.0.0.1, trust auth), for tests that stop and start the server itself: the machine's
// shared server on 5432 is never touched. PostgreSQL refuses to run as root, so under root the
// server runs as the `postgres` system user, owner of the temp dir.
import { execFileSync } from 'node:child_process';
import { chownSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';

interface Teardownable {
  teardown(fn: () => unknown): void;
}

export interface PrivatePostgres {
  /** postgres://postgres@127.0.0.1:PORT/postgres */
  url: string;
  port: number;
  /** pg_ctl stop -m fast: clients are disconnected, the port refuses connections. */
  stop(): void;
  /** pg_ctl start -w: returns once the server accepts connections, on the same port. */
  start(): void;
}

function binDir(): string {
  const versions = readdirSync('/usr/lib/postgresql').sort((a, b) => Number(b) - Number(a));
  if (versions.length === 0) throw new Error('no PostgreSQL under /usr/lib/postgresql (apt-get install postgresql)');
  return `/usr/lib/postgresql/${versions[0]}/bin`;
}

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

export async function startPrivatePostgres(t: Teardownable): Promise<PrivatePostgres> {
  const bin = binDir();
  const root = mkdtempSync(join(tmpdir(), 'wharf-pg-'));
  const asRoot = userInfo().uid === 0;
  if (asRoot) {
    const ids = execFileSync('id', ['-u', 'postgres'], { encoding: 'utf8' }).trim();
    const gid = execFileSync('id', ['-g', 'postgres'], { encoding: 'utf8' }).trim();
    chownSync(root, Number(ids), Number(gid));
  }
  const run = (tool: string, args: string[]): void => {
    const [cmd, full] = asRoot ? ['runuser', ['-u', 'postgres', '--', join(bin, tool), ...args]] : [join(bin, tool), args];
    execFileSync(cmd, full, { stdio: ['ignore', 'pipe', 'pipe'], timeout: 60_000 });
  };
  const data = join(root, 'data');
  const port = await freePort();
  run('initdb', ['-D', data, '-U', 'postgres', '--auth=trust', '--no-sync', '-E', 'UTF8']);
  // Unix socket in the temp dir; no fsync: the data dies with the test.
  const options = `-p ${port} -k ${root} -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off`;
  let running = false;
  const start = (): void => {
    run('pg_ctl', ['-D', data, '-l', join(root, 'log'), '-o', options, '-w', '-t', '30', 'start']);
    running = true;
  };
  const stop = (): void => {
    run('pg_ctl', ['-D', data, '-m', 'fast', '-w', '-t', '30', 'stop']);
    running = false;
  };
  start();
  t.teardown(() => {
    try {
      if (running) stop();
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });
  return { url: `postgres://postgres@127.0.0.1:${port}/postgres`, port, stop, start };
}
