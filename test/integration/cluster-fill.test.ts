// Three nodes on one PostgreSQL schema and one data directory, with cluster leases: a cold blob asked
// from every node at once is fetched from the upstream once in the whole cluster, the clients of the
// other nodes get bytes while the fill still runs (streamed from the filling node), and every client
// gets the blob's bytes. The internal endpoint answers the nodes only.
import { randomBytes } from 'node:crypto';
import { existsSync, rmSync } from 'node:fs';
import t from 'tap';
import { blobFile, digestOf, raw } from '../helpers/http.js';
import { download } from '../helpers/download.js';
import { contentEntry, startFaultUpstream } from '../helpers/fault-upstream.js';
import { POSTGRES_URL, adminQuery, tempSchema } from '../helpers/postgres.js';
import { quoteIdent } from '../../src/metadata/postgres-database.js';
import { startWharf, tempDir, type TestServer } from '../helpers/server.js';
import { LogCapture } from '../helpers/log-capture.js';
import type { TestObject } from '../contract/contract-helpers.js';

const SECRET = 'a-shared-secret-of-the-test-cluster';

async function cluster(t: TestObject, upstreamUrl: string, count: number, logs: Array<LogCapture | undefined> = []): Promise<{ nodes: TestServer[]; dataDir: string; schema: string }> {
  const schema = await tempSchema(t);
  const dataDir = tempDir('wharf-cluster-');
  t.teardown(() => rmSync(dataDir, { recursive: true, force: true }));
  const url = `${POSTGRES_URL}?options=${encodeURIComponent(`-c search_path=${schema}`)}`;
  const settings = {
    upstreams: [{ name: 'hub', url: upstreamUrl, registry: 'hub.test', default: true }],
    metadata: { postgres: { url } },
    cluster: { secret: SECRET, heartbeat: '100ms', leaseTimeout: '1s' },
  };
  const nodes: TestServer[] = [];
  for (let i = 0; i < count; i++) {
    const capture = logs[i];
    nodes.push(await startWharf(t, capture ? { ...settings, log: { level: 'info' } } : settings, { dataDir, ...(capture ? { logs: capture } : {}) }));
  }
  return { nodes, dataDir, schema };
}

t.test('the same cold blob from three nodes at once: one upstream GET in the cluster, bytes on every node before the commit, the right blob everywhere', async (t) => {
  const blob = contentEntry(randomBytes(3 * 1024 * 1024 + 17));
  const up = await startFaultUpstream(t, { manifests: [], blobs: [blob] });
  const { nodes, dataDir, schema } = await cluster(t, up.url, 3);
  let release!: () => void;
  const until = new Promise<void>((resolve) => (release = resolve));
  t.teardown(() => release());
  // The upstream sends the first MiB, then holds the rest until told: the fill cannot commit before.
  up.setFault({ kind: 'hold', afterBytes: 1024 * 1024, until, match: blob.digest });

  const path = `/v2/library/app/blobs/${blob.digest}`;
  const clients = nodes.map((n) => download(`${n.url}${path}`));
  await Promise.all(clients.map((c) => c.first));
  t.equal(up.count('GET', `/blobs/${blob.digest}`), 1, 'one upstream GET for three nodes');
  t.notOk(existsSync(blobFile(dataDir, blob.digest)), 'every client has bytes while the blob is not committed yet');
  const leases = await adminQuery(`SELECT node, repo FROM ${quoteIdent(schema)}.fill_leases WHERE digest = $1`, [blob.digest]);
  t.equal(leases.rowCount, 1, 'one node holds the lease');

  release();
  const results = await Promise.all(clients.map((c) => c.done));
  for (const [i, r] of results.entries()) {
    t.equal(r.status, 200, `node ${i}: 200`);
    t.ok(r.complete, `node ${i}: the whole body`);
    t.equal(digestOf(r.body), blob.digest, `node ${i}: the blob's bytes`);
  }
  t.equal(up.count('GET', `/blobs/${blob.digest}`), 1, 'still one upstream GET');

  for (const [i, n] of nodes.entries()) {
    const again = await raw(n.url, 'GET', path);
    t.equal(digestOf(again.body), blob.digest, `node ${i} serves it from the store`);
    const ranged = await raw(n.url, 'GET', path, { headers: { range: 'bytes=100-199' } });
    t.equal(ranged.status, 206);
    t.same(ranged.body, blob.body.subarray(100, 200));
  }
  t.equal(up.count('GET', `/blobs/${blob.digest}`), 1, 'later pulls never reach the upstream');
  t.equal((await adminQuery(`SELECT 1 FROM ${quoteIdent(schema)}.fill_leases`)).rowCount, 0, 'the lease is released after the commit');
});

