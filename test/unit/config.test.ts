import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import t from 'tap';
import { Type } from '@sinclair/typebox';
import { parseDocument } from 'yaml';
import { KUBERNETES_SERVICE_ENV } from '../helpers/kubernetes.js';
import { parseListen } from '../../src/config/listen.js';
import { parseSize } from '../../src/config/size.js';
import { withDefaults } from '../../src/config/defaults.js';
import { ConfigSchema } from '../../src/config/schema.js';
import { collectEnvKeys, ConfigError, ENV_KEYS, loadConfig, NON_CONFIG_ENV } from '../../src/config/load.js';
import { checkConfig } from '../../src/cli/preflight.js';

const root = fileURLToPath(new URL('../../', import.meta.url));

const DEFAULTS = {
  listen: '0.0.0.0:5000',
  storage: { path: './data' },
  log: { level: 'info' },
  uploads: { chunkMinLength: 0, maxAge: 24 * 3_600_000 }, // loaded durations are milliseconds, sizes bytes
  http: { bodyIdleTimeout: 60_000, maxConnectionsPerAddress: 128, trustProxy: [] },
  manifests: { maxDescriptors: 10000, cacheSize: 64 * 1024 * 1024 },
  upstreams: [],
  local: { namespaces: [] },
  gc: { interval: 3_600_000, grace: 3_600_000, deleteUntagged: false },
  warm: { images: [], interval: 3_600_000, platforms: [], referrers: false, concurrency: 4 },
  cache: { maxAge: 0, maxSize: 0 },
  events: { webhooks: [] },
  metadata: {},
  metrics: { enabled: true, auth: false },
  shutdownTimeoutMs: 30000,
};

/** The ConfigError a load throws; anything else (or nothing) fails the test. */
function configError(load: () => unknown): ConfigError {
  try {
    load();
  } catch (err) {
    if (err instanceof ConfigError) return err;
    throw err;
  }
  throw new Error('expected a ConfigError, but the configuration loaded');
}

t.test('sizes: bytes or a number and a unit', async (t) => {
  t.equal(parseSize(0), 0);
  t.equal(parseSize('1048576'), 1048576);
  t.equal(parseSize('500MiB'), 500 * 1024 * 1024);
  t.equal(parseSize('10GiB'), 10 * 1024 ** 3);
  t.equal(parseSize('1.5TB'), 1.5e12);
  t.equal(parseSize('2 KB'), 2000);
  for (const bad of ['', 'ten', '10 GiBs', '-1', '1e9']) t.throws(() => parseSize(bad), /is not a size/, bad);
  t.equal(loadConfig({ env: { WHARF_CACHE_MAX_SIZE: '10GiB' } }).cache.maxSize, 10 * 1024 ** 3);
  t.equal(loadConfig({ env: { WHARF_CACHE_MAX_SIZE: '4096' } }).cache.maxSize, 4096);
  const err = configError(() => loadConfig({ env: { WHARF_CACHE_MAX_SIZE: 'lots' } }));
  t.match(err.violations[0], /^cache\.maxSize: .*\(from WHARF_CACHE_MAX_SIZE\)/);
});

t.test('no file, no environment: the schema defaults', async (t) => {
  t.strictSame(loadConfig(), DEFAULTS);
  t.strictSame(loadConfig({ env: { PATH: '/bin', HOME: '/root', wharf_listen: 'ignored: not the prefix' } }), DEFAULTS);
});

t.test('an empty or comment-only file means all defaults', async (t) => {
  const dir = t.testdir({ 'empty.yaml': '', 'comments.yaml': '# nothing set\n' });
  t.strictSame(loadConfig({ file: join(dir, 'empty.yaml') }), DEFAULTS);
  t.strictSame(loadConfig({ file: join(dir, 'comments.yaml') }), DEFAULTS);
});

