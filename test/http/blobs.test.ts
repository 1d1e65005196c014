// GET/HEAD/DELETE /v2/<name>/blobs/<digest>: digests of both algorithms, single-range requests,
// deletion, and visibility limited to the repositories a blob is linked in.
import t from 'tap';
import { existsSync } from 'node:fs';
import { startWharf } from '../helpers/server.js';
import { assertError, assertHeadError, blobFile, digestOf, inject, pushBlob, raw } from '../helpers/http.js';

const TEN = Buffer.from('0123456789');

for (const algorithm of ['sha256', 'sha512'] as const) {
  t.test(`GET a ${algorithm} blob returns its bytes with Docker-Content-Digest and Content-Length`, async (t) => {
    const { app } = await startWharf(t);
    const bytes = Buffer.from(`some ${algorithm} blob content\n`);
    const digest = await pushBlob(app, 'lib/app', bytes, algorithm);
    t.equal(digest, digestOf(bytes, algorithm));
    const res = await inject(app, 'GET', `/v2/lib/app/blobs/${digest}`);
    t.equal(res.status, 200);
    t.same(res.body, bytes);
    t.equal(res.header('docker-content-digest'), digest);
    t.equal(res.header('content-length'), String(bytes.length));
  });

  t.test(`HEAD a ${algorithm} blob answers 200 with Docker-Content-Digest and Content-Length, no body`, async (t) => {
    const { app } = await startWharf(t);
    const bytes = Buffer.from(`head ${algorithm} content`);
    const digest = await pushBlob(app, 'lib/app', bytes, algorithm);
    const res = await inject(app, 'HEAD', `/v2/lib/app/blobs/${digest}`);
    t.equal(res.status, 200);
    t.equal(res.header('docker-content-digest'), digest);
    t.equal(res.header('content-length'), String(bytes.length));
    t.equal(res.body.length, 0);
  });
}

t.test('a sha512 blob is stored under blobs/sha512 and not under its sha256', async (t) => {
  const { app, dataDir } = await startWharf(t);
  const digest = await pushBlob(app, 'repo', TEN, 'sha512');
  t.ok(existsSync(blobFile(dataDir, digest)), 'file under blobs/sha512');
  const res = await inject(app, 'GET', `/v2/repo/blobs/${digestOf(TEN, 'sha256')}`);
  assertError(t, res, 404, 'BLOB_UNKNOWN', 'the sha256 of the same bytes was never pushed');
});

t.test('GET and HEAD of an unknown blob answer 404 BLOB_UNKNOWN', async (t) => {
  const { app } = await startWharf(t);
  await pushBlob(app, 'repo', 'something else');
  const digest = digestOf('never pushed');
  assertError(t, await inject(app, 'GET', `/v2/repo/blobs/${digest}`), 404, 'BLOB_UNKNOWN');
  assertHeadError(t, await inject(app, 'HEAD', `/v2/repo/blobs/${digest}`), 404);
});

t.test('a blob stored for one repository is 404 BLOB_UNKNOWN in another', async (t) => {
  const { app } = await startWharf(t);
  const digest = await pushBlob(app, 'team/one', TEN);
  await pushBlob(app, 'team/two', 'team two has its own blob');
  assertError(t, await inject(app, 'GET', `/v2/team/two/blobs/${digest}`), 404, 'BLOB_UNKNOWN', 'existing repo');
  assertHeadError(t, await inject(app, 'HEAD', `/v2/team/two/blobs/${digest}`), 404, 'HEAD in existing repo');
  assertError(t, await inject(app, 'GET', `/v2/team/three/blobs/${digest}`), 404, 'BLOB_UNKNOWN', 'unknown repo');
  assertError(t, await inject(app, 'GET', `/v2/team/blobs/${digest}`), 404, 'BLOB_UNKNOWN', 'parent path of the repo');
  t.equal((await inject(app, 'GET', `/v2/team/one/blobs/${digest}`)).status, 200, 'still served where it is linked');
});

