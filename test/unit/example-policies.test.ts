// The access examples in examples/ say who may do what in their comments; this loads each file and
// checks that the policies it configures do exactly that, on canonical repository names.
import t from 'tap';
import { loadConfig } from '../../src/config/load.js';
import { zoneOf } from '../../src/auth/access-control.js';
import { Policy } from '../../src/auth/policy.js';
import { ANONYMOUS, type Action, type Identity } from '../../src/auth/types.js';
import { Router } from '../../src/registry/router.js';
import type { WharfConfig } from '../../src/config/schema.js';

function policyOf(config: WharfConfig): { policy: Policy; can: (who: Identity, name: string, ns?: string) => Action[] } {
  const auth = config.auth!;
  const router = new Router(config.upstreams, config.local.namespaces);
  const route = (name: string, ns?: string) => router.route(name, ns);
  const policy = new Policy(auth.policies, { defaults: auth.defaultPolicies, zone: (repo) => zoneOf(route, repo), adminGroup: auth.adminGroup });
  return { policy, can: (who, name, ns) => policy.allowed(who, route(name, ns).canonical) };
}

/** A user with the groups the config gives them (auth.groups and inline users). */
function userIn(config: WharfConfig, name: string): Identity {
  const auth = config.auth!;
  const groups = Object.entries(auth.groups ?? {})
    .filter(([, members]) => members.includes(name))
    .map(([g]) => g);
  for (const u of auth.users) if (u.name === name) groups.push(...(u.groups ?? []));
  return { kind: 'user', name, groups };
}

const ALL: Action[] = ['pull', 'push', 'delete'];

t.test('examples/auth.yaml: Docker Hub open to all, team/** to the team, ci/** to deployers and admins', async (t) => {
  const config = loadConfig({ file: 'examples/auth.yaml', env: {} });
  const { can } = policyOf(config);
  const [alice, bob, deploy, carol] = ['alice', 'bob', 'deploy', 'carol'].map((n) => userIn(config, n)) as [Identity, Identity, Identity, Identity];
  for (const who of [ANONYMOUS, carol, bob]) {
    t.same(can(who, 'library/alpine'), ['pull'], 'anyone may pull through the Docker Hub mirror');
    t.same(can(who, 'alpine'), ['pull']);
    t.same(can(who, 'docker.io/team/app'), ['pull'], 'a Docker Hub image named like a local namespace is still the mirror');
  }
  t.same(can(ANONYMOUS, 'team/app'), [], 'the team repositories are not anonymous');
  t.same(can(ANONYMOUS, 'ci/build'), []);
  t.same(can(carol, 'team/app'), [], 'a signed-in user outside the team gets nothing there');
  t.same(can(carol, 'ci/build'), []);
  t.same(can(bob, 'team/app'), ALL, 'the team owns team/**');
  t.same(can(bob, 'ci/build'), [], 'the team does not push ci/**');
  t.same(can(deploy, 'team/app'), ['pull']);
  t.same(can(deploy, 'ci/build'), ['pull']);
  t.same(can(alice, 'ci/build'), ALL, 'admins do anything to local repositories');
  for (const bare of ['team', 'ci']) {
    t.same(can(carol, bare), [], `the bare local name ${bare} is covered by the rules too: nothing for a user outside them`);
    t.same(can(ANONYMOUS, bare), []);
  }
  t.same(can(bob, 'team'), ALL);
  t.same(can(alice, 'library/alpine'), ['pull'], 'the mirror is read-only, for admins too');
});

t.test('examples/private-upstream.yaml: the private registry is pulled only by signed-in users', async (t) => {
  const config = loadConfig({ file: 'examples/private-upstream.yaml', env: { REGISTRY_PASSWORD: 'secret' } });
  t.ok(config.auth, 'access control is on');
  const { can } = policyOf(config);
  const alice = userIn(config, 'alice');
  for (const [name, ns] of [['corp/tool'], ['registry.corp.example:5000/tool'], ['tool', 'registry.corp.example:5000']] as Array<[string, string?]>) {
    t.same(can(ANONYMOUS, name, ns), [], `anonymous may not pull ${name}${ns ? `?ns=${ns}` : ''}`);
    t.same(can(alice, name, ns), ['pull'], `a signed-in user may pull ${name}`);
  }
  t.same(can(ANONYMOUS, 'local/app'), []);
  t.same(can(alice, 'local/app'), ALL, 'signed-in users push to local/**');
});