t.test('four clients of one node following another node\'s fill: one stream from the filling node for them all, the right bytes for each', async (t) => {
  const blob = contentEntry(randomBytes(3 * 1024 * 1024 + 5));
  const up = await startFaultUpstream(t, { manifests: [], blobs: [blob] });
  const filling = new LogCapture();
  const { nodes } = await cluster(t, up.url, 2, [filling]);
  let release!: () => void;
  const until = new Promise<void>((resolve) => (release = resolve));
  t.teardown(() => release());
  up.setFault({ kind: 'hold', afterBytes: 1024 * 1024, until, match: blob.digest });
  const path = `/v2/library/app/blobs/${blob.digest}`;
  const first = download(`${nodes[0]!.url}${path}`);
  await first.first;
  // Every client of node 1 has bytes (it follows a stream) before the fill may go on; the ranged one
  // comes last (first, it would start the relay at its offset, and the others would each need one).
  const followers = [download(`${nodes[1]!.url}${path}`), download(`${nodes[1]!.url}${path}`), download(`${nodes[1]!.url}${path}`)];
  await Promise.all(followers.map((c) => c.first));
  followers.push(download(`${nodes[1]!.url}${path}`, { range: 'bytes=1000-' }));
  await followers[3]!.first;
  release();
  t.equal(digestOf((await first.done).body), blob.digest, 'the filling node\'s client: the blob');
  const results = await Promise.all(followers.map((c) => c.done));
  for (const [i, r] of results.slice(0, 3).entries()) {
    t.equal(r.status, 200, `client ${i}: 200`);
    t.ok(r.complete, `client ${i}: the whole body`);
    t.equal(digestOf(r.body), blob.digest, `client ${i}: the blob's bytes`);
  }
  t.equal(results[3]!.status, 206, 'the ranged client: 206');
  t.same(results[3]!.body, blob.body.subarray(1000), 'the ranged client: its range');
  // Each request's line is written when its response closes: the stream's has, before the last byte reached node 1.
  await filling.waitFor((l) => l.msg === 'request' && String(l.url).startsWith('/internal/fills/'));
  t.equal(filling.requests(`/internal/fills/${blob.digest}`).length, 1, 'the filling node served one internal stream');
  t.equal(up.count('GET', `/blobs/${blob.digest}`), 1, 'one upstream GET');
});

t.test('a client of the following node asking for bytes its relay no longer keeps: a stream of its own from the filling node, the right bytes', async (t) => {
  const blob = contentEntry(randomBytes(7 * 1024 * 1024));
  const up = await startFaultUpstream(t, { manifests: [], blobs: [blob] });
  const filling = new LogCapture();
  const { nodes } = await cluster(t, up.url, 2, [filling]);
  let release!: () => void;
  const until = new Promise<void>((resolve) => (release = resolve));
  t.teardown(() => release());
  const held = 6 * 1024 * 1024;
  up.setFault({ kind: 'hold', afterBytes: held, until, match: blob.digest });
  const path = `/v2/library/app/blobs/${blob.digest}`;
  const first = download(`${nodes[0]!.url}${path}`);
  await first.first;
  // Node 1's relay has passed the first MiBs (it keeps the last 4 MiB only) when the late client asks.
  const early = download(`${nodes[1]!.url}${path}`, {}, held - 1);
  await early.reached;
  const late = download(`${nodes[1]!.url}${path}`);
  await late.first;
  release();
  for (const [name, c] of [['the filling node\'s client', first], ['the early client', early], ['the late client', late]] as const) {
    const r = await c.done;
    t.ok(r.complete, `${name}: the whole body`);
    t.equal(digestOf(r.body), blob.digest, `${name}: the blob's bytes`);
  }
  await filling.waitFor(() => filling.requests(`/internal/fills/${blob.digest}`).length >= 2);
  t.equal(filling.requests(`/internal/fills/${blob.digest}`).length, 2, 'two internal streams: the relay\'s and the late client\'s');
  t.equal(up.count('GET', `/blobs/${blob.digest}`), 1, 'one upstream GET');
});

