// ServiceTokens against a real (in-memory) SQLite token store, with a clock the tests move by hand.
import { createHash } from 'node:crypto';
import t from 'tap';
import {
  ServiceTokens,
  TOKEN_PREFIX,
  formatScope,
  looksLikeServiceToken,
  parseScope,
  publicView,
} from '../../src/auth/service-tokens.js';
import type { TokenScope } from '../../src/auth/types.js';
import type { ServiceTokenStore } from '../../src/auth/service-token-store.js';
import { SqliteServiceTokenStore } from '../../src/auth/sqlite-service-token-store.js';
import { SqliteDatabase } from '../../src/metadata/sqlite-database.js';

const T0 = 1_700_000_000_000;
const PULL_TEAM: TokenScope[] = [{ repositories: ['team/**'], actions: ['pull'] }];
const DAY = 86_400_000;

interface Fixture {
  store: ServiceTokenStore;
  tokens: ServiceTokens;
  clock: { now: number };
}

function setup(t: { teardown(fn: () => unknown): void }): Fixture {
  const database = SqliteDatabase.open(':memory:');
  t.teardown(() => database.close());
  const store = new SqliteServiceTokenStore(database);
  const clock = { now: T0 };
  return { store, tokens: new ServiceTokens(store, () => clock.now), clock };
}

/** The token with one character of its secret changed (same length, same alphabet). */
function flipLast(token: string): string {
  const last = token.at(-1)!;
  return token.slice(0, -1) + (last === 'A' ? 'B' : 'A');
}

t.test('create returns the token once; the store holds only the hash of its secret', async (t) => {
  const { store, tokens } = setup(t);
  const { token, record } = await tokens.create({ name: 'ci', scopes: PULL_TEAM });
  t.match(token, /^wharf_[a-z0-9]{12}_[A-Za-z0-9_-]{43}$/);
  t.ok(token.startsWith(TOKEN_PREFIX));
  t.ok(looksLikeServiceToken(token));
  t.match(record.id, /^[a-z0-9]{12}$/);
  t.equal(token.slice(TOKEN_PREFIX.length, TOKEN_PREFIX.length + 12), record.id, 'the id is inside the token');
  const secret = token.slice(TOKEN_PREFIX.length + 13);
  t.equal(Buffer.from(secret, 'base64url').length, 32, '32 random bytes');
  t.equal(record.secretHash, createHash('sha256').update(secret).digest('hex'));
  t.same(record, {
    id: record.id,
    name: 'ci',
    secretHash: record.secretHash,
    scopes: PULL_TEAM,
    createdAt: T0,
    expiresAt: null,
    revokedAt: null,
    lastUsedAt: null,
  });
  t.same(await store.getServiceToken(record.id), record, 'stored as returned');
  t.notMatch(JSON.stringify(await store.listServiceTokens()), secret, 'the secret is nowhere in the store');

  const other = await tokens.create({ name: 'ci2', scopes: PULL_TEAM });
  t.not(other.record.id, record.id, 'fresh id');
  t.not(other.token, token, 'fresh secret');
});

t.test('verify: the right name and token give the active record', async (t) => {
  const { tokens } = setup(t);
  const { token, record } = await tokens.create({ name: 'ci', scopes: PULL_TEAM });
  const ok = await tokens.verify('ci', token);
  t.equal(ok?.id, record.id);
  t.same(ok?.scopes, PULL_TEAM);
  t.equal(await tokens.isActive(record.id), true);
});

