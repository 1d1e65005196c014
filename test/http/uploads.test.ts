// Blob uploads: monolithic POST, chunked sessions (POST, PATCH, GET, PUT, DELETE), cross-repository
// mounts, digest and size mismatches (nothing may be left behind), foreign and malformed session ids,
// and concurrent uploads over real sockets.
import t, { type Test } from 'tap';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { startWharf } from '../helpers/server.js';
import {
  assertError,
  blobFile,
  describe,
  digestOf,
  filesUnder,
  inject,
  pushBlob,
  raw,
  sessionOf,
  withQuery,
  type Res,
} from '../helpers/http.js';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

async function startSession(app: FastifyInstance, repo: string): Promise<{ path: string; uuid: string; res: Res }> {
  const res = await inject(app, 'POST', `/v2/${repo}/blobs/uploads/`);
  if (res.status !== 202) throw new Error(`POST uploads: ${res.status} ${res.text}`);
  return { ...sessionOf(res), res };
}

async function patch(app: FastifyInstance, path: string, chunk: Buffer | string, contentRange?: string): Promise<Res> {
  const headers: Record<string, string> = { 'content-type': 'application/octet-stream' };
  if (contentRange !== undefined) headers['content-range'] = contentRange;
  return inject(app, 'PATCH', path, { headers, body: chunk });
}

const nothingLeft = (t: Test, dataDir: string) => {
  t.same(filesUnder(join(dataDir, 'uploads')), [], 'no file left under uploads/');
  t.same(filesUnder(join(dataDir, 'blobs')), [], 'no file under blobs/');
};

// --- monolithic --------------------------------------------------------------------------------

t.test('monolithic POST ?digest= answers 201 with Location and Docker-Content-Digest; the blob is served', async (t) => {
  const { app } = await startWharf(t);
  const bytes = Buffer.from('monolithic upload body');
  const digest = digestOf(bytes);
  const res = await inject(app, 'POST', `/v2/org/app/blobs/uploads/?digest=${digest}`, {
    headers: { 'content-type': 'application/octet-stream' },
    body: bytes,
  });
  t.equal(res.status, 201);
  t.equal(res.header('location'), `/v2/org/app/blobs/${digest}`);
  t.equal(res.header('docker-content-digest'), digest);
  const get = await inject(app, 'GET', `/v2/org/app/blobs/${digest}`);
  t.equal(get.status, 200);
  t.same(get.body, bytes);
});

t.test('monolithic POST with a sha512 digest stores and serves the blob by that digest', async (t) => {
  const { app } = await startWharf(t);
  const bytes = Buffer.from('sha512 monolithic');
  const digest = digestOf(bytes, 'sha512');
  const res = await inject(app, 'POST', `/v2/repo/blobs/uploads/?digest=${digest}`, { body: bytes });
  t.equal(res.status, 201);
  t.equal(res.header('docker-content-digest'), digest);
  const get = await inject(app, 'GET', `/v2/repo/blobs/${digest}`);
  t.equal(get.status, 200);
  t.same(get.body, bytes);
});

for (const algorithm of ['sha256', 'sha512'] as const) {
  t.test(`monolithic POST with a ${algorithm} digest that does not match: 400 DIGEST_INVALID, nothing left`, async (t) => {
    const { app, dataDir } = await startWharf(t);
    const bytes = Buffer.from('the bytes actually sent');
    const wrong = digestOf('some other bytes', algorithm);
    const res = await inject(app, 'POST', `/v2/repo/blobs/uploads/?digest=${wrong}`, { body: bytes });
    assertError(t, res, 400, 'DIGEST_INVALID');
    assertError(t, await inject(app, 'GET', `/v2/repo/blobs/${wrong}`), 404, 'BLOB_UNKNOWN', 'declared digest');
    assertError(t, await inject(app, 'GET', `/v2/repo/blobs/${digestOf(bytes, algorithm)}`), 404, 'BLOB_UNKNOWN', 'actual digest');
    t.notOk(existsSync(blobFile(dataDir, wrong)), 'no blob file for the wrong digest');
    nothingLeft(t, dataDir);
  });
}

