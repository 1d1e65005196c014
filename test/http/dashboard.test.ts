// The dashboard's files at / and /dashboard/ (headers that keep the page safe and cached right) and
// GET /api/whoami, which the page signs in with. The page in a browser: test/e2e/dashboard.test.ts.
import { readFileSync } from 'node:fs';
import bcrypt from 'bcryptjs';
import t from 'tap';
import { startWharf } from '../helpers/server.js';
import { assertError, inject, raw } from '../helpers/http.js';
import { CONTENT_SECURITY_POLICY, DASHBOARD_DIR } from '../../src/http/routes/dashboard.js';

const basic = (user: string, pw: string) => `Basic ${Buffer.from(`${user}:${pw}`).toString('base64')}`;
const AUTH = {
  auth: {
    users: [
      { name: 'root', password: bcrypt.hashSync('root-pw', 4), groups: ['admin'] },
      { name: 'dev', password: bcrypt.hashSync('dev-pw', 4), groups: [] },
    ],
  },
};

t.test('/ serves the page under a strict CSP; its files are cached for good under their version', async (t) => {
  const { url } = await startWharf(t);
  const page = await raw(url, 'GET', '/');
  t.equal(page.status, 200);
  t.match(page.header('content-type'), /^text\/html; charset=utf-8/);
  t.equal(page.header('content-security-policy'), CONTENT_SECURITY_POLICY);
  for (const directive of ["default-src 'none'", "script-src 'self'", "style-src 'self'", "frame-ancestors 'none'", "form-action 'none'"]) {
    t.match(CONTENT_SECURITY_POLICY, directive);
  }
  t.notMatch(CONTENT_SECURITY_POLICY, /unsafe-inline|unsafe-eval|\*/, 'nothing inline, nothing from elsewhere');
  t.equal(page.header('x-content-type-options'), 'nosniff');
  t.equal(page.header('x-frame-options'), 'DENY');
  t.equal(page.header('cache-control'), 'no-cache', 'the page is revalidated on each load');
  t.notMatch(page.text, /<script>|<script [^>]*>[^<]|\son[a-z]+=|style=/i, 'no inline script, handler or style in the page');

  const etag = page.header('etag') as string;
  t.match(etag, /^"[A-Za-z0-9_-]+"$/);
  const again = await raw(url, 'GET', '/', { headers: { 'if-none-match': etag } });
  t.equal(again.status, 304);
  t.equal(again.body.length, 0);

  const version = /app\.js\?v=([0-9a-f]{12})"/.exec(page.text)?.[1];
  if (!version) return t.fail(`the page names app.js with its version: ${page.text}`);
  for (const [file, type] of [['app.js', /^text\/javascript/], ['app.css', /^text\/css/], ['icon.svg', /^image\/svg\+xml/]] as const) {
    t.match(page.text, `/dashboard/${file}?v=${version}`, `the page links ${file} at the same version`);
    const res = await raw(url, 'GET', `/dashboard/${file}?v=${version}`);
    t.equal(res.status, 200, file);
    t.match(res.header('content-type'), type);
    t.equal(res.header('cache-control'), 'public, max-age=31536000, immutable', `${file} at the current version is cached for good`);
    t.equal(res.text, readFileSync(`${DASHBOARD_DIR}${file}`, 'utf8'), `${file} as shipped`);
    const old = await raw(url, 'GET', `/dashboard/${file}?v=000000000000`);
    t.equal(old.header('cache-control'), 'no-cache', `${file} asked at another version is revalidated`);
  }
  assertError(t, await raw(url, 'GET', '/dashboard/index.html'), 404, 'NOT_FOUND', 'only the listed files');
  assertError(t, await raw(url, 'GET', '/dashboard/..%2fpackage.json'), 404, 'NOT_FOUND', 'no path out of the folder');
});

t.test('the script inserts what the API returns as text only', async (t) => {
  const script = readFileSync(`${DASHBOARD_DIR}app.js`, 'utf8');
  t.notMatch(script, /innerHTML|outerHTML|insertAdjacentHTML|document\.write|\beval\(|new Function/, 'no markup built from strings');
  t.match(script, /textContent/);
});

t.test('/api/whoami with auth off: everyone may use the API', async (t) => {
  const { app } = await startWharf(t);
  const res = await inject(app, 'GET', '/api/whoami');
  t.equal(res.status, 200);
  t.equal(res.header('cache-control'), 'no-store');
  t.strictSame(res.json(), { user: null, admin: true, authEnabled: false });
});

t.test('/api/whoami with auth on: anonymous, an admin, a user, a wrong password, a Bearer token', async (t) => {
  const { app } = await startWharf(t, AUTH);
  t.strictSame((await inject(app, 'GET', '/api/whoami')).json(), { user: null, admin: false, authEnabled: true }, 'anonymous');
  t.strictSame((await inject(app, 'GET', '/api/whoami', { headers: { authorization: basic('root', 'root-pw') } })).json(), { user: 'root', admin: true, authEnabled: true });
  t.strictSame((await inject(app, 'GET', '/api/whoami', { headers: { authorization: basic('dev', 'dev-pw') } })).json(), { user: 'dev', admin: false, authEnabled: true });
  const wrong = await inject(app, 'GET', '/api/whoami', { headers: { authorization: basic('root', 'nope') } });
  assertError(t, wrong, 401, 'UNAUTHORIZED', 'wrong password');
  t.match(wrong.text, /invalid username or password/);
  const token = (await inject(app, 'GET', '/auth/token?service=wharf', { headers: { authorization: basic('root', 'root-pw') } })).json() as { token: string };
  t.strictSame(
    (await inject(app, 'GET', '/api/whoami', { headers: { authorization: `Bearer ${token.token}` } })).json(),
    { user: 'root', admin: false, authEnabled: true },
    'a Bearer token without the scope wharf:api:manage does not open the management API',
  );
  const manage = (await inject(app, 'GET', '/auth/token?service=wharf&scope=wharf:api:manage', { headers: { authorization: basic('root', 'root-pw') } })).json() as { token: string };
  t.strictSame(
    (await inject(app, 'GET', '/api/whoami', { headers: { authorization: `Bearer ${manage.token}` } })).json(),
    { user: 'root', admin: true, authEnabled: true },
    'one with the scope does',
  );
});
