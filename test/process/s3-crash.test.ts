// `wharf serve`, `wharf gc` and `wharf fsck` processes on PostgreSQL and a radosgw bucket. A node SIGKILLed in the middle of a chunked
// push (a whole part already in the session's multipart upload, its tail in a staging object, the
// next PATCH on the wire): the next `wharf gc` (uploads.maxAge and gc.grace 0s) leaves no staging
// object, no multipart upload, no upload row and nothing `wharf fsck` finds wrong, and what was
// committed before the kill is still pulled with its bytes.
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { request as httpRequest } from 'node:http';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import t from 'tap';
import { stringify } from 'yaml';
import { CreateBucketCommand, DeleteObjectCommand, ListMultipartUploadsCommand, ListObjectsV2Command, PutObjectCommand } from '@aws-sdk/client-s3';
import { quoteIdent } from '../../src/metadata/postgres-database.js';
import { ensureBuilt } from '../helpers/build.js';
import { startCeph } from '../helpers/ceph.js';
import { raw } from '../helpers/http.js';
import { adminQuery, POSTGRES_URL, tempSchema } from '../helpers/postgres.js';
import type { TestObject } from '../contract/contract-helpers.js';

const root = fileURLToPath(new URL('../../', import.meta.url));
const BIN = join(root, 'bin', 'wharf.js');
const SECRET_ENV = 'TEST_S3_SECRET';
t.setTimeout(120_000);
t.before(() => ensureBuilt((m) => t.comment(m)));

const sha256 = (b: Buffer): string => `sha256:${createHash('sha256').update(b).digest('hex')}`;

interface Run {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

function launch(args: string[], env: Record<string, string>): { child: ChildProcess; done: Promise<Run> } {
  const clean = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('WHARF_') && !k.startsWith('AWS_')));
  const child = spawn(process.execPath, [BIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...clean, ...env } });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const done = new Promise<Run>((resolve) => child.once('exit', (code, signal) => resolve({ code, signal, stdout, stderr })));
  return { child, done };
}

/** `wharf serve` on 127.0.0.1:0; resolves with its URL once it listens. */
async function serve(t: TestObject, config: string, env: Record<string, string>): Promise<{ url: string; child: ChildProcess; done: Promise<Run> }> {
  const { child, done } = launch(['serve', '--config', config, '--listen', '127.0.0.1:0'], env);
  t.teardown(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  let stdout = '';
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('serve did not start in 30 s')), 30_000);
    void done.then((r) => reject(new Error(`serve exited ${r.code}: ${r.stderr}`)));
    child.stdout!.on('data', (d: Buffer) => {
      stdout += d.toString();
      const m = /listening on (http:\/\/[^\s"]+)/.exec(stdout);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]!);
      }
    });
  });
  return { url, child, done };
}

async function pushBlob(t: TestObject, url: string, repo: string, bytes: Buffer): Promise<string> {
  const digest = sha256(bytes);
  const res = await raw(url, 'POST', `/v2/${repo}/blobs/uploads/?digest=${digest}`, { headers: { 'content-type': 'application/octet-stream' }, body: bytes });
  t.equal(res.status, 201, res.text);
  return digest;
}

/** One radosgw bucket and one PostgreSQL schema, with a config that collects at once (grace and uploads.maxAge 0s). */
async function cluster(t: TestObject) {
  const rgw = await startCeph(t);
  const s3 = rgw.client();
  const Bucket = 'crash';
  const prefix = 'wharf';
  await s3.send(new CreateBucketCommand({ Bucket }));
  const schema = await tempSchema(t);
  const dir = mkdtempSync(join(tmpdir(), 'wharf-s3-crash-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const config = join(dir, 'wharf.yaml');
  writeFileSync(
    config,
    stringify({
      storage: {
        path: join(dir, 'scratch'),
        s3: { endpoint: rgw.endpoint, region: rgw.region, bucket: Bucket, prefix, forcePathStyle: true, accessKeyId: rgw.accessKeyId, secretAccessKeyEnv: SECRET_ENV },
      },
      metadata: { postgres: { url: `${POSTGRES_URL}?options=${encodeURIComponent(`-c search_path=${schema}`)}` } },
      log: { level: 'warn' },
      gc: { grace: '0s', deleteUntagged: true, interval: '0s' },
      uploads: { maxAge: '0s' },
    }),
  );
  const env = { [SECRET_ENV]: rgw.secretAccessKey };
  const keys = async (): Promise<string[]> =>
    ((await s3.send(new ListObjectsV2Command({ Bucket, Prefix: `${prefix}/` }))).Contents ?? []).map((o) => o.Key!.slice(prefix.length + 1)).sort();
  const multipart = async (): Promise<string[]> =>
    ((await s3.send(new ListMultipartUploadsCommand({ Bucket, Prefix: `${prefix}/` }))).Uploads ?? []).map((u) => u.Key!);
  const uploadRows = async (): Promise<number> => (await adminQuery(`SELECT 1 FROM ${quoteIdent(schema)}.uploads`)).rowCount!;

  const blobKey = (digest: string): string => `${prefix}/blobs/sha256/${digest.slice(7)}`;
  return { config, env, keys, multipart, uploadRows, s3, Bucket, blobKey, blobRows: async (): Promise<number> => (await adminQuery(`SELECT 1 FROM ${quoteIdent(schema)}.blobs`)).rowCount! };
}

/** Pushes an image tagged v1 (a 300 KiB layer and a config) through `url`. */
async function pushImage(t: TestObject, url: string, repo: string) {
  const layer = randomBytes(300 * 1024);
  const layerDigest = await pushBlob(t, url, repo, layer);
  const cfg = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux' }));
  const cfgDigest = await pushBlob(t, url, repo, cfg);
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: cfgDigest, size: cfg.length },
      layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: layerDigest, size: layer.length }],
    }),
  );
  const put = await raw(url, 'PUT', `/v2/${repo}/manifests/v1`, { headers: { 'content-type': 'application/vnd.oci.image.manifest.v1+json' }, body: manifest });
  t.equal(put.status, 201, put.text);
  return { layerDigest, manifest };
}

