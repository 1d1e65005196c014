// The pull-through cache on the S3 blob store (radosgw from test/helpers/ceph.ts, its real 5 MiB part
// minimum): a herd of clients asks for a cold 20 MiB layer at once; one upstream fetch streams into a
// multipart upload while the clients follow the scratch copy, the blob reaches its digest's key once
// verified, and later pulls are served from the bucket.
import { createHash } from 'node:crypto';
import t from 'tap';
import { CreateBucketCommand, ListMultipartUploadsCommand, ListObjectsV2Command } from '@aws-sdk/client-s3';
import { S3BlobStore } from '../../src/storage/s3-blob-store.js';
import { startCeph } from '../helpers/ceph.js';
import { pushTestImage, startDockerRegistry } from '../helpers/docker-registry.js';
import { startWharf } from '../helpers/server.js';

const sha256 = (b: Buffer): string => `sha256:${createHash('sha256').update(b).digest('hex')}`;

t.test('a herd on a cold layer: one upstream fetch into the bucket, every client the right bytes', async (t) => {
  const rgw = await startCeph(t);
  const s3 = rgw.client();
  await s3.send(new CreateBucketCommand({ Bucket: 'cache' }));
  const upstream = await startDockerRegistry(t);
  const image = await pushTestImage(upstream, 'library/big', 'v1', { layerSize: 20 * 1024 * 1024 });
  const wharf = await startWharf(
    t,
    { upstreams: [{ name: 'hub', url: upstream.url, registry: 'docker.io', default: true }] },
    { blobs: (dir) => S3BlobStore.open({ client: s3, bucket: 'cache', prefix: 'wharf', scratch: dir }) },
  );
  const manifest = await fetch(`${wharf.url}/v2/big/manifests/v1`);
  t.equal(manifest.status, 200);
  await manifest.arrayBuffer();

  const layer = image.blobs.reduce((a, b) => (a.size >= b.size ? a : b));
  const url = `${wharf.url}/v2/big/blobs/${layer.digest}`;
  const bodies = await Promise.all(
    Array.from({ length: 4 }, async () => {
      const res = await fetch(url);
      t.equal(res.status, 200);
      return Buffer.from(await res.arrayBuffer());
    }),
  );
  for (const body of bodies) t.equal(sha256(body), layer.digest, 'a client received the whole layer');
  t.equal(await upstream.countRequests({ method: 'GET', pathIncludes: layer.digest }), 1, 'one upstream fetch for the herd');

  const keys = ((await s3.send(new ListObjectsV2Command({ Bucket: 'cache', Prefix: 'wharf/' }))).Contents ?? []).map((o) => o.Key);
  t.ok(keys.includes(`wharf/blobs/sha256/${layer.digest.slice(7)}`), 'the layer is in the bucket under its digest');
  t.same(keys.filter((k) => k?.startsWith('wharf/uploads/')), [], 'no writer left');
  t.same((await s3.send(new ListMultipartUploadsCommand({ Bucket: 'cache', Prefix: 'wharf/' }))).Uploads ?? [], [], 'no multipart upload left');

  const warm = await fetch(url, { headers: { range: 'bytes=5242000-5243000' } });
  t.equal(warm.status, 206, 'later pulls are served from the bucket');
  t.ok(Buffer.from(await warm.arrayBuffer()).equals(bodies[0]!.subarray(5242000, 5243001)));
  t.equal(await upstream.countRequests({ method: 'GET', pathIncludes: layer.digest }), 1, 'without asking the upstream again');
});