t.test('monolithic POST whose body is shorter than Content-Length: 400 SIZE_INVALID, nothing left', async (t) => {
  const { app, dataDir } = await startWharf(t);
  const bytes = Buffer.from('0123456789');
  const res = await inject(app, 'POST', `/v2/repo/blobs/uploads/?digest=${digestOf(bytes)}`, {
    headers: { 'content-length': '100' },
    body: bytes,
  });
  assertError(t, res, 400, 'SIZE_INVALID');
  assertError(t, await inject(app, 'GET', `/v2/repo/blobs/${digestOf(bytes)}`), 404, 'BLOB_UNKNOWN');
  nothingLeft(t, dataDir);
});

t.test('monolithic POST whose body is longer than Content-Length: 400 SIZE_INVALID, nothing left', async (t) => {
  const { app, dataDir } = await startWharf(t);
  const bytes = Buffer.from('0123456789');
  const res = await inject(app, 'POST', `/v2/repo/blobs/uploads/?digest=${digestOf(bytes)}`, {
    headers: { 'content-length': '5' },
    body: bytes,
  });
  assertError(t, res, 400, 'SIZE_INVALID');
  assertError(t, await inject(app, 'GET', `/v2/repo/blobs/${digestOf(bytes)}`), 404, 'BLOB_UNKNOWN');
  assertError(t, await inject(app, 'GET', `/v2/repo/blobs/${digestOf(bytes.subarray(0, 5))}`), 404, 'BLOB_UNKNOWN');
  nothingLeft(t, dataDir);
});

t.test('monolithic POST with a malformed digest answers 400 DIGEST_INVALID', async (t) => {
  const { app, dataDir } = await startWharf(t);
  for (const digest of ['sha256:abc', 'md5:d41d8cd98f00b204e9800998ecf8427e', 'nonsense', `sha256:${'A'.repeat(64)}`]) {
    const res = await inject(app, 'POST', `/v2/repo/blobs/uploads/?digest=${encodeURIComponent(digest)}`, { body: 'x' });
    assertError(t, res, 400, 'DIGEST_INVALID', digest);
  }
  nothingLeft(t, dataDir);
});

// --- sessions ----------------------------------------------------------------------------------

t.test('POST without a digest opens a session: 202, Location, Range 0-0, Docker-Upload-UUID, OCI-Chunk-Min-Length', async (t) => {
  const { app } = await startWharf(t, { uploads: { chunkMinLength: 1024 } });
  const res = await inject(app, 'POST', '/v2/org/app/blobs/uploads/');
  t.equal(res.status, 202);
  const { path, uuid } = sessionOf(res);
  t.match(uuid, UUID, 'the session id is a UUID');
  t.equal(path, `/v2/org/app/blobs/uploads/${uuid}`);
  t.equal(res.header('docker-upload-uuid'), uuid);
  t.equal(res.header('range'), '0-0');
  t.equal(res.header('oci-chunk-min-length'), '1024');
});

t.test('POST /blobs/uploads without the trailing slash also opens a session', async (t) => {
  const { app } = await startWharf(t);
  const res = await inject(app, 'POST', '/v2/repo/blobs/uploads');
  t.equal(res.status, 202);
  t.match(sessionOf(res).uuid, UUID);
});

t.test('two POSTs open two different sessions', async (t) => {
  const { app } = await startWharf(t);
  const a = await startSession(app, 'repo');
  const b = await startSession(app, 'repo');
  t.not(a.uuid, b.uuid);
});