/** A fresh node pulls the image pushed by pushImage, bytes verified. */
async function pullVerified(t: TestObject, config: string, env: Record<string, string>, repo: string, manifest: Buffer, layerDigest: string): Promise<void> {
  const again = await serve(t, config, env);
  const pulled = await raw(again.url, 'GET', `/v2/${repo}/manifests/v1`, { headers: { accept: 'application/vnd.oci.image.manifest.v1+json' } });
  t.equal(pulled.status, 200);
  t.equal(sha256(pulled.body), sha256(manifest), 'the manifest is intact');
  const blob = await raw(again.url, 'GET', `/v2/${repo}/blobs/${layerDigest}`);
  t.equal(blob.status, 200);
  t.equal(sha256(blob.body), layerDigest, 'the layer is intact');
}

t.test('SIGKILL mid-push on a bucket: the next gc removes the staged parts, the multipart upload and the session; committed blobs stay', async (t) => {
  const { config, env, keys, multipart, uploadRows } = await cluster(t);
  // Committed before the kill: an image tagged v1.
  const node = await serve(t, config, env);
  const repo = 'team/app';
  const { layerDigest, manifest } = await pushImage(t, node.url, repo);
  const committed = await keys();

  // A chunked push: 17 MiB in the first PATCH (one 16 MiB part in the multipart upload, the rest
  // in a staging object), then a second PATCH cut by the kill.
  const start = await raw(node.url, 'POST', `/v2/${repo}/blobs/uploads/`);
  t.equal(start.status, 202, start.text);
  const location = start.header('location')!;
  const first = randomBytes(17 * 1024 * 1024);
  const patched = await raw(node.url, 'PATCH', location, {
    headers: { 'content-type': 'application/octet-stream', 'content-range': `0-${first.length - 1}` },
    body: first,
  });
  t.equal(patched.status, 202, patched.text);
  t.not(await multipart(), [], 'the session has a multipart upload with a part stored');
  t.ok((await keys()).some((k) => k.startsWith('uploads/')), 'and staged objects under uploads/');
  t.equal(await uploadRows(), 1);

  const { pathname, search } = new URL(location, node.url);
  const second = httpRequest({
    host: '127.0.0.1',
    port: Number(new URL(node.url).port),
    method: 'PATCH',
    path: pathname + search,
    headers: { 'content-type': 'application/octet-stream', 'content-range': `${first.length}-${first.length + 4 * 1024 * 1024 - 1}`, 'content-length': String(4 * 1024 * 1024) },
  });
  second.on('error', () => undefined);
  // Half of the second PATCH handed to the kernel, then the node dies.
  await new Promise<void>((resolve) => second.write(randomBytes(2 * 1024 * 1024), () => resolve()));
  node.child.kill('SIGKILL');
  t.equal((await node.done).signal, 'SIGKILL');
  second.destroy();

  const gc = launch(['gc', '--config', config, '--json'], env);
  const ran = await gc.done;
  t.equal(ran.code, 0, ran.stderr);
  const report = JSON.parse(ran.stdout) as { uploadsDeleted: number; blobsDeleted: number };
  t.equal(report.uploadsDeleted, 1, 'the killed session is removed');
  t.equal(report.blobsDeleted, 0, 'nothing committed is');
  t.same(await multipart(), [], 'no multipart upload left');
  t.same(await keys(), committed, 'no staging or trash object left: only the committed blobs');
  t.equal(await uploadRows(), 0, 'no upload row left');

  const fsck = launch(['fsck', '--config', config, '--json'], env);
  const checked = await fsck.done;
  t.equal(checked.code, 0, `fsck finds nothing wrong: ${checked.stdout}${checked.stderr}`);

  await pullVerified(t, config, env, repo, manifest, layerDigest);
});

