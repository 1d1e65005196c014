// `wharf serve` on a radosgw bucket writes nothing to stderr but log lines: the AWS SDK's process
// warning about Node versions (NodeVersionSupportWarning, printed once a client is made) is switched off
// by the entry point. The node pushes and serves a blob (the S3 client and the store's own GETs used),
// then stops on SIGTERM with exit status 0.
import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import t from 'tap';
import { stringify } from 'yaml';
import { CreateBucketCommand } from '@aws-sdk/client-s3';
import { startCeph } from '../helpers/ceph.js';
import { raw } from '../helpers/http.js';

t.setTimeout(120_000);
const root = fileURLToPath(new URL('../../', import.meta.url));

t.test('wharf serve with storage.s3: stderr holds log lines only, no SDK warning', async (t) => {
  const rgw = await startCeph(t);
  await rgw.client().send(new CreateBucketCommand({ Bucket: 'quiet' }));
  const dir = mkdtempSync(join(tmpdir(), 'wharf-s3-stderr-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const config = join(dir, 'wharf.yaml');
  writeFileSync(
    config,
    stringify({
      storage: { path: join(dir, 'data'), s3: { endpoint: rgw.endpoint, region: rgw.region, bucket: 'quiet', forcePathStyle: true, accessKeyId: rgw.accessKeyId, secretAccessKeyEnv: 'TEST_S3_SECRET' } },
      log: { level: 'info' },
    }),
  );
  // Without any AWS_ or WHARF_ variable of the test's: the process sets what it needs itself.
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('WHARF_') && !k.startsWith('AWS_')));
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/main.ts', 'serve', '--config', config, '--listen', '127.0.0.1:0'], {
    cwd: root,
    env: { ...env, TEST_S3_SECRET: rgw.secretAccessKey },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  t.teardown(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  let stdout = '';
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (s: string) => (stderr += s));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const url = await new Promise<string>((resolve, reject) => {
    child.stdout.setEncoding('utf8').on('data', (s: string) => {
      stdout += s;
      const m = /listening on (http:\/\/127\.0\.0\.1:\d+)/.exec(stdout);
      if (m) resolve(m[1]!);
    });
    void exited.then((code) => reject(new Error(`wharf serve exited (${code}) before listening\n${stdout}\n${stderr}`)));
  });

  const blob = randomBytes(300 * 1024);
  const digest = `sha256:${createHash('sha256').update(blob).digest('hex')}`;
  const pushed = await raw(url, 'POST', `/v2/quiet/blobs/uploads/?digest=${digest}`, { headers: { 'content-type': 'application/octet-stream' }, body: blob });
  t.equal(pushed.status, 201, pushed.text);
  const pulled = await raw(url, 'GET', `/v2/quiet/blobs/${digest}`);
  t.equal(pulled.status, 200);
  t.ok(pulled.body.equals(blob), 'the blob, served from the bucket');

  child.kill('SIGTERM');
  t.equal(await exited, 0, 'stopped cleanly');
  const notLog = stderr.split('\n').filter((line) => {
    if (line.trim() === '') return false;
    try {
      return typeof JSON.parse(line) !== 'object';
    } catch {
      return true;
    }
  });
  t.same(notLog, [], 'every line on stderr is a JSON log line');
  t.notMatch(stderr, /Warning/, 'no process warning');
  t.match(stdout, /listening on/, 'the log was written');
});
