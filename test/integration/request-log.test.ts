// The log of a real server (pino output captured from buildApp): one line per request with how it
// ended, including hijacked blob replies and responses that never finish; a warn line for a failed
// fill naming the upstream, the digest and the reason; a client going away is not an error.
import { execFile } from 'node:child_process';
import { request as httpRequest } from 'node:http';
import { promisify } from 'node:util';
import t from 'tap';
import { contentEntry, startFaultUpstream } from '../helpers/fault-upstream.js';
import { LEVEL, LogCapture } from '../helpers/log-capture.js';
import { bulkBytes } from '../helpers/oci-layout.js';
import { req, sha } from '../helpers/proxy-http.js';
import { startWharf } from '../helpers/server.js';

t.setTimeout(60_000);

const execFileP = promisify(execFile);

async function wharfWithUpstream(t: Parameters<typeof startWharf>[0], blob: { digest: string; body: Buffer }) {
  const up = await startFaultUpstream(t, { manifests: [], blobs: [blob] });
  const logs = new LogCapture();
  const w = await startWharf(
    t,
    { local: { namespaces: ['local'] }, upstreams: [{ name: 'faulty', url: up.url, registry: 'faults.test', default: true }] },
    { logs },
  );
  return { up, w, logs };
}

async function push(url: string, repo: string, bytes: Buffer): Promise<void> {
  const res = await req(`${url}/v2/${repo}/blobs/uploads/?digest=${sha(bytes)}`, { method: 'POST', body: bytes });
  if (res.status !== 201) throw new Error(`push: ${res.status} ${res.text}`);
}

const noErrors = (logs: LogCapture) => logs.lines.filter((l) => l.level >= LEVEL.error);

t.test('every request gets one line, a blob download through a hijacked reply too', async (t) => {
  const blob = contentEntry(bulkBytes('log-upstream', 300_000));
  const { w, logs } = await wharfWithUpstream(t, blob);
  const local = bulkBytes('log-local', 200_000);
  await push(w.url, 'local/app', local);
  t.equal((await req(`${w.url}/v2/local/app/blobs/${sha(local)}`)).status, 200);
  t.equal((await req(`${w.url}/v2/library/app/blobs/${blob.digest}`)).status, 200, 'a pull-through fill');
  t.equal((await req(`${w.url}/v2/local/app/blobs/sha256:${'0'.repeat(64)}`)).status, 404);
  for (const [path, status] of [
    [`/v2/local/app/blobs/${sha(local)}`, 200],
    [`/v2/library/app/blobs/${blob.digest}`, 200],
    [`/v2/local/app/blobs/sha256:${'0'.repeat(64)}`, 404],
  ] as const) {
    const line = await logs.waitFor((l) => l.msg === 'request' && l.url === path);
    t.equal(logs.requests(path).length, 1, `one line for ${path}`);
    t.match(line, { level: LEVEL.info, method: 'GET', status, outcome: 'completed' });
  }
  t.match(logs.requests(`/v2/local/app/blobs/sha256:${'0'.repeat(64)}`)[0], { error: { code: 'BLOB_UNKNOWN' } }, 'an error response names its code');
  t.same(noErrors(logs), []);
});

t.test('a fill that fails: its client\'s line says cut, and a warn line names the upstream, the digest and the reason', async (t) => {
  const blob = contentEntry(bulkBytes('log-corrupt', 300_000));
  const { up, w, logs } = await wharfWithUpstream(t, blob);
  up.setFault({ kind: 'corrupt', match: '/blobs/' });
  const path = `/v2/library/app/blobs/${blob.digest}`;
  const res = await fetch(`${w.url}${path}`);
  await t.rejects(res.arrayBuffer(), 'the client is cut');
  const fill = await logs.waitFor((l) => l.component === 'fill' && l.event === 'failed');
  t.match(fill, { level: LEVEL.warn, upstream: 'faulty', digest: blob.digest, reason: /hashes to/ });
  const line = await logs.waitFor((l) => l.msg === 'request' && l.url === path);
  t.match(line, { level: LEVEL.info, status: 200, outcome: 'cut', reason: /hashes to/ });
  t.equal(logs.requests(path).length, 1);
  t.same(noErrors(logs), [], 'no error-level line: the warn says it all');
});

