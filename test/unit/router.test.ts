import t from 'tap';
import { Router } from '../../src/registry/router.js';

const hub = { name: 'hub', registry: 'docker.io', prefix: 'hub', default: true };
const ghcr = { name: 'ghcr', registry: 'ghcr.io', default: false };
const corp = { name: 'corp', registry: 'registry.corp:5000', default: false };

t.test('routing order: local namespace, prefix or registry host, ?ns=, default upstream', async (t) => {
  const r = new Router([hub, ghcr, corp], ['local', 'team']);
  t.same(r.route('local/app'), { kind: 'local', repo: 'local/app' });
  t.same(r.route('team/a/b', 'docker.io'), { kind: 'local', repo: 'team/a/b' }, 'a local namespace wins over ?ns=');
  t.same(r.route('docker.io/library/alpine'), { kind: 'upstream', upstream: 'hub', remote: 'library/alpine', repo: 'docker.io/library/alpine' });
  t.same(r.route('hub/alpine'), { kind: 'upstream', upstream: 'hub', remote: 'library/alpine', repo: 'docker.io/library/alpine' });
  t.same(r.route('ghcr.io/owner/app'), { kind: 'upstream', upstream: 'ghcr', remote: 'owner/app', repo: 'ghcr.io/owner/app' });
  t.same(r.route('owner/app', 'ghcr.io'), { kind: 'upstream', upstream: 'ghcr', remote: 'owner/app', repo: 'ghcr.io/owner/app' });
  t.same(r.route('alpine'), { kind: 'upstream', upstream: 'hub', remote: 'library/alpine', repo: 'docker.io/library/alpine' });
  t.same(r.route('library/alpine', 'docker.io'), { kind: 'upstream', upstream: 'hub', remote: 'library/alpine', repo: 'docker.io/library/alpine' });
  t.same(r.route('app', 'ghcr.io'), { kind: 'upstream', upstream: 'ghcr', remote: 'app', repo: 'ghcr.io/app' }, 'library/ is for Docker Hub only');
  t.same(r.route('registry.corp-5000/x/y'), { kind: 'upstream', upstream: 'corp', remote: 'x/y', repo: 'registry.corp-5000/x/y' });
  t.same(r.route('x/y', 'registry.corp:5000'), { kind: 'upstream', upstream: 'corp', remote: 'x/y', repo: 'registry.corp-5000/x/y' });
  t.same(r.route('owner/app', 'unknown.example'), { kind: 'upstream', upstream: 'hub', remote: 'owner/app', repo: 'docker.io/owner/app' }, 'an unknown ns falls to the default');
});

t.test('without a default upstream, unmatched names are local', async (t) => {
  const r = new Router([ghcr], []);
  t.same(r.route('owner/app'), { kind: 'local', repo: 'owner/app' });
  t.same(r.route('ghcr.io/owner/app').kind, 'upstream');
  t.same(new Router([], []).route('anything/at/all'), { kind: 'local', repo: 'anything/at/all' });
});