t.test('chunked upload: PATCH without Content-Range, PATCH with Content-Range, GET status, PUT ?digest=', async (t) => {
  const { app } = await startWharf(t);
  const { path, uuid } = await startSession(app, 'org/app');

  const p1 = await patch(app, path, 'hello ');
  t.equal(p1.status, 202, 'streamed PATCH: 202');
  t.equal(p1.header('range'), '0-5', 'streamed PATCH: Range covers the 6 bytes');
  t.equal(sessionOf(p1).uuid, uuid, 'streamed PATCH: Location names the same session');
  t.equal(p1.header('docker-upload-uuid'), uuid);

  const p2 = await patch(app, sessionOf(p1).path, 'world', '6-10');
  t.equal(p2.status, 202, 'ranged PATCH: 202');
  t.equal(p2.header('range'), '0-10', 'ranged PATCH: Range covers 11 bytes');

  const status = await inject(app, 'GET', sessionOf(p2).path);
  t.equal(status.status, 204, 'status: 204');
  t.equal(status.header('range'), '0-10', 'status: Range');
  t.equal(status.header('docker-upload-uuid'), uuid, 'status: Docker-Upload-UUID');
  t.equal(sessionOf(status).uuid, uuid, 'status: Location');
  t.equal(status.body.length, 0, 'status: no body');

  const digest = digestOf('hello world');
  const put = await inject(app, 'PUT', withQuery(sessionOf(p2).path, `digest=${digest}`));
  t.equal(put.status, 201, 'PUT: 201');
  t.equal(put.header('location'), `/v2/org/app/blobs/${digest}`);
  t.equal(put.header('docker-content-digest'), digest);

  const get = await inject(app, 'GET', `/v2/org/app/blobs/${digest}`);
  t.equal(get.status, 200);
  t.equal(get.text, 'hello world');
  assertError(t, await inject(app, 'GET', path), 404, 'BLOB_UPLOAD_UNKNOWN', 'the session is over after PUT');
});

t.test('Content-Range in the "bytes=" and "<start>-<end>/<total>" forms is accepted', async (t) => {
  const { app } = await startWharf(t);
  const { path } = await startSession(app, 'repo');
  t.equal((await patch(app, path, 'abc', '0-2')).status, 202);
  const r = await patch(app, path, 'def', '3-5/*');
  t.equal(r.status, 202);
  t.equal(r.header('range'), '0-5');
});

t.test('PUT ?digest= with the last chunk in its body completes the upload', async (t) => {
  const { app } = await startWharf(t);
  const { path } = await startSession(app, 'repo');
  t.equal((await patch(app, path, 'first part, ')).status, 202);
  const digest = digestOf('first part, last part');
  const put = await inject(app, 'PUT', withQuery(path, `digest=${digest}`), {
    headers: { 'content-type': 'application/octet-stream' },
    body: 'last part',
  });
  t.equal(put.status, 201);
  t.equal(put.header('docker-content-digest'), digest);
  const get = await inject(app, 'GET', `/v2/repo/blobs/${digest}`);
  t.equal(get.text, 'first part, last part');
});

t.test('POST then PUT ?digest= with the whole body (no PATCH) completes the upload', async (t) => {
  const { app } = await startWharf(t);
  const { path } = await startSession(app, 'repo');
  const digest = digestOf('all at once');
  const put = await inject(app, 'PUT', withQuery(path, `digest=${digest}`), { body: 'all at once' });
  t.equal(put.status, 201);
  t.equal((await inject(app, 'GET', `/v2/repo/blobs/${digest}`)).text, 'all at once');
});

t.test('PUT ?digest= with a sha512 digest completes a chunked upload', async (t) => {
  const { app } = await startWharf(t);
  const { path } = await startSession(app, 'repo');
  await patch(app, path, 'sha512 ');
  await patch(app, path, 'chunks');
  const digest = digestOf('sha512 chunks', 'sha512');
  const put = await inject(app, 'PUT', withQuery(path, `digest=${digest}`));
  t.equal(put.status, 201);
  t.equal(put.header('docker-content-digest'), digest);
  t.equal((await inject(app, 'GET', `/v2/repo/blobs/${digest}`)).text, 'sha512 chunks');
});

