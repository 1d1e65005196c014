// GET /v2/ (the API version check) and GET /healthz.
import t from 'tap';
import { startWharf } from '../helpers/server.js';
import { assertError, inject, raw } from '../helpers/http.js';

t.test('GET /v2/ answers 200 {} with Docker-Distribution-API-Version: registry/2.0', async (t) => {
  const { app } = await startWharf(t);
  const res = await inject(app, 'GET', '/v2/');
  t.equal(res.status, 200);
  t.same(res.json(), {});
  t.equal(res.header('docker-distribution-api-version'), 'registry/2.0');
  t.match(res.header('content-type'), /^application\/json/);
});

t.test('GET /v2 without the trailing slash is the same endpoint', async (t) => {
  const { app } = await startWharf(t);
  const res = await inject(app, 'GET', '/v2');
  t.equal(res.status, 200);
  t.same(res.json(), {});
  t.equal(res.header('docker-distribution-api-version'), 'registry/2.0');
});

t.test('HEAD /v2/ answers 200 with the API version header and no body', async (t) => {
  const { app } = await startWharf(t);
  const res = await inject(app, 'HEAD', '/v2/');
  t.equal(res.status, 200);
  t.equal(res.header('docker-distribution-api-version'), 'registry/2.0');
  t.equal(res.body.length, 0);
});

t.test('GET /v2/ over a real socket answers 200 {}', async (t) => {
  const { url } = await startWharf(t);
  const res = await raw(url, 'GET', '/v2/');
  t.equal(res.status, 200);
  t.equal(res.header('docker-distribution-api-version'), 'registry/2.0');
  t.same(res.json(), {});
});

t.test('GET /healthz answers 200', async (t) => {
  const { app } = await startWharf(t);
  const res = await inject(app, 'GET', '/healthz');
  t.equal(res.status, 200);
  t.match(res.header('content-type'), /^application\/json/);
  t.same(res.json(), { status: 'ok' });
});

t.test('error answers under /v2/ also carry Docker-Distribution-API-Version', async (t) => {
  const { app } = await startWharf(t);
  const res = await inject(app, 'GET', '/v2/nope/blobs/sha256:' + 'a'.repeat(64));
  assertError(t, res, 404, 'BLOB_UNKNOWN');
  t.equal(res.header('docker-distribution-api-version'), 'registry/2.0');
});
