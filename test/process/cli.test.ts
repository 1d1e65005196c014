// The CLI as users run it: a real process, real exit codes, real signals.
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, watch, writeFileSync } from 'node:fs';
import { request, type IncomingMessage } from 'node:http';
import { connect, createServer, type AddressInfo, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import t from 'tap';
import { SqliteDatabase } from '../../src/metadata/sqlite-database.js';
import { metadataPath } from '../../src/storage/paths.js';
import { ensureBuilt } from '../helpers/build.js';
import { KUBERNETES_SERVICE_ENV } from '../helpers/kubernetes.js';

const root = fileURLToPath(new URL('../../', import.meta.url));
const TSX_MAIN = ['--import', 'tsx', 'src/main.ts'];

// Spawns start tsx and the app: generous, but every wait below is bounded.
t.setTimeout(600_000);

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

/** Another user to run the CLI as (spawn's uid and gid); the current one when undefined. */
type RunAs = { uid: number; gid: number } | undefined;

function start(t: Tap, args: string[], env: Record<string, string> = {}, node = TSX_MAIN, as: RunAs = undefined): Started {
  // As another user, without tap's process-info hooks: they write to the test runner's own directory.
  const childEnv = as === undefined ? cleanEnv(env) : Object.fromEntries(Object.entries(cleanEnv(env)).filter(([k]) => k !== 'NODE_OPTIONS' && !k.startsWith('_TAPJS')));
  const child = spawn(process.execPath, [...node, ...args], { cwd: root, env: childEnv, stdio: 'pipe', ...as });
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
async function run(t: Tap, args: string[], env: Record<string, string> = {}, node = TSX_MAIN, as: RunAs = undefined) {
  const p = start(t, args, env, node, as);
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
  // A WHARF_* variable that names no key is a warning, as in serve, not a violation.
  const r = await run(t, ['verify-config', file], { WHARF_NOT_A_KEY: '1' });
  t.equal(r.code, 1);
  const lines = r.stderr.trim().split('\n');
  t.equal(lines.length, 4, r.stderr);
  t.match(lines[0], /^wharf: warning: ignoring WHARF_NOT_A_KEY: /);
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
  t.match(r.stderr, 'wharf: verify-config needs a FILE (or WHARF_CONFIG)');
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
  t.match(r.stderr, 'wharf: invalid configuration (2 problems)');
  t.match(r.stderr, 'wharf: warning: ignoring WHARF_STORAGE_PATHH (did you mean WHARF_STORAGE_PATH?)');
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
  const [, url] = await p.waitForStdout(/listening on (http:\/\/127\.0\.0\.1:\d+)/);

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
  t.match(p.out.stdout, /"msg":"closed"}$/m, 'the last line, a JSON log line like the others');
});