t.test('environment variable names are derived from the schema keys', async (t) => {
  t.strictSame(
    Object.fromEntries([...ENV_KEYS].map(([name, key]) => [name, key.path.join('.')])),
    {
      WHARF_LISTEN: 'listen',
      WHARF_STORAGE_PATH: 'storage.path',
      WHARF_STORAGE_S3_ENDPOINT: 'storage.s3.endpoint',
      WHARF_STORAGE_S3_REGION: 'storage.s3.region',
      WHARF_STORAGE_S3_BUCKET: 'storage.s3.bucket',
      WHARF_STORAGE_S3_PREFIX: 'storage.s3.prefix',
      WHARF_STORAGE_S3_FORCE_PATH_STYLE: 'storage.s3.forcePathStyle',
      WHARF_STORAGE_S3_ACCESS_KEY_ID: 'storage.s3.accessKeyId',
      WHARF_STORAGE_S3_SECRET_ACCESS_KEY_FILE: 'storage.s3.secretAccessKeyFile',
      WHARF_STORAGE_S3_SECRET_ACCESS_KEY_ENV: 'storage.s3.secretAccessKeyEnv',
      WHARF_STORAGE_S3_REDIRECT: 'storage.s3.redirect',
      WHARF_STORAGE_S3_PRESIGN_EXPIRY: 'storage.s3.presignExpiry',
      WHARF_LOG_LEVEL: 'log.level',
      WHARF_LOG_FORMAT: 'log.format',
      WHARF_METRICS_ENABLED: 'metrics.enabled',
      WHARF_METRICS_AUTH: 'metrics.auth',
      WHARF_UPLOADS_CHUNK_MIN_LENGTH: 'uploads.chunkMinLength',
      WHARF_UPLOADS_MAX_AGE: 'uploads.maxAge',
      WHARF_HTTP_BODY_IDLE_TIMEOUT: 'http.bodyIdleTimeout',
      WHARF_HTTP_MAX_CONNECTIONS_PER_ADDRESS: 'http.maxConnectionsPerAddress',
      WHARF_HTTP_TRUST_PROXY: 'http.trustProxy',
      WHARF_MANIFESTS_MAX_DESCRIPTORS: 'manifests.maxDescriptors',
      WHARF_MANIFESTS_CACHE_SIZE: 'manifests.cacheSize',
      WHARF_UPSTREAMS: 'upstreams',
      WHARF_LOCAL_NAMESPACES: 'local.namespaces',
      WHARF_GC_INTERVAL: 'gc.interval',
      WHARF_GC_GRACE: 'gc.grace',
      WHARF_GC_DELETE_UNTAGGED: 'gc.deleteUntagged',
      WHARF_WARM_IMAGES: 'warm.images',
      WHARF_WARM_INTERVAL: 'warm.interval',
      WHARF_WARM_PLATFORMS: 'warm.platforms',
      WHARF_WARM_REFERRERS: 'warm.referrers',
      WHARF_WARM_CONCURRENCY: 'warm.concurrency',
      WHARF_CACHE_MAX_AGE: 'cache.maxAge',
      WHARF_CACHE_MAX_SIZE: 'cache.maxSize',
      WHARF_METADATA_POSTGRES_URL: 'metadata.postgres.url',
      WHARF_METADATA_POSTGRES_PASSWORD_FILE: 'metadata.postgres.passwordFile',
      WHARF_METADATA_POSTGRES_PASSWORD_ENV: 'metadata.postgres.passwordEnv',
      WHARF_METADATA_POSTGRES_POOL_SIZE: 'metadata.postgres.poolSize',
      WHARF_METADATA_POSTGRES_CONNECT_TIMEOUT: 'metadata.postgres.connectTimeout',
      WHARF_METADATA_POSTGRES_STATEMENT_TIMEOUT: 'metadata.postgres.statementTimeout',
      WHARF_METADATA_POSTGRES_IDLE_TIMEOUT: 'metadata.postgres.idleTimeout',
      WHARF_CLUSTER_ADVERTISE_URL: 'cluster.advertiseUrl',
      WHARF_CLUSTER_SECRET: 'cluster.secret',
      WHARF_CLUSTER_SECRET_FILE: 'cluster.secretFile',
      WHARF_CLUSTER_HEARTBEAT: 'cluster.heartbeat',
      WHARF_CLUSTER_LEASE_TIMEOUT: 'cluster.leaseTimeout',
      WHARF_PUBLIC_URL: 'publicUrl',
      WHARF_AUTH_HTPASSWD: 'auth.htpasswd',
      WHARF_AUTH_USERS: 'auth.users',
      WHARF_AUTH_GROUPS: 'auth.groups',
      WHARF_AUTH_ADMIN_GROUP: 'auth.adminGroup',
      WHARF_AUTH_DEFAULT_POLICIES: 'auth.defaultPolicies',
      WHARF_AUTH_POLICIES: 'auth.policies',
      WHARF_AUTH_TOKEN_ISSUER: 'auth.token.issuer',
      WHARF_AUTH_TOKEN_SERVICE: 'auth.token.service',
      WHARF_AUTH_TOKEN_ALGORITHM: 'auth.token.algorithm',
      WHARF_AUTH_TOKEN_KEY: 'auth.token.key',
      WHARF_AUTH_TOKEN_LIFETIME: 'auth.token.lifetime',
      WHARF_AUTH_TOKEN_REFRESH_LIFETIME: 'auth.token.refreshLifetime',
      WHARF_AUTH_TOKEN_TRUST_ISSUER: 'auth.token.trust.issuer',
      WHARF_AUTH_TOKEN_TRUST_KEYS: 'auth.token.trust.keys',
      WHARF_AUTH_FAILED_LOGINS_PER_USER: 'auth.failedLogins.perUser',
      WHARF_AUTH_FAILED_LOGINS_PER_ADDRESS: 'auth.failedLogins.perAddress',
      WHARF_AUTH_FAILED_LOGINS_WINDOW: 'auth.failedLogins.window',
      WHARF_EVENTS_NATS_URL: 'events.nats.url',
      WHARF_EVENTS_NATS_SUBJECT: 'events.nats.subject',
      WHARF_EVENTS_WEBHOOKS: 'events.webhooks',
      WHARF_TLS_CERT: 'tls.cert',
      WHARF_TLS_KEY: 'tls.key',
      WHARF_TLS_HTTP2: 'tls.http2',
      WHARF_TLS_RELOAD_CHECK: 'tls.reloadCheck',
      WHARF_SHUTDOWN_TIMEOUT_MS: 'shutdownTimeoutMs',
    },
  );
});