t.test('an out-of-order PATCH answers 416 with the current Range and changes nothing', async (t) => {
  const { app } = await startWharf(t);
  const { path } = await startSession(app, 'repo');
  await patch(app, path, '0123456789', '0-9');

  const ahead = await patch(app, path, 'zzzzz', '20-24');
  assertError(t, ahead, 416, undefined, 'a gap');
  t.equal(ahead.header('range'), '0-9', 'a gap: Range is the current offset');

  const behind = await patch(app, path, 'zzzzz', '5-9');
  assertError(t, behind, 416, undefined, 'an overlap');
  t.equal(behind.header('range'), '0-9', 'an overlap: Range is the current offset');

  const status = await inject(app, 'GET', path);
  t.equal(status.header('range'), '0-9', 'the offset did not move');

  t.equal((await patch(app, path, 'abc', '10-12')).status, 202, 'the right chunk is still accepted');
  const digest = digestOf('0123456789abc');
  t.equal((await inject(app, 'PUT', withQuery(path, `digest=${digest}`))).status, 201, 'and the blob is exactly the in-order bytes');
});

t.test('a PUT whose last chunk does not start at the current offset answers 416 with the current Range and the session stays', async (t) => {
  const { app, dataDir } = await startWharf(t);
  const { path } = await startSession(app, 'repo');
  await patch(app, path, '0123456789', '0-9');
  const digest = digestOf('0123456789abc');
  const put = (chunk: string, contentRange: string) =>
    inject(app, 'PUT', withQuery(path, `digest=${digest}`), {
      headers: { 'content-type': 'application/octet-stream', 'content-range': contentRange },
      body: chunk,
    });

  for (const [chunk, range, what] of [
    ['zzz', '20-22', 'a gap'],
    ['zzz', '5-7', 'an overlap'],
  ] as const) {
    const res = await put(chunk, range);
    assertError(t, res, 416, 'BLOB_UPLOAD_INVALID', what);
    t.equal(res.header('range'), '0-9', `${what}: Range is the current offset`);
  }
  t.equal((await inject(app, 'GET', path)).header('range'), '0-9', 'the session is still open at its offset');
  t.notOk(existsSync(blobFile(dataDir, digest)), 'nothing was committed');

  const done = await put('abc', '10-12');
  t.equal(done.status, 201, 'the in-order last chunk completes the upload', describe(done));
  t.equal((await inject(app, 'GET', `/v2/repo/blobs/${digest}`)).text, '0123456789abc');
});

t.test('a PATCH whose Content-Range length does not match its body is refused and the offset does not move', async (t) => {
  const { app } = await startWharf(t);
  const { path } = await startSession(app, 'repo');
  await patch(app, path, 'abcde', '0-4');
  const res = await patch(app, path, 'fgh', '5-14');
  t.ok(res.status >= 400 && res.status < 500, `4xx (got ${res.status})`);
  t.equal((await inject(app, 'GET', path)).header('range'), '0-4');
  t.equal((await patch(app, path, 'fgh', '5-7')).status, 202);
  const digest = digestOf('abcdefgh');
  t.equal((await inject(app, 'PUT', withQuery(path, `digest=${digest}`))).status, 201);
  t.equal((await inject(app, 'GET', `/v2/repo/blobs/${digest}`)).text, 'abcdefgh');
});

t.test('a PATCH body shorter than its Content-Length: 400 SIZE_INVALID, its bytes are dropped', async (t) => {
  const { app } = await startWharf(t);
  const { path } = await startSession(app, 'repo');
  await patch(app, path, 'abcde');
  const res = await inject(app, 'PATCH', path, { headers: { 'content-length': '50' }, body: 'GARBAGE' });
  assertError(t, res, 400, 'SIZE_INVALID');
  t.equal((await inject(app, 'GET', path)).header('range'), '0-4', 'offset unchanged');
  await patch(app, path, 'fgh');
  const digest = digestOf('abcdefgh');
  const put = await inject(app, 'PUT', withQuery(path, `digest=${digest}`));
  t.equal(put.status, 201, 'the blob does not contain the failed chunk');
});

