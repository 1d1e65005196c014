import t from 'tap';
import { globMatch, Policy, type PolicyRule, type RepositoryZone } from '../../src/auth/policy.js';
import { ANONYMOUS, type Identity } from '../../src/auth/types.js';

const user = (name: string, ...groups: string[]): Identity => ({ kind: 'user', name, groups });
const token = (scopes: Array<{ repositories: string[]; actions: Array<'pull' | 'push' | 'delete' | '*'> }>): Identity => ({
  kind: 'token',
  name: 'ci',
  tokenId: 'abcdefabcdef',
  scopes,
});
// Names under local/, team/ and users/ are routed to the local registry, corp/ to an upstream Wharf
// signs in to, everything else to a public upstream.
const zone = (repo: string): RepositoryZone =>
  /^(local|team|users)\//.test(repo) ? 'local' : repo.startsWith('corp/') ? 'private-upstream' : 'public-upstream';

t.test('glob table', async (t) => {
  const table: Array<[string, string, boolean]> = [
    ['team/*', 'team/a', true],
    ['team/*', 'team/a/b', false],
    ['team/*', 'team', false],
    ['team/*', 'team/', true],
    ['team/**', 'team/a/b', true],
    ['library/**', 'library/x/y', true],
    ['library/**', 'library/x', true],
    ['library/**', 'library', false],
    ['library/**', 'libraryx/y', false],
    ['*', 'a', true],
    ['*', 'a/b/c', false],
    ['*', 'library/alpine', false],
    ['**', 'a/b/c', true],
    ['**', '', true],
    ['a.b', 'a.b', true],
    ['a.b', 'aXb', false],
    ['team/*-dev', 'team/app-dev', true],
    ['team/*-dev', 'team/-dev', true],
    ['team/*-dev', 'team/app-prod', false],
    ['team/*-dev', 'team/x/app-dev', false],
    ['*/app', 'team/app', true],
    ['*/app', 'a/b/app', false],
    ['**/app', 'a/b/app', true],
    ['team/**/app', 'team/x/y/app', true],
    ['team/**/app', 'team/app', false],
    ['team/***', 'team/a/b', true],
    ['exact/name', 'exact/name', true],
    ['exact/name', 'exact/name2', false],
    ['exact/name', 'pre/exact/name', false],
    ['a+b(c)[d]{1}^$|?\\', 'a+b(c)[d]{1}^$|?\\', true],
    ['a+b', 'aab', false],
    ['a?c', 'abc', false],
  ];
  for (const [pattern, repo, want] of table) {
    t.equal(globMatch(pattern, repo), want, `${pattern} vs ${JSON.stringify(repo)}`);
    t.equal(globMatch(pattern, repo), want, `${pattern} vs ${JSON.stringify(repo)} (cached)`);
  }
});

t.test('what an identity may do is the union of every matching rule', async (t) => {
  const rules: PolicyRule[] = [
    { repositories: ['team/*'], subjects: ['alice'], actions: ['pull'] },
    { repositories: ['team/app'], subjects: ['alice'], actions: ['push'] },
    { repositories: ['other/**', 'team/a*'], subjects: ['bob', 'alice'], actions: ['delete'] },
  ];
  const p = new Policy(rules, { defaults: false, zone, adminGroup: 'admin' });
  t.same(p.allowed(user('alice'), 'team/app'), ['pull', 'push', 'delete']);
  t.same(p.allowed(user('alice'), 'team/web'), ['pull']);
  t.same(p.allowed(user('alice'), 'team/x/y'), [], 'no rule matches the name');
  t.same(p.allowed(user('bob'), 'team/app'), ['delete']);
  t.same(p.allowed(user('bob'), 'other/x/y'), ['delete']);
  t.same(p.allowed(user('carol'), 'team/app'), [], 'no rule matches the subject');
  t.ok(p.permits(user('alice'), 'team/app', 'push'));
  t.notOk(p.permits(user('alice'), 'team/web', 'push'));
});

t.test('`*` in actions means all three, in pull, push, delete order', async (t) => {
  const p = new Policy([{ repositories: ['**'], subjects: ['alice'], actions: ['delete', '*'] }], { defaults: false, zone, adminGroup: 'admin' });
  t.same(p.allowed(user('alice'), 'any/thing'), ['pull', 'push', 'delete']);
});

