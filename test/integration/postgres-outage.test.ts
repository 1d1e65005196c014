// PostgreSQL out of reach while a server runs (a proxy between the pool and the server is cut, the
// machine's shared server is left alone): hot manifests are still served from memory, writes fail
// with 503 UNAVAILABLE saying what is down, and once the database answers again the pool reconnects
// by itself: no restart.
import t from 'tap';
import { OCI_MANIFEST, digestOf, imageManifest, inject, pushBlob, pushManifest, raw, type Res } from '../helpers/http.js';
import { startPgProxy } from '../helpers/pg-proxy.js';
import { tempSchema } from '../helpers/postgres.js';
import { LogCapture } from '../helpers/log-capture.js';
import { startWharf } from '../helpers/server.js';

function unavailable(t: Tap, res: Res, what: string): void {
  t.equal(res.status, 503, `${what}: 503`);
  const body = JSON.parse(res.text) as { errors: Array<{ code: string; message: string }> };
  t.equal(body.errors[0]?.code, 'UNAVAILABLE', `${what}: UNAVAILABLE`);
  t.match(body.errors[0]?.message, /metadata database \(PostgreSQL at 127\.0\.0\.1:\d+\/test\) is unavailable.*retry once it answers again/, `${what}: says what is down`);
  t.equal(res.header('retry-after'), '5');
}
type Tap = Parameters<Parameters<typeof t.test>[0]>[0];

for (const fault of ['cut', 'blackhole'] as const) {
  t.test(`database ${fault === 'cut' ? 'refusing connections' : 'not answering'}: reads from memory, writes 503, recovery without restart`, async (t) => {
    const proxy = await startPgProxy(t);
    const schema = await tempSchema(t);
    const logs = new LogCapture();
    const server = await startWharf(
      t,
      {
        metadata: { postgres: { url: proxy.url('postgres', 'test', `-c search_path=${schema}`), poolSize: 2, connectTimeout: '500ms', statementTimeout: '1s' } },
      },
      { logs },
    );
    const img = await imageManifest(server.app, 'team/app', 'before');
    await pushManifest(server.app, 'team/app', 'v1', img.body, OCI_MANIFEST);
    const pull = () => raw(server.url, 'GET', '/v2/team/app/manifests/v1', { headers: { accept: OCI_MANIFEST } });
    t.equal((await pull()).status, 200, 'pulled once: now held in memory');

    proxy[fault]();
    const hot = await pull();
    t.equal(hot.status, 200, 'a hot manifest by tag is still served');
    t.equal(digestOf(hot.body), img.digest);
    const byDigest = await raw(server.url, 'GET', `/v2/team/app/manifests/${img.digest}`, { headers: { accept: OCI_MANIFEST } });
    t.equal(byDigest.status, 200, 'and by digest');

    unavailable(t, await inject(server.app, 'POST', '/v2/team/app/blobs/uploads/'), 'starting an upload');
    unavailable(
      t,
      await inject(server.app, 'PUT', '/v2/team/app/manifests/v2', { headers: { 'content-type': OCI_MANIFEST }, body: img.body }),
      'putting a manifest',
    );
    unavailable(t, await inject(server.app, 'DELETE', '/v2/team/app/manifests/v1'), 'deleting a tag');

    proxy.restore();
    // The pool drops the broken connections and opens new ones on demand: the next write works.
    const fresh = await imageManifest(server.app, 'team/app', 'after');
    await pushManifest(server.app, 'team/app', 'v2', fresh.body, OCI_MANIFEST);
    await pushBlob(server.app, 'team/other', 'after the outage');
    const tags = await raw(server.url, 'GET', '/v2/team/app/tags/list');
    t.same(JSON.parse(tags.text), { name: 'team/app', tags: ['v1', 'v2'] }, 'writes made after recovery are recorded');
    t.same(logs.lines.filter((l) => l.msg === 'unexpected error' || l.msg === 'request failed'), [], 'no internal error, no stack per request of the outage');
    t.ok(logs.lines.some((l) => l.msg === 'request' && l.status === 503), 'each refused request has its line');
  });
}
