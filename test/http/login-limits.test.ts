// The failed-login limits over HTTP: attempts counted before the password check (concurrent guesses
// cannot slip under the limit), an address over its limit does not lock out a user with the right
// password, and X-Forwarded-For counts only from trusted proxies (http.trustProxy).
import bcrypt from 'bcryptjs';
import t from 'tap';
import type { FastifyInstance } from 'fastify';
import { startWharf } from '../helpers/server.js';
import { assertError, inject, type Res } from '../helpers/http.js';

const basic = (user: string, pw: string) => `Basic ${Buffer.from(`${user}:${pw}`).toString('base64')}`;

function config(failedLogins: Record<string, unknown>, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    local: { namespaces: ['team'] },
    auth: {
      users: [
        { name: 'alice', password: bcrypt.hashSync('alice-pw', 4) },
        { name: 'bob', password: bcrypt.hashSync('bob-pw', 4) },
        { name: 'carol', password: bcrypt.hashSync('carol-pw', 4) },
      ],
      failedLogins: { window: '5m', ...failedLogins },
    },
    ...extra,
  };
}

const login = (app: FastifyInstance, user: string, pw: string, headers: Record<string, string> = {}): Promise<Res> =>
  inject(app, 'GET', '/auth/token?service=wharf', { headers: { authorization: basic(user, pw), ...headers } });

t.test('40 concurrent wrong passwords against a limit of 10: ten are checked, thirty refused before bcrypt', async (t) => {
  const { app } = await startWharf(t, config({ perUser: 10, perAddress: 1000 }));
  const answers = await Promise.all(Array.from({ length: 40 }, (_, i) => login(app, 'bob', `guess-${i}`)));
  const statuses = answers.map((r) => r.status);
  t.equal(statuses.filter((s) => s === 401).length, 10, 'ten wrong passwords were checked (401)');
  t.equal(statuses.filter((s) => s === 429).length, 30, 'thirty were refused (429)');
  assertError(t, answers.find((r) => r.status === 429)!, 429, 'TOOMANYREQUESTS');
  assertError(t, await login(app, 'bob', 'bob-pw'), 429, 'TOOMANYREQUESTS', 'the name waits out its window');
  t.equal((await login(app, 'alice', 'alice-pw')).status, 200, 'another user is not affected');
});

t.test('a right password in flight with wrong ones is handed back: it does not count as a failure', async (t) => {
  const { app } = await startWharf(t, config({ perUser: 3, perAddress: 1000 }));
  const answers = await Promise.all([login(app, 'bob', 'bob-pw'), login(app, 'bob', 'x'), login(app, 'bob', 'y')]);
  t.same(answers.map((r) => r.status).sort(), [200, 401, 401]);
  t.equal((await login(app, 'bob', 'z')).status, 401, 'the success cleared the failures: a third wrong password is still checked');
});

t.test('30 failures under made-up names from one address do not lock out bob with the right password', async (t) => {
  const { app } = await startWharf(t, config({ perUser: 10, perAddress: 30 }));
  for (let i = 0; i < 30; i++) t.equal((await login(app, `made-up-${i}`, 'guess')).status, 401, `made-up-${i}`);
  const refused = await login(app, 'made-up-30', 'guess');
  assertError(t, refused, 429, 'TOOMANYREQUESTS', 'the address is throttled: no more made-up names');
  t.match(refused.header('retry-after'), /^\d+$/);
  for (let i = 0; i < 3; i++) t.equal((await login(app, 'bob', 'bob-pw')).status, 200, `bob logs in (${i + 1})`);
  t.equal((await login(app, 'alice', 'wrong')).status, 401, 'alice mistypes her password');
  t.equal((await login(app, 'alice', 'alice-pw')).status, 200, 'and gets in with the right one at once');
  for (let i = 0; i < 3; i++) t.equal((await login(app, 'carol', `guess-${i}`)).status, 401, `a guess at carol (${i + 1})`);
  assertError(t, await login(app, 'carol', 'carol-pw'), 429, 'TOOMANYREQUESTS', 'three guesses at one name, then it waits its pace at a throttled address');
});

t.test('X-Forwarded-For is ignored by default: every client behind it is the one address', async (t) => {
  const { app } = await startWharf(t, config({ perUser: 100, perAddress: 2 }));
  for (const i of [1, 2]) t.equal((await login(app, `ghost-${i}`, 'x', { 'x-forwarded-for': `203.0.113.${i}` })).status, 401);
  assertError(t, await login(app, 'ghost-3', 'x', { 'x-forwarded-for': '203.0.113.3' }), 429, 'TOOMANYREQUESTS', 'a forged header does not make a new client');
});

t.test('with http.trustProxy, the client named by X-Forwarded-For is the one counted', async (t) => {
  const { app } = await startWharf(t, config({ perUser: 100, perAddress: 2 }, { http: { trustProxy: ['127.0.0.1/32'] } }));
  const from = (ip: string) => ({ 'x-forwarded-for': ip });
  for (const i of [1, 2]) t.equal((await login(app, `ghost-${i}`, 'x', from('203.0.113.1'))).status, 401);
  assertError(t, await login(app, 'ghost-3', 'x', from('203.0.113.1')), 429, 'TOOMANYREQUESTS', 'the client behind the proxy is throttled');
  t.equal((await login(app, 'ghost-4', 'x', from('203.0.113.2'))).status, 401, 'another client behind the same proxy is not');
  t.equal((await login(app, 'ghost-5', 'x', from('198.51.100.7, 203.0.113.2'))).status, 401, 'the address the proxy saw counts, not what the client wrote');
  assertError(t, await login(app, 'ghost-6', 'x', from('203.0.113.2, 203.0.113.1')), 429, 'TOOMANYREQUESTS');
});
