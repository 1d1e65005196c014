// Hot manifests and tag resolutions are served from memory, and never outlive what removed or moved
// them: a tag pushed again, a tag or manifest deleted, the collector of this process, and `wharf gc`
// run as another process on the same data directory (told through the store's change signal).
import { spawn } from 'node:child_process';
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import t from 'tap';
import { stringify } from 'yaml';
import { startWharf } from '../helpers/server.js';
import { blobFile, digestOf, imageManifest, inject, OCI_MANIFEST, pushManifest, raw } from '../helpers/http.js';
import { LogCapture } from '../helpers/log-capture.js';
import { ensureBuilt } from '../helpers/build.js';
import { SqliteDatabase } from '../../src/metadata/sqlite-database.js';
import { SqliteRegistryMetadata } from '../../src/metadata/sqlite-registry-metadata.js';
import type { RegistryMetadata } from '../../src/metadata/registry-metadata.js';
import { ManifestCache } from '../../src/registry/manifest-cache.js';

const BIN = join(fileURLToPath(new URL('../../', import.meta.url)), 'bin', 'wharf.js');
const GC_NOW = { gc: { grace: '0s', deleteUntagged: true, interval: '0s' } };
const ACCEPT = { accept: OCI_MANIFEST };

/** The SQLite metadata, counting the reads a pull makes. */
function countingStores(dataDir: string, counts: Map<string, number>) {
  const database = SqliteDatabase.open(join(dataDir, 'metadata.db'));
  const real = new SqliteRegistryMetadata(database);
  const metadata = new Proxy(real, {
    get(target, prop, receiver) {
      const value = Reflect.get(target, prop, receiver) as unknown;
      if (typeof value !== 'function') return value;
      return (...args: unknown[]) => {
        counts.set(String(prop), (counts.get(String(prop)) ?? 0) + 1);
        return (value as (...a: unknown[]) => unknown).apply(target, args);
      };
    },
  }) as RegistryMetadata;
  return { database, metadata };
}

t.test('a hot manifest is served by tag and by digest with no metadata query and no file read', async (t) => {
  const counts = new Map<string, number>();
  const s = await startWharf(t, {}, { stores: (dir) => countingStores(dir, counts) });
  const img = await imageManifest(s.app, 'team/app', 'hot');
  const digest = await pushManifest(s.app, 'team/app', 'v1', img.body, OCI_MANIFEST);
  t.equal((await inject(s.app, 'GET', '/v2/team/app/manifests/v1', { headers: ACCEPT })).status, 200);
  counts.clear();
  // The bytes' file is gone: only memory can answer now.
  rmSync(blobFile(s.dataDir, digest));
  for (const ref of ['v1', digest]) {
    const get = await inject(s.app, 'GET', `/v2/team/app/manifests/${ref}`, { headers: ACCEPT });
    t.equal(get.status, 200, `GET ${ref}`);
    t.equal(get.text, img.body, `GET ${ref}: the bytes`);
    t.equal(get.header('docker-content-digest'), digest);
    t.equal(get.header('content-type'), OCI_MANIFEST);
    t.equal(get.header('content-length'), String(Buffer.byteLength(img.body)));
    t.equal(get.header('docker-distribution-api-version'), 'registry/2.0');
    const head = await inject(s.app, 'HEAD', `/v2/team/app/manifests/${ref}`, { headers: ACCEPT });
    t.equal(head.status, 200, `HEAD ${ref}`);
    t.equal(head.body.length, 0, `HEAD ${ref}: no body`);
    t.equal(head.header('content-length'), String(Buffer.byteLength(img.body)));
    t.equal(head.header('docker-content-digest'), digest);
  }
  t.same([...counts.keys()].filter((k) => k !== 'touchAccess'), [], 'no metadata read for hot pulls');
});

t.test('a tag pushed again serves its new manifest at once', async (t) => {
  const s = await startWharf(t);
  const a = await imageManifest(s.app, 'team/app', 'a');
  const b = await imageManifest(s.app, 'team/app', 'b');
  await pushManifest(s.app, 'team/app', 'v1', a.body, OCI_MANIFEST);
  t.equal((await inject(s.app, 'GET', '/v2/team/app/manifests/v1')).text, a.body);
  t.equal((await inject(s.app, 'HEAD', '/v2/team/app/manifests/v1')).header('docker-content-digest'), a.digest);
  await pushManifest(s.app, 'team/app', 'v1', b.body, OCI_MANIFEST);
  t.equal((await inject(s.app, 'GET', '/v2/team/app/manifests/v1')).text, b.body, 'GET follows the moved tag');
  t.equal((await inject(s.app, 'HEAD', '/v2/team/app/manifests/v1')).header('docker-content-digest'), b.digest, 'HEAD too');
  t.equal((await inject(s.app, 'GET', `/v2/team/app/manifests/${a.digest}`)).text, a.body, 'the old one stays pullable by digest');
});

