// Two `wharf serve` processes on one PostgreSQL schema and one blob store (a shared directory, a bucket), with cluster leases
// renewed every 100 ms and expiring after 1 s: the node filling a cold blob is SIGKILLed part way.
// Its own client is cut; the other node's client, which was streaming from it, carries on once the
// dead node's lease has expired (the other node takes the fill over: from the bytes the dead node
// had stored on a shared directory, from the first byte on a bucket) and gets the blob's bytes; what
// was committed before stays served.
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import t from 'tap';
import { stringify } from 'yaml';
import { quoteIdent } from '../../src/metadata/postgres-database.js';
import { ensureBuilt } from '../helpers/build.js';
import { contentEntry, startFaultUpstream } from '../helpers/fault-upstream.js';
import { digestOf, raw } from '../helpers/http.js';
import { adminQuery, POSTGRES_URL, tempSchema } from '../helpers/postgres.js';
import { download } from '../helpers/download.js';
import { startCeph } from '../helpers/ceph.js';
import { CreateBucketCommand } from '@aws-sdk/client-s3';
import type { TestObject } from '../contract/contract-helpers.js';

const root = fileURLToPath(new URL('../../', import.meta.url));
const BIN = join(root, 'bin', 'wharf.js');
t.setTimeout(180_000);
t.before(() => ensureBuilt((m) => t.comment(m)));

/** `wharf serve` on 127.0.0.1:0 with `config`; resolves with its URL once it listens. */
async function serve(t: TestObject, config: string, env: Record<string, string> = {}): Promise<{ url: string; child: ChildProcess; stderr: () => string }> {
  const clean = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('WHARF_') && !k.startsWith('AWS_')));
  const child = spawn(process.execPath, [BIN, 'serve', '--config', config, '--listen', '127.0.0.1:0'], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...clean, ...env } });
  t.teardown(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  let stdout = '';
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`serve did not start in 30 s: ${stderr}`)), 30_000);
    child.once('exit', (code) => reject(new Error(`serve exited ${code}: ${stderr}`)));
    child.stdout.on('data', (d: Buffer) => {
      stdout += d.toString();
      const m = /listening on (http:\/\/[^\s"]+)/.exec(stdout);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]!);
      }
    });
  });
  return { url, child, stderr: () => stderr };
}

/** Where the blobs are: the shared data directory, or a bucket (each node then has a scratch directory of its own). */
interface Shared {
  /** storage for node `i`. */
  storage: (dir: string, i: number) => Record<string, unknown>;
  env?: Record<string, string>;
  /** Bytes stored so far by the fill's writer, where a fill taken over goes on from them. */
  stored?: (dir: string) => Promise<number>;
}