t.test('verify: a wrong secret, id, name or prefix is refused', async (t) => {
  const { tokens } = setup(t);
  const { token, record } = await tokens.create({ name: 'ci', scopes: PULL_TEAM });
  const other = await tokens.create({ name: 'deploy', scopes: PULL_TEAM });

  t.equal(await tokens.verify('ci', flipLast(token)), undefined, 'one character of the secret changed');
  t.equal(await tokens.verify('deploy', token), undefined, 'another token name');
  t.equal(await tokens.verify('CI', token), undefined, 'names are case-sensitive');
  t.equal(await tokens.verify('', token), undefined, 'no user name');
  t.equal(await tokens.verify('ci', other.token), undefined, "another token's secret under this name");
  const swapped = `${TOKEN_PREFIX}${other.record.id}_${token.slice(TOKEN_PREFIX.length + 13)}`;
  t.equal(await tokens.verify('deploy', swapped), undefined, 'this secret under the other id');
  t.equal(await tokens.verify('ci', `${TOKEN_PREFIX}zzzzzzzzzzzz_${token.slice(-43)}`), undefined, 'unknown id');
  t.equal(await tokens.verify('ci', `other_${token.slice(TOKEN_PREFIX.length)}`), undefined, 'another prefix');
  t.equal(await tokens.verify('ci', `${token} `), undefined, 'trailing space');
  t.equal((await tokens.verify('ci', token))?.id, record.id, 'the real token still works');
});

t.test('verify: a revoked token is refused at once', async (t) => {
  const { tokens, clock } = setup(t);
  const { token, record } = await tokens.create({ name: 'ci', scopes: PULL_TEAM });
  clock.now += 1000;
  const revoked = await tokens.revoke(record.id);
  t.equal(revoked?.id, record.id);
  t.equal(revoked?.revokedAt, T0 + 1000);
  t.equal(await tokens.verify('ci', token), undefined);
  t.equal(await tokens.isActive(record.id), false);
  t.equal(await tokens.revoke(record.id), undefined, 'revoking twice: nothing to revoke');
});

t.test('verify: a token stops working when it expires', async (t) => {
  const { tokens, clock } = setup(t);
  const { token, record } = await tokens.create({ name: 'ci', scopes: PULL_TEAM, expiresInMs: 90 * DAY });
  t.equal(record.expiresAt, T0 + 90 * DAY);
  clock.now = T0 + 90 * DAY - 1;
  t.ok(await tokens.verify('ci', token), 'valid until the last millisecond');
  t.equal(await tokens.isActive(record.id), true);
  clock.now = T0 + 90 * DAY;
  t.equal(await tokens.verify('ci', token), undefined, 'expired');
  t.equal(await tokens.isActive(record.id), false);
  t.equal(await tokens.isActive('nosuchtoken0'), false, 'an unknown id is not active');
});

t.test('verify never throws on malformed input', async (t) => {
  const { tokens } = setup(t);
  const { token } = await tokens.create({ name: 'ci', scopes: PULL_TEAM });
  const malformed = [
    '',
    TOKEN_PREFIX,
    `${TOKEN_PREFIX}_`,
    `${TOKEN_PREFIX}abc_def`,
    token.slice(0, -1),
    `${token}x`,
    token.toUpperCase(),
    'x'.repeat(10 * 1024),
    `${token}${'a'.repeat(2000)}`,
    `${TOKEN_PREFIX}${'a'.repeat(12)}_${'é'.repeat(43)}`,
    `${TOKEN_PREFIX}ａａａａａａａａａａａａ_${token.slice(-43)}`,
    '🔑'.repeat(40),
    '\u0000'.repeat(56),
    'wharf_aaaaaaaaaaaa_aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\n',
  ];
  for (const password of malformed) {
    t.equal(looksLikeServiceToken(password), false, `looksLikeServiceToken(${JSON.stringify(password.slice(0, 30))})`);
    await t.resolves(tokens.verify('ci', password));
    t.equal(await tokens.verify('ci', password), undefined, JSON.stringify(password.slice(0, 30)));
  }
  t.equal(await tokens.verify('🔑'.repeat(600), token), undefined, 'an odd user name');
  t.equal(await tokens.verify(undefined as unknown as string, token), undefined, 'not even a string');
  t.equal(await tokens.verify('ci', null as unknown as string), undefined);
  t.equal(looksLikeServiceToken(42 as unknown as string), false);
});