// A client in its own process (as curl is): GETs each path and closes the connection the moment
// the whole body has arrived; prints the bytes each download got. In this process the server's
// event loop would run the client too, and the race this checks could not happen.
const HANG_UP_CLIENT = `
const http = require('node:http');
const [url, count] = process.argv.slice(1);
(async () => {
  const got = [];
  for (let i = 0; i < Number(count); i++) {
    got.push(await new Promise((resolve, reject) => {
      const r = http.get(url, { agent: false }, (res) => {
        const length = Number(res.headers['content-length']);
        let n = 0;
        res.on('data', (chunk) => {
          n += chunk.length;
          if (n >= length) { r.destroy(); resolve(n); }
        });
      });
      r.on('error', () => undefined);
      r.once('close', () => reject(new Error('closed before the whole body')));
    }));
  }
  process.stdout.write(JSON.stringify(got));
})().catch((err) => { process.stderr.write(String(err)); process.exit(1); });
`;

async function getAndHangUp(url: string, count: number): Promise<number[]> {
  const { stdout } = await execFileP(process.execPath, ['-e', HANG_UP_CLIENT, url, String(count)], { timeout: 30_000 });
  return JSON.parse(stdout) as number[];
}

t.test('a client that hangs up right after the last byte got a completed download', async (t) => {
  const blob = contentEntry(bulkBytes('log-hangup-fill', 3 * 1024 * 1024));
  const { w, logs } = await wharfWithUpstream(t, blob);
  const local = bulkBytes('log-hangup', 8 * 1024 * 1024 + 17);
  await push(w.url, 'local/app', local);
  const paths = [`/v2/local/app/blobs/${sha(local)}`, `/v2/library/app/blobs/${blob.digest}`];
  for (const path of paths) {
    const size = path === paths[0] ? local.length : blob.body.length;
    t.same(await getAndHangUp(`${w.url}${path}`, 8), Array<number>(8).fill(size), 'every download got every byte');
    await logs.waitFor(() => logs.requests(path).length === 8);
    t.same(
      logs.requests(path).map((l) => l.outcome),
      Array<string>(8).fill('completed'),
      `${path === paths[0] ? 'a stored blob' : 'a filled blob'}: every download that delivered every byte is logged as completed`,
    );
  }
});

t.test('a client that goes away is an outcome, not an error', async (t) => {
  const blob = contentEntry(bulkBytes('log-gone', 1000));
  const { w, logs } = await wharfWithUpstream(t, blob);
  const big = bulkBytes('log-big', 16 * 1024 * 1024);
  await push(w.url, 'local/app', big);
  const { port } = new URL(w.url);

  // A download dropped after its first bytes.
  const download = `/v2/local/app/blobs/${sha(big)}`;
  await new Promise<void>((resolve, reject) => {
    const r = httpRequest({ host: '127.0.0.1', port, path: download }, (res) => {
      res.once('data', () => {
        r.destroy();
        resolve();
      });
    });
    r.on('error', () => undefined);
    r.once('close', resolve);
    r.setTimeout(10_000, () => reject(new Error('no response')));
    r.end();
  });
  t.match(await logs.waitFor((l) => l.msg === 'request' && l.url === download), { level: LEVEL.info, status: 200, outcome: 'client gone' });

  // An upload the client stops sending half-way.
  const started = await req(`${w.url}/v2/local/app/blobs/uploads/`, { method: 'POST' });
  const location = new URL(started.headers.get('location')!, w.url);
  await new Promise<void>((resolve) => {
    const r = httpRequest({
      host: '127.0.0.1',
      port,
      method: 'PATCH',
      path: location.pathname + location.search,
      headers: { 'content-type': 'application/octet-stream', 'content-length': 1024 * 1024 },
    });
    r.on('error', () => undefined);
    r.once('close', resolve);
    r.write(Buffer.alloc(1000), () => setImmediate(() => r.destroy()));
  });
  const patch = await logs.waitFor((l) => l.msg === 'request' && l.method === 'PATCH');
  t.match(patch, { level: LEVEL.info, outcome: 'client gone' });
  // The upload's failure reaches the error handler after the line: wait until the session's lock is free.
  t.equal((await req(location.href)).status, 204, 'the session is still there');
  t.same(noErrors(logs), [], 'nothing at error level, no stack');
  t.same(logs.lines.filter((l) => l.level >= LEVEL.warn && l.msg.startsWith('no auth configured') === false).map((l) => l.msg), [], 'not even a warning');
});
