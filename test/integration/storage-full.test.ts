// A full disk is answered as such: 507 STORAGE_FULL with an OCI body on a push and on a pull that must
// store content, clients of a fill that hits it are cut, and what is already stored is still served.
// The disk is a real FsBlobStore whose writes fail with ENOSPC past a budget (test/helpers/full-disk.ts).
import t, { type Test } from 'tap';
import Database from 'better-sqlite3';
import { SqliteDatabase } from '../../src/metadata/sqlite-database.js';
import { SqliteRegistryMetadata } from '../../src/metadata/sqlite-registry-metadata.js';
import { SqliteUploadSessions } from '../../src/metadata/sqlite-upload-sessions.js';
import type { RegistryMetadata } from '../../src/metadata/registry-metadata.js';
import type { UploadSessions } from '../../src/metadata/upload-sessions.js';
import { metadataPath } from '../../src/storage/paths.js';
import { contentEntry, startFaultUpstream } from '../helpers/fault-upstream.js';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { bytesUnder, fullDiskStore, type FullDisk } from '../helpers/full-disk.js';
import { LEVEL, LogCapture } from '../helpers/log-capture.js';
import { bulkBytes } from '../helpers/oci-layout.js';
import { ociError, req, sha } from '../helpers/proxy-http.js';
import { startWharf } from '../helpers/server.js';

t.setTimeout(60_000);
const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';

async function setup(t: Test) {
  const layer = contentEntry(bulkBytes('full-layer', 2 * 1024 * 1024));
  const config = contentEntry(Buffer.from('{"architecture":"amd64","os":"linux"}'));
  const body = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: OCI_MANIFEST,
      config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: config.digest, size: config.body.length },
      layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: layer.digest, size: layer.body.length }],
    }),
  );
  const up = await startFaultUpstream(t, { manifests: [{ repo: 'library/app', tag: 'v1', mediaType: OCI_MANIFEST, ...contentEntry(body) }], blobs: [layer, config] });
  let disk!: FullDisk;
  let dataDir = '';
  const logs = new LogCapture();
  const w = await startWharf(
    t,
    { local: { namespaces: ['local'] }, upstreams: [{ name: 'faulty', url: up.url, registry: 'faults.test', default: true }] },
    {
      blobs: async (dir) => {
        dataDir = dir;
        return (disk = await fullDiskStore(dir)).store;
      },
      logs,
    },
  );
  return { w, up, disk, layer, logs, uploads: join(dataDir, 'uploads') };
}

async function pushMonolithic(url: string, repo: string, bytes: Buffer) {
  return req(`${url}/v2/${repo}/blobs/uploads/?digest=${sha(bytes)}`, {
    method: 'POST',
    headers: { 'content-type': 'application/octet-stream' },
    body: bytes,
  });
}

t.test('a push on a full disk answers 507 STORAGE_FULL naming the cause, and stored content is still served', async (t) => {
  const { w, disk, logs } = await setup(t);
  const before = bulkBytes('stored-before', 100_000);
  t.equal((await pushMonolithic(w.url, 'local/app', before)).status, 201, 'a push while there is room');

  disk.left = 0;
  const monolithic = await pushMonolithic(w.url, 'local/app', bulkBytes('too-late', 100_000));
  t.equal(monolithic.status, 507, `monolithic push: ${monolithic.text}`);
  const err = ociError(t, monolithic);
  t.equal(err.code, 'STORAGE_FULL');
  t.match(err.message, /storage is full \(ENOSPC\)/, 'the message names the cause');
  const warned = await logs.waitFor((l) => l.msg === 'request' && l.status === 507);
  t.match(warned, { level: LEVEL.warn, method: 'POST', error: { code: 'STORAGE_FULL', message: /ENOSPC/ } }, 'logged at warn');
  t.equal(logs.lines.filter((l) => l.level >= LEVEL.warn && /ENOSPC/.test(JSON.stringify(l))).length, 1, 'once');
  t.same(logs.lines.filter((l) => l.level >= LEVEL.error), [], 'not as an internal error with a stack');

  const started = await req(`${w.url}/v2/local/app/blobs/uploads/`, { method: 'POST' });
  t.equal(started.status, 202);
  const patch = await req(new URL(started.headers.get('location')!, w.url).href, {
    method: 'PATCH',
    headers: { 'content-type': 'application/octet-stream' },
    body: bulkBytes('chunk', 50_000),
  });
  t.equal(patch.status, 507, `chunked push: ${patch.text}`);
  t.equal(ociError(t, patch).code, 'STORAGE_FULL');

  const read = await req(`${w.url}/v2/local/app/blobs/${sha(before)}`);
  t.equal(read.status, 200, 'reads go on');
  t.equal(sha(read.body), sha(before));

  disk.left = Number.POSITIVE_INFINITY;
  t.equal((await pushMonolithic(w.url, 'local/app', bulkBytes('after', 1000))).status, 201, 'space freed: pushes work again');
});