t.test('verify records lastUsedAt at most once a minute per token', async (t) => {
  const { store, tokens, clock } = setup(t);
  const a = await tokens.create({ name: 'a', scopes: PULL_TEAM });
  const b = await tokens.create({ name: 'b', scopes: PULL_TEAM });
  const lastUsed = async (id: string) => (await store.getServiceToken(id))?.lastUsedAt;

  await tokens.verify('a', flipLast(a.token));
  t.equal(await lastUsed(a.record.id), null, 'a failed verification is not a use');
  clock.now = T0 + 10;
  t.equal((await tokens.verify('a', a.token))?.lastUsedAt, T0 + 10, 'the returned record shows the use');
  t.equal(await lastUsed(a.record.id), T0 + 10);
  clock.now = T0 + 10 + 59_999;
  t.equal((await tokens.verify('a', a.token))?.lastUsedAt, T0 + 10, 'within the minute: no write');
  t.equal(await lastUsed(a.record.id), T0 + 10);
  clock.now = T0 + 10 + 60_000;
  await tokens.verify('a', a.token);
  t.equal(await lastUsed(a.record.id), T0 + 10 + 60_000, 'a minute later: written again');
  t.equal(await lastUsed(b.record.id), null, 'per token');
});

t.test('a failed lastUsedAt write does not refuse a valid token', async (t) => {
  const { store, tokens } = setup(t);
  const { token } = await tokens.create({ name: 'ci', scopes: PULL_TEAM });
  const failing = Object.create(store) as ServiceTokenStore;
  failing.getServiceToken = (id) => store.getServiceToken(id);
  failing.touchServiceToken = async () => {
    throw new Error('database is locked');
  };
  t.ok(await new ServiceTokens(failing, () => T0).verify('ci', token));
});

t.test('create validates the name, the scopes and the lifetime', async (t) => {
  const { tokens } = setup(t);
  const bad: Array<[Parameters<ServiceTokens['create']>[0], RegExp]> = [
    [{ name: '', scopes: PULL_TEAM }, /invalid token name ""/],
    [{ name: '-ci', scopes: PULL_TEAM }, /invalid token name/],
    [{ name: 'c i', scopes: PULL_TEAM }, /invalid token name/],
    [{ name: 'ci@corp', scopes: PULL_TEAM }, /invalid token name/],
    [{ name: 'x'.repeat(65), scopes: PULL_TEAM }, /invalid token name/],
    [{ name: 'ci', scopes: [] }, /at least one scope/],
    [{ name: 'ci', scopes: [{ repositories: [], actions: ['pull'] }] }, /scope 1: needs at least one repository glob/],
    [{ name: 'ci', scopes: [{ repositories: [''], actions: ['pull'] }] }, /scope 1: invalid repository glob ""/],
    [{ name: 'ci', scopes: [{ repositories: ['a b'], actions: ['pull'] }] }, /no whitespace/],
    [{ name: 'ci', scopes: [{ repositories: ['a\tb'], actions: ['pull'] }] }, /no whitespace/],
    [{ name: 'ci', scopes: [{ repositories: ['a'.repeat(513)], actions: ['pull'] }] }, /1 to 512 characters/],
    [{ name: 'ci', scopes: [...PULL_TEAM, { repositories: ['x'], actions: [] }] }, /scope 2: needs at least one action/],
    [{ name: 'ci', scopes: [{ repositories: ['x'], actions: ['read' as 'pull'] }] }, /invalid action "read": one of pull, push, delete, \*/],
    [{ name: 'ci', scopes: PULL_TEAM, expiresInMs: 0 }, /invalid token lifetime/],
    [{ name: 'ci', scopes: PULL_TEAM, expiresInMs: -5 }, /invalid token lifetime/],
    [{ name: 'ci', scopes: PULL_TEAM, expiresInMs: 1.5 }, /invalid token lifetime/],
  ];
  for (const [input, message] of bad) {
    await t.rejects(tokens.create(input), message, JSON.stringify(input).slice(0, 80));
  }
  t.same(await tokens.list(), [], 'nothing was stored');
  t.ok(await tokens.create({ name: `A${'x._-'.repeat(15)}xyz`, scopes: [{ repositories: ['a'.repeat(512)], actions: ['*'] }] }), 'the limits themselves are fine');
});

