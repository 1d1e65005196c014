// End to end on S3: `wharf serve` with storage.s3 on a real S3 server (Ceph's RADOS Gateway, from
// test/helpers/ceph.ts, with its real 5 MiB part minimum), the config written as an operator writes
// it (the secret key from an environment variable), skopeo pushing and pulling. Once streaming
// blobs from the bucket, once redirecting blob GETs to presigned URLs that skopeo follows. A 20 MiB
// layer crosses the 16 MiB part size (a multipart upload, completed and copied to its digest's key);
// the small blobs are put whole.
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import t from 'tap';
import { stringify as toYaml } from 'yaml';
import { CreateBucketCommand, ListMultipartUploadsCommand, ListObjectsV2Command } from '@aws-sdk/client-s3';
import { startCeph } from '../helpers/ceph.js';
import { waitExit } from '../helpers/docker-registry.js';
import { OciLayoutWriter, layoutRef, readLayoutBlobs, type BuiltImage } from '../helpers/oci-layout.js';
import { tempDir } from '../helpers/server.js';
import { makeSkopeo } from '../helpers/skopeo.js';

t.setTimeout(300_000);

const repoRoot = fileURLToPath(new URL('../../', import.meta.url));
const BUCKET = 'wharf-e2e';
const SECRET_ENV = 'E2E_S3_SECRET_KEY';

const rgw = await startCeph(t);
t.comment(`ceph with radosgw answered S3 after ${rgw.startMs} ms`);
const s3 = rgw.client();
await s3.send(new CreateBucketCommand({ Bucket: BUCKET }));

const root = tempDir('wharf-s3-e2e-');
t.teardown(() => rmSync(root, { recursive: true, force: true }));
const skopeo = makeSkopeo(join(root, 'skopeo'));
const layout = join(root, 'src-layout');
const w = new OciLayoutWriter();
const images: Record<string, BuiltImage> = {
  big: w.addImage('wharf-e2e-s3/big', { layerCount: 1, layerSize: 20 * 1024 * 1024 }),
  small: w.addImage('wharf-e2e-s3/small', { layerCount: 3 }),
};
for (const [tag, image] of Object.entries(images)) w.tag(image.descriptor, tag);
w.write(layout);
const source = readLayoutBlobs(layout);
const sha256 = (b: Buffer): string => `sha256:${createHash('sha256').update(b).digest('hex')}`;