t.test('group subjects match users in that group only', async (t) => {
  const p = new Policy([{ repositories: ['team/**'], subjects: ['group:devs'], actions: ['pull', 'push'] }], { defaults: false, zone, adminGroup: 'admin' });
  t.same(p.allowed(user('alice', 'ops', 'devs'), 'team/a/b'), ['pull', 'push']);
  t.same(p.allowed(user('bob', 'ops'), 'team/a/b'), []);
  t.same(p.allowed(user('devs'), 'team/a/b'), [], 'a user named like the group is not in it');
  t.same(p.allowed(user('group:devs'), 'team/a/b'), [], 'group:<g> never matches by user name');
  t.same(p.allowed(ANONYMOUS, 'team/a/b'), []);
});

t.test('anonymous matches only requests without credentials; authenticated only users', async (t) => {
  const p = new Policy(
    [
      { repositories: ['public/**'], subjects: ['anonymous'], actions: ['pull'] },
      { repositories: ['members/**'], subjects: ['authenticated'], actions: ['pull'] },
      { repositories: ['everyone/**'], subjects: ['anonymous', 'authenticated'], actions: ['pull'] },
    ],
    { defaults: false, zone, adminGroup: 'admin' },
  );
  t.same(p.allowed(ANONYMOUS, 'public/x'), ['pull']);
  t.same(p.allowed(user('alice'), 'public/x'), [], 'a user is never matched by anonymous');
  t.same(p.allowed(ANONYMOUS, 'members/x'), []);
  t.same(p.allowed(user('alice'), 'members/x'), ['pull']);
  t.same(p.allowed(ANONYMOUS, 'everyone/x'), ['pull']);
  t.same(p.allowed(user('alice'), 'everyone/x'), ['pull']);
  t.same(p.allowed(user('anonymous'), 'public/x'), [], 'a user named "anonymous" is still a user');
});

t.test('built-in rules', async (t) => {
  const on = new Policy([], { defaults: true, zone, adminGroup: 'admin' });
  t.same(on.allowed(ANONYMOUS, 'library/alpine'), ['pull'], 'anyone may pull upstream names');
  t.same(on.allowed(ANONYMOUS, 'local/app'), [], 'anonymous gets nothing on local names');
  t.same(on.allowed(user('alice'), 'library/alpine'), ['pull']);
  t.same(on.allowed(user('alice'), 'local/app'), ['pull', 'push', 'delete']);

  const off = new Policy([], { defaults: false, zone, adminGroup: 'admin' });
  t.same(off.allowed(ANONYMOUS, 'library/alpine'), []);
  t.same(off.allowed(user('alice'), 'local/app'), []);
  t.same(off.allowed(user('alice'), 'library/alpine'), []);

  const withRules = new Policy([{ repositories: ['library/*'], subjects: ['alice'], actions: ['pull', 'push'] }], { defaults: true, zone, adminGroup: 'admin' });
  t.same(withRules.allowed(user('alice'), 'library/alpine'), ['pull', 'push']);
  t.same(withRules.allowed(user('bob'), 'library/alpine'), [], 'a written rule is the whole truth for what it covers');
  t.same(withRules.allowed(ANONYMOUS, 'library/alpine'), []);
  t.same(withRules.allowed(ANONYMOUS, 'other/alpine'), ['pull'], 'built-in rules still cover what no rule names');
});

t.test('a configured rule that grants pull on local names does not leave push to the built-in rules', async (t) => {
  const p = new Policy([{ repositories: ['local/**'], subjects: ['bob'], actions: ['pull'] }], { defaults: true, zone, adminGroup: 'admin' });
  t.same(p.allowed(user('bob'), 'local/app'), ['pull'], 'bob may pull, not push');
  t.same(p.allowed(user('alice'), 'local/app'), [], 'a rule naming bob covers local/** for everyone');
  t.same(p.allowed(user('alice'), 'team/app'), ['pull', 'push', 'delete'], 'names no rule covers keep the built-in rules');
});

t.test('a private upstream is not pulled anonymously through the built-in rules', async (t) => {
  const p = new Policy([], { defaults: true, zone, adminGroup: 'admin' });
  t.same(p.allowed(ANONYMOUS, 'corp/tool'), []);
  t.same(p.allowed(user('alice'), 'corp/tool'), ['pull'], 'signed-in users may pull it');
  t.same(p.allowed(ANONYMOUS, 'library/alpine'), ['pull'], 'a public upstream stays public');
  const opened = new Policy([{ repositories: ['corp/public/**'], subjects: ['anonymous'], actions: ['pull'] }], { defaults: true, zone, adminGroup: 'admin' });
  t.same(opened.allowed(ANONYMOUS, 'corp/public/tool'), ['pull'], 'a configured rule may open it');
  t.same(opened.allowed(ANONYMOUS, 'corp/tool'), []);
});

