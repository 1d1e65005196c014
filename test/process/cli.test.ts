// The CLI as users run it: a real process, real exit codes, real signals.
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { request, type IncomingMessage } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import t from 'tap';
import { ensureBuilt } from '../helpers/build.js';

const root = fileURLToPath(new URL('../../', import.meta.url));
const TSX_MAIN = ['--import', 'tsx', 'src/main.ts'];

// Spawns start tsx and the app: generous, but every wait below is bounded.
t.setTimeout(180_000);

interface Started {
  child: ChildProcess;
  out: { stdout: string; stderr: string };
  exited: Promise<number | null>;
  /** Resolves with the first match in stdout; rejects on timeout or if the process exits first. */
  waitForStdout(re: RegExp, ms?: number): Promise<RegExpMatchArray>;
}

/** The parent's environment without WHARF_* (a developer's shell must not change the results). */
function cleanEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('WHARF_')));
  return { ...env, ...extra };
}

function start(t: Tap, args: string[], env: Record<string, string> = {}, node = TSX_MAIN): Started {
  const child = spawn(process.execPath, [...node, ...args], { cwd: root, env: cleanEnv(env), stdio: 'pipe' });
  const out = { stdout: '', stderr: '' };
  child.stdout.setEncoding('utf8').on('data', (s: string) => (out.stdout += s));
  child.stderr.setEncoding('utf8').on('data', (s: string) => (out.stderr += s));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  t.teardown(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  const waitForStdout = (re: RegExp, ms = 30_000) =>
    new Promise<RegExpMatchArray>((resolve, reject) => {
      const check = () => {
        const m = re.exec(out.stdout);
        if (m) {
          done();
          resolve(m);
        }
      };
      const timer = setTimeout(() => {
        done();
        reject(new Error(`no ${re} on stdout within ${ms} ms\nstdout: ${out.stdout}\nstderr: ${out.stderr}`));
      }, ms);
      const onExit = (code: number | null) => {
        done();
        reject(new Error(`exited (${code}) before ${re}\nstdout: ${out.stdout}\nstderr: ${out.stderr}`));
      };
      const done = () => {
        clearTimeout(timer);
        child.stdout.off('data', check);
        child.off('exit', onExit);
      };
      child.stdout.on('data', check);
      child.on('exit', onExit);
      check();
    });
  return { child, out, exited, waitForStdout };
}

/** What the helpers need of a test: a place to register clean-up. */
interface Tap {
  teardown(fn: () => unknown): void;
}

/** Runs the CLI to completion (bounded) and returns its exit code and output. */
async function run(t: Tap, args: string[], env: Record<string, string> = {}, node = TSX_MAIN) {
  const p = start(t, args, env, node);
  const code = await within(p.exited, 30_000, `wharf ${args.join(' ')}`);
  return { code, ...p.out };
}

function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: not done within ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

function tempDataDir(t: Tap): string {
  const dir = mkdtempSync(join(tmpdir(), 'wharf-cli-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

t.test('verify-config: a valid file prints "FILE: ok" and exits 0', async (t) => {
  const r = await run(t, ['verify-config', 'examples/embedded.yaml', 'config/wharf.yaml']);
  t.equal(r.code, 0, r.stderr);
  t.equal(r.stdout, 'examples/embedded.yaml: ok\nconfig/wharf.yaml: ok\n');
});

t.test('verify-config: an invalid file lists every violation and exits 1', async (t) => {
  const dir = t.testdir({ 'bad.yaml': 'listen: nowhere\nstorage:\n  pathh: /srv\nlog:\n  level: loud\n' });
  const file = join(dir, 'bad.yaml');
  // WHARF_* variables are not applied by verify-config: this one would be a violation of its own.
  const r = await run(t, ['verify-config', file], { WHARF_NOT_A_KEY: '1' });
  t.equal(r.code, 1);
  const lines = r.stderr.trim().split('\n');
  t.equal(lines.length, 3, r.stderr);
  t.match(r.stderr, `${file}: listen: invalid value "nowhere"`);
  t.match(r.stderr, `${file}: storage.pathh: unknown key (line 3)`);
  t.match(r.stderr, `${file}: log.level: must be one of fatal, error, warn, info, debug, trace, silent, got "loud" (line 5)`);
  t.notMatch(r.stdout, 'ok');
});

t.test('verify-config: a YAML syntax error is reported with its line', async (t) => {
  const dir = t.testdir({ 'broken.yaml': 'storage:\n  path: [./data\n' });
  const r = await run(t, ['verify-config', join(dir, 'broken.yaml')]);
  t.equal(r.code, 1);
  t.match(r.stderr, /broken\.yaml: line \d+, column \d+: /);
});

t.test('verify-config without a file is a usage error', async (t) => {
  const r = await run(t, ['verify-config']);
  t.equal(r.code, 2);
  t.match(r.stderr, 'wharf: verify-config needs a FILE');
});

t.test('print-schema prints the JSON schema', async (t) => {
  const r = await run(t, ['print-schema']);
  t.equal(r.code, 0, r.stderr);
  const schema = JSON.parse(r.stdout) as { properties: Record<string, { default?: unknown }> };
  t.equal(schema.properties.listen?.default, '0.0.0.0:5000');
});

t.test('--help prints the usage and exits 0', async (t) => {
  const r = await run(t, ['--help']);
  t.equal(r.code, 0);
  t.match(r.stdout, /^Usage: wharf <command>/);
  t.match(r.stdout, 'verify-config');
});

t.test('an unknown command prints a clear error and exits 2', async (t) => {
  const r = await run(t, ['frobnicate']);
  t.equal(r.code, 2);
  t.match(r.stderr, "wharf: unknown command 'frobnicate'");
});

t.test('an unknown flag prints a clear error and exits 2', async (t) => {
  const r = await run(t, ['serve', '--lissten', ':5000']);
  t.equal(r.code, 2);
  t.match(r.stderr, "wharf: Unknown option '--lissten'");
});

t.test('serve refuses an invalid configuration, listing every violation', async (t) => {
  const r = await run(t, ['serve', '--listen', 'nowhere'], { WHARF_LOG_LEVEL: 'loud', WHARF_STORAGE_PATHH: '/x' });
  t.equal(r.code, 1);
  t.match(r.stderr, 'wharf: invalid configuration (3 problems)');
  t.match(r.stderr, 'WHARF_STORAGE_PATHH: unknown environment variable');
  t.match(r.stderr, 'log.level: must be one of');
  t.match(r.stderr, 'listen: invalid value "nowhere"');
});

t.test('serve reads the file named by WHARF_CONFIG when --config is not given', async (t) => {
  const dir = t.testdir({ 'wharf.yaml': 'storage:\n  pathh: /srv\n' });
  const r = await run(t, ['serve'], { WHARF_CONFIG: join(dir, 'wharf.yaml') });
  t.equal(r.code, 1);
  t.match(r.stderr, `wharf: invalid configuration in ${join(dir, 'wharf.yaml')} (1 problem):\n  storage.pathh: unknown key (line 2)`);
});

/** A request whose body is sent in two parts, so that it can be held open across a signal. */
function slowPush(url: string, body: Buffer) {
  const digest = `sha256:${createHash('sha256').update(body).digest('hex')}`;
  const req = request(`${url}/v2/cli-test/app/blobs/uploads/?digest=${digest}`, {
    method: 'POST',
    agent: false,
    headers: { 'content-type': 'application/octet-stream', 'content-length': body.length, expect: '100-continue' },
  });
  const response = new Promise<IncomingMessage>((resolve, reject) => {
    req.on('response', resolve);
    req.on('error', reject);
  });
  response.catch(() => {}); // awaited (or deliberately not) by the test
  // The server answers 100 Continue once it has the headers: from then on the request is in flight.
  const inFlight = new Promise<void>((resolve) => req.on('continue', () => resolve()));
  req.flushHeaders();
  return {
    digest,
    response,
    inFlight: inFlight.then(() => {
      req.write(body.subarray(0, body.length / 2));
    }),
    finish: () => req.end(body.subarray(body.length / 2)),
  };
}

t.test('serve: listens, answers /v2/, and on SIGTERM lets an in-flight push finish, then exits 0', async (t) => {
  const data = tempDataDir(t);
  const p = start(t, ['serve', '--listen', '127.0.0.1:0', '--data', data], { WHARF_LOG_LEVEL: 'warn' });
  const [, url] = await p.waitForStdout(/^listening on (http:\/\/127\.0\.0\.1:\d+)$/m);

  const res = await within(fetch(`${url}/v2/`), 10_000, 'GET /v2/');
  t.equal(res.status, 200);
  t.equal(res.headers.get('docker-distribution-api-version'), 'registry/2.0');
  await res.body?.cancel();

  const push = slowPush(url!, Buffer.alloc(64 * 1024, 'w'));
  await within(push.inFlight, 10_000, 'upload in flight');
  p.child.kill('SIGTERM');
  await p.waitForStdout(/SIGTERM received: closing/, 10_000);
  push.finish();
  const pushed = await within(push.response, 10_000, 'upload response');
  t.equal(pushed.statusCode, 201, 'the push started before SIGTERM completed');
  t.equal(pushed.headers['docker-content-digest'], push.digest);
  pushed.resume();

  t.equal(await within(p.exited, 10_000, 'exit after SIGTERM'), 0, p.out.stderr);
  t.match(p.out.stdout, /^closed$/m);
});

t.test('serve: a request still in flight after shutdownTimeoutMs does not keep the process alive: exit 1', async (t) => {
  const data = tempDataDir(t);
  const p = start(t, ['serve', '--listen', '127.0.0.1:0', '--data', data], {
    WHARF_LOG_LEVEL: 'silent',
    WHARF_SHUTDOWN_TIMEOUT_MS: '300',
  });
  const [, url] = await p.waitForStdout(/^listening on (http:\/\/127\.0\.0\.1:\d+)$/m);
  const push = slowPush(url!, Buffer.alloc(1024, 'z'));
  await within(push.inFlight, 10_000, 'upload in flight');
  const signalled = Date.now();
  p.child.kill('SIGTERM');
  t.equal(await within(p.exited, 10_000, 'exit after the shutdown timeout'), 1);
  t.ok(Date.now() - signalled >= 300, 'waited for the shutdown timeout first');
  t.match(p.out.stderr, 'still busy after 300 ms: dropping the remaining connections');
  await t.rejects(push.response, 'the unfinished request was cut off');
});

t.test('bin/wharf.js runs the compiled CLI', async (t) => {
  const distMain = join(root, 'dist', 'main.js');
  t.before(() => ensureBuilt((m) => t.comment(m)));

  t.test('print-schema', async (t) => {
    const r = await run(t, ['print-schema'], {}, ['bin/wharf.js']);
    t.equal(r.code, 0, r.stderr);
    t.ok((JSON.parse(r.stdout) as { properties: object }).properties, 'a JSON schema');
  });

  t.test('verify-config exit status', async (t) => {
    const r = await run(t, ['verify-config', 'examples/development.yaml'], {}, ['bin/wharf.js']);
    t.equal(r.code, 0, r.stderr);
    t.equal(r.stdout, 'examples/development.yaml: ok\n');
    const dir = t.testdir({ 'bad.yaml': 'listen: 5000\n' });
    t.equal((await run(t, ['verify-config', join(dir, 'bad.yaml')], {}, ['bin/wharf.js'])).code, 1);
  });
});
