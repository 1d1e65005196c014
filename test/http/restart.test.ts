// A server restarted on the same data directory: upload sessions resume where they stopped, and
// everything pushed before is still served. Also: closing does not hang on keep-alive clients.
import t, { type Test } from 'tap';
import { randomBytes } from 'node:crypto';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { startWharf, tempDir } from '../helpers/server.js';
import { OCI_MANIFEST, artifactManifest, assertError, descriptorOf, digestOf, filesUnder, imageManifest, inject, pushBlob, pushManifest, raw, sessionOf, withQuery } from '../helpers/http.js';

function sharedDir(t: Test): string {
  const dir = tempDir('wharf-restart-');
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

t.test('restart in the middle of a chunked upload: status shows the offset, the rest is appended, PUT gives the right blob', async (t) => {
  const dataDir = sharedDir(t);
  const bytes = randomBytes(300 * 1024);
  const first = bytes.subarray(0, 100 * 1024);
  const rest = bytes.subarray(100 * 1024);
  const digest = digestOf(bytes);

  const before = await startWharf(t, {}, { dataDir });
  const post = await raw(before.url, 'POST', '/v2/org/app/blobs/uploads/');
  t.equal(post.status, 202);
  const { path, uuid } = sessionOf(post);
  const p1 = await raw(before.url, 'PATCH', path, {
    headers: { 'content-type': 'application/octet-stream', 'content-range': `0-${first.length - 1}` },
    body: first,
  });
  t.equal(p1.status, 202);
  t.equal(p1.header('range'), `0-${first.length - 1}`);
  await before.close();

  const after = await startWharf(t, {}, { dataDir });
  const status = await raw(after.url, 'GET', path);
  t.equal(status.status, 204, 'the session is known after the restart');
  t.equal(status.header('range'), `0-${first.length - 1}`, 'with the offset reached before');
  t.equal(status.header('docker-upload-uuid'), uuid);

  const p2 = await raw(after.url, 'PATCH', sessionOf(status).path, {
    headers: { 'content-type': 'application/octet-stream', 'content-range': `${first.length}-${bytes.length - 1}` },
    body: rest,
  });
  t.equal(p2.status, 202);
  t.equal(p2.header('range'), `0-${bytes.length - 1}`);

  const put = await raw(after.url, 'PUT', withQuery(sessionOf(p2).path, `digest=${digest}`));
  t.equal(put.status, 201, 'PUT ?digest= completes', { body: put.text });
  t.equal(put.header('docker-content-digest'), digest);
  const get = await raw(after.url, 'GET', `/v2/org/app/blobs/${digest}`);
  t.equal(get.status, 200);
  t.ok(get.body.equals(bytes), 'the blob is exactly the bytes sent before and after the restart');
  t.same(filesUnder(join(dataDir, 'uploads')), [], 'no session file left');
});

t.test('restart, then PUT with the last chunk and a sha512 digest completes the upload', async (t) => {
  const dataDir = sharedDir(t);
  const before = await startWharf(t, {}, { dataDir });
  const { path } = sessionOf(await inject(before.app, 'POST', '/v2/repo/blobs/uploads/'));
  t.equal((await inject(before.app, 'PATCH', path, { body: 'before the restart, ' })).status, 202);
  await before.close();

  const after = await startWharf(t, {}, { dataDir });
  const digest = digestOf('before the restart, after the restart', 'sha512');
  const put = await inject(after.app, 'PUT', withQuery(path, `digest=${digest}`), { body: 'after the restart' });
  t.equal(put.status, 201, 'completed', { body: put.text });
  t.equal((await inject(after.app, 'GET', `/v2/repo/blobs/${digest}`)).text, 'before the restart, after the restart');
});

t.test('restart, then a PUT with the wrong digest answers 400 DIGEST_INVALID and leaves nothing', async (t) => {
  const dataDir = sharedDir(t);
  const before = await startWharf(t, {}, { dataDir });
  const { path } = sessionOf(await inject(before.app, 'POST', '/v2/repo/blobs/uploads/'));
  await inject(before.app, 'PATCH', path, { body: 'some bytes' });
  await before.close();

  const after = await startWharf(t, {}, { dataDir });
  const wrong = digestOf('other bytes');
  assertError(t, await inject(after.app, 'PUT', withQuery(path, `digest=${wrong}`)), 400, 'DIGEST_INVALID');
  assertError(t, await inject(after.app, 'GET', path), 404, 'BLOB_UPLOAD_UNKNOWN', 'the session is gone');
  assertError(t, await inject(after.app, 'GET', `/v2/repo/blobs/${digestOf('some bytes')}`), 404, 'BLOB_UNKNOWN');
  t.same(filesUnder(join(dataDir, 'uploads')), [], 'no session file left');
  t.same(filesUnder(join(dataDir, 'blobs')), [], 'no blob file');
});

t.test('an out-of-order PATCH after a restart answers 416 with the offset kept on disk', async (t) => {
  const dataDir = sharedDir(t);
  const before = await startWharf(t, {}, { dataDir });
  const { path } = sessionOf(await inject(before.app, 'POST', '/v2/repo/blobs/uploads/'));
  await inject(before.app, 'PATCH', path, { headers: { 'content-range': '0-4' }, body: 'abcde' });
  await before.close();

  const after = await startWharf(t, {}, { dataDir });
  const res = await inject(after.app, 'PATCH', path, { headers: { 'content-range': '0-4' }, body: 'abcde' });
  assertError(t, res, 416, undefined);
  t.equal(res.header('range'), '0-4');
});

t.test('a cancelled session stays unknown after a restart', async (t) => {
  const dataDir = sharedDir(t);
  const before = await startWharf(t, {}, { dataDir });
  const { path } = sessionOf(await inject(before.app, 'POST', '/v2/repo/blobs/uploads/'));
  t.equal((await inject(before.app, 'DELETE', path)).status, 204);
  await before.close();
  const after = await startWharf(t, {}, { dataDir });
  assertError(t, await inject(after.app, 'GET', path), 404, 'BLOB_UPLOAD_UNKNOWN');
});

t.test('blobs, manifests, tags, referrers and the catalog survive a restart', async (t) => {
  const dataDir = sharedDir(t);
  const before = await startWharf(t, {}, { dataDir });
  const blob = await pushBlob(before.app, 'keep/me', 'persistent blob');
  const m = await imageManifest(before.app, 'keep/me', 'persistent');
  await pushManifest(before.app, 'keep/me', 'v1', m.body, OCI_MANIFEST);
  const art = await artifactManifest(before.app, 'keep/me', 'application/vnd.example.sig', { subject: descriptorOf(OCI_MANIFEST, m.body) });
  await pushManifest(before.app, 'keep/me', art.digest, art.body, OCI_MANIFEST);
  await before.close();

  const after = await startWharf(t, {}, { dataDir });
  t.equal((await inject(after.app, 'GET', `/v2/keep/me/blobs/${blob}`)).text, 'persistent blob');
  const get = await inject(after.app, 'GET', '/v2/keep/me/manifests/v1');
  t.equal(get.status, 200);
  t.equal(get.text, m.body);
  t.equal(get.header('docker-content-digest'), m.digest);
  t.same((await inject(after.app, 'GET', '/v2/keep/me/tags/list')).json(), { name: 'keep/me', tags: ['v1'] });
  t.same((await inject(after.app, 'GET', '/v2/_catalog')).json(), { repositories: ['keep/me'] });
  const refs = (await inject(after.app, 'GET', `/v2/keep/me/referrers/${m.digest}`)).json() as { manifests: Array<{ digest: string }> };
  t.same(refs.manifests.map((r) => r.digest), [art.digest]);
});

t.test('close() does not wait for the keep-alive timeout after a client has just downloaded a blob', async (t) => {
  // A keep-alive client (fetch) that read a whole streamed response may leave a connection that becomes
  // idle only after close() was called; the server must still shut down promptly, not after the
  // keep-alive timeout. The race is timing-dependent, so several rounds are tried.
  for (let round = 0; round < 10; round++) {
    const server = await startWharf(t);
    const bytes = randomBytes(4 * 1024 * 1024);
    const digest = await pushBlob(server.app, 'repo', bytes);
    const res = await fetch(`${server.url}/v2/repo/blobs/${digest}`);
    const got = Buffer.from(await res.arrayBuffer());
    t.equal(got.length, bytes.length, `round ${round}: the blob downloaded whole`);
    const started = Date.now();
    let timer: NodeJS.Timeout | undefined;
    const closed = await Promise.race([
      server.close().then(() => true),
      new Promise<boolean>((resolve) => {
        timer = setTimeout(() => resolve(false), 3000);
      }),
    ]);
    clearTimeout(timer);
    if (!closed) {
      server.app.server.closeAllConnections();
      t.fail(`round ${round}: close() still pending after ${Date.now() - started} ms`);
      return;
    }
  }
  t.pass('every close() finished within 3 s');
});
