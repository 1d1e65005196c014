// What the S3 blob store does beyond the BlobStore contract, on a real S3 server (radosgw, with its
// part minimum lowered so that parts are 64 KiB): where the bytes are while written and after the
// commit, blobs larger than one CopyObject takes, abandoned multipart uploads found and aborted, and
// a session cut by a crash resumed on another node.
import { createHash, randomUUID } from 'node:crypto';
import { rmSync } from 'node:fs';
import { Readable } from 'node:stream';
import t from 'tap';
import { CreateBucketCommand, ListMultipartUploadsCommand, ListObjectsV2Command, ListPartsCommand } from '@aws-sdk/client-s3';
import { S3BlobStore, type S3BlobStoreOptions } from '../../src/storage/s3-blob-store.js';
import { openS3BlobStore } from '../../src/storage/s3-client.js';
import { startCeph } from '../helpers/ceph.js';
import { tempDir } from '../helpers/server.js';
import type { TestObject } from '../contract/contract-helpers.js';

const PART = 64 * 1024;
const rgw = await startCeph(t, { minPartSize: 16 * 1024 });
const client = rgw.client();
const Bucket = 'store';
await client.send(new CreateBucketCommand({ Bucket }));

let runs = 0;
/** A store on a fresh prefix; `node()` opens it again as another node (its own scratch directory). */
async function fixture(t: TestObject, opts: Partial<S3BlobStoreOptions> = {}) {
  const prefix = `run-${++runs}`;
  const dirs: string[] = [];
  t.teardown(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));
  const node = async () => {
    const scratch = tempDir('wharf-s3-scratch-');
    dirs.push(scratch);
    return S3BlobStore.open({ client, bucket: Bucket, prefix, scratch, partSize: PART, ...opts });
  };
  return { prefix, store: await node(), node };
}

const sha256 = (b: Buffer): string => `sha256:${createHash('sha256').update(b).digest('hex')}`;
const bytes = (n: number, seed = 'x'): Buffer => {
  const out = Buffer.alloc(n);
  let block = createHash('sha256').update(seed).digest();
  for (let at = 0; at < n; at += block.length) {
    block.copy(out, at);
    block = createHash('sha256').update(block).digest();
  }
  return out;
};
async function keys(prefix: string): Promise<string[]> {
  const out = await client.send(new ListObjectsV2Command({ Bucket, Prefix: `${prefix}/` }));
  return (out.Contents ?? []).map((o) => o.Key!.slice(prefix.length + 1)).sort();
}
async function uploads(prefix: string): Promise<string[]> {
  const out = await client.send(new ListMultipartUploadsCommand({ Bucket, Prefix: `${prefix}/` }));
  return (out.Uploads ?? []).map((u) => u.Key!.slice(prefix.length + 1)).sort();
}
async function readAll(stream: Readable): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const c of stream) parts.push(c as Buffer);
  return Buffer.concat(parts);
}

t.test('a writer streams whole parts into a multipart upload at its staging key; the commit leaves only the digest key', async (t) => {
  const { prefix, store } = await fixture(t);
  const content = bytes(5 * PART + 1234);
  const digest = sha256(content);
  const w = await store.writer();
  await w.write([content.subarray(0, 3 * PART + 10)]);
  await w.append(Readable.from([content.subarray(3 * PART + 10)]));
  t.same(await uploads(prefix), [`uploads/${w.id}/data`], 'one multipart upload, at the staging key');
  t.same(await keys(prefix), [], 'nothing under a digest while written');
  t.equal((await w.commit(digest, { knownDigest: digest })).size, content.length);
  t.same(await uploads(prefix), [], 'the upload completed');
  t.same(await keys(prefix), [`blobs/sha256/${digest.slice(7)}`, `uploads/${w.id}/data`], 'the blob, and the staging object until cancel');
  await w.cancel();
  t.same(await keys(prefix), [`blobs/sha256/${digest.slice(7)}`], 'only the blob after cancel');
  t.ok((await readAll(await store.open(digest))).equals(content));
  t.ok((await readAll(await store.open(digest, { start: PART - 1, end: 2 * PART }))).equals(content.subarray(PART - 1, 2 * PART + 1)), 'a range across parts');
});