t.test('a pull that must store content on a full disk: 507 for a manifest, the blob fill cuts its clients', async (t) => {
  const { w, up, disk, layer } = await setup(t);
  disk.left = 0;
  const manifest = await req(`${w.url}/v2/library/app/manifests/v1`, { headers: { accept: OCI_MANIFEST } });
  t.equal(manifest.status, 507, `manifest: ${manifest.text}`);
  const err = ociError(t, manifest);
  t.equal(err.code, 'STORAGE_FULL', 'not UNAVAILABLE blaming the upstream');
  t.notMatch(err.message, /upstream faulty/);

  disk.left = 256 * 1024;
  const url = `${w.url}/v2/library/app/blobs/${layer.digest}`;
  const clients = await Promise.all([fetch(url), fetch(url)]);
  for (const res of clients) {
    t.equal(res.status, 200, 'the headers went out before the disk filled');
    await t.rejects(res.arrayBuffer(), 'the client is cut, never handed a short blob');
  }
  t.equal(up.count('GET', `/blobs/${layer.digest}`), 1, 'one upstream fetch for both');

  disk.left = Number.POSITIVE_INFINITY;
  const again = await req(url);
  t.equal(again.status, 200, 'space freed: the next request fills the blob');
  t.equal(sha(again.body), layer.digest);
});

/** The SQLite stores in the data directory, whose `method` fails with SQLITE_FULL (as on a full disk) while `full` is set. */
function fullDatabase(method: 'touchAccess' | 'advanceUpload') {
  const failing = <T extends object>(store: T): T =>
    new Proxy(store, {
      get(target, prop) {
        const value = Reflect.get(target, prop, target) as unknown;
        if (typeof value !== 'function') return value;
        const bound = (value as (...a: unknown[]) => unknown).bind(target);
        if (prop !== method) return bound;
        return (...args: unknown[]) => {
          if (!db.full) return bound(...args);
          db.refused++;
          return Promise.reject(new Database.SqliteError('database or disk is full', 'SQLITE_FULL'));
        };
      },
    });
  const db = {
    full: false,
    refused: 0,
    open: (dir: string): { database: SqliteDatabase; metadata: RegistryMetadata; uploads: UploadSessions } => {
      const database = SqliteDatabase.open(metadataPath(dir));
      return { database, metadata: failing(new SqliteRegistryMetadata(database)), uploads: failing(new SqliteUploadSessions(database)) };
    },
  };
  return db;
}

const octets = { 'content-type': 'application/octet-stream' };

t.test('a push that fills the disk takes its bytes back: the upload resumes from its last offset and the space is free', async (t) => {
  const { w, disk, uploads } = await setup(t);
  const blob = bulkBytes('resumed-layer', 300_000);
  const first = blob.subarray(0, 100_000);
  const rest = blob.subarray(100_000);
  const started = await req(`${w.url}/v2/local/app/blobs/uploads/`, { method: 'POST' });
  const session = new URL(started.headers.get('location')!, w.url).href;
  const id = started.headers.get('docker-upload-uuid')!;
  const chunk = (body: Buffer, start: number) => ({
    method: 'PATCH',
    headers: { ...octets, 'content-range': `${start}-${start + body.length - 1}` },
    body,
  });
  t.equal((await req(session, chunk(first, 0))).status, 202, 'the first chunk while there is room');

  disk.left = 150_000;
  const patch = await req(session, chunk(rest, 100_000));
  t.equal(patch.status, 507, `a chunk larger than the space left: ${patch.text}`);
  t.equal(ociError(t, patch).code, 'STORAGE_FULL');
  t.equal(patch.headers.get('range'), '0-99999', 'the answer says where the upload resumes');
  t.ok(disk.refused > 0, 'the disk refused a write');
  t.equal(await bytesUnder(uploads), 100_000, 'the chunk took its bytes back: only the first chunk is on disk');

  disk.left = 150_000;
  const last = await req(`${session}?digest=${sha(blob)}`, { ...chunk(rest, 100_000), method: 'PUT' });
  t.equal(last.status, 507, `a last chunk (PUT) larger than the space left: ${last.text}`);
  t.equal(last.headers.get('range'), '0-99999');
  t.equal(await bytesUnder(uploads), 100_000, 'the last chunk took its bytes back too');

  const status = await req(session);
  t.equal(status.status, 204, 'the session is still valid');
  t.equal(status.headers.get('range'), '0-99999', 'at its last offset');

  disk.left = Number.POSITIVE_INFINITY;
  t.equal((await req(session, chunk(rest, 100_000))).status, 202, 'space freed: the chunk is sent again');
  const done = await req(`${session}?digest=${sha(blob)}`, { method: 'PUT' });
  t.equal(done.status, 201, `the upload completes with the digest of its bytes: ${done.text}`);
  const read = await req(`${w.url}/v2/local/app/blobs/${sha(blob)}`);
  t.equal(sha(read.body), sha(blob));
  t.notOk((await readdir(uploads)).includes(id), 'the session is over');
});