t.test('a name taken by an active token is refused; revoking frees it', async (t) => {
  const { tokens } = setup(t);
  const first = await tokens.create({ name: 'ci', scopes: PULL_TEAM });
  await t.rejects(tokens.create({ name: 'ci', scopes: PULL_TEAM }), /"ci" is already taken/);
  t.equal((await tokens.list()).length, 1);
  await tokens.revoke('ci');
  const second = await tokens.create({ name: 'ci', scopes: PULL_TEAM });
  t.equal(await tokens.verify('ci', first.token), undefined, 'the old token stays dead');
  t.equal((await tokens.verify('ci', second.token))?.id, second.record.id, 'the new one works');
});

t.test('revoke by id or by the name of an active token', async (t) => {
  const { tokens, clock } = setup(t);
  const a = await tokens.create({ name: 'ci', scopes: PULL_TEAM });
  clock.now += 1;
  const b = await tokens.create({ name: 'deploy', scopes: PULL_TEAM, expiresInMs: 1000 });
  t.equal(await tokens.revoke('nobody'), undefined, 'unknown name');
  t.equal(await tokens.revoke('zzzzzzzzzzzz'), undefined, 'unknown id');

  clock.now += 5000; // b has expired: it can still be revoked by name, which frees the name
  t.equal((await tokens.revoke('deploy'))?.id, b.record.id);
  t.equal((await tokens.revoke(a.record.id))?.id, a.record.id);
  t.equal(await tokens.revoke('ci'), undefined, 'no active token of that name any more');
  t.same(
    (await tokens.list()).map((r) => [r.name, r.revokedAt]),
    [
      ['ci', clock.now],
      ['deploy', clock.now],
    ],
  );
});

t.test('revoke by name picks the active token, not an old revoked one of the same name', async (t) => {
  const { tokens } = setup(t);
  const old = await tokens.create({ name: 'ci', scopes: PULL_TEAM });
  await tokens.revoke(old.record.id);
  const current = await tokens.create({ name: 'ci', scopes: PULL_TEAM });
  t.equal((await tokens.revoke('ci'))?.id, current.record.id);
});

t.test('list and publicView never expose a secret', async (t) => {
  const { tokens } = setup(t);
  const a = await tokens.create({ name: 'ci', scopes: PULL_TEAM });
  const b = await tokens.create({ name: 'deploy', scopes: [{ repositories: ['**'], actions: ['*'] }] });
  const list = await tokens.list();
  t.same(
    list.map((r) => r.id),
    [a.record.id, b.record.id].sort(),
    'same createdAt: by id',
  );
  const text = JSON.stringify(list);
  for (const { token } of [a, b]) t.notMatch(text, token.slice(TOKEN_PREFIX.length + 13), 'no secret in the records');

  const view = publicView(a.record);
  t.notOk('secretHash' in view, 'publicView drops the hash');
  t.same(view, {
    id: a.record.id,
    name: 'ci',
    scopes: PULL_TEAM,
    createdAt: T0,
    expiresAt: null,
    revokedAt: null,
    lastUsedAt: null,
  });
});

t.test('parseScope and formatScope: the --scope syntax', async (t) => {
  t.same(parseScope('team/**:pull'), { repositories: ['team/**'], actions: ['pull'] });
  t.same(parseScope('a/*,docker.io/library/*:pull,push'), {
    repositories: ['a/*', 'docker.io/library/*'],
    actions: ['pull', 'push'],
  });
  t.same(parseScope('**:*'), { repositories: ['**'], actions: ['*'] });
  t.equal(formatScope(parseScope('a,b:pull,delete')), 'a,b:pull,delete', 'round trip');
  t.throws(() => parseScope('team/**'), /invalid scope "team\/\*\*": expected GLOB\[,GLOB...\]:ACTION/);
  t.throws(() => parseScope(':pull'), /invalid scope ":pull": invalid repository glob ""/);
  t.throws(() => parseScope('a:'), /invalid scope "a:": invalid action ""/);
  t.throws(() => parseScope('a,,b:pull'), /invalid repository glob ""/);
  t.throws(() => parseScope('a:pull,write'), /invalid action "write"/);
});