t.test('a malformed Content-Range on PATCH is refused with a 4xx', async (t) => {
  const { app } = await startWharf(t);
  const { path } = await startSession(app, 'repo');
  for (const range of ['abc', '5-2', '-5', 'bytes 0-']) {
    const res = await patch(app, path, 'xyz', range);
    t.ok(res.status >= 400 && res.status < 500, `${range}: 4xx (got ${res.status})`);
  }
  t.equal((await inject(app, 'GET', path)).header('range'), '0-0', 'nothing was appended');
});

t.test('PUT without ?digest= answers 400 DIGEST_INVALID', async (t) => {
  const { app } = await startWharf(t);
  const { path } = await startSession(app, 'repo');
  await patch(app, path, 'data');
  assertError(t, await inject(app, 'PUT', path), 400, 'DIGEST_INVALID');
});

t.test('PUT with a malformed ?digest= answers 400 DIGEST_INVALID', async (t) => {
  const { app } = await startWharf(t);
  const { path } = await startSession(app, 'repo');
  for (const digest of ['sha256:xyz', 'md5:d41d8cd98f00b204e9800998ecf8427e', '']) {
    assertError(t, await inject(app, 'PUT', withQuery(path, `digest=${encodeURIComponent(digest)}`)), 400, 'DIGEST_INVALID', digest);
  }
});

for (const lastChunk of [false, true]) {
  t.test(`PUT with a digest that does not match (${lastChunk ? 'with' : 'without'} a last chunk): 400 DIGEST_INVALID, session gone, nothing left`, async (t) => {
    const { app, dataDir } = await startWharf(t);
    const { path } = await startSession(app, 'repo');
    await patch(app, path, 'real content ');
    const wrong = digestOf('what the client claims');
    const put = await inject(app, 'PUT', withQuery(path, `digest=${wrong}`), lastChunk ? { body: 'tail' } : {});
    assertError(t, put, 400, 'DIGEST_INVALID');
    const actual = digestOf(lastChunk ? 'real content tail' : 'real content ');
    assertError(t, await inject(app, 'GET', `/v2/repo/blobs/${wrong}`), 404, 'BLOB_UNKNOWN', 'declared digest');
    assertError(t, await inject(app, 'GET', `/v2/repo/blobs/${actual}`), 404, 'BLOB_UNKNOWN', 'actual digest');
    assertError(t, await inject(app, 'GET', path), 404, 'BLOB_UPLOAD_UNKNOWN', 'session status');
    assertError(t, await patch(app, path, 'more'), 404, 'BLOB_UPLOAD_UNKNOWN', 'PATCH on the session');
    t.notOk(existsSync(blobFile(dataDir, wrong)), 'no blob file for the wrong digest');
    nothingLeft(t, dataDir);
  });
}

t.test('DELETE of a session answers 204, then the session is 404 BLOB_UPLOAD_UNKNOWN and its file is gone', async (t) => {
  const { app, dataDir } = await startWharf(t);
  const { path } = await startSession(app, 'repo');
  await patch(app, path, 'to be cancelled');
  t.equal(filesUnder(join(dataDir, 'uploads')).length, 1, 'the session has a file while open');
  const del = await inject(app, 'DELETE', path);
  t.equal(del.status, 204);
  assertError(t, await inject(app, 'GET', path), 404, 'BLOB_UPLOAD_UNKNOWN', 'GET');
  assertError(t, await patch(app, path, 'more'), 404, 'BLOB_UPLOAD_UNKNOWN', 'PATCH');
  assertError(t, await inject(app, 'PUT', withQuery(path, `digest=${digestOf('to be cancelled')}`)), 404, 'BLOB_UPLOAD_UNKNOWN', 'PUT');
  assertError(t, await inject(app, 'DELETE', path), 404, 'BLOB_UPLOAD_UNKNOWN', 'DELETE again');
  t.same(filesUnder(join(dataDir, 'uploads')), [], 'no file left under uploads/');
});