t.test('serve: a request still in flight after shutdownTimeoutMs does not keep the process alive: exit 1', async (t) => {
  const data = tempDataDir(t);
  const p = start(t, ['serve', '--listen', '127.0.0.1:0', '--data', data], {
    WHARF_LOG_LEVEL: 'silent',
    WHARF_SHUTDOWN_TIMEOUT_MS: '300',
  });
  const [, url] = await p.waitForStdout(/listening on (http:\/\/127\.0\.0\.1:\d+)/);
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

  t.test('run as an executable, its node flags from the first line are taken (a small young generation)', async (t) => {
    // Objects that survive a few scavenges make V8 grow its young generation (to 2 x 16 MiB by default).
    const script = [
      "const v8 = await import('node:v8');",
      'let keep = []; for (let i = 0; i < 3e6; i++) { keep.push({ i }); if (keep.length > 2e5) keep = []; }',
      "console.log(v8.getHeapSpaceStatistics().find((x) => x.space_name === 'new_space').space_size);",
    ].join('\n');
    const dir = t.testdir();
    // The same first line before a script that reports the young generation's size.
    const first = readFileSync(join(root, 'bin/wharf.js'), 'utf8').split('\n')[0] ?? '';
    writeFileSync(join(dir, 'probe.mjs'), `${first}\n${script}\n`);
    chmodSync(join(dir, 'probe.mjs'), 0o755);
    const child = spawn(join(dir, 'probe.mjs'), [], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    const code = await new Promise<number | null>((resolve) => child.once('close', resolve));
    t.equal(code, 0);
    t.ok(Number(out) > 0 && Number(out) <= 4 * 1024 * 1024, `new space ${out.trim()} bytes, capped at 2 x 2 MiB`);
  });
});

// The tests below run the compiled CLI: it starts faster than tsx, and it is what npm start runs.
const BIN = ['bin/wharf.js'];
t.before(() => ensureBuilt((m) => t.comment(m)));

t.test('wharf --help lists every command; each command has --help; --version prints the version from package.json', async (t) => {
  const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { version: string };
  const version = await run(t, ['--version'], {}, BIN);
  t.equal(version.code, 0);
  t.equal(version.stdout, `wharf ${pkg.version}\n`);
  const all = await run(t, ['--help'], {}, BIN);
  const commands: Array<[string[], RegExp]> = [
    [['serve'], /^ {2}wharf serve \[--config FILE\]/m],
    [['verify-config'], /^ {2}wharf verify-config \[FILE\.\.\.\]/m],
    [['token', 'create'], /^ {2}wharf token create --name NAME/m],
    [['token', 'list'], /^ {2}wharf token list /m],
    [['token', 'revoke'], /^ {2}wharf token revoke ID\|NAME/m],
    [['gc'], /^ {2}wharf gc \[--config FILE\] \[--data DIR\] \[--dry-run\] \[--json\]/m],
    [['warm'], /^ {2}wharf warm IMAGE\.\.\. \[--file LIST\]/m],
    [['fsck'], /^ {2}wharf fsck /m],
    [['print-schema'], /^ {2}wharf print-schema/m],
    [['healthcheck'], /^Usage: wharf healthcheck /m],
  ];
  for (const [command, synopsis] of commands) {
    t.match(all.stdout, new RegExp(`^  ${command.join(' ')}\\b`, 'm'), `wharf --help lists ${command.join(' ')}`);
    const own = await run(t, [...command, '--help'], {}, BIN);
    t.equal(own.code, 0, `${command.join(' ')} --help`);
    t.match(own.stdout, synopsis, `${command.join(' ')} --help shows its own usage`);
  }
  const token = await run(t, ['token', '--help'], {}, BIN);
  t.match(token.stdout, /wharf token create[\s\S]*wharf token list[\s\S]*wharf token revoke/);
  t.notMatch(token.stdout, 'wharf serve');
});

t.test('fsck, gc and token on a path that holds no store say so, exit 1, and create nothing', async (t) => {
  const base = tempDataDir(t);
  const empty = join(base, 'empty');
  mkdirSync(empty);
  for (const data of [join(base, 'absent'), empty]) {
    for (const args of [['fsck'], ['gc'], ['gc', '--dry-run'], ['token', 'list'], ['token', 'create', '--name', 'ci', '--scope', 'x:pull'], ['token', 'revoke', 'ci']]) {
      const r = await run(t, [...args, '--data', data], {}, BIN);
      t.equal(r.code, 1, `${args.join(' ')} on ${data}`);
      t.match(r.stderr, `wharf: ${data} holds no Wharf store`);
      t.equal(r.stdout, '');
    }
  }
  t.notOk(existsSync(join(base, 'absent')), 'no directory was created');
  t.strictSame(readdirSync(empty), [], 'nothing was created in the empty directory');
});

t.test('serve with a data directory it cannot create exits at once with a clear error', async (t) => {
  const base = tempDataDir(t);
  writeFileSync(join(base, 'file'), 'not a directory');
  const r = await run(t, ['serve', '--listen', '127.0.0.1:0', '--data', join(base, 'file', 'data')], {}, BIN);
  t.equal(r.code, 1);
  t.match(r.stderr, `storage.path: cannot create the data directory ${join(base, 'file', 'data')}: ${join(base, 'file')} is not a directory`);
  t.notMatch(r.stdout, 'listening');
  const onFile = await run(t, ['serve', '--listen', '127.0.0.1:0', '--data', join(base, 'file')], {}, BIN);
  t.equal(onFile.code, 1);
  t.match(onFile.stderr, `storage.path: the data directory ${join(base, 'file')} is not a directory`);
});

t.test('verify-config checks what serve checks, with the real environment and files; serve creates nothing until they pass', async (t) => {
  const base = tempDataDir(t);
  const data = join(base, 'data');
  writeFileSync(join(base, 'htpasswd.bad'), 'bob:plaintext\n');
  writeFileSync(join(base, 'key.bad'), 'not a key\n');
  const upstream = (extra: string) =>
    `upstreams:\n  - name: priv\n    url: https://registry.invalid\n    registry: registry.invalid\n    username: ci\n${extra}`;
  const cases: Array<{ what: string; yaml: string; env?: Record<string, string>; problem: string }> = [
    { what: 'passwordEnv not set', yaml: upstream('    passwordEnv: PRIV_PASSWORD\n'), problem: 'upstreams.0.passwordEnv: the environment variable PRIV_PASSWORD is not set' },
    { what: 'passwordFile missing', yaml: upstream(`    passwordFile: ${join(base, 'nope')}\n`), problem: `upstreams.0.passwordFile: cannot read ${join(base, 'nope')}: ENOENT` },
    { what: 'htpasswd missing', yaml: `auth:\n  htpasswd: ${join(base, 'nope')}\n`, problem: `auth.htpasswd: cannot read ${join(base, 'nope')}: ENOENT (line 4)` },
    { what: 'htpasswd not bcrypt', yaml: `auth:\n  htpasswd: ${join(base, 'htpasswd.bad')}\n`, problem: `auth.htpasswd: ${join(base, 'htpasswd.bad')}:1: user "bob": the password is not a bcrypt hash` },
    { what: 'token key unreadable', yaml: `auth:\n  token:\n    key: ${join(base, 'key.bad')}\n`, problem: `auth.token.key: token signing key ${join(base, 'key.bad')} is not a readable` },
    { what: 'trust keys missing', yaml: `auth:\n  token:\n    trust:\n      issuer: corp\n      keys: ${join(base, 'nope')}\n`, problem: 'auth.token.trust.keys: cannot read token verification keys' },
    { what: 'a WHARF_* value', yaml: '', env: { WHARF_GC_INTERVAL: 'often' }, problem: 'gc.interval: invalid value "often"' },
  ];
  for (const c of cases) {
    const file = join(base, 'wharf.yaml');
    writeFileSync(file, `storage:\n  path: ${data}\n${c.yaml}`);
    const verified = await run(t, ['verify-config', file], c.env, BIN);
    t.equal(verified.code, 1, `verify-config: ${c.what}`);
    t.match(verified.stderr, `${file}: ${c.problem}`, `verify-config: ${c.what}`);
    const served = await run(t, ['serve', '--config', file, '--listen', '127.0.0.1:0'], c.env, BIN);
    t.equal(served.code, 1, `serve: ${c.what}`);
    t.match(served.stderr, `  ${c.problem}`, `serve: ${c.what}`);
    t.notOk(existsSync(data), `serve created nothing: ${c.what}`);
  }

  // Set, the variable makes both pass, and serve starts.
  const file = join(base, 'wharf.yaml');
  writeFileSync(file, `storage:\n  path: ${data}\n${upstream('    passwordEnv: PRIV_PASSWORD\n')}auth: {}\n`);
  const ok = await run(t, ['verify-config', file], { PRIV_PASSWORD: 'secret' }, BIN);
  t.equal(ok.code, 0, ok.stderr);
  t.equal(ok.stdout, `${file}: ok\n`);
  t.notOk(existsSync(data), 'verify-config created nothing either');
  const p = start(t, ['serve', '--config', file, '--listen', '127.0.0.1:0'], { PRIV_PASSWORD: 'secret', WHARF_LOG_LEVEL: 'silent' }, BIN);
  await p.waitForStdout(/listening on /);
  t.ok(existsSync(join(data, 'metadata.db')), 'the store is created once the checks pass');
  p.child.kill('SIGTERM');
  t.equal(await within(p.exited, 10_000, 'exit after SIGTERM'), 0);
});

t.test('serve starts with the variables Kubernetes injects for a Service named wharf, with one warning naming them', async (t) => {
  const data = tempDataDir(t);
  const kubernetes = KUBERNETES_SERVICE_ENV;
  const p = start(t, ['serve', '--data', data], { ...kubernetes, WHARF_LISTEN: '127.0.0.1:0', WHARF_LOG_LEVEL: 'silent' }, BIN);
  await p.waitForStdout(/listening on /);
  const warnings = p.out.stderr.split('\n').filter((l) => l.startsWith('wharf: warning:'));
  t.equal(warnings.length, 1, p.out.stderr);
  for (const name of Object.keys(kubernetes)) t.match(warnings[0], name);
  p.child.kill('SIGTERM');
  t.equal(await within(p.exited, 10_000, 'exit after SIGTERM'), 0);
});

t.test('serve prints one line saying how names are routed', async (t) => {
  const data = tempDataDir(t);
  const dir = t.testdir({
    'wharf.yaml': [
      'local:',
      '  namespaces: [team, ci]',
      'upstreams:',
      '  - {name: docker, url: "https://registry-1.docker.io/", registry: docker.io, prefix: hub, default: true}',
      '  - {name: ghcr, url: "https://ghcr.io", registry: ghcr.io}',
      '',
    ].join('\n'),
  });
  const p = start(t, ['serve', '--config', join(dir, 'wharf.yaml'), '--data', data, '--listen', '127.0.0.1:0'], { WHARF_LOG_LEVEL: 'silent' }, BIN);
  await p.waitForStdout(/listening on /);
  // log.format is json off a terminal: every line on standard output is a JSON object, these included.
  const all = p.out.stdout.split('\n').filter((l) => l !== '');
  const parsed = all.map((l) => JSON.parse(l) as { level: number; msg: string; url?: string });
  t.match(parsed.at(-1), { level: 30, msg: /^listening on http:\/\/127\.0\.0\.1:\d+$/, url: /^http:\/\/127\.0\.0\.1:\d+$/ });
  const lines = parsed.map((l) => l.msg).filter((m) => m.startsWith('routing: '));
  t.strictSame(lines, [
    'routing: local: team/*, ci/*; ' +
      'upstream docker (https://registry-1.docker.io): docker.io/*, hub/*, ?ns=docker.io; ' +
      'upstream ghcr (https://ghcr.io): ghcr.io/*, ?ns=ghcr.io; ' +
      'other names: upstream docker (default)',
  ]);
  p.child.kill('SIGTERM');
  t.equal(await within(p.exited, 10_000, 'exit after SIGTERM'), 0);
});

t.test('serve writes its log in log.format: JSON lines only (start-up, requests, shutdown), or pretty lines only', async (t) => {
  for (const format of ['json', 'pretty'] as const) {
    const p = start(t, ['serve', '--data', tempDataDir(t), '--listen', '127.0.0.1:0'], { WHARF_LOG_LEVEL: 'info', WHARF_LOG_FORMAT: format }, BIN);
    const [, url] = await p.waitForStdout(/listening on (http:\/\/127\.0\.0\.1:\d+)/);
    t.equal((await fetch(`${url}/v2/`)).status, 200);
    await p.waitForStdout(/route.{0,3}base/);
    p.child.kill('SIGTERM');
    t.equal(await within(p.exited, 10_000, 'exit after SIGTERM'), 0);
    const lines = p.out.stdout.split('\n').filter((l) => l !== '');
    const msgs = ['routing: ', 'listening on http', 'request', 'SIGTERM received: closing', 'closed'];
    if (format === 'json') {
      const parsed = lines.map((l) => JSON.parse(l) as { level: number; msg: string; pid: number; time: number });
      for (const m of msgs) t.ok(parsed.some((l) => l.msg.startsWith(m) && typeof l.time === 'number' && l.pid === p.child.pid), `json: a "${m}" line`);
    } else {
      t.same(lines.filter((l) => l.startsWith('{')), [], 'pretty: no JSON line');
      for (const m of msgs) t.ok(lines.some((l) => new RegExp(`^\\d\\d:\\d\\d:\\d\\d\\.\\d{3} (INFO|WARN) {1,2}${m}`).test(l)), `pretty: a "${m}" line`);
    }
  }
});

/** Whether something accepts connections on `port` of 127.0.0.1. */
function listening(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

t.test('npm start passes SIGTERM to the server: the node process exits and its port closes', async (t) => {
  const data = tempDataDir(t);
  const dir = t.testdir({ 'wharf.yaml': `listen: 127.0.0.1:0\nstorage:\n  path: ${data}\nlog:\n  level: silent\n` });
  const npm = spawn('npm', ['start', '--silent'], { cwd: root, env: cleanEnv({ WHARF_CONFIG: join(dir, 'wharf.yaml') }), stdio: 'pipe' });
  let stdout = '';
  npm.stdout.setEncoding('utf8');
  const exited = new Promise<number | null>((resolve) => npm.on('exit', (code) => resolve(code)));
  t.teardown(() => {
    if (npm.exitCode === null && npm.signalCode === null) npm.kill('SIGKILL');
  });
  const port = await within(
    new Promise<number>((resolve) =>
      npm.stdout.on('data', (s: string) => {
        stdout += s;
        const m = /listening on http:\/\/127\.0\.0\.1:(\d+)/.exec(stdout);
        if (m) resolve(Number(m[1]));
      }),
    ),
    60_000,
    'npm start: listening',
  );
  t.ok(await listening(port), 'the server accepts connections');
  // The server writes to the pipe npm was given: it reaches its end only when every process holding
  // it has exited, the server included (with npm's child a shell, the server lived on).
  const pipeClosed = new Promise<void>((resolve) => npm.stdout.on('close', () => resolve()));
  npm.kill('SIGTERM');
  await within(exited, 15_000, 'npm exits after SIGTERM');
  await within(pipeClosed, 15_000, 'the server exits after npm');
  t.notOk(await listening(port), 'the port is closed');
  t.match(stdout, /SIGTERM received: closing/, 'the server itself received SIGTERM and closed');
});

t.test('verify-config and serve refuse a policy that names an upstream by its prefix or host, naming the canonical spelling', async (t) => {
  const base = tempDataDir(t);
  const data = join(base, 'data');
  const file = join(base, 'wharf.yaml');
  writeFileSync(
    file,
    [
      `storage: {path: ${JSON.stringify(data)}}`,
      'upstreams:',
      '  - {name: hub, url: "https://registry-1.docker.io", registry: docker.io, default: true}',
      '  - {name: priv, url: "https://registry.corp.example:5000", registry: "registry.corp.example:5000", prefix: corp, username: ci, password: secret}',
      'auth:',
      '  users: []',
      '  policies:',
      '    - {repositories: ["corp/**"], subjects: [alice], actions: [pull]}',
      '    - {repositories: ["docker.io/library/**", "registry.corp.example:5000/**"], subjects: [alice], actions: [pull]}',
      '',
    ].join('\n'),
  );
  const problems = [
    'auth.policies.0.repositories.0: "corp/**" names upstream priv by its prefix; policies and tokens match canonical names: write "registry.corp.example-5000/**" (line 8)',
    'auth.policies.1.repositories.0: "docker.io/library/**" names upstream hub by its registry host, but its images are named bare (it is the default upstream); policies and tokens match canonical names: write "library/**" (line 9)',
    'auth.policies.1.repositories.1: "registry.corp.example:5000/**" names upstream priv by its registry host with ":" (names never contain ":"); policies and tokens match canonical names: write "registry.corp.example-5000/**" (line 9)',
  ];
  const verified = await run(t, ['verify-config', file]);
  t.equal(verified.code, 1, 'refused');
  t.equal(verified.stderr, problems.map((p) => `${file}: ${p}\n`).join(''), 'every dead glob, each with its canonical spelling');
  t.equal(verified.stdout, '');
  const served = await run(t, ['serve', '--config', file, '--listen', '127.0.0.1:0']);
  t.equal(served.code, 1, 'serve refuses the same configuration');
  for (const p of problems) t.match(served.stderr, `  ${p}`);
  t.notOk(existsSync(data), 'serve created nothing');

  // Written canonically, the same rules pass.
  writeFileSync(file, readFileSync(file, 'utf8').replace('"corp/**"', '"registry.corp.example-5000/**"').replace('"docker.io/library/**", "registry.corp.example:5000/**"', '"library/**"'));
  const ok = await run(t, ['verify-config', file]);
  t.equal(ok.code, 0, ok.stderr);
});

// Tests run as root, whom permission bits do not stop: the CLI then runs as nobody, as a container's
// unprivileged user would. Run as another user, it runs as that user, and the modes below stop it.
const UNPRIVILEGED: RunAs = process.getuid?.() === 0 ? { uid: 65534, gid: 65534 } : undefined;

t.test('a data directory whose existing store has parts this user cannot write fails verify-config and serve, naming them', async (t) => {
  const base = tempDataDir(t);
  chmodSync(base, 0o755);
  // Each store below: a writable top directory (mode 777) holding one part made by another user.
  const parts: Array<{ part: string; make(dir: string): void }> = [
    { part: 'blobs', make: (dir) => mkdirSync(join(dir, 'blobs'), { mode: 0o555 }) },
    {
      part: join('blobs', 'sha256', 'ab'),
      make: (dir) => {
        mkdirSync(join(dir, 'blobs', 'sha256'), { recursive: true });
        chmodSync(join(dir, 'blobs'), 0o777);
        chmodSync(join(dir, 'blobs', 'sha256'), 0o777);
        mkdirSync(join(dir, 'blobs', 'sha256', 'ab'), { mode: 0o555 });
      },
    },
    { part: 'uploads', make: (dir) => mkdirSync(join(dir, 'uploads'), { mode: 0o555 }) },
    { part: 'metadata.db', make: (dir) => writeFileSync(join(dir, 'metadata.db'), '', { mode: 0o444 }) },
    { part: 'metadata.db-wal', make: (dir) => writeFileSync(join(dir, 'metadata.db-wal'), '', { mode: 0o444 }) },
  ];
  for (const [i, { part, make }] of parts.entries()) {
    const data = join(base, `d${i}`);
    mkdirSync(data);
    chmodSync(data, 0o777);
    make(data);
    const before = readdirSync(data, { recursive: true });
    const file = join(base, `wharf-${i}.yaml`);
    writeFileSync(file, `listen: 127.0.0.1:0\nstorage:\n  path: ${data}\n`);
    const problem = `storage.path: this process${UNPRIVILEGED ? ' (uid 65534)' : ''} cannot write parts of the existing store in ${data}: ${join(data, part)}; make the user Wharf runs as their owner`;

    const verified = await run(t, ['verify-config', file], {}, BIN, UNPRIVILEGED);
    t.equal(verified.code, 1, `verify-config refuses a store with ${part} not writable`);
    t.match(verified.stderr, `${file}: ${problem}`, part);
    t.match(verified.stderr, '(line 3)', `${part}: the line of storage.path`);
    const served = await run(t, ['serve', '--config', file], { WHARF_LOG_LEVEL: 'silent' }, BIN, UNPRIVILEGED);
    t.equal(served.code, 1, `serve exits at once: ${part}`);
    t.match(served.stderr, `  ${problem}`, part);
    t.notMatch(served.stdout, 'listening');
    t.strictSame(readdirSync(data, { recursive: true }), before, `serve created nothing: ${part}`);
  }

  // The same store, given to the user: both pass, and serve starts on it.
  const data = join(base, 'd0');
  chmodSync(join(data, 'blobs'), 0o777);
  const ok = await run(t, ['verify-config', join(base, 'wharf-0.yaml')], {}, BIN, UNPRIVILEGED);
  t.equal(ok.code, 0, ok.stderr);
  const p = start(t, ['serve', '--config', join(base, 'wharf-0.yaml')], { WHARF_LOG_LEVEL: 'silent' }, BIN, UNPRIVILEGED);
  await p.waitForStdout(/listening on /);
  p.child.kill('SIGTERM');
  t.equal(await within(p.exited, 10_000, 'exit after SIGTERM'), 0);
});

/** A socket on 127.0.0.1 that holds a port for the length of the test. */
async function holdPort(t: Tap): Promise<number> {
  const holder = createServer();
  await new Promise<void>((resolve) => holder.listen(0, '127.0.0.1', resolve));
  t.teardown(() => new Promise<void>((resolve) => holder.close(() => resolve())));
  return (holder.address() as AddressInfo).port;
}

t.test('a listen host that does not resolve fails verify-config and serve; a port in use fails serve at once; neither leaves a store behind', async (t) => {
  const base = tempDataDir(t);
  const data = join(base, 'data');
  const file = join(base, 'wharf.yaml');
  writeFileSync(file, `storage:\n  path: ${data}\nlisten: nosuchhost.invalid:5000\n`);
  const unresolved = 'listen: cannot resolve the host "nosuchhost.invalid"';
  const verified = await run(t, ['verify-config', file], {}, BIN);
  t.equal(verified.code, 1, 'verify-config refuses a host that does not resolve');
  t.match(verified.stderr, `${file}: ${unresolved}`);
  t.match(verified.stderr, '(line 3)');
  const served = await run(t, ['serve', '--config', file], {}, BIN);
  t.equal(served.code, 1);
  t.match(served.stderr, `  ${unresolved}`);
  t.notOk(existsSync(data), 'serve created nothing for a host that does not resolve');

  const port = await holdPort(t);
  const busy = await run(t, ['serve', '--data', data, '--listen', `127.0.0.1:${port}`], { WHARF_LOG_LEVEL: 'silent' }, BIN);
  t.equal(busy.code, 1, 'serve exits when its port is taken');
  t.match(busy.stderr, `wharf: listen: 127.0.0.1:${port} is in use`);
  t.notMatch(busy.stdout, 'listening');
  t.notOk(existsSync(data), 'serve created nothing for a port in use');
  // verify-config checks the host, not the port: a running server may hold it.
  writeFileSync(file, `storage:\n  path: ${data}\nlisten: 127.0.0.1:${port}\n`);
  const held = await run(t, ['verify-config', file], {}, BIN);
  t.equal(held.code, 0, held.stderr);
});

/** A port of 127.0.0.1 free a moment ago, for a server that must be told its port before it starts. */
async function freePort(): Promise<number> {
  const probe = createServer();
  await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
  const { port } = probe.address() as AddressInfo;
  await new Promise<void>((resolve) => probe.close(() => resolve()));
  return port;
}

/** Resolves once `name` exists in `dir` (watched, not polled). */
function appears(dir: string, name: string): Promise<void> {
  return new Promise((resolve) => {
    const watcher = watch(dir, () => {
      if (existsSync(join(dir, name))) {
        watcher.close();
        resolve();
      }
    });
    if (existsSync(join(dir, name))) {
      watcher.close();
      resolve();
    }
  });
}

/** Everything the peer sends until it ends the connection. */
function readToEnd(socket: Socket): Promise<string> {
  return new Promise((resolve, reject) => {
    let text = '';
    socket.setEncoding('utf8');
    socket.on('data', (s: string) => (text += s));
    socket.once('end', () => resolve(text));
    socket.once('error', reject);
  });
}

t.test('a connection made while serve is starting, after it bound its port, is answered once the server is ready', async (t) => {
  const base = tempDataDir(t);
  const data = join(base, 'data');
  // With auth on, start-up goes on loading its modules and the token key once the database is open:
  // events are handled meanwhile, a connection made earlier among them.
  const file = join(base, 'wharf.yaml');
  writeFileSync(file, `storage: {path: ${JSON.stringify(data)}}\nauth:\n  users: []\n`);
  // Another process on the store (as `wharf gc` may be) holds the database's write lock: serve binds
  // its port, creates blobs/ and then waits for the lock to bring the schema up to date.
  await SqliteDatabase.open(metadataPath(data)).close();
  const other = new Database(metadataPath(data));
  t.teardown(() => other.close());
  other.exec('BEGIN IMMEDIATE');

  const port = await freePort();
  const p = start(t, ['serve', '--config', file, '--listen', `127.0.0.1:${port}`], { WHARF_LOG_LEVEL: 'silent' });
  // blobs/ is created after the bind (serve creates nothing before it) and before the database is
  // opened: the port accepts connections, and the server cannot have started serving yet.
  await within(Promise.race([appears(data, 'blobs'), p.exited.then((code) => Promise.reject(new Error(`serve exited (${code}): ${p.out.stderr}`)))]), 30_000, 'blobs/ created');
  const socket = connect({ host: '127.0.0.1', port });
  t.teardown(() => socket.destroy());
  const answer = readToEnd(socket);
  await within(new Promise((resolve, reject) => socket.once('connect', resolve).once('error', reject)), 10_000, 'connect during start-up');
  socket.write(`GET /v2/ HTTP/1.1\r\nhost: 127.0.0.1:${port}\r\nconnection: close\r\n\r\n`);
  t.notMatch(p.out.stdout, 'listening on', 'the server was not serving yet');
  other.exec('COMMIT');

  const text = await within(answer, 15_000, 'the answer to a connection made during start-up');
  t.match(text, /^HTTP\/1\.1 401 /, 'answered: credentials asked for');
  await p.waitForStdout(/listening on /);
  p.child.kill('SIGTERM');
  t.equal(await within(p.exited, 10_000, 'exit after SIGTERM'), 0);
});

t.test('a file a key names that cannot be read is reported once under that key, with the line of the key', async (t) => {
  const base = tempDataDir(t);
  const file = join(base, 'wharf.yaml');
  const htpasswd = join(base, 'no-htpasswd');
  writeFileSync(file, `storage:\n  path: ${join(base, 'data')}\nauth:\n  htpasswd: ${htpasswd}\n`);
  const verified = await run(t, ['verify-config', file], {}, BIN);
  t.equal(verified.code, 1);
  t.equal(verified.stderr, `${file}: auth.htpasswd: cannot read ${htpasswd}: ENOENT (line 4)\n`);
  const served = await run(t, ['serve', '--config', file, '--listen', '127.0.0.1:0'], {}, BIN);
  t.equal(served.code, 1);
  t.equal(served.stderr, `wharf: invalid configuration in ${file} (1 problem):\n  auth.htpasswd: cannot read ${htpasswd}: ENOENT (line 4)\n`);
});
