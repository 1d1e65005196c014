// /healthz and /readyz (issue 13) against a PostgreSQL server of the test's own, stopped and started
// under a running node: /readyz answers 503 with an OCI error body naming the database while it is
// down, 200 again once it answers; /healthz stays 200 throughout. The answer is kept for a moment
// (on the node's injected clock), so a burst of probes costs one query.
import t from 'tap';
import { startPrivatePostgres } from '../helpers/private-postgres.js';
import { startWharf } from '../helpers/server.js';

t.setTimeout(120_000);

interface Body {
  status?: string;
  checks?: Record<string, string>;
  errors?: Array<{ code: string; message: string; detail: { checks: Record<string, string> } }>;
}

async function probe(url: string, path: string): Promise<{ status: number; body: Body; retryAfter: string | null }> {
  const res = await fetch(`${url}${path}`);
  return { status: res.status, body: (await res.json()) as Body, retryAfter: res.headers.get('retry-after') };
}

t.test('/readyz follows the metadata database: 503 naming it while PostgreSQL is stopped, 200 once it is back', async (t) => {
  const pg = await startPrivatePostgres(t);
  let clock = 1_000_000;
  const w = await startWharf(t, { metadata: { postgres: { url: pg.url, poolSize: 2, connectTimeout: '500ms', statementTimeout: '1s' } } }, { now: () => clock });

  t.same(await probe(w.url, '/readyz'), { status: 200, body: { status: 'ready', checks: { metadata: 'ok', blobs: 'ok' } }, retryAfter: null });
  t.same((await probe(w.url, '/healthz')).body, { status: 'ok' });

  pg.stop();
  t.equal((await probe(w.url, '/readyz')).status, 200, 'within 1.5 s of the last check the answer is the kept one');
  clock += 1500;
  const down = await probe(w.url, '/readyz');
  t.equal(down.status, 503);
  t.equal(down.retryAfter, '5');
  t.equal(down.body.errors?.[0]?.code, 'UNAVAILABLE');
  t.match(down.body.errors?.[0]?.message, /^not ready: metadata \(PostgreSQL at 127\.0\.0\.1:\d+\/postgres\): /, 'says what is down, and where');
  t.match(down.body.errors?.[0]?.detail.checks, { metadata: /^down: /, blobs: 'ok' });
  t.equal((await probe(w.url, '/healthz')).status, 200, 'alive all the same');

  pg.start();
  t.equal((await probe(w.url, '/readyz')).status, 503, 'still the kept answer');
  clock += 1500;
  t.same(await probe(w.url, '/readyz'), { status: 200, body: { status: 'ready', checks: { metadata: 'ok', blobs: 'ok' } }, retryAfter: null }, 'ready again without a restart');
});

t.test('/readyz on SQLite and the filesystem: ready; probes share one check', async (t) => {
  const w = await startWharf(t);
  const answers = await Promise.all(Array.from({ length: 20 }, () => probe(w.url, '/readyz')));
  t.same(new Set(answers.map((a) => a.status)), new Set([200]));
  t.same(answers[0]?.body.checks, { metadata: 'ok', blobs: 'ok' });
});