t.test('an upload id that is not a UUID answers 404 BLOB_UPLOAD_UNKNOWN on every method', async (t) => {
  const { app } = await startWharf(t);
  await startSession(app, 'repo');
  for (const id of ['not-a-uuid', '12345', 'ZZZZZZZZ-ZZZZ-ZZZZ-ZZZZ-ZZZZZZZZZZZZ', '.ingest-abc', '.writer-0123abcd', '123E4567-E89B-42D3-A456-426614174000']) {
    const path = `/v2/repo/blobs/uploads/${encodeURIComponent(id)}`;
    assertError(t, await inject(app, 'GET', path), 404, 'BLOB_UPLOAD_UNKNOWN', `GET ${id}`);
    assertError(t, await patch(app, path, 'x'), 404, 'BLOB_UPLOAD_UNKNOWN', `PATCH ${id}`);
    assertError(t, await inject(app, 'PUT', `${path}?digest=${digestOf('x')}`, { body: 'x' }), 404, 'BLOB_UPLOAD_UNKNOWN', `PUT ${id}`);
    assertError(t, await inject(app, 'DELETE', path), 404, 'BLOB_UPLOAD_UNKNOWN', `DELETE ${id}`);
  }
});

t.test('a well-formed but unknown session UUID answers 404 BLOB_UPLOAD_UNKNOWN', async (t) => {
  const { app } = await startWharf(t);
  const path = '/v2/repo/blobs/uploads/123e4567-e89b-42d3-a456-426614174000';
  assertError(t, await inject(app, 'GET', path), 404, 'BLOB_UPLOAD_UNKNOWN');
  assertError(t, await patch(app, path, 'x'), 404, 'BLOB_UPLOAD_UNKNOWN');
});

t.test("a session of another repository answers 404 BLOB_UPLOAD_UNKNOWN and is left untouched", async (t) => {
  const { app } = await startWharf(t);
  const { path, uuid } = await startSession(app, 'owner');
  await patch(app, path, 'owned ');
  const foreign = `/v2/intruder/blobs/uploads/${uuid}`;
  assertError(t, await inject(app, 'GET', foreign), 404, 'BLOB_UPLOAD_UNKNOWN', 'GET');
  assertError(t, await patch(app, foreign, 'stolen'), 404, 'BLOB_UPLOAD_UNKNOWN', 'PATCH');
  assertError(t, await inject(app, 'PUT', `${foreign}?digest=${digestOf('owned ')}`), 404, 'BLOB_UPLOAD_UNKNOWN', 'PUT');
  assertError(t, await inject(app, 'DELETE', foreign), 404, 'BLOB_UPLOAD_UNKNOWN', 'DELETE');
  assertError(t, await inject(app, 'GET', `/v2/owner/sub/blobs/uploads/${uuid}`), 404, 'BLOB_UPLOAD_UNKNOWN', 'child repo');
  t.equal((await inject(app, 'GET', path)).header('range'), '0-5', 'the owner still sees its offset');
  await patch(app, path, 'bytes');
  const digest = digestOf('owned bytes');
  t.equal((await inject(app, 'PUT', withQuery(path, `digest=${digest}`))).status, 201);
  assertError(t, await inject(app, 'GET', `/v2/intruder/blobs/${digest}`), 404, 'BLOB_UNKNOWN', 'not linked in the intruder repo');
});

// --- mounts ------------------------------------------------------------------------------------