/** `wharf serve --config FILE` as a process; its URL once it says it listens; stopped at teardown. */
async function serve(t: Tap, config: unknown, env: Record<string, string>): Promise<string> {
  const file = join(root, `wharf-${Math.random().toString(36).slice(2)}.yaml`);
  writeFileSync(file, toYaml(config));
  const clean = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('WHARF_') && !k.startsWith('AWS_')));
  const child: ChildProcess = spawn(process.execPath, ['--import', 'tsx', 'src/main.ts', 'serve', '--config', file], {
    cwd: repoRoot,
    env: { ...clean, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stderr!.setEncoding('utf8').on('data', (s: string) => (stderr += s));
  t.teardown(async () => {
    child.kill('SIGTERM');
    if (!(await waitExit(child, 10_000))) child.kill('SIGKILL');
  });
  return new Promise<string>((resolve, reject) => {
    child.stdout!.setEncoding('utf8').on('data', (s: string) => {
      stdout += s;
      const m = /listening on (http:\/\/127\.0\.0\.1:\d+)/.exec(stdout);
      if (m) resolve(m[1]!);
    });
    child.once('exit', (code) => reject(new Error(`wharf serve exited (${code}) before listening\n${stdout}\n${stderr}`)));
  });
}

type Tap = Parameters<Parameters<typeof t.test>[0]>[0];

async function listKeys(prefix: string): Promise<string[]> {
  const out = await s3.send(new ListObjectsV2Command({ Bucket: BUCKET, Prefix: prefix }));
  return (out.Contents ?? []).map((o) => o.Key!);
}

for (const redirect of [false, true]) {
  t.test(`skopeo pushes to and pulls from wharf serve on S3 (redirect: ${redirect})`, async (t) => {
    const prefix = `e2e/redirect-${redirect}`;
    const data = join(root, `data-${redirect}`);
    const url = await serve(
      t,
      {
        listen: '127.0.0.1:0',
        log: { level: 'warn' },
        storage: {
          path: data,
          s3: { endpoint: rgw.endpoint, region: rgw.region, bucket: BUCKET, prefix, forcePathStyle: true, accessKeyId: rgw.accessKeyId, secretAccessKeyEnv: SECRET_ENV, redirect },
        },
      },
      { [SECRET_ENV]: rgw.secretAccessKey },
    );
    const host = new URL(url).host;

    for (const [tag, image] of Object.entries(images)) {
      const digestFile = join(root, `${tag}-${redirect}.digest`);
      await skopeo(['copy', '--quiet', '--dest-tls-verify=false', '--digestfile', digestFile, `oci:${layout}:${tag}`, `docker://${host}/team/app:${tag}`], { timeoutMs: 120_000 });
      t.equal(readFileSync(digestFile, 'utf8').trim(), image.descriptor.digest, `${tag}: pushed under its digest`);

      const out = join(root, `pulled-${tag}-${redirect}`);
      await skopeo(['copy', '--quiet', '--src-tls-verify=false', `docker://${host}/team/app:${tag}`, `oci:${out}:${tag}`], { timeoutMs: 120_000 });
      t.equal(layoutRef(out, tag)?.digest, image.descriptor.digest, `${tag}: pulled back with the pushed digest`);
      const pulled = readLayoutBlobs(out);
      const expected = [image.descriptor.digest, image.config.digest, ...image.layers.map((l) => l.digest)];
      t.same([...pulled.keys()].sort(), [...expected].sort(), `${tag}: every blob pulled`);
      for (const [digest, bytes] of pulled) t.ok(sha256(bytes) === digest && source.get(digest)?.equals(bytes), `${tag}: ${digest} byte-identical`);
    }

    const stored = await listKeys(`${prefix}/blobs/`);
    for (const image of Object.values(images)) {
      for (const d of [image.descriptor.digest, image.config.digest, ...image.layers.map((l) => l.digest)]) {
        t.ok(stored.includes(`${prefix}/blobs/sha256/${d.slice(7)}`), `${d} is in the bucket`);
      }
    }
    t.same(await listKeys(`${prefix}/uploads/`), [], 'no writer left in the bucket');
    t.same((await s3.send(new ListMultipartUploadsCommand({ Bucket: BUCKET, Prefix: `${prefix}/` }))).Uploads ?? [], [], 'no multipart upload left');
    t.notOk(existsSync(join(data, 'blobs')), 'no blob in the local directory');

    // A ranged GET of the big layer, across the first part boundary.
    const layer = images.big!.layers[0]!;
    const blobUrl = `${url}/v2/team/app/blobs/${layer.digest}`;
    const range = { start: 16 * 1024 * 1024 - 100, end: 16 * 1024 * 1024 + 99 };
    const want = source.get(layer.digest)!.subarray(range.start, range.end + 1);
    const head = await fetch(blobUrl, { method: 'HEAD' });
    t.equal(head.status, 200, 'HEAD is answered here');
    t.equal(Number(head.headers.get('content-length')), layer.size);
    const first = await fetch(blobUrl, { headers: { range: `bytes=${range.start}-${range.end}` }, redirect: 'manual' });
    if (redirect) {
      t.equal(first.status, 307, 'GET: a redirect');
      const location = first.headers.get('location') ?? '';
      t.ok(location.startsWith(`${rgw.endpoint}/${BUCKET}/${prefix}/blobs/sha256/`), 'to the object in the bucket');
      t.match(location, /X-Amz-Signature=/, 'presigned');
      const followed = await fetch(location, { headers: { range: `bytes=${range.start}-${range.end}` } });
      t.equal(followed.status, 206);
      t.ok(Buffer.from(await followed.arrayBuffer()).equals(want), 'the range, from the bucket');
    } else {
      t.equal(first.status, 206, 'GET: the range streamed from the bucket');
      t.equal(first.headers.get('content-range'), `bytes ${range.start}-${range.end}/${layer.size}`);
      t.ok(Buffer.from(await first.arrayBuffer()).equals(want));
    }
  });
}
