// Repository globs in policies and token scopes are judged against canonical names: a glob that
// spells an upstream otherwise, or that no valid name can match, is refused with the spelling to
// write instead (src/auth/repository-globs.ts).
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { globChecker, repositoryGlobProblem } from '../../src/auth/repository-globs.js';
import { ConfigError, loadConfig } from '../../src/config/load.js';
import { globContext, policyGlobViolations } from '../../src/cli/preflight.js';
import { Router } from '../../src/registry/router.js';

const hub = { name: 'hub', registry: 'docker.io', prefix: 'hub', default: true };
const priv = { name: 'priv', registry: 'registry.corp.example:5000', prefix: 'corp', default: false, username: 'wharf' };
const ghcr = { name: 'ghcr', registry: 'ghcr.io', default: false };
const router = new Router([hub, priv, ghcr], ['team', 'users']);
const ctx = { route: (name: string, ns?: string) => router.route(name, ns), upstreams: [hub, priv, ghcr] };
const problem = (glob: string) => repositoryGlobProblem(glob, ctx);

t.test('a glob naming an upstream by a non-canonical spelling is refused with the canonical one', async (t) => {
  t.equal(
    problem('corp/**'),
    '"corp/**" names upstream priv by its prefix; policies and tokens match canonical names: write "registry.corp.example-5000/**"',
  );
  t.match(problem('registry.corp.example:5000/someorg/*'), /by its registry host with ":".*write "registry\.corp\.example-5000\/someorg\/\*"$/);
  t.match(problem('docker.io/library/**'), /names upstream hub by its registry host, but its images are named bare.*write "library\/\*\*"$/);
  t.match(problem('hub/library/alpine'), /names upstream hub by its prefix.*write "library\/alpine"$/);
  t.match(problem('docker.io/alpine'), /write "library\/alpine"$/, "Docker Hub's library/ is added as the router adds it");
  t.match(problem('someorg/**?ns=registry.corp.example:5000'), /names upstream priv through \?ns=registry\.corp\.example:5000.*write "registry\.corp\.example-5000\/someorg\/\*\*"$/);
  t.match(problem('hub/team/**'), /write "docker\.io\/team\/\*\*"$/, 'a Docker Hub image named like a local namespace keeps its registry');
});

t.test('a glob on the whole default upstream is refused without advising a bare wildcard that would cover every repository', async (t) => {
  for (const glob of ['docker.io/**', 'hub/**', '**?ns=docker.io']) {
    const said = problem(glob);
    t.match(said, /its images are named bare, so no glob covers all of them.*list its namespaces/, glob);
    t.notMatch(said, /write "\*/, `${glob}: never told to write a bare wildcard`);
  }
});

t.test('a service-token scope naming {user} is refused: a token has no user', async (t) => {
  t.match(globChecker(ctx)('users/{user}/**'), /\{user\} stands for the caller's user name, and a service token has none/);
  t.equal(globChecker(ctx)('users/alice/**'), undefined);
});

t.test('a glob that no valid repository name can match is refused', async (t) => {
  t.match(problem('Team/**'), /"Team\/\*\*" can never match a repository name .*: write "team\/\*\*"$/);
  for (const glob of ['other.example:5000/**', 'team//app', 'team/', '/team', 'team/{owner}', 'team/a b', 'team/app@latest', 'team/[ab]']) {
    t.match(problem(glob), /can never match a repository name/, glob);
  }
});

t.test('globs on canonical names pass', async (t) => {
  for (const glob of [
    'team/**',
    'users/{user}/**',
    '**',
    '*',
    'library/**',
    'library/alpine',
    'registry.corp.example-5000/**',
    'registry.corp.example-5000/someorg/tool',
    'ghcr.io/owner/*',
    'team/*-app',
    '**/app',
    'someorg/**',
    'docker.io/team/**',
  ]) {
    t.equal(problem(glob), undefined, glob);
  }
});

t.test('loading with the policy-glob check lists every dead glob by its key, together with the other violations', async (t) => {
  const dir = t.testdir({
    'wharf.yaml': [
      'upstreams:',
      '  - {name: priv, url: "https://registry.corp.example:5000", registry: "registry.corp.example:5000", prefix: corp, username: u, password: p}',
      'log: {level: loud}',
      'auth:',
      '  users: []',
      '  policies:',
      '    - {repositories: ["corp/**"], subjects: [alice], actions: [pull]}',
      '    - {repositories: ["docker.io/library/**", "registry.corp.example:5000/**"], subjects: [alice], actions: [pull]}',
    ].join('\n'),
  });
  const load = () => loadConfig({ file: join(dir, 'wharf.yaml'), env: {}, checks: policyGlobViolations });
  const err = t.throws(load) as unknown as ConfigError;
  t.ok(err instanceof ConfigError);
  t.match(err.violations, [
    /^log\.level: /,
    /^auth\.policies\.0\.repositories\.0: "corp\/\*\*" names upstream priv by its prefix.*write "registry\.corp\.example-5000\/\*\*" \(line 7\)$/,
    /^auth\.policies\.1\.repositories\.1: "registry\.corp\.example:5000\/\*\*" names upstream priv by its registry host.* \(line 8\)$/,
  ]);
  t.equal(err.violations.length, 3, 'docker.io/library/** is a local name here (no Docker Hub upstream)');
  t.same(policyGlobViolations({ upstreams: { priv: {} }, auth: { policies: [{ repositories: ['corp/**'] }] } }), [], 'routing keys of the wrong shape are the schema\'s to report');
});

t.test('the policies of every shipped configuration name canonical repositories', async (t) => {
  const root = join(import.meta.dirname, '..', '..');
  for (const dirName of ['examples', 'config']) {
    for (const f of readdirSync(join(root, dirName)).filter((n) => /\.ya?ml$/.test(n))) {
      const config = loadConfig({ file: join(root, dirName, f), env: { REGISTRY_PASSWORD: 'example' } });
      const ctx = globContext(config.upstreams, config.local.namespaces);
      for (const rule of config.auth?.policies ?? []) {
        for (const glob of rule.repositories) t.equal(repositoryGlobProblem(glob, ctx), undefined, `${dirName}/${f}: ${glob}`);
      }
    }
  }
});