t.test('two keys that would share one variable name are refused when the mapping is built', async (t) => {
  const clashing = Type.Object({ storagePath: Type.String(), storage: Type.Object({ path: Type.String() }) });
  t.throws(() => collectEnvKeys(clashing), /storagePath and storage\.path both map to WHARF_STORAGE_PATH/);
});

t.test('precedence: defaults < file < WHARF_* environment < overrides', async (t) => {
  const dir = t.testdir({
    'wharf.yaml': 'listen: 127.0.0.1:6000\nstorage:\n  path: /from/file\nlog:\n  level: warn\nuploads:\n  chunkMinLength: 10\n',
  });
  const config = loadConfig({
    file: join(dir, 'wharf.yaml'),
    env: { WHARF_STORAGE_PATH: '/from/env', WHARF_LOG_LEVEL: 'debug', WHARF_UPLOADS_CHUNK_MIN_LENGTH: '2048' },
    overrides: { log: { level: 'trace' }, listen: undefined, storage: { path: undefined } },
  });
  t.strictSame(config, {
    listen: '127.0.0.1:6000', // file; an undefined override leaves it alone
    storage: { path: '/from/env' }, // env over file; undefined override ignored
    log: { level: 'trace' }, // override over env over file
    uploads: { chunkMinLength: 2048, maxAge: DEFAULTS.uploads.maxAge }, // env, coerced to the schema's integer
    http: DEFAULTS.http,
    manifests: DEFAULTS.manifests,
    upstreams: [], // default
    local: { namespaces: [] }, // default
    gc: DEFAULTS.gc,
    warm: DEFAULTS.warm,
    cache: DEFAULTS.cache,
    metadata: {}, // default: SQLite in storage.path
    events: DEFAULTS.events,
    metrics: DEFAULTS.metrics,
    shutdownTimeoutMs: 30000, // default
  });
});

t.test('overrides left undefined (flags not given) change nothing', async (t) => {
  t.strictSame(loadConfig({ overrides: { listen: undefined, storage: { path: undefined } } }), DEFAULTS);
  const dir = t.testdir({ 'wharf.yaml': 'storage: elsewhere\n' });
  const err = configError(() => loadConfig({ file: join(dir, 'wharf.yaml'), overrides: { storage: { path: undefined } } }));
  t.strictSame(err.violations, ['storage: expected a mapping, got a string "elsewhere" (line 1)']);
});

t.test('environment values are coerced to the schema type, or reported with the variable name', async (t) => {
  t.equal(loadConfig({ env: { WHARF_SHUTDOWN_TIMEOUT_MS: '1500' } }).shutdownTimeoutMs, 1500);
  const err = configError(() => loadConfig({ env: { WHARF_SHUTDOWN_TIMEOUT_MS: 'soon', WHARF_LOG_LEVEL: 'loud' } }));
  t.strictSame(err.violations, [
    'log.level: must be one of fatal, error, warn, info, debug, trace, silent, got "loud" (from WHARF_LOG_LEVEL)',
    'shutdownTimeoutMs: expected an integer >= 0, got a string "soon" (from WHARF_SHUTDOWN_TIMEOUT_MS)',
  ]);
});