t.test('a deleted tag is 404 at once; its manifest stays by digest', async (t) => {
  const s = await startWharf(t);
  const a = await imageManifest(s.app, 'team/app', 'a');
  await pushManifest(s.app, 'team/app', 'v1', a.body, OCI_MANIFEST);
  t.equal((await inject(s.app, 'GET', '/v2/team/app/manifests/v1')).status, 200);
  t.equal((await inject(s.app, 'DELETE', '/v2/team/app/manifests/v1')).status, 202);
  t.equal((await inject(s.app, 'GET', '/v2/team/app/manifests/v1')).status, 404, 'GET');
  t.equal((await inject(s.app, 'HEAD', '/v2/team/app/manifests/v1')).status, 404, 'HEAD');
  t.equal((await inject(s.app, 'GET', `/v2/team/app/manifests/${a.digest}`)).status, 200);
});

t.test('a deleted manifest is 404 at once by digest and by every tag that held it', async (t) => {
  const s = await startWharf(t);
  const a = await imageManifest(s.app, 'team/app', 'a');
  await pushManifest(s.app, 'team/app', 'v1', a.body, OCI_MANIFEST);
  await pushManifest(s.app, 'team/app', 'latest', a.body, OCI_MANIFEST);
  for (const ref of ['v1', 'latest', a.digest]) t.equal((await inject(s.app, 'GET', `/v2/team/app/manifests/${ref}`)).status, 200);
  t.equal((await inject(s.app, 'DELETE', `/v2/team/app/manifests/${a.digest}`)).status, 202);
  for (const ref of ['v1', 'latest', a.digest]) {
    t.equal((await inject(s.app, 'GET', `/v2/team/app/manifests/${ref}`)).status, 404, `GET ${ref}`);
    t.equal((await inject(s.app, 'HEAD', `/v2/team/app/manifests/${ref}`)).status, 404, `HEAD ${ref}`);
  }
});

t.test("a manifest this process's collector removes is 404 at once", async (t) => {
  const s = await startWharf(t, GC_NOW);
  const a = await imageManifest(s.app, 'team/app', 'untagged');
  await pushManifest(s.app, 'team/app', a.digest, a.body, OCI_MANIFEST);
  t.equal((await inject(s.app, 'GET', `/v2/team/app/manifests/${a.digest}`)).status, 200, 'hot');
  const run = await inject(s.app, 'POST', '/api/gc');
  t.equal((run.json() as { manifestsDeleted: number }).manifestsDeleted, 1, run.text);
  t.equal((await inject(s.app, 'GET', `/v2/team/app/manifests/${a.digest}`)).status, 404);
  t.equal((await inject(s.app, 'HEAD', `/v2/team/app/manifests/${a.digest}`)).status, 404);
});

t.test('a manifest `wharf gc` removes from another process is 404 once the server has the signal', async (t) => {
  ensureBuilt((m) => t.comment(m));
  const logs = new LogCapture();
  const s = await startWharf(t, GC_NOW, { logs });
  const a = await imageManifest(s.app, 'team/app', 'untagged');
  const b = await imageManifest(s.app, 'team/app', 'tagged');
  await pushManifest(s.app, 'team/app', a.digest, a.body, OCI_MANIFEST);
  await pushManifest(s.app, 'team/app', 'v1', b.body, OCI_MANIFEST);
  t.equal((await inject(s.app, 'GET', `/v2/team/app/manifests/${a.digest}`)).status, 200, 'hot');
  t.equal((await inject(s.app, 'GET', '/v2/team/app/manifests/v1')).status, 200, 'hot');

  const config = join(s.dataDir, '..', `${digestOf(s.dataDir).slice(7, 19)}.yaml`);
  writeFileSync(config, stringify({ storage: { path: s.dataDir }, log: { level: 'warn' }, ...GC_NOW }));
  t.teardown(() => rmSync(config, { force: true }));
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('WHARF_')));
  const child = spawn(process.execPath, [BIN, 'gc', '--config', config, '--json'], { stdio: ['ignore', 'pipe', 'pipe'], env });
  let out = '';
  let err = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (err += d.toString()));
  const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
  t.equal(code, 0, err);
  t.equal((JSON.parse(out) as { manifestsDeleted: number }).manifestsDeleted, 1, 'the untagged manifest went');

  await logs.waitFor((l) => l.component === 'gc' && /removed by another process/.test(l.msg));
  t.equal((await inject(s.app, 'GET', `/v2/team/app/manifests/${a.digest}`)).status, 404, 'GET by digest');
  t.equal((await inject(s.app, 'HEAD', `/v2/team/app/manifests/${a.digest}`)).status, 404, 'HEAD by digest');
  t.equal((await inject(s.app, 'GET', '/v2/team/app/manifests/v1')).text, b.body, 'what it kept is still served');
});

