// metadata.postgres: the URL, the password from a file or the environment (never both, never beside
// one in the URL), pool size and timeouts as durations, unknown keys refused.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { ConfigError, loadConfig } from '../../src/config/load.js';
import type { PostgresConfig } from '../../src/config/schema.js';

const URL = 'postgres://wharf@db.internal:5432/wharf';

function violations(load: () => unknown): readonly string[] {
  try {
    load();
  } catch (err) {
    if (err instanceof ConfigError) return err.violations;
    throw err;
  }
  throw new Error('expected a ConfigError, but the configuration loaded');
}

const pg = (config: ReturnType<typeof loadConfig>): PostgresConfig | undefined => config.metadata.postgres;

t.test('absent by default: the SQLite file in storage.path', async (t) => {
  t.equal(pg(loadConfig({ env: {} })), undefined);
});

t.test('defaults, and durations loaded as milliseconds', async (t) => {
  t.strictSame(pg(loadConfig({ overrides: { metadata: { postgres: { url: URL } } }, env: {} })), {
    url: URL,
    poolSize: 10,
    connectTimeout: 5000,
    statementTimeout: 30_000,
    idleTimeout: 30_000,
  });
  const dir = t.testdir({
    'wharf.yaml': ['metadata:', '  postgres:', `    url: ${URL}`, '    poolSize: 4', '    connectTimeout: 2s', '    statementTimeout: 0s', '    idleTimeout: 1m', ''].join('\n'),
  });
  t.match(pg(loadConfig({ file: join(dir, 'wharf.yaml'), env: {} })), { poolSize: 4, connectTimeout: 2000, statementTimeout: 0, idleTimeout: 60_000 });
});

t.test('from the environment, as every other key', async (t) => {
  const config = loadConfig({ env: { WHARF_METADATA_POSTGRES_URL: URL, WHARF_METADATA_POSTGRES_POOL_SIZE: '3' } });
  t.match(pg(config), { url: URL, poolSize: 3 });
});

t.test('the password from passwordFile (trailing newline dropped) or passwordEnv', async (t) => {
  const dir = t.testdir({});
  const file = join(dir, 'pg-password');
  writeFileSync(file, 's3cret\n');
  t.equal(pg(loadConfig({ overrides: { metadata: { postgres: { url: URL, passwordFile: file } } }, env: {} }))?.password, 's3cret');
  t.equal(pg(loadConfig({ overrides: { metadata: { postgres: { url: URL, passwordEnv: 'PGPW' } } }, env: { PGPW: 'fromenv' } }))?.password, 'fromenv');
});

t.test('mistakes are reported, each on its key', async (t) => {
  const at = (postgres: Record<string, unknown>, env: NodeJS.ProcessEnv = {}) => violations(() => loadConfig({ overrides: { metadata: { postgres } }, env }));
  t.strictSame(at({ url: URL, passwordFile: '/x', passwordEnv: 'PGPW' }, { PGPW: 'x' }), [
    'metadata.postgres: give only one of passwordFile, passwordEnv (found both) (from command line)',
    'metadata.postgres.passwordFile: cannot read /x: ENOENT (from command line)',
  ]);
  t.strictSame(at({ url: 'postgres://wharf:inline@db/wharf', passwordEnv: 'PGPW' }, { PGPW: 'x' }), [
    'metadata.postgres.url: holds a password while passwordEnv gives one too: take the password out of the URL (from command line)',
  ]);
  t.strictSame(at({ url: URL, passwordEnv: 'PGPW' }), ['metadata.postgres.passwordEnv: the environment variable PGPW is not set (from command line)']);
  t.match(at({ url: 'mysql://db/wharf' }), [/^metadata\.postgres\.url: /]);
  t.match(at({ url: URL, password: 'inline' }), [/^metadata\.postgres\.password: unknown key/], 'a password is never written in the configuration itself');
  t.match(at({ url: URL, poolSize: 0 }), [/^metadata\.postgres\.poolSize: /]);
  t.match(at({ url: URL, statementTimeout: '30' }), [/^metadata\.postgres\.statementTimeout: /]);
  t.match(at({ poolSize: 2 }), [/^metadata\.postgres\.url: /]);
});

t.test('a WHARF_* variable named by passwordEnv is read by it, not warned about as unknown', async (t) => {
  const warnings: string[] = [];
  const config = loadConfig({
    overrides: { metadata: { postgres: { url: URL, passwordEnv: 'WHARF_DB_PASSWORD' } } },
    env: { WHARF_DB_PASSWORD: 'fromenv', WHARF_NOT_A_KEY: 'x' },
    warn: (m) => warnings.push(m),
  });
  t.equal(pg(config)?.password, 'fromenv');
  t.equal(warnings.length, 1);
  t.match(warnings[0], 'WHARF_NOT_A_KEY');
  t.notMatch(warnings[0], 'WHARF_DB_PASSWORD');
});