t.test('WHARF_* variables that no key maps to (Kubernetes service variables) are ignored with one warning naming them', async (t) => {
  t.ok(NON_CONFIG_ENV.has('WHARF_CONFIG'));
  const warnings: string[] = [];
  const warn = (m: string) => warnings.push(m);
  t.strictSame(loadConfig({ env: { WHARF_CONFIG: '/etc/wharf.yaml' }, warn }), DEFAULTS);
  t.strictSame(warnings, [], 'WHARF_CONFIG is not warned about');

  const kubernetes = KUBERNETES_SERVICE_ENV;
  const config = loadConfig({ env: { ...kubernetes, WHARF_LISTEN: ':5001', WHARF_STORAGE_PATHH: '/x' }, warn });
  t.equal(config.listen, ':5001', 'the keys that do map still apply');
  t.equal(warnings.length, 1, 'one warning');
  for (const name of Object.keys(kubernetes)) t.match(warnings[0], name);
  t.match(warnings[0], 'WHARF_STORAGE_PATHH (did you mean WHARF_STORAGE_PATH?)');
  t.ok(warnings[0]!.length < 400, `the warning does not list every known name: ${warnings[0]}`);
});

t.test('every violation in a file is listed, with its path and line', async (t) => {
  const dir = t.testdir({
    'bad.yaml': [
      'listen: nowhere', // 1
      'storage:', // 2
      '  pathh: /srv', // 3: unknown key
      '  path: ""', // 4: too short
      'log:', // 5
      '  level: loud', // 6: not a level
      'uploads:', // 7
      '  chunkMinLength: -1', // 8: below minimum
      'shutdownTimeoutMs: "30s"', // 9: not an integer
      'mirrors: []', // 10: unknown key at the root
      '',
    ].join('\n'),
  });
  const file = join(dir, 'bad.yaml');
  const err = configError(() => loadConfig({ file }));
  t.equal(err.violations.length, 7, err.violations.join('\n'));
  const expected = [
    /^listen: invalid value "nowhere": HOST:PORT .* \(line 1\)$/,
    /^storage\.pathh: unknown key \(line 3\)$/,
    /^storage\.path: expected string length greater or equal to 1, got "" \(line 4\)$/,
    /^log\.level: must be one of fatal, error, warn, info, debug, trace, silent, got "loud" \(line 6\)$/,
    /^uploads\.chunkMinLength: expected integer to be greater or equal to 0, got -1 \(line 8\)$/,
    /^shutdownTimeoutMs: expected an integer >= 0, got a string "30s" \(line 9\)$/,
    /^mirrors: unknown key \(line 10\)$/,
  ];
  for (const re of expected) t.ok(err.violations.some((v) => re.test(v)), `a violation matches ${re}`);
  // Whoever prints only the message still sees the file and every violation.
  t.match(err.message, `invalid configuration in ${file} (7 problems)`);
  for (const v of err.violations) t.match(err.message, v);
});

t.test('an unknown key is reported with its dotted path', async (t) => {
  const dir = t.testdir({ 'typo.yaml': 'storage:\n  pathh: /srv/wharf\n' });
  const err = configError(() => loadConfig({ file: join(dir, 'typo.yaml') }));
  t.strictSame(err.violations, ['storage.pathh: unknown key (line 2)']);
});

t.test('an unknown key in the overrides is reported too', async (t) => {
  const err = configError(() => loadConfig({ overrides: { storage: { root: '/x' } } }));
  t.strictSame(err.violations, ['storage.root: unknown key (from command line)']);
});

t.test('a later layer that replaces a whole section takes the blame for it', async (t) => {
  const err = configError(() => loadConfig({ env: { WHARF_STORAGE_PATH: '/srv' }, overrides: { storage: 'elsewhere' } }));
  t.strictSame(err.violations, ['storage: expected a mapping, got a string "elsewhere" (from command line)']);
});

