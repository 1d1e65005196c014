// Blob GETs served from the S3 store when S3 fails in the middle of an object: a TCP proxy between
// Wharf and radosgw (test/helpers/tcp-fault-proxy.ts) resets or closes the connection part way through
// the object's bytes. The client's connection is then cut too, after a prefix of the right bytes: it
// never receives a body as long as announced (a complete-looking one) with wrong or missing bytes. S3
// answering 503 is an error before any byte; once the proxy lets S3 through again the same GETs are
// whole. A client that goes away mid-blob closes Wharf's connection to S3 before S3 has sent the object.
import { createHash, randomBytes } from 'node:crypto';
import { get as httpGet, type IncomingHttpHeaders } from 'node:http';
import t from 'tap';
import { CreateBucketCommand } from '@aws-sdk/client-s3';
import { S3BlobStore } from '../../src/storage/s3-blob-store.js';
import { s3ClientFor } from '../../src/storage/s3-client.js';
import { startCeph } from '../helpers/ceph.js';
import { raw } from '../helpers/http.js';
import { startWharf } from '../helpers/server.js';
import { startTcpFaultProxy } from '../helpers/tcp-fault-proxy.js';

const MiB = 1024 * 1024;
const rgw = await startCeph(t);
await rgw.client().send(new CreateBucketCommand({ Bucket: 'faults' }));
const target = new URL(rgw.endpoint);
const proxy = await startTcpFaultProxy(t, { host: target.hostname, port: Number(target.port) });
const client = s3ClientFor({ ...rgw, endpoint: proxy.url, bucket: 'faults', prefix: 'wharf', forcePathStyle: true, redirect: false, presignExpiry: 60_000 });
t.teardown(() => client.destroy());
const wharf = await startWharf(t, {}, { blobs: (dir) => S3BlobStore.open({ client, bucket: 'faults', prefix: 'wharf', scratch: dir }) });

const blob = randomBytes(16 * MiB);
const digest = `sha256:${createHash('sha256').update(blob).digest('hex')}`;
const pushed = await raw(wharf.url, 'POST', `/v2/faults/blobs/uploads/?digest=${digest}`, { headers: { 'content-type': 'application/octet-stream' }, body: blob });
t.equal(pushed.status, 201, pushed.text);
const path = `/v2/faults/blobs/${digest}`;

interface Got {
  status: number;
  headers: IncomingHttpHeaders;
  body: Buffer;
  /** The response ended as HTTP says (every announced byte), not cut. */
  complete: boolean;
}

/** A GET read to its end or its cut, on a connection of its own. */
function get(headers: Record<string, string> = {}, opts: { leaveAfter?: number } = {}): Promise<Got> {
  return new Promise((resolve, reject) => {
    const req = httpGet(`${wharf.url}${path}`, { headers, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      let n = 0;
      res.on('data', (c: Buffer) => {
        chunks.push(c);
        n += c.length;
        if (opts.leaveAfter !== undefined && n >= opts.leaveAfter) req.destroy();
      });
      res.on('error', () => undefined);
      res.on('close', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks), complete: res.complete }));
    });
    req.on('error', (err) => (opts.leaveAfter !== undefined ? undefined : reject(err)));
  });
}

t.test('S3 resets the connection mid-object: the client is cut after a prefix of the right bytes', async (t) => {
  t.teardown(() => proxy.restore());
  proxy.cutAfter(3 * MiB, 'rst');
  const cuts = proxy.cuts();
  const got = await get();
  t.equal(got.status, 200);
  t.equal(got.headers['content-length'], String(blob.length), 'the whole length was announced');
  t.equal(got.complete, false, 'the response is cut, not ended');
  t.ok(got.body.length < blob.length, `fewer bytes than announced (${got.body.length})`);
  t.ok(got.body.equals(blob.subarray(0, got.body.length)), 'what came is the blob');
  t.equal(proxy.cuts(), cuts + 1, 'the proxy cut the connection to S3');
});

t.test('S3 closes the connection cleanly mid-range: the client is cut too', async (t) => {
  t.teardown(() => proxy.restore());
  proxy.cutAfter(2 * MiB, 'fin');
  const got = await get({ range: `bytes=${MiB}-${12 * MiB - 1}` });
  t.equal(got.status, 206);
  t.equal(got.headers['content-range'], `bytes ${MiB}-${12 * MiB - 1}/${blob.length}`);
  t.equal(got.complete, false, 'the response is cut, not ended');
  t.ok(got.body.length < 11 * MiB, `fewer bytes than announced (${got.body.length})`);
  t.ok(got.body.equals(blob.subarray(MiB, MiB + got.body.length)), 'what came is the range');
});

t.test('S3 answers 503: an error before any byte of the blob', async (t) => {
  t.teardown(() => proxy.restore());
  const xml = '<Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message></Error>';
  proxy.answer(`HTTP/1.1 503 Slow Down\r\nContent-Type: application/xml\r\nContent-Length: ${xml.length}\r\nConnection: close\r\n\r\n${xml}`);
  const got = await get();
  t.equal(got.status, 500);
  t.equal(got.headers['content-type']?.split(';')[0], 'application/json');
  const body = JSON.parse(got.body.toString()) as { errors: Array<{ code: string }> };
  t.ok(body.errors.length > 0, 'an OCI error body');
});

t.test('after the faults, GETs are whole and right, ranges too', async (t) => {
  const whole = await get();
  t.equal(whole.status, 200);
  t.ok(whole.complete && whole.body.equals(blob), 'the whole blob');
  const range = await get({ range: `bytes=${5 * MiB + 7}-${9 * MiB}` });
  t.equal(range.status, 206);
  t.ok(range.complete && range.body.equals(blob.subarray(5 * MiB + 7, 9 * MiB + 1)), 'the range');
  const tail = await get({ range: `bytes=${blob.length - 10}-` });
  t.ok(tail.complete && tail.body.equals(blob.subarray(blob.length - 10)), 'the last bytes');
});

t.test('a client that goes away mid-blob closes the GET to S3', async (t) => {
  // Backpressure holds the rest of the object in S3's socket until the client leaves; then it is closed.
  const got = await get({}, { leaveAfter: 256 * 1024 });
  t.equal(got.complete, false);
  const closed = await proxy.latest();
  t.ok(closed && closed.answered < blob.length, `closed with ${closed?.answered} bytes of the object sent`);
});
