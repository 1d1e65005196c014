// Two nodes on one PostgreSQL schema and one bucket (radosgw from test/helpers/ceph.ts), each with its
// own scratch directory: a chunked upload whose chunks land on alternate nodes continues from the
// parts and tail the other node stored, and the blob pushed through one node is pulled through the
// other. Parts are 64 KiB (radosgw's minimum lowered for the test) so each chunk crosses parts.
import { createHash } from 'node:crypto';
import t from 'tap';
import { CreateBucketCommand, ListMultipartUploadsCommand, ListObjectsV2Command } from '@aws-sdk/client-s3';
import { S3BlobStore } from '../../src/storage/s3-blob-store.js';
import { startCeph } from '../helpers/ceph.js';
import { POSTGRES_URL, tempSchema } from '../helpers/postgres.js';
import { startWharf } from '../helpers/server.js';

const sha256 = (b: Buffer): string => `sha256:${createHash('sha256').update(b).digest('hex')}`;

t.test('a chunked upload across two nodes sharing PostgreSQL and a bucket', async (t) => {
  const rgw = await startCeph(t, { minPartSize: 16 * 1024 });
  const s3 = rgw.client();
  await s3.send(new CreateBucketCommand({ Bucket: 'shared' }));
  const schema = await tempSchema(t);
  const url = `${POSTGRES_URL}?options=${encodeURIComponent(`-c search_path=${schema}`)}`;
  const node = () =>
    startWharf(t, { metadata: { postgres: { url } } }, { blobs: (dir) => S3BlobStore.open({ client: s3, bucket: 'shared', prefix: 'wharf', scratch: dir, partSize: 64 * 1024 }) });
  const a = await node();
  const b = await node();

  const content = Buffer.alloc(450_000);
  for (let i = 0; i < content.length; i++) content[i] = (i * 7919) % 251;
  const digest = sha256(content);
  const cuts = [0, 150_000, 290_000, 400_000, content.length];

  const started = await fetch(`${a.url}/v2/team/app/blobs/uploads/`, { method: 'POST' });
  t.equal(started.status, 202);
  let location = started.headers.get('location')!;
  const servers = [a, b, a];
  for (let i = 0; i < 3; i++) {
    const chunk = content.subarray(cuts[i], cuts[i + 1]);
    const res = await fetch(new URL(location, servers[i]!.url), {
      method: 'PATCH',
      headers: { 'content-type': 'application/octet-stream', 'content-range': `${cuts[i]}-${cuts[i + 1]! - 1}` },
      body: chunk,
    });
    t.equal(res.status, 202, `chunk ${i + 1} on node ${i % 2 === 0 ? 'a' : 'b'}`);
    t.equal(res.headers.get('range'), `0-${cuts[i + 1]! - 1}`);
    location = res.headers.get('location')!;
  }
  const put = new URL(location, b.url);
  put.searchParams.set('digest', digest);
  const done = await fetch(put, { method: 'PUT', headers: { 'content-type': 'application/octet-stream' }, body: content.subarray(cuts[3]) });
  t.equal(done.status, 201, `the last chunk and the commit on node b: ${done.status === 201 ? '' : await done.text()}`);

  for (const [name, server] of [['a', a], ['b', b]] as const) {
    const got = await fetch(`${server.url}/v2/team/app/blobs/${digest}`);
    t.equal(got.status, 200);
    t.equal(sha256(Buffer.from(await got.arrayBuffer())), digest, `node ${name} serves the blob`);
  }
  const keys = ((await s3.send(new ListObjectsV2Command({ Bucket: 'shared', Prefix: 'wharf/' }))).Contents ?? []).map((o) => o.Key);
  t.same(keys, [`wharf/blobs/sha256/${digest.slice(7)}`], 'only the blob is left in the bucket');
  t.same((await s3.send(new ListMultipartUploadsCommand({ Bucket: 'shared', Prefix: 'wharf/' }))).Uploads ?? [], [], 'no multipart upload left');
});
