// The collector through HTTP: POST/GET /api/gc (admins when auth is on, 409 while a run is in
// progress), the gc.interval schedule, and a download that outlives the eviction of its blob.
import { createHash } from 'node:crypto';
import { existsSync, rmSync } from 'node:fs';
import { request } from 'node:http';
import bcrypt from 'bcryptjs';
import t from 'tap';
import { startWharf, tempDir } from '../helpers/server.js';
import { assertError, blobFile, digestOf, imageManifest, inject, OCI_MANIFEST, pushManifest } from '../helpers/http.js';
import { pushTestImage, startDockerRegistry } from '../helpers/docker-registry.js';
import { populateStore } from '../helpers/gc-fixture.js';
import { LogCapture, type LogLine } from '../helpers/log-capture.js';

const basic = (user: string, pw: string) => `Basic ${Buffer.from(`${user}:${pw}`).toString('base64')}`;
const GC_NOW = { gc: { grace: '0s', deleteUntagged: true, interval: '0s' } };

t.test('/api/gc with auth on: admins only; a dry run deletes nothing; the last runs are listed', async (t) => {
  const s = await startWharf(t, {
    ...GC_NOW,
    auth: {
      users: [
        { name: 'root', password: bcrypt.hashSync('root-pw', 4), groups: ['admin'] },
        { name: 'dev', password: bcrypt.hashSync('dev-pw', 4), groups: [] },
      ],
    },
  });
  const root = { authorization: basic('root', 'root-pw') };
  assertError(t, await inject(s.app, 'POST', '/api/gc'), 401, 'UNAUTHORIZED', 'anonymous');
  assertError(t, await inject(s.app, 'GET', '/api/gc'), 401, 'UNAUTHORIZED', 'anonymous list');
  assertError(t, await inject(s.app, 'POST', '/api/gc', { headers: { authorization: basic('dev', 'dev-pw') } }), 403, 'DENIED', 'not an admin');
  assertError(t, await inject(s.app, 'POST', '/api/gc?dryRun=maybe', { headers: root }), 400, 'INVALID_REQUEST');
  const dry = await inject(s.app, 'POST', '/api/gc?dryRun=true', { headers: root });
  t.equal(dry.status, 200, dry.text);
  t.equal((dry.json() as { dryRun: boolean }).dryRun, true);
  const runs = await inject(s.app, 'GET', '/api/gc', { headers: root });
  t.equal((runs.json() as { runs: unknown[] }).runs.length, 1, 'the admin sees the run');
});

t.test('/api/gc on an open registry: dry run, real run, run list, 409 while busy', async (t) => {
  const s = await startWharf(t, GC_NOW);
  const img = await imageManifest(s.app, 'local/app', 'a');
  const digest = await pushManifest(s.app, 'local/app', digestOf(img.body), img.body, OCI_MANIFEST);
  t.ok(existsSync(blobFile(s.dataDir, digest)));

  const dry = await inject(s.app, 'POST', '/api/gc?dryRun=true');
  t.equal(dry.status, 200, dry.text);
  const dryReport = dry.json() as Record<string, unknown>;
  t.equal(dryReport['dryRun'], true);
  t.equal(dryReport['manifestsDeleted'], 1);
  t.equal(dryReport['blobsDeleted'], 3, 'config, layer, manifest bytes');
  t.ok(existsSync(blobFile(s.dataDir, digest)), 'the dry run deleted nothing');

  const real = await inject(s.app, 'POST', '/api/gc');
  t.equal(real.status, 200, real.text);
  const report = real.json() as Record<string, unknown>;
  for (const k of ['manifestsDeleted', 'tagsDeleted', 'blobsDeleted', 'uploadsDeleted', 'bytesReclaimed', 'bytesKept', 'durationMs']) {
    t.type(report[k], 'number', k);
  }
  t.equal(report['blobsDeleted'], 3);
  t.equal(report['bytesReclaimed'], dryReport['bytesReclaimed']);
  t.notOk(existsSync(blobFile(s.dataDir, digest)), 'the real run did');
  t.equal((await inject(s.app, 'GET', `/v2/local/app/manifests/${digest}`)).status, 404);

  const runs = ((await inject(s.app, 'GET', '/api/gc')).json() as { runs: Array<Record<string, unknown>> }).runs;
  t.equal(runs.length, 2);
  t.equal(runs[0]?.['dryRun'], false, 'newest first');
  t.equal(runs[1]?.['dryRun'], true);

  // Two at once: one runs, the other is told to come back.
  await s.close();
  const big = tempDir('wharf-gc-api-');
  t.teardown(() => rmSync(big, { recursive: true, force: true }));
  await populateStore(big, { blobs: 20_000, manifests: 2_000 });
  const b = await startWharf(t, GC_NOW, { dataDir: big });
  const [one, two] = await Promise.all([inject(b.app, 'POST', '/api/gc'), inject(b.app, 'POST', '/api/gc')]);
  t.strictSame([one.status, two.status].sort(), [200, 409], 'one run at a time');
  const busy = one.status === 409 ? one : two;
  t.equal(busy.header('retry-after'), '10');
  t.match(busy.text, /in progress|another/);
});