t.test('a monolithic push that fills the disk leaves no file behind', async (t) => {
  const { w, disk, uploads } = await setup(t);
  const blob = bulkBytes('monolithic-layer', 300_000);

  disk.left = 200_000;
  const post = await pushMonolithic(w.url, 'local/app', blob);
  t.equal(post.status, 507, `POST ?digest=: ${post.text}`);
  t.same(await readdir(uploads), [], 'no file in the upload area');

  disk.left = 200_000;
  const started = await req(`${w.url}/v2/local/app/blobs/uploads/`, { method: 'POST' });
  const session = new URL(started.headers.get('location')!, w.url).href;
  const put = await req(`${session}?digest=${sha(blob)}`, { method: 'PUT', headers: octets, body: blob });
  t.equal(put.status, 507, `POST then PUT ?digest= with the whole blob: ${put.text}`);
  t.equal(ociError(t, put).code, 'STORAGE_FULL');
  t.equal(await bytesUnder(uploads), 0, 'none of its bytes are left on disk');

  disk.left = Number.POSITIVE_INFINITY;
  const again = await req(`${session}?digest=${sha(blob)}`, { method: 'PUT', headers: octets, body: blob });
  t.equal(again.status, 201, `space freed: the same session takes the blob: ${again.text}`);
  t.equal(again.headers.get('docker-content-digest'), sha(blob));
  t.equal((await pushMonolithic(w.url, 'local/other', blob)).status, 201, 'and a monolithic POST works again');
  t.same(await readdir(uploads), [], 'nothing left in the upload area');
});

t.test('a full metadata database costs one warn line per access-time flush, without a stack', async (t) => {
  const db = fullDatabase('touchAccess');
  const logs = new LogCapture();
  const w = await startWharf(t, { local: { namespaces: ['local'] } }, { stores: db.open, logs });
  const blob = bulkBytes('pulled-often', 10_000);
  t.equal((await pushMonolithic(w.url, 'local/app', blob)).status, 201);

  db.full = true;
  const pulls = 20;
  for (let i = 0; i < pulls; i++) t.equal((await req(`${w.url}/v2/local/app/blobs/${sha(blob)}`)).status, 200, 'reads go on');
  await w.close(); // writes the pending access times
  const warned = logs.lines.filter((l) => /access times/.test(l.msg));
  t.ok(db.refused >= 1, 'the access times were written and refused');
  t.ok(db.refused < pulls, 'in batches, not one write per pull');
  t.equal(warned.length, db.refused, 'one line per failed flush');
  for (const line of warned) {
    t.match(line, { level: LEVEL.warn, reason: 'SQLITE_FULL', msg: /storage is full \(SQLITE_FULL\)/ });
    t.notOk('err' in line, 'no error object with a stack');
  }
});

t.test('a chunk whose offset cannot be recorded (a full database) takes its bytes back too', async (t) => {
  const db = fullDatabase('advanceUpload');
  const w = await startWharf(t, { local: { namespaces: ['local'] } }, { stores: db.open });
  const uploads = join(w.dataDir, 'uploads');
  const blob = bulkBytes('unrecorded-chunk', 200_000);
  const started = await req(`${w.url}/v2/local/app/blobs/uploads/`, { method: 'POST' });
  const session = new URL(started.headers.get('location')!, w.url).href;
  const patch = (body: Buffer, start: number) =>
    req(session, { method: 'PATCH', headers: { ...octets, 'content-range': `${start}-${start + body.length - 1}` }, body });
  t.equal((await patch(blob.subarray(0, 50_000), 0)).status, 202);

  db.full = true;
  const refused = await patch(blob.subarray(50_000), 50_000);
  t.equal(refused.status, 507, refused.text);
  t.match(ociError(t, refused), { code: 'STORAGE_FULL', message: /SQLITE_FULL/ });
  t.equal(refused.headers.get('range'), '0-49999');
  t.equal(db.refused, 1);
  t.equal(await bytesUnder(uploads), 50_000, 'the chunk is not left on disk');

  db.full = false;
  t.equal((await patch(blob.subarray(50_000), 50_000)).status, 202, 'the chunk again, once there is room');
  const done = await req(`${session}?digest=${sha(blob)}`, { method: 'PUT' });
  t.equal(done.status, 201, done.text);
});
