// cluster: the shared secret (inline, from a file, or WHARF_CLUSTER_SECRET), the heartbeat and lease
// timeout as durations, and the rules between keys: PostgreSQL required, one secret, a heartbeat
// that renews a lease at least twice before it expires.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { ConfigError, loadConfig } from '../../src/config/load.js';

const postgres = { postgres: { url: 'postgres://wharf@db.internal:5432/wharf' } };
const SECRET = 'sixteen-chars-at-least';

function violations(load: () => unknown): readonly string[] {
  try {
    load();
  } catch (err) {
    if (err instanceof ConfigError) return err.violations;
    throw err;
  }
  throw new Error('expected a ConfigError, but the configuration loaded');
}

t.test('absent by default: fills are the process\'s own', async (t) => {
  t.equal(loadConfig({ env: {} }).cluster, undefined);
});

t.test('defaults, durations in milliseconds, and the secret from a file or the environment', async (t) => {
  t.strictSame(loadConfig({ overrides: { metadata: postgres, cluster: { secret: SECRET } }, env: {} }).cluster, {
    secret: SECRET,
    heartbeat: 2000,
    leaseTimeout: 10_000,
  });
  const dir = t.testdir({});
  const file = join(dir, 'secret');
  writeFileSync(file, `${SECRET}\n`);
  const fromFile = loadConfig({ overrides: { metadata: postgres, cluster: { secretFile: file, heartbeat: '100ms', leaseTimeout: '1s', advertiseUrl: 'http://10.0.0.7:5000' } }, env: {} });
  t.match(fromFile.cluster, { secret: SECRET, heartbeat: 100, leaseTimeout: 1000, advertiseUrl: 'http://10.0.0.7:5000' });
  const fromEnv = loadConfig({ overrides: { metadata: postgres }, env: { WHARF_CLUSTER_SECRET: SECRET } });
  t.match(fromEnv.cluster, { secret: SECRET });
});

t.test('mistakes are reported, each on its key', async (t) => {
  const at = (cluster: Record<string, unknown>, metadata: object = postgres) => violations(() => loadConfig({ overrides: { metadata, cluster }, env: {} }));
  t.match(at({ secret: SECRET }, {}), [/^cluster: needs metadata\.postgres/]);
  t.match(at({}), [/^cluster: give the secret the nodes share/]);
  t.match(at({ secret: 'short' }), [/^cluster\.secret: .*16/]);
  t.match(at({ secret: SECRET, heartbeat: '6s' }), [/^cluster\.heartbeat: renew at least twice per leaseTimeout/]);
  t.match(at({ secretFile: '/nonexistent/secret' }), [/^cluster\.secretFile: cannot read \/nonexistent\/secret: ENOENT/]);
  t.match(at({ secret: SECRET, advertiseUrl: 'not a url' }), [/^cluster\.advertiseUrl:/]);
});