t.test('the schedule runs the collector every gc.interval', async (t) => {
  const logs = new LogCapture();
  const s = await startWharf(t, { gc: { grace: '0s', deleteUntagged: true, interval: '1s' } }, { logs });
  const img = await imageManifest(s.app, 'local/app', 'scheduled');
  const digest = await pushManifest(s.app, 'local/app', digestOf(img.body), img.body, OCI_MANIFEST);
  // The collector logs its report after saving it: the run that took the manifest is then listed.
  const isRun = (l: LogLine) => l.msg === 'gc finished' && ((l.gc as { manifestsDeleted?: number } | undefined)?.manifestsDeleted ?? 0) >= 1;
  await logs.waitFor(isRun, 15_000);
  t.notOk(existsSync(blobFile(s.dataDir, digest)), 'collected without being asked');
  const runs = ((await inject(s.app, 'GET', '/api/gc')).json() as { runs: Array<{ manifestsDeleted: number }> }).runs;
  t.ok(runs.some((r) => r.manifestsDeleted >= 1), 'the scheduled run is listed');
});

t.test('a blob being downloaded when it is evicted finishes downloading correctly', async (t) => {
  const reg = await startDockerRegistry(t);
  const image = await pushTestImage(reg, 'library/evictme', 'v1', { seed: 'gc/evict', layerSize: 16 * 1024 * 1024 });
  const layer = image.blobs.reduce((a, b) => (b.size > a.size ? b : a));
  const s = await startWharf(t, {
    upstreams: [{ name: 'hub', url: reg.url, registry: 'docker.io', default: true }],
    gc: { grace: '0s', deleteUntagged: false, interval: '0s' },
    cache: { maxAge: '1ms' },
  });
  // Cache it: manifest and layer pulled once through Wharf.
  const m = await fetch(`${s.url}/v2/library/evictme/manifests/v1`, { headers: { accept: image.mediaType } });
  t.equal(m.status, 200);
  const first = Buffer.from(await (await fetch(`${s.url}/v2/library/evictme/blobs/${layer.digest}`)).arrayBuffer());
  t.equal(digestOf(first), layer.digest);
  const file = blobFile(s.dataDir, layer.digest);
  t.ok(existsSync(file), 'cached');

  // A slow client: reads the first chunk, then stops reading while the collector evicts.
  const hash = createHash('sha256');
  let received = 0;
  const done = new Promise<void>((resolve, reject) => {
    const url = new URL(`${s.url}/v2/library/evictme/blobs/${layer.digest}`);
    const req = request({ host: url.hostname, port: url.port, path: url.pathname, agent: false }, (res) => {
      t.equal(res.statusCode, 200);
      res.once('data', (chunk: Buffer) => {
        hash.update(chunk);
        received += chunk.length;
        res.pause();
        void (async () => {
          await new Promise((r) => setTimeout(r, 100)); // the pull's access time is not yet written
          const gc = await inject(s.app, 'POST', '/api/gc');
          const report = gc.json() as Record<string, number>;
          t.ok(report['evictedByAge']! >= 1, `evicted by age (${JSON.stringify(report)})`);
          t.ok(report['blobsDeleted']! >= 1, 'blob files removed');
          t.notOk(existsSync(file), 'the file is gone from the store');
          res.on('data', (c: Buffer) => {
            hash.update(c);
            received += c.length;
          });
          res.on('end', resolve);
          res.on('error', reject);
          res.resume();
        })().catch(reject);
      });
    });
    req.on('error', reject);
    req.end();
  });
  await done;
  t.equal(received, layer.size, 'every byte arrived');
  t.equal(`sha256:${hash.digest('hex')}`, layer.digest, 'and they are the right ones');
  // The next pull fetches it again from the upstream.
  const again = Buffer.from(await (await fetch(`${s.url}/v2/library/evictme/blobs/${layer.digest}`)).arrayBuffer());
  t.equal(digestOf(again), layer.digest);
});
