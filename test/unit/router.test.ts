import t from 'tap';
import { Router } from '../../src/registry/router.js';

const hub = { name: 'hub', registry: 'docker.io', prefix: 'hub', default: true };
const ghcr = { name: 'ghcr', registry: 'ghcr.io', default: false };
const corp = { name: 'corp', registry: 'registry.corp:5000', default: false };

t.test('routing order: local namespace, prefix or registry host, ?ns=, default upstream', async (t) => {
  const r = new Router([hub, ghcr, corp], ['local', 'team']);
  t.match(r.route('local/app'), { kind: 'local', repo: 'local/app' });
  t.match(r.route('team/a/b', 'docker.io'), { kind: 'local', repo: 'team/a/b' }, 'a local namespace wins over ?ns=');
  t.match(r.route('docker.io/library/alpine'), { kind: 'upstream', upstream: 'hub', remote: 'library/alpine', repo: 'docker.io/library/alpine' });
  t.match(r.route('hub/alpine'), { kind: 'upstream', upstream: 'hub', remote: 'library/alpine', repo: 'docker.io/library/alpine' });
  t.match(r.route('ghcr.io/owner/app'), { kind: 'upstream', upstream: 'ghcr', remote: 'owner/app', repo: 'ghcr.io/owner/app' });
  t.match(r.route('owner/app', 'ghcr.io'), { kind: 'upstream', upstream: 'ghcr', remote: 'owner/app', repo: 'ghcr.io/owner/app' });
  t.match(r.route('alpine'), { kind: 'upstream', upstream: 'hub', remote: 'library/alpine', repo: 'docker.io/library/alpine' });
  t.match(r.route('library/alpine', 'docker.io'), { kind: 'upstream', upstream: 'hub', remote: 'library/alpine', repo: 'docker.io/library/alpine' });
  t.match(r.route('app', 'ghcr.io'), { kind: 'upstream', upstream: 'ghcr', remote: 'app', repo: 'ghcr.io/app' }, 'library/ is for Docker Hub only');
  t.match(r.route('registry.corp-5000/x/y'), { kind: 'upstream', upstream: 'corp', remote: 'x/y', repo: 'registry.corp-5000/x/y' });
  t.match(r.route('x/y', 'registry.corp:5000'), { kind: 'upstream', upstream: 'corp', remote: 'x/y', repo: 'registry.corp-5000/x/y' });
  t.match(r.route('owner/app', 'unknown.example'), { kind: 'upstream', upstream: 'hub', remote: 'owner/app', repo: 'docker.io/owner/app' }, 'an unknown ns falls to the default');
});

t.test('without a default upstream, unmatched names are local', async (t) => {
  const r = new Router([ghcr], []);
  t.match(r.route('owner/app'), { kind: 'local', repo: 'owner/app' });
  t.match(r.route('ghcr.io/owner/app').kind, 'upstream');
  t.match(new Router([], []).route('anything/at/all'), { kind: 'local', repo: 'anything/at/all' });
});

t.test('every spelling of one upstream image has one canonical name, and it routes back to itself', async (t) => {
  const priv = { name: 'priv', registry: 'priv.test', default: false, username: 'bot' };
  const r = new Router([hub, ghcr, corp, priv], ['local', 'team']);
  const spellings: Array<[string, string | undefined, string]> = [
    ['alpine', undefined, 'library/alpine'],
    ['library/alpine', undefined, 'library/alpine'],
    ['library/alpine', 'docker.io', 'library/alpine'],
    ['docker.io/library/alpine', undefined, 'library/alpine'],
    ['hub/alpine', undefined, 'library/alpine'],
    ['library/secret', 'priv.test', 'priv.test/library/secret'],
    ['priv.test/library/secret', undefined, 'priv.test/library/secret'],
    ['owner/app', 'ghcr.io', 'ghcr.io/owner/app'],
    ['ghcr.io/owner/app', undefined, 'ghcr.io/owner/app'],
    ['x/y', 'registry.corp:5000', 'registry.corp-5000/x/y'],
    ['registry.corp-5000/x/y', undefined, 'registry.corp-5000/x/y'],
    // Docker Hub images whose bare name would route elsewhere keep the registry component.
    ['docker.io/team/app', undefined, 'docker.io/team/app'],
    ['docker.io/ghcr.io/x', undefined, 'docker.io/ghcr.io/x'],
    ['hub/hub/x', undefined, 'docker.io/hub/x'],
    ['team/app', undefined, 'team/app'],
    ['team/app', 'priv.test', 'team/app'],
  ];
  for (const [name, ns, canonical] of spellings) {
    const target = r.route(name, ns);
    t.equal(target.canonical, canonical, `${name}${ns ? `?ns=${ns}` : ''}`);
    const back = r.route(canonical);
    t.same([back.kind, back.repo], [target.kind, target.repo], `${canonical} routes back to the same repository`);
    t.equal(r.canonicalOf(target.repo), canonical, `the stored ${target.repo} lists as ${canonical}`);
  }
  t.match(r.route('library/secret', 'priv.test'), { kind: 'upstream', private: true }, 'an upstream with credentials is private');
  t.match(r.route('alpine'), { kind: 'upstream', private: false });
});