t.test('a blob that never fills a part is put under its digest once verified, without a multipart upload', async (t) => {
  const { prefix, store } = await fixture(t);
  const content = bytes(PART - 1);
  const w = await store.writer();
  await w.write([content]);
  t.same(await uploads(prefix), []);
  await t.rejects(w.commit(sha256(Buffer.from('other'))), { name: 'DigestMismatchError' });
  t.same(await keys(prefix), [], 'a wrong digest leaves nothing');
  await w.commit(sha256(content));
  await w.cancel();
  t.same(await keys(prefix), [`blobs/sha256/${sha256(content).slice(7)}`]);
});

t.test('blobs larger than one CopyObject takes are copied in parts: commit, set aside, restore', async (t) => {
  const { store } = await fixture(t, { maxCopySize: 2 * PART });
  const content = bytes(5 * PART + 7, 'large');
  const digest = sha256(content);
  const w = await store.writer();
  await w.write([content]);
  await w.commit(digest);
  await w.cancel();
  t.ok((await readAll(await store.open(digest))).equals(content), 'committed through a copy in parts');
  const handle = await store.setAside(digest);
  t.equal(await store.stat(digest), undefined);
  await store.restore(handle!);
  t.ok((await readAll(await store.open(digest))).equals(content), 'restored through a copy in parts');
});

t.test('stale writers include multipart uploads another node abandoned; removing one aborts its upload', async (t) => {
  const { prefix, store, node } = await fixture(t);
  const crashed = await node();
  const w = await crashed.writer();
  // Five parts: the fifth waits for one of the first four to be stored, so the upload exists by now.
  await w.write([bytes(5 * PART, 'abandoned')]);
  // The other node stops here (a crash): its upload stays, its scratch directory is not ours.
  t.equal((await uploads(prefix)).length, 1);
  t.same([...(await all(store.staleWriters(Date.now() - 60_000)))], [], 'not stale while recent');
  const stale = await all(store.staleWriters(Date.now() + 60_000));
  t.same(stale, [{ id: w.id, session: false }]);
  await store.removeWriter(w.id);
  t.same(await uploads(prefix), [], 'the upload is aborted');
  t.same(await all(store.staleWriters(Date.now() + 60_000)), []);
});

t.test('a session continued on other nodes: parts past the tail left by a failed append are overwritten, the commit verifies', async (t) => {
  const { store, node } = await fixture(t);
  const content = bytes(7 * PART + 99, 'session');
  const digest = sha256(content);
  const session = randomUUID();
  const a = await store.writer(session);
  await a.append(Readable.from([content.subarray(0, 2 * PART + 5)]));
  // An append that uploads more parts (its first MiB goes out before the source fails), then
  // fails: its bytes and parts do not count.
  const failing = Readable.from(
    (async function* () {
      yield bytes(20 * PART, 'wrong bytes');
      throw new Error('the client went away');
    })(),
  );
  await t.rejects(a.append(failing), /went away/);
  t.equal(a.size, 2 * PART + 5);
  t.ok((await partCount()) > 2, 'the failed append had stored parts');
  const b = await (await node()).resume(session);
  t.equal(b?.size, 2 * PART + 5, 'another node resumes at the size before the failed append');
  await b!.append(Readable.from([content.subarray(2 * PART + 5, 5 * PART)]));
  const c = await (await node()).resume(session);
  t.equal(c?.size, 5 * PART);
  t.ok((await readAll(c!.read(PART + 3))).equals(content.subarray(0, PART + 3)), 'a third node reads the stored bytes');
  await c!.append(Readable.from([content.subarray(5 * PART)]));
  t.equal((await c!.commit(digest)).size, content.length, 'hashed from the stored bytes, not a known digest');
  await c!.cancel();
  t.ok((await readAll(await store.open(digest))).equals(content), 'the bytes, in order, without the failed append');
  t.equal(await store.resume(session), undefined);
});

