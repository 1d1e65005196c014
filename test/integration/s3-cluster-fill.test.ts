// Three nodes on one PostgreSQL schema and one bucket (radosgw from test/helpers/ceph.ts), each with
// its own scratch directory, with cluster leases: a cold blob asked from every node at once is
// fetched once in the cluster, streamed to the other nodes' clients from the filling node while its
// multipart upload runs, and lands once under its digest's key.
import { randomBytes } from 'node:crypto';
import t from 'tap';
import { CreateBucketCommand, ListMultipartUploadsCommand, ListObjectsV2Command } from '@aws-sdk/client-s3';
import { S3BlobStore } from '../../src/storage/s3-blob-store.js';
import { startCeph } from '../helpers/ceph.js';
import { contentEntry, startFaultUpstream } from '../helpers/fault-upstream.js';
import { download } from '../helpers/download.js';
import { digestOf, raw } from '../helpers/http.js';
import { POSTGRES_URL, tempSchema } from '../helpers/postgres.js';
import { startWharf, type TestServer } from '../helpers/server.js';

t.test('a cold blob from three nodes on one bucket: one upstream GET, bytes on every node before the commit, one object under its digest', async (t) => {
  const rgw = await startCeph(t, { minPartSize: 1024 * 1024 });
  const s3 = rgw.client();
  await s3.send(new CreateBucketCommand({ Bucket: 'cache' }));
  const blob = contentEntry(randomBytes(6 * 1024 * 1024 + 5));
  const up = await startFaultUpstream(t, { manifests: [], blobs: [blob] });
  const schema = await tempSchema(t);
  const settings = {
    upstreams: [{ name: 'hub', url: up.url, registry: 'hub.test', default: true }],
    metadata: { postgres: { url: `${POSTGRES_URL}?options=${encodeURIComponent(`-c search_path=${schema}`)}` } },
    cluster: { secret: 'the-secret-of-the-s3-test-cluster', heartbeat: '100ms', leaseTimeout: '1s' },
  };
  const nodes: TestServer[] = [];
  for (let i = 0; i < 3; i++) {
    nodes.push(await startWharf(t, settings, { blobs: (dir) => S3BlobStore.open({ client: s3, bucket: 'cache', prefix: 'wharf', scratch: dir }) }));
  }
  let release!: () => void;
  const until = new Promise<void>((resolve) => (release = resolve));
  t.teardown(() => release());
  up.setFault({ kind: 'hold', afterBytes: 3 * 1024 * 1024, until, match: blob.digest });

  const path = `/v2/library/app/blobs/${blob.digest}`;
  const clients = nodes.map((n) => download(`${n.url}${path}`));
  await Promise.all(clients.map((c) => c.first));
  const key = `wharf/blobs/sha256/${blob.digest.slice(7)}`;
  const keys = async () => ((await s3.send(new ListObjectsV2Command({ Bucket: 'cache', Prefix: 'wharf/' }))).Contents ?? []).map((o) => o.Key);
  t.notOk((await keys()).includes(key), 'every client has bytes before the blob is in the bucket');
  t.equal(up.count('GET', `/blobs/${blob.digest}`), 1, 'one upstream GET');

  release();
  for (const [i, r] of (await Promise.all(clients.map((c) => c.done))).entries()) {
    t.ok(r.complete, `node ${i}: the whole body`);
    t.equal(digestOf(r.body), blob.digest, `node ${i}: the blob's bytes`);
  }
  t.equal(up.count('GET', `/blobs/${blob.digest}`), 1, 'still one upstream GET');
  const after = await keys();
  t.ok(after.includes(key), 'the blob is in the bucket under its digest');
  t.same(after.filter((k) => k?.startsWith('wharf/uploads/')), [], 'no writer left');
  t.same((await s3.send(new ListMultipartUploadsCommand({ Bucket: 'cache', Prefix: 'wharf/' }))).Uploads ?? [], [], 'no multipart upload left');
  for (const [i, n] of nodes.entries()) {
    const ranged = await raw(n.url, 'GET', path, { headers: { range: 'bytes=4194300-4194400' } });
    t.equal(ranged.status, 206, `node ${i}: served from the bucket`);
    t.same(ranged.body, blob.body.subarray(4194300, 4194401));
  }
  t.equal(up.count('GET', `/blobs/${blob.digest}`), 1, 'later pulls never reach the upstream');
});