t.test('the upstream sends wrong bytes: the clients of every node are cut, none gets a whole body, nothing is committed', async (t) => {
  const blob = contentEntry(randomBytes(2 * 1024 * 1024));
  const wrong = Buffer.from(blob.body);
  wrong[wrong.length - 10]! ^= 0xff;
  // The upstream answers the digest with other bytes of the same length.
  const up = await startFaultUpstream(t, { manifests: [], blobs: [{ digest: blob.digest, body: wrong }] });
  const { nodes, dataDir, schema } = await cluster(t, up.url, 3);
  let release!: () => void;
  const until = new Promise<void>((resolve) => (release = resolve));
  t.teardown(() => release());
  up.setFault({ kind: 'hold', afterBytes: 1024 * 1024, until, match: blob.digest });
  const path = `/v2/library/app/blobs/${blob.digest}`;
  const clients = nodes.map((n) => download(`${n.url}${path}`));
  await Promise.all(clients.map((c) => c.first));
  release();
  for (const [i, r] of (await Promise.all(clients.map((c) => c.done))).entries()) {
    t.notOk(r.complete, `node ${i}: the client is cut`);
    t.ok(r.body.length < blob.body.length, `node ${i}: never the whole body (${r.body.length} bytes)`);
  }
  t.equal(up.count('GET', `/blobs/${blob.digest}`), 1, 'one upstream GET');
  t.notOk(existsSync(blobFile(dataDir, blob.digest)), 'nothing committed');
  const deadline = Date.now() + 5000;
  while ((await adminQuery(`SELECT 1 FROM ${quoteIdent(schema)}.fill_leases`)).rowCount !== 0 && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  t.equal((await adminQuery(`SELECT 1 FROM ${quoteIdent(schema)}.fill_leases`)).rowCount, 0, 'the lease is released: the next request starts over');
});

t.test('a ranged request on another node while the fill runs: the range, streamed from the filling node', async (t) => {
  const blob = contentEntry(randomBytes(2 * 1024 * 1024));
  const up = await startFaultUpstream(t, { manifests: [], blobs: [blob] });
  const { nodes } = await cluster(t, up.url, 2);
  let release!: () => void;
  const until = new Promise<void>((resolve) => (release = resolve));
  t.teardown(() => release());
  up.setFault({ kind: 'hold', afterBytes: 1024 * 1024, until, match: blob.digest });
  const path = `/v2/library/app/blobs/${blob.digest}`;
  const filling = download(`${nodes[0]!.url}${path}`);
  await filling.first;
  const ranged = download(`${nodes[1]!.url}${path}`, { range: 'bytes=1000-1999' });
  const result = await ranged.done;
  t.equal(result.status, 206, 'answered before the fill ends (the range is already there)');
  t.equal(result.headers['content-range'], `bytes 1000-1999/${blob.body.length}`);
  t.same(result.body, blob.body.subarray(1000, 2000));
  const past = download(`${nodes[1]!.url}${path}`, { range: `bytes=${blob.body.length}-` });
  t.equal((await past.done).status, 416, 'a range past the end: 416, as on the filling node');
  release();
  t.equal(digestOf((await filling.done).body), blob.digest);
  t.equal(up.count('GET', `/blobs/${blob.digest}`), 1);
});

t.test('the internal fill endpoint refuses requests without the cluster secret', async (t) => {
  const blob = contentEntry(randomBytes(1024));
  const up = await startFaultUpstream(t, { manifests: [], blobs: [blob] });
  const { nodes } = await cluster(t, up.url, 1);
  const path = `/internal/fills/${blob.digest}`;
  const none = await raw(nodes[0]!.url, 'GET', path);
  t.equal(none.status, 401, 'no Authorization: 401');
  t.match(JSON.parse(none.body.toString()), { errors: [{ code: 'UNAUTHORIZED' }] });
  t.equal((await raw(nodes[0]!.url, 'GET', path, { headers: { authorization: 'Bearer not-the-secret' } })).status, 401, 'a wrong secret: 401');
  t.equal((await raw(nodes[0]!.url, 'GET', path, { headers: { authorization: SECRET } })).status, 401, 'the secret without Bearer: 401');
  t.equal((await raw(nodes[0]!.url, 'GET', path, { headers: { authorization: `Bearer ${SECRET}` } })).status, 404, 'the secret: answered (no fill runs here)');
  t.equal(up.requests.length, 0, 'nothing asked of the upstream');

  const plain = await startWharf(t, { upstreams: [{ name: 'hub', url: up.url, registry: 'hub.test', default: true }] });
  t.equal((await raw(plain.url, 'GET', path, { headers: { authorization: `Bearer ${SECRET}` } })).status, 404, 'no cluster configured: no such endpoint');
});