t.test('a crash after a chunk is stored but before its offset is recorded: another node cuts back into the stored parts and the upload continues', async (t) => {
  // [recorded offset, bytes the crashed chunk stored]: cut back inside a later part, and before the first part ends.
  for (const [recorded, crashed] of [[2 * PART + 5, 4 * PART + 12], [100, 3 * PART]] as const) {
    const { store, node } = await fixture(t);
    const content = bytes(recorded + crashed + 3 * PART + 7, `crash-${recorded}`);
    const digest = sha256(content);
    const session = randomUUID();
    const a = await store.writer(session);
    await a.append(Readable.from([content.subarray(0, recorded)]));
    // The chunk is stored (parts and tail advance), then the node dies before recording its offset.
    await a.append(Readable.from([content.subarray(recorded, recorded + crashed)]));
    const b = await (await node()).resume(session);
    t.equal(b?.size, recorded + crashed, 'the bucket holds the unrecorded chunk');
    await b!.truncate(recorded);
    t.equal(b!.size, recorded, 'cut back to the recorded offset');
    await b!.append(Readable.from([content.subarray(recorded, recorded + PART + 3)]));
    const c = await (await node()).resume(session);
    t.equal(c?.size, recorded + PART + 3, 'a third node resumes where the second left off');
    await c!.append(Readable.from([content.subarray(recorded + PART + 3)]));
    t.equal((await c!.commit(digest)).size, content.length, 'hashed from the stored bytes');
    await c!.cancel();
    t.ok((await readAll(await store.open(digest))).equals(content), 'the bytes, in order');
  }
});

async function partCount(): Promise<number> {
  const [u] = (await client.send(new ListMultipartUploadsCommand({ Bucket, Prefix: `run-${runs}/` }))).Uploads ?? [];
  return ((await client.send(new ListPartsCommand({ Bucket, Key: u!.Key, UploadId: u!.UploadId }))).Parts ?? []).length;
}

async function all<T>(items: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const item of items) out.push(item);
  return out;
}

t.test('storage.s3.presignExpiry: presigned blob URLs are signed for that long, and a client fetches the blob from one', async (t) => {
  const prefix = `presign-${++runs}`;
  const scratch = tempDir('wharf-s3-scratch-');
  t.teardown(() => rmSync(scratch, { recursive: true, force: true }));
  const s3 = { endpoint: rgw.endpoint, region: rgw.region, bucket: Bucket, prefix, forcePathStyle: true, accessKeyId: rgw.accessKeyId, secretAccessKey: rgw.secretAccessKey };
  const content = bytes(1000, 'presign');
  const w = await (await openS3BlobStore({ ...s3, redirect: true, presignExpiry: 90_000 }, scratch)).writer();
  await w.write([content]);
  await w.commit(sha256(content));
  await w.cancel();
  for (const [expiry, seconds] of [[90_000, '90'], [7 * 86_400_000, '604800']] as const) {
    const store = await openS3BlobStore({ ...s3, redirect: true, presignExpiry: expiry }, scratch);
    const url = new URL((await store.url(sha256(content)))!);
    t.equal(url.searchParams.get('X-Amz-Expires'), seconds, `signed for ${seconds} s`);
    const res = await fetch(url);
    t.equal(res.status, 200, 'radosgw accepts the signature');
    t.ok(Buffer.from(await res.arrayBuffer()).equals(content));
  }
  const plain = await openS3BlobStore({ ...s3, redirect: false, presignExpiry: 90_000 }, scratch);
  t.equal(await plain.url(sha256(content)), undefined, 'no URL without redirect');
});