t.test('SIGKILL mid-gc on a bucket, with blobs set aside in trash/: the next gc leaves no trash key and no row of them; committed blobs stay', async (t) => {
  const { config, env, keys, multipart, blobRows } = await cluster(t);
  const node = await serve(t, config, env);
  const repo = 'team/app';
  const { layerDigest, manifest } = await pushImage(t, node.url, repo);
  const committed = await keys();
  // Garbage: blobs pushed and never referenced by a manifest, collected at once (grace 0s).
  const garbage = Array.from({ length: 120 }, (_, i) => Buffer.from(`garbage ${i} ${randomBytes(8).toString('hex')}`));
  for (let i = 0; i < garbage.length; i += 20) await Promise.all(garbage.slice(i, i + 20).map((b) => pushBlob(t, node.url, repo, b)));
  node.child.kill('SIGTERM');
  await node.done;

  // The collector sets a whole page of dead blobs aside before it purges them: killed as soon as a
  // trash key shows up, it leaves blobs aside and rows in any state.
  const gc = launch(['gc', '--config', config, '--json'], env);
  let sawTrash = false;
  while (gc.child.exitCode === null) {
    if ((await keys()).some((k) => k.startsWith('trash/'))) {
      sawTrash = true;
      gc.child.kill('SIGKILL');
      break;
    }
  }
  const killed = await gc.done;
  t.ok(sawTrash, 'blobs were set aside');
  t.equal(killed.signal, 'SIGKILL', 'the collector was killed before it finished');

  const next = launch(['gc', '--config', config, '--json'], env);
  const ran = await next.done;
  t.equal(ran.code, 0, ran.stderr);
  t.same(await keys(), committed, 'no trash key and no garbage left: only the committed blobs');
  t.same(await multipart(), []);
  t.equal(await blobRows(), 3, 'no row of a garbage blob left (config, layer, manifest remain)');
  const fsck = await launch(['fsck', '--config', config, '--json'], env).done;
  t.equal(fsck.code, 0, `fsck finds nothing wrong: ${fsck.stdout}${fsck.stderr}`);
  await pullVerified(t, config, env, repo, manifest, layerDigest);
});

t.test('wharf fsck and wharf gc on a bucket: an object deleted behind its back and an orphan object are found; a dry run keeps the orphan, a run removes it', async (t) => {
  const { config, env, keys, s3, Bucket, blobKey } = await cluster(t);
  const node = await serve(t, config, env);
  const repo = 'team/app';
  const { layerDigest } = await pushImage(t, node.url, repo);
  node.child.kill('SIGTERM');
  await node.done;
  const clean = await launch(['fsck', '--config', config, '--json'], env).done;
  t.equal(clean.code, 0, `a store as pushed is consistent: ${clean.stdout}${clean.stderr}`);

  const orphan = Buffer.from('bytes no row records');
  await s3.send(new PutObjectCommand({ Bucket, Key: blobKey(sha256(orphan)), Body: orphan }));
  await s3.send(new DeleteObjectCommand({ Bucket, Key: blobKey(layerDigest) }));
  const broken = await launch(['fsck', '--config', config, '--json'], env).done;
  t.equal(broken.code, 1, broken.stderr);
  const found = JSON.parse(broken.stdout) as { missingFiles: string[]; orphanFiles: string[] };
  t.same(found.missingFiles, [layerDigest], 'the deleted object is missing');
  t.same(found.orphanFiles, [sha256(orphan)], 'the object without a row is an orphan');

  const dry = await launch(['gc', '--config', config, '--dry-run', '--json'], env).done;
  t.equal(dry.code, 0, dry.stderr);
  t.match(JSON.parse(dry.stdout), { dryRun: true, orphanFilesRemoved: 1 });
  t.ok((await keys()).includes(blobKey(sha256(orphan)).slice('wharf/'.length)), 'the dry run removed nothing');
  const run = await launch(['gc', '--config', config, '--json'], env).done;
  t.equal(run.code, 0, run.stderr);
  t.match(JSON.parse(run.stdout), { dryRun: false, orphanFilesRemoved: 1 });
  t.notOk((await keys()).includes(blobKey(sha256(orphan)).slice('wharf/'.length)), 'the run removed the orphan');
  const after = JSON.parse((await launch(['fsck', '--config', config, '--json'], env).done).stdout) as { missingFiles: string[]; orphanFiles: string[] };
  t.same(after.orphanFiles, []);
  t.same(after.missingFiles, [layerDigest], 'a missing object stays reported: the collector does not hide it');
});
