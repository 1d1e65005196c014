// gc, fsck and token against metadata.postgres, as operators run them: the compiled bin, a config file
// naming the database (password from passwordEnv), while a server on the same database serves.
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import t from 'tap';
import { stringify } from 'yaml';
import { quoteIdent } from '../../src/metadata/postgres-database.js';
import { ensureBuilt } from '../helpers/build.js';
import { OCI_MANIFEST, imageManifest, pushBlob, pushManifest } from '../helpers/http.js';
import { adminQuery, POSTGRES_URL, tempSchema } from '../helpers/postgres.js';
import { startWharf } from '../helpers/server.js';

const root = fileURLToPath(new URL('../../', import.meta.url));
const BIN = join(root, 'bin', 'wharf.js');
t.setTimeout(180_000);
t.before(() => ensureBuilt((m) => t.comment(m)));

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** The bin, with the parent's environment minus WHARF_* plus `env`. */
function wharf(args: string[], env: Record<string, string>): Promise<Run> {
  const clean = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('WHARF_')));
  const child = spawn(process.execPath, [BIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...clean, ...env } });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
  return new Promise((resolve) =>
    child.once('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    }),
  );
}

t.test('wharf fsck, token and gc work on the PostgreSQL metadata a server uses', async (t) => {
  const schema = await tempSchema(t);
  const dir = mkdtempSync(join(tmpdir(), 'wharf-pg-cli-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const url = `${POSTGRES_URL}?options=${encodeURIComponent(`-c search_path=${schema}`)}`;
  const config = join(dir, 'wharf.yaml');
  const settings = { storage: { path: join(dir, 'data') }, log: { level: 'warn' }, gc: { grace: '0s', deleteUntagged: true, interval: '0s' } };
  // Trust auth takes any password: what is checked is that passwordEnv is read and accepted.
  writeFileSync(config, stringify({ ...settings, metadata: { postgres: { url, passwordEnv: 'TEST_WHARF_DB_PASSWORD' } } }));
  const env = { TEST_WHARF_DB_PASSWORD: 'unused-with-trust' };

  const early = await wharf(['fsck', '--config', config], env);
  t.not(early.code, 0, 'no store yet: refused');
  t.match(early.stderr, /holds no Wharf store.*wharf serve creates the store/);
  t.same((await adminQuery(`SELECT tablename FROM pg_tables WHERE schemaname = $1`, [schema])).rows, [], 'and nothing created');

  const server = await startWharf(t, { gc: { interval: 0 }, metadata: { postgres: { url } } }, { dataDir: join(dir, 'data') });
  const img = await imageManifest(server.app, 'team/app', 'kept');
  await pushManifest(server.app, 'team/app', 'v1', img.body, OCI_MANIFEST);
  await pushBlob(server.app, 'team/app', 'pushed, never referenced');

  const check = await wharf(['fsck', '--config', config], env);
  t.equal(check.code, 0, check.stderr);
  t.match(check.stdout, /^ok/);

  const created = await wharf(['token', 'create', '--name', 'ci', '--scope', 'team/**:pull', '--config', config], env);
  t.equal(created.code, 0, created.stderr);
  const list = await wharf(['token', 'list', '--json', '--config', config], env);
  t.equal(list.code, 0, list.stderr);
  t.match(JSON.parse(list.stdout), [{ name: 'ci' }]);
  t.same((await adminQuery(`SELECT name FROM ${quoteIdent(schema)}.service_tokens`)).rows, [{ name: 'ci' }], 'the token row is in PostgreSQL');

  const gc = await wharf(['gc', '--json', '--config', config], env);
  t.equal(gc.code, 0, gc.stderr);
  const report = JSON.parse(gc.stdout) as Record<string, number>;
  t.equal(report['blobsDeleted'], 1, 'the unreferenced blob went');
  t.equal(report['manifestsDeleted'], 0, 'the tagged image stayed');
  const after = await wharf(['fsck', '--config', config], env);
  t.equal(after.code, 0, after.stdout + after.stderr);

  const missing = await wharf(['fsck', '--config', config], {});
  t.not(missing.code, 0, 'passwordEnv names a variable that is not set: refused');
  t.match(missing.stderr, /TEST_WHARF_DB_PASSWORD is not set/);
});

t.test('wharf serve on PostgreSQL: serves what another node recorded, and exits on SIGTERM with nothing left open', async (t) => {
  const schema = await tempSchema(t);
  const dir = mkdtempSync(join(tmpdir(), 'wharf-pg-serve-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const url = `${POSTGRES_URL}?options=${encodeURIComponent(`-c search_path=${schema}`)}`;
  const other = await startWharf(t, { metadata: { postgres: { url } } }, { dataDir: join(dir, 'data') });
  const img = await imageManifest(other.app, 'team/app', 'from-the-other-node');
  await pushManifest(other.app, 'team/app', 'v1', img.body, OCI_MANIFEST);

  const clean = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('WHARF_')));
  // The database from the environment, as a Kubernetes Deployment would set it.
  const child = spawn(process.execPath, [BIN, 'serve', '--listen', '127.0.0.1:0', '--data', join(dir, 'data')], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...clean, WHARF_METADATA_POSTGRES_URL: url, WHARF_LOG_LEVEL: 'warn' },
  });
  t.teardown(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  let stdout = '';
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const base = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`serve did not start in 30 s: ${stderr}`)), 30_000);
    child.stdout.on('data', (d: Buffer) => {
      stdout += d.toString();
      const m = /listening on (http:\/\/[^\s"]+)/.exec(stdout);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]!);
      }
    });
  });
  const tags = await fetch(`${base}/v2/team/app/tags/list`);
  t.same(await tags.json(), { name: 'team/app', tags: ['v1'] }, 'the tag pushed through the other node');
  const manifest = await fetch(`${base}/v2/team/app/manifests/v1`, { headers: { accept: OCI_MANIFEST } });
  t.equal(manifest.headers.get('docker-content-digest'), img.digest);
  await manifest.arrayBuffer();
  child.kill('SIGTERM');
  t.equal(await exited, 0, 'exits 0 on SIGTERM: the pool and the listening connection closed');
  t.match(stdout, /closed/);
});
