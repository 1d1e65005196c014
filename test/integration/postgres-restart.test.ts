// PostgreSQL really restarted under a running node (a server of the test's own, stopped with
// pg_ctl's fast shutdown and started again on its port): hot manifests keep being served from
// memory, writes get 503 UNAVAILABLE saying the database is down, and once the server is back
// writes succeed without restarting the node.
import t from 'tap';
import { OCI_MANIFEST, digestOf, imageManifest, inject, pushBlob, pushManifest, raw, type Res } from '../helpers/http.js';
import { LogCapture } from '../helpers/log-capture.js';
import { startPrivatePostgres } from '../helpers/private-postgres.js';
import { startWharf } from '../helpers/server.js';

type Tap = Parameters<Parameters<typeof t.test>[0]>[0];

function unavailable(t: Tap, res: Res, what: string): void {
  t.equal(res.status, 503, `${what}: 503`);
  const body = JSON.parse(res.text) as { errors: Array<{ code: string; message: string }> };
  t.equal(body.errors[0]?.code, 'UNAVAILABLE', `${what}: UNAVAILABLE`);
  t.match(body.errors[0]?.message, /metadata database \(PostgreSQL at 127\.0\.0\.1:\d+\/postgres\) is unavailable.*retry once it answers again/, `${what}: says what is down`);
}

t.test('PostgreSQL stopped and started again under a running node: reads from memory, writes 503, then writes again', async (t) => {
  const pg = await startPrivatePostgres(t);
  const logs = new LogCapture();
  const server = await startWharf(t, { metadata: { postgres: { url: pg.url, poolSize: 2, connectTimeout: '500ms', statementTimeout: '1s' } } }, { logs });
  const img = await imageManifest(server.app, 'team/app', 'before');
  await pushManifest(server.app, 'team/app', 'v1', img.body, OCI_MANIFEST);
  const pull = () => raw(server.url, 'GET', '/v2/team/app/manifests/v1', { headers: { accept: OCI_MANIFEST } });
  t.equal((await pull()).status, 200, 'pulled once: now held in memory');

  pg.stop();
  const hot = await pull();
  t.equal(hot.status, 200, 'a hot manifest by tag is still served');
  t.equal(digestOf(hot.body), img.digest);
  const byDigest = await raw(server.url, 'GET', `/v2/team/app/manifests/${img.digest}`, { headers: { accept: OCI_MANIFEST } });
  t.equal(byDigest.status, 200, 'and by digest');
  unavailable(t, await inject(server.app, 'POST', '/v2/team/app/blobs/uploads/'), 'starting an upload');
  unavailable(t, await inject(server.app, 'PUT', '/v2/team/app/manifests/v2', { headers: { 'content-type': OCI_MANIFEST }, body: img.body }), 'putting a manifest');

  pg.start();
  // The pool dropped the connections the shutdown closed and opens new ones on demand.
  const fresh = await imageManifest(server.app, 'team/app', 'after');
  await pushManifest(server.app, 'team/app', 'v2', fresh.body, OCI_MANIFEST);
  await pushBlob(server.app, 'team/other', 'after the restart');
  const tags = await raw(server.url, 'GET', '/v2/team/app/tags/list');
  t.same(JSON.parse(tags.text), { name: 'team/app', tags: ['v1', 'v2'] }, 'writes made after the restart are recorded');
  t.same(logs.lines.filter((l) => l.msg === 'unexpected error' || l.msg === 'request failed'), [], 'no internal error during the restart');
});