t.test('Range requests on blobs', async (t) => {
  const { app, url: base } = await startWharf(t);
  const digest = await pushBlob(app, 'ranges', TEN);
  const url = `/v2/ranges/blobs/${digest}`;

  const partial = async (range: string, start: number, end: number) => {
    const res = await inject(app, 'GET', url, { headers: { range } });
    t.equal(res.status, 206, `${range}: 206`);
    t.equal(res.header('content-range'), `bytes ${start}-${end}/10`, `${range}: Content-Range`);
    t.equal(res.header('content-length'), String(end - start + 1), `${range}: Content-Length`);
    t.equal(res.text, TEN.subarray(start, end + 1).toString(), `${range}: the bytes of the range`);
    t.equal(res.header('docker-content-digest'), digest, `${range}: Docker-Content-Digest of the whole blob`);
  };

  t.test('bytes=0-0 is the first byte', () => partial('bytes=0-0', 0, 0));
  t.test('bytes=3-6 is a middle slice', () => partial('bytes=3-6', 3, 6));
  t.test('bytes=9-9 is the last byte', () => partial('bytes=9-9', 9, 9));
  t.test('suffix bytes=-3 is the last three bytes', () => partial('bytes=-3', 7, 9));
  t.test('suffix longer than the blob is the whole blob as a 206', () => partial('bytes=-50', 0, 9));
  t.test('open bytes=2- runs to the end', () => partial('bytes=2-', 2, 9));
  t.test('an end beyond the size is clamped to the last byte', () => partial('bytes=5-100', 5, 9));

  t.test('start == size answers 416 with Content-Range: bytes */size', async (t) => {
    const res = await inject(app, 'GET', url, { headers: { range: 'bytes=10-' } });
    t.equal(res.status, 416);
    t.equal(res.header('content-range'), 'bytes */10');
  });

  t.test('start beyond size answers 416 with Content-Range: bytes */size', async (t) => {
    const res = await inject(app, 'GET', url, { headers: { range: 'bytes=11-20' } });
    t.equal(res.status, 416);
    t.equal(res.header('content-range'), 'bytes */10');
  });

  t.test('a range whose last position is before its first answers 416 with Content-Range: bytes */size', async (t) => {
    for (const range of ['bytes=5-2', 'bytes=500-0', 'bytes=9-8']) {
      const res = await inject(app, 'GET', url, { headers: { range } });
      assertError(t, res, 416, 'RANGE_INVALID', range);
      t.equal(res.header('content-range'), 'bytes */10', `${range}: Content-Range`);
    }
    const head = await inject(app, 'HEAD', url, { headers: { range: 'bytes=500-0' } });
    t.equal(head.status, 416, 'HEAD too');
  });

  for (const range of ['bytes=abc', 'items=0-1', 'bytes=0-1,3-4', 'bytes=', 'garbage', 'bytes=--1']) {
    t.test(`malformed or multi-range "${range}" is ignored: 200 with the whole blob`, async (t) => {
      const res = await inject(app, 'GET', url, { headers: { range } });
      t.equal(res.status, 200);
      t.same(res.body, TEN);
      t.equal(res.header('content-length'), '10');
      t.equal(res.header('content-range'), undefined);
    });
  }

  t.test('a range over a real socket streams only the range', async (t) => {
    const big = Buffer.alloc(256 * 1024);
    for (let i = 0; i < big.length; i++) big[i] = (i * 7) & 0xff;
    const bigDigest = await pushBlob(app, 'ranges', big);
    const res = await raw(base, 'GET', `/v2/ranges/blobs/${bigDigest}`, { headers: { range: 'bytes=1000-1999' } });
    t.equal(res.status, 206);
    t.equal(res.header('content-range'), `bytes 1000-1999/${big.length}`);
    t.same(res.body, big.subarray(1000, 2000));
  });
});

t.test('DELETE of a blob answers 202, then the blob is 404 BLOB_UNKNOWN', async (t) => {
  const { app } = await startWharf(t);
  const digest = await pushBlob(app, 'repo', TEN);
  const del = await inject(app, 'DELETE', `/v2/repo/blobs/${digest}`);
  t.equal(del.status, 202);
  assertError(t, await inject(app, 'GET', `/v2/repo/blobs/${digest}`), 404, 'BLOB_UNKNOWN', 'GET after delete');
  assertHeadError(t, await inject(app, 'HEAD', `/v2/repo/blobs/${digest}`), 404, 'HEAD after delete');
  assertError(t, await inject(app, 'DELETE', `/v2/repo/blobs/${digest}`), 404, 'BLOB_UNKNOWN', 'second delete');
});

t.test('DELETE of a blob in one repository leaves it in another', async (t) => {
  const { app } = await startWharf(t);
  const digest = await pushBlob(app, 'one', TEN);
  await pushBlob(app, 'two', TEN);
  t.equal((await inject(app, 'DELETE', `/v2/one/blobs/${digest}`)).status, 202);
  assertError(t, await inject(app, 'GET', `/v2/one/blobs/${digest}`), 404, 'BLOB_UNKNOWN');
  const res = await inject(app, 'GET', `/v2/two/blobs/${digest}`);
  t.equal(res.status, 200);
  t.same(res.body, TEN);
});

t.test('DELETE of a blob never pushed answers 404 BLOB_UNKNOWN', async (t) => {
  const { app } = await startWharf(t);
  assertError(t, await inject(app, 'DELETE', `/v2/repo/blobs/${digestOf('nope')}`), 404, 'BLOB_UNKNOWN');
});

t.test('the empty blob (0 bytes) is served with Content-Length 0', async (t) => {
  const { app } = await startWharf(t);
  const digest = await pushBlob(app, 'repo', Buffer.alloc(0));
  t.equal(digest, 'sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855');
  const res = await inject(app, 'GET', `/v2/repo/blobs/${digest}`);
  t.equal(res.status, 200);
  t.equal(res.header('content-length'), '0');
  t.equal(res.body.length, 0);
});