t.test('a lookup that began before a change does not put what it read back afterwards', async (t) => {
  const cache = new ManifestCache(1024 * 1024);
  const m = { digest: 'sha256:' + 'a'.repeat(64), mediaType: OCI_MANIFEST, size: 2, body: Buffer.from('{}') };
  const before = cache.token();
  cache.tagDeleted('team/app', 'v1');
  cache.setTag(before, 'team/app', 'v1', m.digest);
  cache.setManifest(before, 'team/app', m);
  t.equal(cache.tagDigest('team/app', 'v1'), undefined, 'the tag read before the delete is not kept');
  t.equal(cache.manifest('team/app', m.digest), undefined, 'nor the manifest');
  const now = cache.token();
  cache.setTag(now, 'team/app', 'v1', m.digest);
  cache.setManifest(now, 'team/app', m);
  t.equal(cache.tagged('team/app', 'v1'), m, 'a lookup with no change in between is kept');
  cache.clear();
  t.equal(cache.tagged('team/app', 'v1'), undefined, 'clear drops everything');
});

t.test('the cache is bounded by bytes', async (t) => {
  const cache = new ManifestCache(64 * 1024);
  const body = Buffer.alloc(20 * 1024, 'x');
  for (let i = 0; i < 10; i++) cache.setManifest(cache.token(), 'team/app', { digest: `sha256:${String(i).padStart(64, '0')}`, mediaType: OCI_MANIFEST, size: body.length, body });
  const held = Array.from({ length: 10 }, (_, i) => cache.manifest('team/app', `sha256:${String(i).padStart(64, '0')}`)).filter(Boolean).length;
  t.ok(held <= 3 && held >= 1, `at most 64 KiB of 20 KiB manifests held (${held})`);
  t.ok(cache.manifest('team/app', `sha256:${String(9).padStart(64, '0')}`), 'the most recent one is');
  const none = new ManifestCache(0);
  none.setManifest(none.token(), 'team/app', { digest: `sha256:${'0'.repeat(64)}`, mediaType: OCI_MANIFEST, size: 2, body: Buffer.from('{}') });
  t.equal(none.manifest('team/app', `sha256:${'0'.repeat(64)}`), undefined, 'size 0: nothing is held');
});

// Over real sockets: a hot pull is answered before fastify (src/http/hot-manifests.ts), with the
// route's exact answer and its log line.
t.test('a hot pull over a socket: the same headers and bytes as the route, its log line, and invalidation', async (t) => {
  const logs = new LogCapture();
  const s = await startWharf(t, {}, { logs });
  const a = await imageManifest(s.app, 'team/app', 'a');
  await pushManifest(s.app, 'team/app', 'v1', a.body, OCI_MANIFEST);
  const ask = (method: string, ref: string, query = '') => raw(s.url, method, `/v2/team/app/manifests/${ref}${query}`, { headers: ACCEPT });
  // The store answers a miss through the route; the cache was filled by the push, so drop it first.
  const routed = await inject(s.app, 'GET', '/v2/team/app/manifests/v1', { headers: ACCEPT });
  for (const ref of ['v1', a.digest]) {
    for (const query of ['', '?ns=docker.io', '?n=1&password=secret']) {
      const get = await ask('GET', ref, query);
      t.equal(get.status, 200, `GET ${ref}${query}`);
      t.equal(get.text, a.body, 'the bytes');
      for (const h of ['content-type', 'docker-content-digest', 'content-length', 'docker-distribution-api-version']) t.equal(get.header(h), routed.header(h), `${h} as the route sends it`);
      t.same(Object.keys(get.headers).slice(0, 4), ['docker-distribution-api-version', 'content-type', 'docker-content-digest', 'content-length'], 'in the same order');
      const head = await ask('HEAD', ref, query);
      t.equal(head.status, 200);
      t.equal(head.body.length, 0, 'HEAD: no body');
      t.equal(head.header('content-length'), String(Buffer.byteLength(a.body)), 'HEAD: the length of the body');
    }
  }
  const line = await logs.waitFor((l) => l.msg === 'request' && l.url === '/v2/team/app/manifests/v1?n=1&password=[redacted]' && l.method === 'HEAD');
  t.match(line, { level: 30, status: 200, outcome: 'completed', reqId: /^req-/ }, 'the request line, the secret redacted');
  t.equal(typeof line.ms, 'number');
  const ids = logs.lines.filter((l) => l.msg === 'request').map((l) => l.reqId);
  t.equal(new Set(ids).size, ids.length, 'request ids stay unique across both paths');

  t.equal((await raw(s.url, 'DELETE', '/v2/team/app/manifests/v1')).status, 202);
  t.equal((await ask('GET', 'v1')).status, 404, 'a deleted tag is 404 over the socket too');
  t.equal((await ask('HEAD', 'v1')).status, 404);
  t.equal((await ask('GET', 'v2')).status, 404, 'a miss goes through the route');
  t.equal((await raw(s.url, 'GET', '/v2/team/APP/manifests/v1')).status, 400, 'an invalid name: the route says why');
});
