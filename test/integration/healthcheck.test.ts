// `wharf healthcheck` (the container image's HEALTHCHECK) reads the configuration as `serve` does and asks
// /healthz where it listens: a real Wharf on 127.0.0.1:0, the command run in-process through the CLI.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { main } from '../../src/cli/index.js';
import { healthzUrl } from '../../src/cli/healthcheck.js';
import { startWharf } from '../helpers/server.js';

async function cli(args: string[], env: NodeJS.ProcessEnv = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  const code = await main(['healthcheck', ...args], {
    stdout: { write: (s: string) => (stdout += s) },
    stderr: { write: (s: string) => (stderr += s) },
    env,
  });
  return { code, stdout, stderr };
}

function configFile(t: Test, text: string): string {
  const dir = mkdtempSync(join(tmpdir(), 'wharf-hc-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, 'wharf.yaml');
  writeFileSync(file, text);
  return file;
}

async function listenOn(t: Test, server: Server, host = '127.0.0.1'): Promise<number> {
  await new Promise<void>((resolve) => server.listen(0, host, resolve));
  t.teardown(() => new Promise<void>((resolve) => server.close(() => resolve())));
  return (server.address() as AddressInfo).port;
}

/** A port nothing listens on: bound, read back, closed. */
async function closedPort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((resolve) => s.listen(0, '127.0.0.1', resolve));
  const { port } = s.address() as AddressInfo;
  await new Promise<void>((resolve) => s.close(() => resolve()));
  return port;
}

t.test('the healthcheck asks /healthz on the port the config file (WHARF_CONFIG) sets', async (t) => {
  const wharf = await startWharf(t);
  const { port } = new URL(wharf.url);
  // A wildcard listen address is asked on loopback.
  const file = configFile(t, `listen: 0.0.0.0:${port}\nstorage:\n  path: ${wharf.dataDir}\n`);
  const r = await cli([], { WHARF_CONFIG: file });
  t.equal(r.code, 0, r.stderr);
  t.equal(r.stdout, `http://127.0.0.1:${port}/healthz: ok\n`);
  t.equal((await cli(['--config', file])).code, 0, '--config works as for serve');
});

t.test('WHARF_LISTEN and --listen move the healthcheck as they move serve', async (t) => {
  const wharf = await startWharf(t);
  const { port } = new URL(wharf.url);
  const file = configFile(t, `listen: 127.0.0.1:${await closedPort()}\n`);
  t.equal((await cli([], { WHARF_CONFIG: file })).code, 1, 'the file alone names a port nothing answers on');
  t.equal((await cli([], { WHARF_CONFIG: file, WHARF_LISTEN: `127.0.0.1:${port}` })).code, 0, 'WHARF_LISTEN wins over the file');
  t.equal((await cli(['--listen', `127.0.0.1:${port}`], { WHARF_CONFIG: file })).code, 0, '--listen wins over the file');
});

t.test('nothing listening on the configured port is unhealthy, and the message says where it asked', async (t) => {
  const port = await closedPort();
  const r = await cli(['--listen', `127.0.0.1:${port}`]);
  t.equal(r.code, 1);
  t.match(r.stderr, `wharf: healthcheck: http://127.0.0.1:${port}/healthz: `);
  t.match(r.stderr, /ECONNREFUSED/);
});

t.test('an answer other than 200 is unhealthy', async (t) => {
  const port = await listenOn(t, createServer((_req, res) => res.writeHead(503).end('starting')));
  const r = await cli(['--listen', `127.0.0.1:${port}`]);
  t.equal(r.code, 1);
  t.equal(r.stderr, `wharf: healthcheck: http://127.0.0.1:${port}/healthz: HTTP 503\n`);
});

t.test('a server that never answers is unhealthy within --timeout', async (t) => {
  const port = await listenOn(t, createServer(() => {})); // takes the request, never answers
  const r = await cli(['--listen', `127.0.0.1:${port}`, '--timeout', '200']);
  t.equal(r.code, 1);
  t.match(r.stderr, 'no answer within 200 ms');
});

t.test('a server listening on every address ([::]) is found by the healthcheck on IPv4 loopback', async (t) => {
  const port = await listenOn(t, createServer((req, res) => res.writeHead(req.url === '/healthz' ? 200 : 404).end()), '::');
  const r = await cli(['--listen', `[::]:${port}`]);
  t.equal(r.code, 0, r.stderr);
  t.match(r.stdout, '127.0.0.1');
});

t.test('the address asked for each listen value', async (t) => {
  t.equal(healthzUrl('0.0.0.0:5000'), 'http://127.0.0.1:5000/healthz');
  t.equal(healthzUrl(':5000'), 'http://127.0.0.1:5000/healthz');
  t.equal(healthzUrl('[::]:5000'), 'http://127.0.0.1:5000/healthz', 'every address, dual-stack: asked on IPv4 loopback, which a container without IPv6 has');
  t.equal(healthzUrl('10.0.0.7:8080'), 'http://10.0.0.7:8080/healthz');
  t.equal(healthzUrl('[fd00::7]:8080'), 'http://[fd00::7]:8080/healthz');
  t.throws(() => healthzUrl('127.0.0.1:0'), /port 0 picks a free port/);
});

t.test('an invalid configuration is reported as serve reports it, exit 1', async (t) => {
  const file = configFile(t, 'listen: nowhere\n');
  const r = await cli(['--config', file]);
  t.equal(r.code, 1);
  t.match(r.stderr, /invalid configuration/);
});