t.test('mount ?mount=&from= of a blob present in from answers 201 and links it', async (t) => {
  const { app } = await startWharf(t);
  const bytes = Buffer.from('shared layer');
  const digest = await pushBlob(app, 'source/repo', bytes);
  const res = await inject(app, 'POST', `/v2/target/repo/blobs/uploads/?mount=${digest}&from=source/repo`);
  t.equal(res.status, 201);
  t.equal(res.header('location'), `/v2/target/repo/blobs/${digest}`);
  t.equal(res.header('docker-content-digest'), digest);
  const get = await inject(app, 'GET', `/v2/target/repo/blobs/${digest}`);
  t.equal(get.status, 200);
  t.same(get.body, bytes);
});

t.test('mount of a blob not in from answers 202 with a session', async (t) => {
  const { app } = await startWharf(t);
  const digest = await pushBlob(app, 'elsewhere', 'stored but not in source');
  await pushBlob(app, 'source', 'source holds other things');
  const res = await inject(app, 'POST', `/v2/target/blobs/uploads/?mount=${digest}&from=source`);
  t.equal(res.status, 202);
  const { path, uuid } = sessionOf(res);
  t.match(uuid, UUID);
  t.equal(path, `/v2/target/blobs/uploads/${uuid}`);
  t.equal(res.header('docker-upload-uuid'), uuid);
  assertError(t, await inject(app, 'GET', `/v2/target/blobs/${digest}`), 404, 'BLOB_UNKNOWN', 'nothing was linked');
  t.equal((await inject(app, 'GET', path)).status, 204, 'the session is usable');
});

t.test('mount from an unknown repository answers 202 with a session', async (t) => {
  const { app } = await startWharf(t);
  const digest = digestOf('never pushed anywhere');
  const res = await inject(app, 'POST', `/v2/target/blobs/uploads/?mount=${digest}&from=ghost`);
  t.equal(res.status, 202);
  t.match(sessionOf(res).uuid, UUID);
});

t.test('mount without from (auth off) mounts a blob linked in any repository: 201, and it is served', async (t) => {
  const { app } = await startWharf(t);
  const bytes = Buffer.from('stored blob');
  const digest = await pushBlob(app, 'source', bytes);
  const res = await inject(app, 'POST', `/v2/target/blobs/uploads/?mount=${digest}`);
  t.equal(res.status, 201);
  t.equal(res.header('location'), `/v2/target/blobs/${digest}`);
  t.equal(res.header('docker-content-digest'), digest);
  const get = await inject(app, 'GET', `/v2/target/blobs/${digest}`);
  t.equal(get.status, 200);
  t.same(get.body, bytes);
});

t.test('mount without from of a blob linked nowhere answers 202 with a session and links nothing', async (t) => {
  const { app } = await startWharf(t);
  const bytes = Buffer.from('pushed, then deleted');
  const digest = await pushBlob(app, 'source', bytes);
  t.equal((await inject(app, 'DELETE', `/v2/source/blobs/${digest}`)).status, 202, 'unlinked: the bytes stay until the collector runs');
  const res = await inject(app, 'POST', `/v2/target/blobs/uploads/?mount=${digest}`);
  t.equal(res.status, 202);
  t.match(sessionOf(res).uuid, UUID);
  assertError(t, await inject(app, 'GET', `/v2/target/blobs/${digest}`), 404, 'BLOB_UNKNOWN');
  const never = await inject(app, 'POST', `/v2/target/blobs/uploads/?mount=${digestOf('never pushed anywhere')}`);
  t.equal(never.status, 202, 'never pushed: a session');
});

t.test('mount with a malformed digest or from name answers 400', async (t) => {
  const { app } = await startWharf(t);
  const digest = await pushBlob(app, 'source', 'x');
  assertError(t, await inject(app, 'POST', '/v2/target/blobs/uploads/?mount=sha256:nope&from=source'), 400, 'DIGEST_INVALID');
  assertError(t, await inject(app, 'POST', `/v2/target/blobs/uploads/?mount=${digest}&from=Bad..Name`), 400, 'NAME_INVALID');
});

// --- concurrency (real sockets) ------------------------------------------------------------------