t.test('a lone * matches one path component, not every repository', async (t) => {
  const p = new Policy([{ repositories: ['*'], subjects: ['anonymous'], actions: ['pull'] }], { defaults: false, zone, adminGroup: 'admin' });
  t.same(p.allowed(ANONYMOUS, 'alpine'), ['pull']);
  t.same(p.allowed(ANONYMOUS, 'team/secret'), []);
  const all = new Policy([{ repositories: ['**'], subjects: ['anonymous'], actions: ['pull'] }], { defaults: false, zone, adminGroup: 'admin' });
  t.same(all.allowed(ANONYMOUS, 'team/secret/x'), ['pull'], '** matches every repository');
});

t.test('{user} gives every user a private namespace', async (t) => {
  const p = new Policy([{ repositories: ['users/{user}/**'], subjects: ['authenticated'], actions: ['*'] }], { defaults: true, zone, adminGroup: 'admin' });
  t.same(p.allowed(user('alice'), 'users/alice/app'), ['pull', 'push', 'delete']);
  t.same(p.allowed(user('alice'), 'users/alice/a/b'), ['pull', 'push', 'delete']);
  t.same(p.allowed(user('bob'), 'users/alice/app'), [], "another user's namespace is covered by the rule, so built-in rules do not open it");
  t.same(p.allowed(ANONYMOUS, 'users/alice/app'), []);
  t.same(p.allowed(user('al*'), 'users/alice/app'), [], 'glob characters in a user name match only themselves');
  t.same(p.allowed(user('**'), 'users/alice/app'), []);
  t.same(p.allowed(user('alice/app'), 'users/alice/app/x'), [], 'a user name containing / matches nothing');
  t.same(p.allowed(user('alice'), 'users/alicex/app'), [], '{user} is the whole component');
  t.notOk(globMatch('users/{user}/**', 'users/alice/app'), 'no user, no match');
  t.ok(globMatch('users/{user}/**', 'users/alice/app', 'alice'));
});

t.test('the owner subject matches the recorded owner only', async (t) => {
  const p = new Policy([{ repositories: ['apps/**'], subjects: ['owner'], actions: ['*'] }], { defaults: true, zone, adminGroup: 'admin' });
  t.ok(p.usesOwners);
  t.same(p.allowed(user('alice'), 'apps/web', { owner: 'alice' }), ['pull', 'push', 'delete']);
  t.same(p.allowed(user('bob'), 'apps/web', { owner: 'alice' }), []);
  t.same(p.allowed(user('bob'), 'apps/web'), [], 'no owner known: owner matches nobody');
  t.same(p.allowed(ANONYMOUS, 'apps/web', { owner: '' }), []);
  t.notOk(new Policy([], { defaults: true, zone, adminGroup: 'admin' }).usesOwners);
});

t.test('service tokens get exactly their scopes: no rules, no built-in rules', async (t) => {
  const p = new Policy([{ repositories: ['**'], subjects: ['ci', 'authenticated', 'anonymous'], actions: ['*'] }], {
    defaults: true,
    zone,
    adminGroup: 'admin',
  });
  const ci = token([
    { repositories: ['team/*'], actions: ['pull'] },
    { repositories: ['team/app', 'team/web'], actions: ['push'] },
  ]);
  t.same(p.allowed(ci, 'team/app'), ['pull', 'push']);
  t.same(p.allowed(ci, 'team/other'), ['pull']);
  t.same(p.allowed(ci, 'local/app'), [], 'built-in rules do not apply to tokens');
  t.same(p.allowed(ci, 'library/alpine'), [], 'not even upstream pulls');
  t.same(p.allowed(token([]), 'team/app'), []);
  t.same(p.allowed(token([{ repositories: ['**'], actions: ['*'] }]), 'a/b/c'), ['pull', 'push', 'delete']);
  t.notOk(p.permits(ci, 'team/other', 'push'));
});

t.test('isAdmin: users in the admin group only', async (t) => {
  const p = new Policy([], { defaults: true, zone, adminGroup: 'ops' });
  t.ok(p.isAdmin(user('alice', 'devs', 'ops')));
  t.notOk(p.isAdmin(user('bob', 'devs')));
  t.notOk(p.isAdmin(user('ops')), 'a user named like the group is not in it');
  t.notOk(p.isAdmin(ANONYMOUS));
  t.notOk(p.isAdmin({ kind: 'token', name: 'ops', tokenId: 'x', scopes: [{ repositories: ['**'], actions: ['*'] }] }));
});