async function takeover(t: TestObject, shared: Shared): Promise<void> {
  const early = contentEntry(randomBytes(64 * 1024));
  const blob = contentEntry(randomBytes(4 * 1024 * 1024));
  const up = await startFaultUpstream(t, { manifests: [], blobs: [early, blob] }, { supportsRange: true });
  const schema = await tempSchema(t);
  const dir = mkdtempSync(join(tmpdir(), 'wharf-takeover-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(join(dir, 'secret'), 'the-secret-this-cluster-shares\n');
  const configs = [0, 1].map((i) => {
    const config = join(dir, `wharf-${i}.yaml`);
    writeFileSync(
      config,
      stringify({
      storage: shared.storage(dir, i),
      log: { level: 'warn' },
      gc: { interval: '0s' },
      upstreams: [{ name: 'hub', url: up.url, registry: 'hub.test', default: true }],
      metadata: { postgres: { url: `${POSTGRES_URL}?options=${encodeURIComponent(`-c search_path=${schema}`)}` } },
      cluster: { secretFile: join(dir, 'secret'), heartbeat: '100ms', leaseTimeout: '1s' },
      }),
    );
    return config;
  });
  const a = await serve(t, configs[0]!, shared.env);
  const b = await serve(t, configs[1]!, shared.env);

  const earlyPath = `/v2/library/app/blobs/${early.digest}`;
  t.equal(digestOf((await raw(a.url, 'GET', earlyPath)).body), early.digest, 'a blob committed through a before it dies');

  let release!: () => void;
  const until = new Promise<void>((resolve) => (release = resolve));
  t.teardown(() => release());
  // The first GET of the blob sends 1 MiB and then nothing: a is caught mid-fill.
  up.setFault({ kind: 'hold', afterBytes: 1024 * 1024, until, match: blob.digest, times: 1 });
  const path = `/v2/library/app/blobs/${blob.digest}`;
  const onA = download(`${a.url}${path}`);
  await onA.first;
  const lease = await adminQuery(`SELECT url FROM ${quoteIdent(schema)}.fill_leases WHERE digest = $1`, [blob.digest]);
  t.same(lease.rows, [{ url: a.url }], 'a holds the lease, under the URL it listens on');
  const onB = download(`${b.url}${path}`);
  await onB.first;
  t.equal(up.count('GET', `/blobs/${blob.digest}`), 1, "b's client streams from a: no second GET yet");

  if (shared.stored) {
    // The held MiB reaches a's writer (an upload session of the shared store) before the kill.
    const stored = shared.stored;
    for (const deadline = Date.now() + 10_000; (await stored(dir)) < 1024 * 1024 && Date.now() < deadline; ) await new Promise((resolve) => setTimeout(resolve, 20));
    t.equal(await stored(dir), 1024 * 1024, "a's fill stored the MiB it got");
  }

  const killedAt = Date.now();
  a.child.kill('SIGKILL');
  const cut = await onA.done;
  t.notOk(cut.complete, "a's own client is cut");
  t.ok(cut.body.length < blob.body.length, 'and never got the whole blob');

  const carried = await onB.done;
  const took = Date.now() - killedAt;
  t.equal(carried.status, 200);
  t.ok(carried.complete, "b's client gets the whole body");
  t.equal(digestOf(carried.body), blob.digest, "b's client gets the blob's bytes");
  t.ok(took < 5000, `carried on ${took} ms after the kill (lease timeout 1 s)`);
  const gets = up.requests.filter((r) => r.method === 'GET' && r.path.includes(`/blobs/${blob.digest}`));
  t.equal(gets.length, 2, 'one GET by the dead node, one by the node that took over');
  if (shared.stored) t.equal(gets[1]?.headers.range, 'bytes=1048576-', 'which went on after the bytes the dead node had stored');
  else t.equal(gets[1]?.headers.range, undefined, 'which started again from the first byte');

  t.equal(digestOf((await raw(b.url, 'GET', path)).body), blob.digest, 'b serves it from the store');
  t.equal(digestOf((await raw(b.url, 'GET', earlyPath)).body), early.digest, 'what a committed before dying is still served');
  t.equal(up.count('GET', '/blobs/'), 3, 'neither from the upstream');
  const deadline = Date.now() + 5000;
  while ((await adminQuery(`SELECT 1 FROM ${quoteIdent(schema)}.fill_leases`)).rowCount !== 0 && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  t.equal((await adminQuery(`SELECT 1 FROM ${quoteIdent(schema)}.fill_leases`)).rowCount, 0, 'no lease left');
}

t.test('on a shared directory: the filling node SIGKILLed mid-fill, its lease expires, the other node takes the fill over from the stored bytes and its client gets the right bytes', async (t) => {
  await takeover(t, {
    storage: (dir) => ({ path: join(dir, 'data') }),
    stored: async (dir) => {
      const uploads = join(dir, 'data', 'uploads');
      return readdirSync(uploads)
        .filter((f) => !f.startsWith('.'))
        .reduce((sum, f) => sum + statSync(join(uploads, f)).size, 0);
    },
  });
});

t.test('on a bucket: the same, the node taking over starting again from the first byte (a fill on S3 keeps no session state)', async (t) => {
  const rgw = await startCeph(t);
  const s3 = rgw.client();
  await s3.send(new CreateBucketCommand({ Bucket: 'cache' }));
  await takeover(t, {
    storage: (dir, i) => ({
      path: join(dir, `scratch-${i}`),
      s3: { endpoint: rgw.endpoint, region: rgw.region, bucket: 'cache', prefix: 'wharf', forcePathStyle: true, accessKeyId: rgw.accessKeyId, secretAccessKeyEnv: 'TEST_S3_SECRET' },
    }),
    env: { TEST_S3_SECRET: rgw.secretAccessKey },
  });
});
