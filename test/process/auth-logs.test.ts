// No secret ever reaches the logs: a real `wharf serve` at log level trace takes passwords (Basic,
// the token endpoint's GET and POST forms), service tokens and JWTs, good and bad, and its whole
// output is searched for every one of them.
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import bcrypt from 'bcryptjs';
import t from 'tap';
import { stringify } from 'yaml';
import { ensureBuilt } from '../helpers/build.js';

const root = fileURLToPath(new URL('../../', import.meta.url));
t.before(() => ensureBuilt((m) => t.comment(m)));

const PASSWORD = 'correct-horse-battery-staple';
const WRONG = 'wrong-horse-guess-1234';

t.test('passwords, service tokens and JWTs never appear in the log, even at trace', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'wharf-auth-logs-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const config = join(dir, 'wharf.yaml');
  const hash = bcrypt.hashSync(PASSWORD, 4);
  writeFileSync(
    config,
    stringify({
      listen: '127.0.0.1:0',
      storage: { path: join(dir, 'data') },
      log: { level: 'trace' },
      auth: { users: [{ name: 'admin', password: hash, groups: ['admin'] }] },
    }),
  );
  const child = spawn(process.execPath, [join(root, 'bin', 'wharf.js'), 'serve', '--config', config], { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout.on('data', (d: Buffer) => (output += d.toString()));
  child.stderr.on('data', (d: Buffer) => (output += d.toString()));
  t.teardown(() => {
    if (child.exitCode === null) child.kill('SIGKILL');
  });
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no "listening on" within 20 s:\n${output}`)), 20_000);
    const check = () => {
      const m = /listening on (http:\/\/[^\s"]+)/.exec(output);
      if (m) {
        clearTimeout(timer);
        resolve(m[1] as string);
      }
    };
    child.stdout.on('data', check);
    child.once('exit', (code) => reject(new Error(`wharf exited with ${code}:\n${output}`)));
  });

  const basic = (user: string, pw: string) => `Basic ${Buffer.from(`${user}:${pw}`).toString('base64')}`;
  const get = (path: string, authorization?: string) => fetch(`${url}${path}`, { headers: authorization ? { authorization } : {} });

  t.equal((await get('/v2/', basic('admin', PASSWORD))).status, 200, 'Basic login works');
  t.equal((await get('/v2/', basic('admin', WRONG))).status, 401, 'a wrong password is refused');
  const created = await fetch(`${url}/api/tokens`, {
    method: 'POST',
    headers: { authorization: basic('admin', PASSWORD), 'content-type': 'application/json' },
    body: JSON.stringify({ name: 'ci', scopes: [{ repositories: ['**'], actions: ['pull'] }] }),
  });
  t.equal(created.status, 201);
  const serviceToken = ((await created.json()) as { token: string }).token;
  t.equal((await get('/v2/local/x/tags/list', basic('ci', serviceToken))).status, 404, 'the service token authenticates');
  const issued = await get('/auth/token?service=wharf&scope=repository:local/x:pull&offline_token=true', basic('admin', PASSWORD));
  t.equal(issued.status, 200);
  const { token: jwt, refresh_token: refresh } = (await issued.json()) as { token: string; refresh_token: string };
  t.equal((await get('/v2/local/x/tags/list', `Bearer ${jwt}`)).status, 404, 'the JWT authenticates');
  const form = await fetch(`${url}/auth/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ grant_type: 'password', username: 'admin', password: WRONG, service: 'wharf' }).toString(),
  });
  t.equal(form.status, 401);
  const refreshed = await fetch(`${url}/auth/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ grant_type: 'refresh_token', refresh_token: refresh, service: 'wharf' }).toString(),
  });
  t.equal(refreshed.status, 200);
  // A password sent (wrongly) in the query string is not logged either.
  await get(`/auth/token?service=wharf&password=${WRONG}`);

  child.kill('SIGTERM');
  await new Promise((resolve) => child.once('exit', resolve));
  t.match(output, /"msg":"request"/, 'requests were logged (the search below is not vacuous)');
  t.match(output, /failed login/, 'failed logins are logged');
  const secrets: Record<string, string> = {
    password: PASSWORD,
    'wrong password': WRONG,
    'bcrypt hash': hash,
    'service token': serviceToken,
    'service token secret part': serviceToken.split('_').at(-1) as string,
    'JWT signature': jwt.split('.')[2] as string,
    'refresh token signature': refresh.split('.')[2] as string,
    'Basic credentials': Buffer.from(`admin:${PASSWORD}`).toString('base64'),
  };
  for (const [what, secret] of Object.entries(secrets)) t.notOk(output.includes(secret), `no ${what} in the log`);
});