t.test('a long bad value is shortened in the violation', async (t) => {
  const err = configError(() => loadConfig({ overrides: { listen: 'x'.repeat(200) } }));
  t.equal(err.violations.length, 1);
  t.match(err.violations[0], /^listen: invalid value "x{56}\.\.\.: /);
});

t.test('a YAML syntax error is a ConfigError with its line and column', async (t) => {
  const dir = t.testdir({ 'broken.yaml': 'listen: :5000\nstorage:\n  path: [./data\nlog: {level: info}\n' });
  const err = configError(() => loadConfig({ file: join(dir, 'broken.yaml') }));
  t.ok(err.violations.length >= 1);
  t.match(err.violations[0], /^line \d+, column \d+: \S/);
  t.match(err.message, 'broken.yaml');
});

t.test('duplicate keys are a YAML error, not a silent last-one-wins', async (t) => {
  const dir = t.testdir({ 'dup.yaml': 'listen: :5000\nlisten: :6000\n' });
  const err = configError(() => loadConfig({ file: join(dir, 'dup.yaml') }));
  t.match(err.violations[0], /^line 2, column 1: Map keys must be unique/);
});

t.test('a file whose top level is not a mapping', async (t) => {
  const dir = t.testdir({ 'list.yaml': '- listen: :5000\n' });
  const err = configError(() => loadConfig({ file: join(dir, 'list.yaml') }));
  t.strictSame(err.violations, ['(root): expected a mapping of keys, got a list']);
  const scalar = t.testdir({ 'scalar.yaml': 'listen\n' });
  t.strictSame(configError(() => loadConfig({ file: join(scalar, 'scalar.yaml') })).violations, [
    '(root): expected a mapping of keys, got a string',
  ]);
});

t.test('a missing file is a ConfigError', async (t) => {
  const file = join(t.testdir({}), 'absent.yaml');
  const err = configError(() => loadConfig({ file }));
  t.strictSame(err.violations, ['cannot read the file: no such file']);
  const dir = t.testdir({ 'wharf.yaml': {} });
  t.match(configError(() => loadConfig({ file: join(dir, 'wharf.yaml') })).violations[0], /^cannot read the file: EISDIR/);
});

t.test('a port out of range is caught beyond the schema pattern', async (t) => {
  const err = configError(() => loadConfig({ overrides: { listen: ':70000' } }));
  t.strictSame(err.violations, ['listen: ":70000": port 70000 is out of range (0-65535) (from command line)']);
});

t.test('a relative storage.path stays relative to the current directory, not the file', async (t) => {
  const dir = t.testdir({ nested: { 'wharf.yaml': 'storage:\n  path: ./blobs\n' } });
  t.equal(loadConfig({ file: join(dir, 'nested', 'wharf.yaml') }).storage.path, './blobs');
});

t.test('the result is deeply frozen', async (t) => {
  const config = loadConfig({ overrides: { storage: { path: '/srv' } } });
  t.ok(Object.isFrozen(config));
  t.ok(Object.isFrozen(config.storage));
  t.ok(Object.isFrozen(config.log));
  t.throws(() => {
    (config.storage).path = '/elsewhere';
  }, TypeError);
  t.throws(() => {
    (config as { listen: string }).listen = ':1';
  }, TypeError);
  t.equal(config.storage.path, '/srv');
});

t.test('the overrides object passed in is not frozen or changed', async (t) => {
  const overrides = { storage: { path: '/srv' } };
  loadConfig({ overrides });
  t.notOk(Object.isFrozen(overrides.storage));
  t.strictSame(overrides, { storage: { path: '/srv' } });
});

t.test('parseListen', async (t) => {
  t.strictSame(parseListen('[::]:5000'), { host: '::', port: 5000 });
  t.strictSame(parseListen('[::1]:443'), { host: '::1', port: 443 });
  t.strictSame(parseListen('0.0.0.0:5000'), { host: '0.0.0.0', port: 5000 });
  t.strictSame(parseListen(':5000'), { host: '0.0.0.0', port: 5000 });
  t.strictSame(parseListen('localhost:0'), { host: 'localhost', port: 0 });
  for (const bad of ['5000', 'host:', 'host:port', '::1:5000', '[::1]5000', '[]:5000', 'h:65536']) {
    t.throws(() => parseListen(bad), RangeError, bad);
  }
});

// Every shipped file must load: a broken example is a broken promise to whoever copies it.
for (const dirName of ['examples', 'config']) {
  t.test(`every YAML file in ${dirName}/ loads and validates`, async (t) => {
    const files = readdirSync(join(root, dirName)).filter((f) => /\.ya?ml$/.test(f));
    t.ok(files.length > 0, `${dirName}/ has YAML files`);
    for (const f of files) {
      // Examples that take a password from the environment get a stand-in value.
      t.doesNotThrow(() => loadConfig({ file: join(root, dirName, f), env: { REGISTRY_PASSWORD: 'example' } }), `${dirName}/${f}`);
    }
  });
}

t.test('config/wharf.yaml sets every key to its default and names its variable', async (t) => {
  const file = join(root, 'config', 'wharf.yaml');
  t.strictSame(loadConfig({ file }), DEFAULTS);
  const text = readFileSync(file, 'utf8');
  const doc = parseDocument(text);
  for (const [name, key] of ENV_KEYS) {
    // Optional keys whose mere presence changes behaviour (auth turns access control on) are shown
    // commented out, under their own name.
    const root = key.path[0];
    // log.format's default depends on the terminal: shown commented out.
    if (root === 'auth' || root === 'publicUrl' || root === 'metadata' || root === 'cluster' || root === 'tls' || key.path[1] === 's3' || key.path[1] === 'nats' || key.path.join('.') === 'log.format') t.match(text, new RegExp(`^#\\s+${String(key.path.at(-1))}:`, 'm'), `${key.path.join('.')} is shown`);
    else t.ok(doc.hasIn(key.path), `${key.path.join('.')} is written out`);
    t.match(text, name, `${name} is documented`);
  }
});

t.test('a value of the wrong shape is an error, never replaced by the default', async (t) => {
  const dir = t.testdir({
    'mapping.yaml': 'upstreams:\n  docker:\n    url: https://registry-1.docker.io\n    registry: docker.io\nlocal: {namespaces: {a: 1}}\n',
    'scalars.yaml': 'storage: []\nlog: warn\ngc: 5\nauth:\n  token: []\n  users: {bob: x}\n',
  });
  t.strictSame(configError(() => loadConfig({ file: join(dir, 'mapping.yaml') })).violations, [
    'upstreams: expected a list, got a mapping (line 2)',
    'local.namespaces: expected a list, got a mapping (line 5)',
  ]);
  t.strictSame(configError(() => loadConfig({ file: join(dir, 'scalars.yaml') })).violations, [
    'storage: expected a mapping, got a list (line 1)',
    'log: expected a mapping, got a string "warn" (line 2)',
    'gc: expected a mapping, got an integer 5 (line 3)',
    'auth.users: expected a list, got a mapping (line 6)',
    'auth.token: expected a mapping, got a list (line 5)',
  ]);
  // The same from the environment and from a partial object given to withDefaults.
  t.match(configError(() => loadConfig({ env: { WHARF_UPSTREAMS: '{"docker":{}}' } })).violations, [/^upstreams: expected a list, got a mapping \(from WHARF_UPSTREAMS\)$/]);
  t.strictSame(withDefaults({ upstreams: { a: 1 } }).upstreams, { a: 1 }, 'withDefaults leaves it for validation to see');
});

t.test('cross-field rules are reported together with schema errors, each once, saying what is allowed', async (t) => {
  const dir = t.testdir({
    'bad.yaml': [
      'upstreams:', // 1
      '  - name: a', // 2
      '    url: https://a.example', // 3
      '    registry: a.example', // 4
      '    default: true', // 5
      '    password: secret', // 6: no username
      '  - name: b', // 7
      '    url: https://b.example', // 8
      '    registry: b.example', // 9
      '    prefix: a.example', // 10: clashes with a's registry
      '    default: true', // 11: a second default
      '  - url: https://c.example', // 12: name and registry missing
      'cache:', // 13
      '  maxSize: true', // 14: neither bytes nor a size
      'log:', // 15
      '  level: loud', // 16
      '',
    ].join('\n'),
  });
  const err = configError(() => loadConfig({ file: join(dir, 'bad.yaml') }));
  t.strictSame(err.violations, [
    'log.level: must be one of fatal, error, warn, info, debug, trace, silent, got "loud" (line 16)',
    'upstreams.2.name: required key missing (line 12)',
    'upstreams.2.registry: required key missing (line 12)',
    'cache.maxSize: expected a size such as 1048576 (bytes), 500MiB, 10GiB or 1TB, got a boolean true (line 14)',
    'upstreams: at most one upstream may be the default; a, b all say default: true (line 2)',
    'upstreams.0.username: required when password is given (line 2)',
    'upstreams.1.prefix: "a.example" is already used by upstream a (line 10)',
  ]);
  t.notMatch(err.message, 'undefined');
});

t.test('passwordEnv is read from the environment given, and a missing one is reported with the rest', async (t) => {
  const upstream = { name: 'a', url: 'https://a.example', registry: 'a.example', username: 'u', passwordEnv: 'A_PASSWORD' };
  const config = loadConfig({ overrides: { upstreams: [upstream] }, env: { A_PASSWORD: 'hunter2' } });
  t.equal(config.upstreams[0]?.password, 'hunter2');
  t.strictSame(configError(() => loadConfig({ overrides: { upstreams: [upstream], log: { level: 'x' } }, env: {} })).violations, [
    'log.level: must be one of fatal, error, warn, info, debug, trace, silent, got "x" (from command line)',
    'upstreams.0.passwordEnv: the environment variable A_PASSWORD is not set (from command line)',
  ]);
});

t.test('storage.s3: the keys of the issue, defaults, the secret key read from a file or the environment, every mistake listed', async (t) => {
  const dir = t.testdir({
    'wharf.yaml': [
      'storage:',
      '  path: /var/lib/wharf',
      '  s3:',
      '    endpoint: http://rgw.internal:7480',
      '    bucket: wharf-blobs',
      '    prefix: cluster-a',
      '    forcePathStyle: true',
      '    accessKeyId: AKIAEXAMPLE',
      '    secretAccessKeyFile: ./secret',
      '',
    ].join('\n'),
    secret: 's3cr3t\n',
  });
  writeFileSync(join(dir, 'wharf.yaml'), readFileSync(join(dir, 'wharf.yaml'), 'utf8').replace('./secret', join(dir, 'secret')));
  const config = loadConfig({ file: join(dir, 'wharf.yaml') });
  t.strictSame(config.storage, {
    path: '/var/lib/wharf',
    s3: {
      endpoint: 'http://rgw.internal:7480',
      region: 'us-east-1',
      bucket: 'wharf-blobs',
      prefix: 'cluster-a',
      forcePathStyle: true,
      accessKeyId: 'AKIAEXAMPLE',
      secretAccessKeyFile: join(dir, 'secret'),
      redirect: false,
      presignExpiry: 900_000,
      secretAccessKey: 's3cr3t',
    },
  });
  const fromEnv = loadConfig({ env: { WHARF_STORAGE_S3_BUCKET: 'wharf-blobs', WHARF_STORAGE_S3_ACCESS_KEY_ID: 'AK', WHARF_STORAGE_S3_SECRET_ACCESS_KEY_ENV: 'S3_SECRET', S3_SECRET: 'from-env' } });
  t.match(fromEnv.storage.s3, { bucket: 'wharf-blobs', accessKeyId: 'AK', secretAccessKey: 'from-env' });
  t.notOk('secretAccessKey' in (loadConfig({ overrides: { storage: { s3: { bucket: 'only-a-bucket' } } } }).storage.s3 ?? {}), 'no key: the AWS SDK chain');
  t.strictSame(
    configError(() =>
      loadConfig({ overrides: { storage: { s3: { bucket: 'Not_A_Bucket', accessKeyId: 'AK', secretAccessKeyEnv: 'NOPE', secretAccessKey: 'in the file' } } }, env: {} }),
    ).violations,
    [
      'storage.s3.secretAccessKey: unknown key (from command line)',
      'storage.s3.bucket: invalid value "Not_A_Bucket": the bucket, which must exist: 3-63 lowercase letters, digits, dots and hyphens, a letter or digit at each end (from command line)',
      'storage.s3.secretAccessKeyEnv: the environment variable NOPE is not set (from command line)',
    ],
  );
  t.strictSame(configError(() => loadConfig({ overrides: { storage: { s3: { bucket: 'b-1', accessKeyId: 'AK' } } } })).violations, [
    'storage.s3.accessKeyId: give its secret key too, with secretAccessKeyFile or secretAccessKeyEnv (or leave both out for the AWS SDK chain: AWS_ACCESS_KEY_ID, profiles, instance roles) (from command line)',
  ]);
  t.strictSame(
    configError(() => loadConfig({ overrides: { storage: { s3: { bucket: 'b-1', secretAccessKeyFile: '/x', secretAccessKeyEnv: 'X' } } }, env: { X: 'x' } })).violations.slice(0, 2),
    ['storage.s3: give only one of secretAccessKeyFile, secretAccessKeyEnv (from command line)', 'storage.s3.secretAccessKeyFile: give accessKeyId too (the key the secret belongs to) (from command line)'],
  );
  // Presigned URLs: S3 signs them for a week at most.
  t.equal(loadConfig({ overrides: { storage: { s3: { bucket: 'b-1', presignExpiry: '7d' } } } }).storage.s3?.presignExpiry, 7 * 86_400_000);
  t.equal(loadConfig({ env: { WHARF_STORAGE_S3_BUCKET: 'b-1', WHARF_STORAGE_S3_PRESIGN_EXPIRY: '90s' } }).storage.s3?.presignExpiry, 90_000);
  for (const bad of ['8d', '169h', '500ms', '0s']) {
    t.strictSame(configError(() => loadConfig({ overrides: { storage: { s3: { bucket: 'b-1', presignExpiry: bad } } } })).violations, [
      `storage.s3.presignExpiry: between 1s and 7d (the longest S3 signs a URL for), not ${bad} (from command line)`,
    ]);
  }
});

t.test('durations and sizes are parsed once, at load: the configuration carries milliseconds and bytes', async (t) => {
  const dir = t.testdir({
    'wharf.yaml': [
      'gc:',
      '  interval: 90s',
      '  grace: 2h',
      'cache:',
      '  maxAge: 7d',
      '  maxSize: 500MiB',
      'upstreams:',
      '  - name: hub',
      '    url: https://registry-1.docker.io',
      '    registry: docker.io',
      '    tagTTL: 1m',
      '    timeouts: {headers: 250ms, minRate: 2KiB}',
      'auth:',
      '  token: {lifetime: 15m}',
      '',
    ].join('\n'),
  });
  const input = parseDocument(readFileSync(join(dir, 'wharf.yaml'), 'utf8')).toJS() as object;
  const config = loadConfig({ file: join(dir, 'wharf.yaml'), env: { WHARF_HTTP_BODY_IDLE_TIMEOUT: '5s', WHARF_UPLOADS_MAX_AGE: '3h' } });
  t.strictSame(config.gc, { interval: 90_000, grace: 7_200_000, deleteUntagged: false }, 'from the file');
  t.strictSame(config.cache, { maxAge: 7 * 86_400_000, maxSize: 500 * 1024 ** 2 });
  t.equal(config.http.bodyIdleTimeout, 5_000, 'from WHARF_*');
  t.equal(config.uploads.maxAge, 3 * 3_600_000);
  t.strictSame(config.upstreams[0]!.timeouts, { connect: 10_000, headers: 250, bodyIdle: 30_000, minRate: 2048, minRateWindow: 30_000 }, 'defaults too');
  t.strictSame([config.upstreams[0]!.tagTTL, config.upstreams[0]!.listTTL], [60_000, 30_000]);
  t.strictSame([config.auth!.token.lifetime, config.auth!.token.refreshLifetime, config.auth!.failedLogins.window], [900_000, 30 * 86_400_000, 300_000]);
  t.ok(Object.isFrozen(config.upstreams[0]!.timeouts), 'the parsed configuration is frozen');
  t.strictSame(withDefaults(input), loadConfig({ file: join(dir, 'wharf.yaml') }), 'withDefaults gives the same parsed form as loadConfig');
  const inMemory = withDefaults({ gc: { interval: 1500 }, cache: { maxSize: 4096 } });
  t.strictSame([inMemory.gc.interval, inMemory.cache.maxSize], [1500, 4096], 'a number given in memory is taken as parsed');
  const printed = JSON.parse(JSON.stringify(ConfigSchema)) as { properties: { gc: { properties: { interval: object } } } };
  t.match(printed.properties.gc.properties.interval, { type: 'string', default: '1h' }, 'the schema (print-schema) still describes the strings as written');
});

t.test('a duration or a size of the wrong kind says that a duration or a size is wanted, with examples', async (t) => {
  const dir = t.testdir({
    'bad.yaml': [
      'http:', // 1
      '  bodyIdleTimeout: -1', // 2: an integer, not a duration
      'gc:', // 3
      '  interval: 10 seconds', // 4: a string, not a duration
      'cache:', // 5
      '  maxSize: -5', // 6: below 0
      '  maxAge: 30', // 7: a number without a unit
      '',
    ].join('\n'),
  });
  const duration = 'a duration such as 500ms, 30s, 5m, 2h or 1d';
  const size = 'a size such as 1048576 (bytes), 500MiB, 10GiB or 1TB';
  t.strictSame(configError(() => loadConfig({ file: join(dir, 'bad.yaml') })).violations, [
    `http.bodyIdleTimeout: expected ${duration}, got an integer -1 (line 2)`,
    `gc.interval: invalid value "10 seconds": expected ${duration} (line 4)`,
    `cache.maxAge: expected ${duration}, got an integer 30 (line 7)`,
    `cache.maxSize: expected ${size}, got an integer -5 (line 6)`,
  ]);
  // From the environment, every value is a string: the same words.
  t.strictSame(configError(() => loadConfig({ env: { WHARF_HTTP_BODY_IDLE_TIMEOUT: '-1', WHARF_CACHE_MAX_SIZE: 'lots' } })).violations, [
    `http.bodyIdleTimeout: invalid value "-1": expected ${duration} (from WHARF_HTTP_BODY_IDLE_TIMEOUT)`,
    `cache.maxSize: expected ${size}, got a string "lots" (from WHARF_CACHE_MAX_SIZE)`,
  ]);
});

t.test('a problem found after loading (a file a key names) is reported once under its key, with the line of that key', async (t) => {
  const dir = t.testdir({});
  const file = join(dir, 'wharf.yaml');
  const htpasswd = join(dir, 'no-htpasswd');
  const write = (auth: string[]) => writeFileSync(file, ['storage:', `  path: ${join(dir, 'data')}`, 'auth:', ...auth, ''].join('\n'));
  const violations = async () => {
    try {
      await checkConfig({ file, env: {} });
    } catch (err) {
      if (err instanceof ConfigError) return err.violations;
      throw err;
    }
    throw new Error('expected a ConfigError, but the configuration passed');
  };
  write([`  htpasswd: ${htpasswd}`]);
  t.strictSame(await violations(), [`auth.htpasswd: cannot read ${htpasswd}: ENOENT (line 4)`]);
  // The error names its own key (the second inline user's password): that key and its line.
  const cost3 = `$2b$03$${'a'.repeat(53)}`;
  write(['  users:', `    - {name: alice, password: "${`$2b$10$${'a'.repeat(53)}`}"}`, `    - name: bob`, `      password: "${cost3}"`]);
  t.strictSame(await violations(), ['auth.users.1.password: user "bob": must be a bcrypt hash with cost 4-31 (line 7)']);
});