t.test('8 concurrent monolithic uploads of the same blob all answer 201 and the blob is intact', async (t) => {
  const { url, dataDir } = await startWharf(t);
  const bytes = randomBytes(2 * 1024 * 1024);
  const digest = digestOf(bytes);
  const results = await Promise.all(
    Array.from({ length: 8 }, () =>
      raw(url, 'POST', `/v2/conc/repo/blobs/uploads/?digest=${digest}`, {
        headers: { 'content-type': 'application/octet-stream' },
        body: bytes,
      }),
    ),
  );
  t.same(
    results.map((r) => r.status),
    Array(8).fill(201),
    'all 201',
    { results: results.map(describe) },
  );
  t.ok(results.every((r) => r.header('docker-content-digest') === digest), 'all report the digest');
  const get = await raw(url, 'GET', `/v2/conc/repo/blobs/${digest}`);
  t.equal(get.status, 200);
  t.equal(get.body.length, bytes.length, 'full length');
  t.equal(digestOf(get.body), digest, 'intact bytes');
  t.same(filesUnder(join(dataDir, 'uploads')), [], 'no temporary file left');
  t.same(filesUnder(join(dataDir, 'blobs')), [join('sha256', digest.slice(7, 9), digest.slice(7))], 'exactly one blob file');
});

t.test('concurrent chunked sessions of the same content to one repository all complete', async (t) => {
  const { url, dataDir } = await startWharf(t);
  const bytes = randomBytes(3 * 256 * 1024);
  const digest = digestOf(bytes);
  const chunks = [bytes.subarray(0, 256 * 1024), bytes.subarray(256 * 1024, 512 * 1024), bytes.subarray(512 * 1024)];
  const one = async () => {
    const post = await raw(url, 'POST', '/v2/conc/chunked/blobs/uploads/');
    if (post.status !== 202) return `POST ${post.status}`;
    let path = sessionOf(post).path;
    let offset = 0;
    for (const chunk of chunks) {
      const res = await raw(url, 'PATCH', path, {
        headers: { 'content-type': 'application/octet-stream', 'content-range': `${offset}-${offset + chunk.length - 1}` },
        body: chunk,
      });
      if (res.status !== 202) return `PATCH ${res.status}`;
      offset += chunk.length;
      if (res.header('range') !== `0-${offset - 1}`) return `Range ${res.header('range')}`;
      path = sessionOf(res).path;
    }
    const put = await raw(url, 'PUT', withQuery(path, `digest=${digest}`));
    return put.status === 201 && put.header('docker-content-digest') === digest ? 'ok' : `PUT ${put.status} ${put.text}`;
  };
  const outcomes = await Promise.all(Array.from({ length: 6 }, one));
  t.same(outcomes, Array(6).fill('ok'));
  const get = await raw(url, 'GET', `/v2/conc/chunked/blobs/${digest}`);
  t.equal(get.status, 200);
  t.equal(digestOf(get.body), digest, 'intact bytes');
  t.same(filesUnder(join(dataDir, 'uploads')), [], 'no session file left');
});

t.test('two concurrent PATCHes at the same offset of one session: one 202, the other 416', async (t) => {
  const { url, app } = await startWharf(t);
  const { path } = await startSession(app, 'race');
  const chunk = randomBytes(512 * 1024);
  const send = () =>
    raw(url, 'PATCH', path, {
      headers: { 'content-type': 'application/octet-stream', 'content-range': `0-${chunk.length - 1}` },
      body: chunk,
    });
  const results = await Promise.all([send(), send()]);
  t.same(
    results.map((r) => r.status).sort(),
    [202, 416],
    'exactly one wins',
    { results: results.map(describe) },
  );
  t.ok(results.every((r) => r.header('range') === `0-${chunk.length - 1}`), 'both report the offset after the winning chunk');
  const digest = digestOf(chunk);
  const put = await inject(app, 'PUT', withQuery(path, `digest=${digest}`));
  t.equal(put.status, 201, 'the blob is exactly one copy of the chunk');
});
