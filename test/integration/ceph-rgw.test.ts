// The test cluster of test/helpers/ceph.ts answers S3 as the S3 blob store uses it: a bucket made,
// an object put as a stream of known length, read back whole and by range, listed, and a multipart
// upload with radosgw's part minimum lowered for the test.
import { Readable } from 'node:stream';
import t from 'tap';
import {
  CompleteMultipartUploadCommand,
  CreateBucketCommand,
  CreateMultipartUploadCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  UploadPartCommand,
} from '@aws-sdk/client-s3';
import { startCeph } from '../helpers/ceph.js';

const rgw = await startCeph(t, { minPartSize: 64 * 1024 });
t.comment(`ceph with radosgw answered S3 after ${rgw.startMs} ms`);

t.test('a bucket, an object streamed in and read back whole and by range', async (t) => {
  const s3 = rgw.client();
  await s3.send(new CreateBucketCommand({ Bucket: 'proof' }));
  const body = Buffer.alloc(300_000, 'wharf');
  await s3.send(new PutObjectCommand({ Bucket: 'proof', Key: 'a/b', Body: Readable.from([body.subarray(0, 100_000), body.subarray(100_000)]), ContentLength: body.length }));
  const whole = await s3.send(new GetObjectCommand({ Bucket: 'proof', Key: 'a/b' }));
  t.ok(Buffer.from(await whole.Body!.transformToByteArray()).equals(body), 'the same bytes back');
  const part = await s3.send(new GetObjectCommand({ Bucket: 'proof', Key: 'a/b', Range: 'bytes=10-19' }));
  t.equal(part.ContentRange, `bytes 10-19/${body.length}`);
  t.ok(Buffer.from(await part.Body!.transformToByteArray()).equals(body.subarray(10, 20)), 'a range');
  const listed = await s3.send(new ListObjectsV2Command({ Bucket: 'proof', Prefix: 'a/' }));
  t.same(listed.Contents?.map((o) => [o.Key, o.Size]), [['a/b', body.length]]);
});

t.test('a multipart upload with parts above the lowered minimum', async (t) => {
  const s3 = rgw.client();
  await s3.send(new CreateBucketCommand({ Bucket: 'parts' }));
  const { UploadId } = await s3.send(new CreateMultipartUploadCommand({ Bucket: 'parts', Key: 'm' }));
  const parts = [Buffer.alloc(64 * 1024, 1), Buffer.alloc(1000, 2)];
  const etags: string[] = [];
  for (const [i, p] of parts.entries()) {
    etags.push((await s3.send(new UploadPartCommand({ Bucket: 'parts', Key: 'm', UploadId, PartNumber: i + 1, Body: p }))).ETag!);
  }
  await s3.send(new CompleteMultipartUploadCommand({ Bucket: 'parts', Key: 'm', UploadId, MultipartUpload: { Parts: etags.map((ETag, i) => ({ ETag, PartNumber: i + 1 })) } }));
  const head = await s3.send(new HeadObjectCommand({ Bucket: 'parts', Key: 'm' }));
  t.equal(head.ContentLength, 64 * 1024 + 1000);
  t.match(head.ETag, /-2"$/, 'a multipart ETag of two parts');
});
