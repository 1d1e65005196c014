// `wharf token create|list|revoke` as operators run them: the compiled bin, real exit codes, the
// metadata database of a data directory, and a `wharf serve` process holding the same directory.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import t from 'tap';
import { ensureBuilt } from '../helpers/build.js';

const root = fileURLToPath(new URL('../../', import.meta.url));
const BIN = join(root, 'bin', 'wharf.js');
const TOKEN = /^wharf_([a-z0-9]{12})_[A-Za-z0-9_-]{43}$/;
const DAY = 86_400_000;

t.setTimeout(180_000);

interface Tap {
  teardown(fn: () => unknown): void;
}

t.before(() => ensureBuilt((m) => t.comment(m)));

/** The parent's environment without WHARF_* (a developer's shell must not change the results). */
function cleanEnv(extra: Record<string, string>): NodeJS.ProcessEnv {
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('WHARF_')));
  return { ...env, ...extra };
}

interface Started {
  child: ChildProcess;
  out: { stdout: string; stderr: string };
  exited: Promise<number | null>;
}

function start(t: Tap, args: string[], env: Record<string, string> = {}): Started {
  const child = spawn(process.execPath, [BIN, ...args], { cwd: root, env: cleanEnv(env), stdio: 'pipe' });
  const out = { stdout: '', stderr: '' };
  child.stdout.setEncoding('utf8').on('data', (s: string) => (out.stdout += s));
  child.stderr.setEncoding('utf8').on('data', (s: string) => (out.stderr += s));
  const exited = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
  t.teardown(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  return { child, out, exited };
}

function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: not done within ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

async function wharf(t: Tap, args: string[], env: Record<string, string> = {}) {
  const p = start(t, args, env);
  const code = await within(p.exited, 30_000, `wharf ${args.join(' ')}`);
  return { code, ...p.out };
}

/** An empty directory: the token commands refuse it (it holds no store) until createStore. */
function tempDataDir(t: Tap): string {
  const dir = mkdtempSync(join(tmpdir(), 'wharf-token-cli-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** An empty store in `dir`, as `wharf serve` creates it on its first start. */
function createStore(dir: string): void {
  mkdirSync(dir, { recursive: true });
  new Database(join(dir, 'metadata.db')).close();
}

/** A data directory holding an empty store. */
function tempStore(t: Tap): string {
  const dir = tempDataDir(t);
  createStore(dir);
  return dir;
}

interface ListedToken {
  id: string;
  name: string;
  scopes: unknown;
  createdAt: number;
  expiresAt: number | null;
  revokedAt: number | null;
  lastUsedAt: number | null;
}

async function listJson(t: Tap, data: string): Promise<ListedToken[]> {
  const r = await wharf(t, ['token', 'list', '--data', data, '--json']);
  if (r.code !== 0) throw new Error(`token list exited ${r.code}: ${r.stderr}`);
  return JSON.parse(r.stdout) as ListedToken[];
}

t.test('create prints the token alone, once; list shows it without secrets; revoke ends it', async (t) => {
  const data = tempStore(t);
  const created = await wharf(t, ['token', 'create', '--name', 'ci', '--scope', 'team/**,docker.io/*:pull,push', '--scope', '**:pull', '--data', data]);
  t.equal(created.code, 0, created.stderr);
  const lines = created.stdout.split('\n');
  t.match(lines[0], TOKEN, 'the token alone on the first line');
  t.same(lines.slice(1), [''], 'nothing else on stdout');
  const token = lines[0]!;
  const id = TOKEN.exec(token)![1]!;
  const secret = token.slice(`wharf_${id}_`.length);
  t.match(created.stderr, 'will not be shown again');
  t.notMatch(created.stderr, secret, 'the hint does not repeat the token');
  t.ok(existsSync(join(data, 'metadata.db')), 'stored in the data directory, where serve looks');

  const table = await wharf(t, ['token', 'list', '--data', data]);
  t.equal(table.code, 0, table.stderr);
  const [header, row, ...rest] = table.stdout.split('\n');
  t.match(header, /^ID\s+NAME\s+SCOPES\s+CREATED\s+EXPIRES\s+LAST USED\s+REVOKED$/);
  t.match(row, new RegExp(`^${id}\\s+ci\\s+team/\\*\\*,docker\\.io/\\*:pull,push \\*\\*:pull\\s+\\d{4}-\\d\\d-\\d\\dT\\d\\d:\\d\\d:\\d\\dZ\\s+-\\s+-\\s+-$`));
  t.same(rest, [''], 'one row');
  t.notMatch(table.stdout, secret, 'no secret in the table');

  const before = await wharf(t, ['token', 'list', '--data', data, '--json']);
  t.equal(before.code, 0, before.stderr);
  t.notMatch(before.stdout, secret, 'no secret in the JSON');
  t.notMatch(before.stdout, /secretHash|"token"/, 'no hash either');
  const [listed] = JSON.parse(before.stdout) as ListedToken[];
  t.same(listed, {
    id,
    name: 'ci',
    scopes: [
      { repositories: ['team/**', 'docker.io/*'], actions: ['pull', 'push'] },
      { repositories: ['**'], actions: ['pull'] },
    ],
    createdAt: listed?.createdAt,
    expiresAt: null,
    revokedAt: null,
    lastUsedAt: null,
  });

  const revoked = await wharf(t, ['token', 'revoke', 'ci', '--data', data]);
  t.equal(revoked.code, 0, revoked.stderr);
  t.equal(revoked.stdout, `revoked ${id} (ci)\n`);
  const [after] = await listJson(t, data);
  t.type(after?.revokedAt, 'number', 'revokedAt recorded');
  t.match((await wharf(t, ['token', 'list', '--data', data])).stdout, /\d\dZ\s*\n$/, 'the table shows when it was revoked');

  const again = await wharf(t, ['token', 'revoke', id, '--data', data]);
  t.equal(again.code, 1, 'revoking twice is an error');
  t.match(again.stderr, /^wharf: no token /);
  const unknown = await wharf(t, ['token', 'revoke', 'nobody', '--data', data]);
  t.equal(unknown.code, 1);
  t.match(unknown.stderr, 'wharf: no token with id or name "nobody"');
});

t.test('create --json: id, name, token, scopes and expiresAt; list --json', async (t) => {
  const data = tempStore(t);
  const before = Date.now();
  const r = await wharf(t, ['token', 'create', '--name', 'deploy', '--scope', 'team/app:*', '--expires', '90d', '--json', '--data', data]);
  t.equal(r.code, 0, r.stderr);
  const out = JSON.parse(r.stdout) as { id: string; name: string; token: string; scopes: unknown; expiresAt: number };
  t.same(Object.keys(out).sort(), ['expiresAt', 'id', 'name', 'scopes', 'token']);
  t.match(out, { name: 'deploy', scopes: [{ repositories: ['team/app'], actions: ['*'] }] });
  t.match(out.token, TOKEN);
  t.equal(TOKEN.exec(out.token)![1], out.id, 'the id is the one inside the token');
  t.ok(out.expiresAt >= before + 90 * DAY && out.expiresAt <= Date.now() + 90 * DAY, 'expires in 90 days');

  const second = await wharf(t, ['token', 'create', '--name', 'nightly', '--scope', 'x:pull', '--data', data, '--json']);
  const list = await listJson(t, data);
  t.same(
    list.map((r) => [r.id, r.name, r.expiresAt]),
    [
      [out.id, 'deploy', out.expiresAt],
      [(JSON.parse(second.stdout) as { id: string }).id, 'nightly', null],
    ],
    'in creation order',
  );
});

t.test('usage errors exit 2 and touch nothing; runtime errors exit 1', async (t) => {
  const data = tempDataDir(t);
  const usage: Array<[string[], string]> = [
    [['token'], 'wharf: token needs a command'],
    [['token', 'frob'], "wharf: unknown token command 'frob'"],
    [['token', 'create', '--scope', 'x:pull'], 'wharf: token create needs --name NAME'],
    [['token', 'create', '--name', 'ci'], 'wharf: token create needs at least one --scope'],
    [['token', 'create', '--name', 'c i', '--scope', 'x:pull'], 'wharf: invalid token name "c i"'],
    [['token', 'create', '--name', 'ci', '--scope', 'x'], 'wharf: invalid scope "x": expected GLOB[,GLOB...]:ACTION[,ACTION...]'],
    [['token', 'create', '--name', 'ci', '--scope', 'x:write'], 'wharf: invalid scope "x:write": invalid action "write"'],
    [['token', 'create', '--name', 'ci', '--scope', 'x:pull', '--expires', '3w'], 'wharf: --expires: "3w" is not a duration'],
    [['token', 'create', '--name', 'ci', '--scope', 'x:pull', '--expires', '0d'], 'wharf: --expires: the lifetime must be longer than 0'],
    [['token', 'create', '--name', 'ci', '--scope', 'x:pull', '--frob'], "wharf: Unknown option '--frob'"],
    [['token', 'list', 'extra'], 'wharf: Unexpected argument'],
    [['token', 'revoke'], 'wharf: token revoke needs one ID or NAME'],
  ];
  for (const [args, message] of usage) {
    const r = await wharf(t, [...args, '--data', data]);
    t.equal(r.code, 2, args.join(' '));
    t.match(r.stderr, message);
    t.match(r.stderr, "Run 'wharf --help' for usage.");
    t.equal(r.stdout, '');
  }
  t.notOk(existsSync(join(data, 'metadata.db')), 'no usage error opened the database');
  createStore(data);

  t.equal((await wharf(t, ['token', 'create', '--name', 'ci', '--scope', 'x:pull', '--data', data])).code, 0);
  const taken = await wharf(t, ['token', 'create', '--name', 'ci', '--scope', 'y:pull', '--data', data]);
  t.equal(taken.code, 1, 'a name clash is an error, not a usage error');
  t.match(taken.stderr, 'wharf: service token name "ci" is already taken');
  t.equal(taken.stdout, '', 'no token printed');
  t.equal((await listJson(t, data)).length, 1);

  const help = await wharf(t, ['--help']);
  t.match(help.stdout, 'token create --name NAME --scope GLOB[,GLOB...]:ACTION[,ACTION...]');
  t.match(help.stdout, 'token list [--config FILE] [--data DIR] [--json]');
  t.match(help.stdout, 'token revoke ID|NAME [--config FILE] [--data DIR]');
});

t.test('the data directory comes from the config file, WHARF_* or --data, as for serve', async (t) => {
  const base = tempDataDir(t);
  const fromFile = join(base, 'from-file');
  const fromEnv = join(base, 'from-env');
  const fromFlag = join(base, 'from-flag');
  const dir = t.testdir({ 'wharf.yaml': `storage:\n  path: ${JSON.stringify(fromFile)}\n` });
  const config = join(dir, 'wharf.yaml');

  for (const data of [fromFile, fromEnv, fromFlag]) createStore(data);
  t.equal((await wharf(t, ['token', 'create', '--name', 'a', '--scope', 'x:pull', '--config', config])).code, 0);
  t.equal((await wharf(t, ['token', 'create', '--name', 'b', '--scope', 'x:pull'], { WHARF_CONFIG: config, WHARF_STORAGE_PATH: fromEnv })).code, 0);
  t.equal((await wharf(t, ['token', 'create', '--name', 'c', '--scope', 'x:pull', '--config', config, '--data', fromFlag], { WHARF_STORAGE_PATH: fromEnv })).code, 0);
  t.same((await listJson(t, fromFile)).map((r) => r.name), ['a'], '--config');
  t.same((await listJson(t, fromEnv)).map((r) => r.name), ['b'], 'WHARF_STORAGE_PATH over the file');
  t.same((await listJson(t, fromFlag)).map((r) => r.name), ['c'], '--data over both');

  const bad = await wharf(t, ['token', 'list', '--config', config], { WHARF_LOG_LEVEL: 'loud' });
  t.equal(bad.code, 1, 'an invalid configuration is refused as serve refuses it');
  t.match(bad.stderr, 'log.level: must be one of');
});

t.test('create, list and revoke while `wharf serve` holds the data directory', async (t) => {
  const data = tempDataDir(t);
  const server = start(t, ['serve', '--listen', '127.0.0.1:0', '--data', data], { WHARF_LOG_LEVEL: 'warn' });
  const url = await within(
    new Promise<string>((resolve, reject) => {
      const check = (): void => {
        const m = /listening on (http:\/\/127\.0\.0\.1:\d+)/.exec(server.out.stdout);
        if (m) resolve(m[1]!);
      };
      server.child.stdout!.on('data', check);
      void server.exited.then((code) => reject(new Error(`serve exited (${code}): ${server.out.stderr}`)));
      check();
    }),
    30_000,
    'serve listening',
  );

  const created = await wharf(t, ['token', 'create', '--name', 'ci', '--scope', 'team/**:pull', '--data', data, '--json']);
  t.equal(created.code, 0, created.stderr);
  const { id } = JSON.parse(created.stdout) as { id: string };

  // A write lock held the way a server's write transaction holds it: the CLI waits for it (busy
  // timeout) instead of failing with "database is locked".
  const db = new Database(join(data, 'metadata.db'));
  t.teardown(() => {
    if (db.inTransaction) db.exec('ROLLBACK');
    db.close();
  });
  db.exec('BEGIN IMMEDIATE');
  const blocked = start(t, ['token', 'create', '--name', 'deploy', '--scope', 'team/**:push', '--data', data, '--json']);
  await new Promise((resolve) => setTimeout(resolve, 1500));
  t.equal(blocked.child.exitCode, null, 'still waiting while the lock is held');
  const releasedAt = Date.now();
  db.exec('COMMIT');
  t.equal(await within(blocked.exited, 30_000, 'create after the lock'), 0, blocked.out.stderr);
  const deploy = (await listJson(t, data)).find((r) => r.name === 'deploy');
  t.ok(deploy && deploy.createdAt >= releasedAt - 5, 'written once the lock was released');

  t.equal((await wharf(t, ['token', 'revoke', id, '--data', data])).code, 0);
  t.same(
    (await listJson(t, data)).map((r) => [r.name, r.revokedAt === null]),
    [
      ['ci', false],
      ['deploy', true],
    ],
  );

  const res = await within(fetch(`${url}/v2/`), 10_000, 'GET /v2/');
  t.not(res.status, 500, 'the server still answers');
  await res.body?.cancel();
  server.child.kill('SIGTERM');
  t.equal(await within(server.exited, 15_000, 'serve exit'), 0, server.out.stderr);
});

t.test('token create refuses a scope that can never match a canonical name, naming the spelling to write', async (t) => {
  const data = tempStore(t);
  const config = join(data, 'wharf.yaml');
  writeFileSync(
    config,
    'upstreams:\n  - {name: priv, url: "https://registry.corp.example:5000", registry: "registry.corp.example:5000", prefix: corp, username: ci, password: secret}\n',
  );
  const dead = await wharf(t, ['token', 'create', '--name', 'ci', '--scope', 'corp/**:pull', '--config', config, '--data', data]);
  t.equal(dead.code, 1, 'refused');
  t.equal(dead.stdout, '', 'no token printed');
  t.match(dead.stderr, 'scope 1: "corp/**" names upstream priv by its prefix; policies and tokens match canonical names: write "registry.corp.example-5000/**"');
  const upper = await wharf(t, ['token', 'create', '--name', 'ci', '--scope', 'team/**,Team/**:pull', '--config', config, '--data', data]);
  t.equal(upper.code, 1, 'upper case refused');
  t.match(upper.stderr, '"Team/**" can never match a repository name');
  t.same(await listJson(t, data), [], 'nothing stored');

  const ok = await wharf(t, ['token', 'create', '--name', 'ci', '--scope', 'registry.corp.example-5000/**:pull', '--config', config, '--data', data]);
  t.equal(ok.code, 0, ok.stderr);
  t.match(ok.stdout.trim(), TOKEN);
});
