// End to end with the real skopeo client (containers/image) against a Wharf on a real socket.
// skopeo must be installed (Debian/Ubuntu: apt-get install skopeo); CI installs it. A missing
// skopeo fails this file rather than skipping it.
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { startWharf, tempDir } from '../helpers/server.js';
import {
  OCI_INDEX,
  OCI_MANIFEST,
  layoutRef,
  readLayoutBlobs,
  sha256,
  writeTestLayout,
  type TestLayout,
} from '../helpers/oci-layout.js';
import { makeSkopeo, type Skopeo } from '../helpers/skopeo.js';

const DOCKER_MANIFEST = 'application/vnd.docker.distribution.manifest.v2+json';
const DOCKER_CONFIG = 'application/vnd.docker.container.image.v1+json';
const DOCKER_LAYER_GZIP = 'application/vnd.docker.image.rootfs.diff.tar.gzip';

t.setTimeout(600_000);

/**
 * The copied layout holds exactly `expected` blobs, each byte-for-byte equal to the source's, its
 * file name the sha256 of its bytes, and `ref` in its index.json names `digest`.
 */
function assertLayoutCopy(
  t: Test,
  src: Map<string, Buffer>,
  outDir: string,
  ref: string,
  digest: string,
  mediaType: string,
  expected: string[],
  stderr: string,
): void {
  const desc = layoutRef(outDir, ref);
  t.ok(desc, `index.json of ${outDir} lists ${ref}`, { stderr });
  t.equal(desc?.digest, digest, `pulled ${ref} has the pushed digest`, { stderr });
  t.equal(desc?.mediaType, mediaType, `pulled ${ref} media type`, { stderr });
  const out = readLayoutBlobs(outDir);
  t.same([...out.keys()].sort(), [...new Set(expected)].sort(), `pulled blob set`, { stderr });
  for (const [digest, bytes] of out) {
    t.equal(sha256(bytes), digest, `pulled blob ${digest} content matches its name`);
    const orig = src.get(digest);
    t.ok(orig && orig.equals(bytes), `pulled blob ${digest} byte-identical to the source`);
  }
}

// Pull in a fresh layout dir each time, so nothing left from an earlier copy can mask a difference.
let outCounter = 0;
function freshDir(root: string, name: string): string {
  const dir = join(root, `${name}-${++outCounter}`);
  rmSync(dir, { recursive: true, force: true });
  return dir;
}

t.test('skopeo against Wharf', async (t) => {
  const root = tempDir('wharf-skopeo-');
  t.teardown(() => rmSync(root, { recursive: true, force: true }));
  const skopeo: Skopeo = makeSkopeo(root);
  const blobInfoCache = `Using blob info cache at ${join(root, 'home', '.local', 'share', 'containers', 'cache')}`;

  // Fail, never skip, when skopeo is absent.
  const version = await skopeo(['--version']);
  t.match(version.stdout.toString('utf8'), /skopeo version \d+\.\d+/, 'skopeo is installed');

  const s = await startWharf(t);
  const host = new URL(s.url).host; // 127.0.0.1:PORT
  const layout: TestLayout = writeTestLayout(join(root, 'src-layout'), 'wharf-e2e-skopeo');
  const srcBlobs = readLayoutBlobs(layout.dir);
  const { image, index } = layout;
  const push = ['copy', '--quiet', '--dest-tls-verify=false'];
  const pull = ['copy', '--quiet', '--src-tls-verify=false'];

  await t.test('multi-layer image: push from an OCI layout, pull back byte-identical', async (t) => {
    const digestFile = join(root, 'app-v1.digest');
    const pushed = await skopeo([
      ...push, '--digestfile', digestFile,
      `oci:${layout.dir}:${layout.imageTag}`, `docker://${host}/local/app:v1`,
    ]);
    t.equal(readFileSync(digestFile, 'utf8').trim(), image.descriptor.digest, `pushed digest`, { stderr: pushed.stderr });

    const out = freshDir(root, 'pull-app');
    const pulled = await skopeo([...pull, `docker://${host}/local/app:v1`, `oci:${out}:v1`]);
    assertLayoutCopy(t, srcBlobs, out, 'v1', image.descriptor.digest, OCI_MANIFEST, image.blobs, pulled.stderr);
    const manifestFile = join(out, 'blobs', 'sha256', image.descriptor.digest.slice(7));
    t.ok(existsSync(manifestFile) && readFileSync(manifestFile).equals(image.manifestBytes), 'manifest bytes identical');
  });

  await t.test('inspect --raw returns the exact manifest bytes; inspect reports the digest', async (t) => {
    const raw = await skopeo(['inspect', '--raw', '--tls-verify=false', `docker://${host}/local/app:v1`]);
    t.ok(raw.stdout.equals(image.manifestBytes), `inspect --raw bytes identical`, { stderr: raw.stderr });

    const raw2 = await skopeo([
      'inspect', '--raw', '--tls-verify=false', `docker://${host}/local/app@${image.descriptor.digest}`,
    ]);
    t.ok(raw2.stdout.equals(image.manifestBytes), `inspect --raw by digest bytes identical`, { stderr: raw2.stderr });

    const cfg = await skopeo(['inspect', '--raw', '--config', '--tls-verify=false', `docker://${host}/local/app:v1`]);
    t.ok(cfg.stdout.equals(srcBlobs.get(image.config.digest)!), `inspect --raw --config bytes identical`, { stderr: cfg.stderr });

    const res = await skopeo([
      '--override-os', 'linux', '--override-arch', 'amd64',
      'inspect', '--tls-verify=false', `docker://${host}/local/app:v1`,
    ]);
    const info = JSON.parse(res.stdout.toString('utf8')) as {
      Digest: string; Architecture: string; Os: string; Layers: string[]; RepoTags: string[];
    };
    t.equal(info.Digest, image.descriptor.digest, `inspect Digest`, { stderr: res.stderr });
    t.equal(info.Architecture, 'amd64', 'inspect Architecture');
    t.equal(info.Os, 'linux', 'inspect Os');
    t.same(info.Layers, image.layers.map((l) => l.digest), 'inspect Layers');
    t.same(info.RepoTags, ['v1'], 'inspect RepoTags');
  });

  await t.test('list-tags lists both pushed tags', async (t) => {
    const pushed = await skopeo([...push, `oci:${layout.dir}:${layout.imageTag}`, `docker://${host}/local/app:v2`]);
    const res = await skopeo(['list-tags', '--tls-verify=false', `docker://${host}/local/app`]);
    const tags = JSON.parse(res.stdout.toString('utf8')) as { Repository: string; Tags: string[] };
    t.equal(tags.Repository, `${host}/local/app`, 'list-tags Repository', { stderr: pushed.stderr + res.stderr });
    t.same([...tags.Tags].sort(), ['v1', 'v2'], `list-tags Tags`, { stderr: res.stderr });
  });

  await t.test('copy to another repository of the same registry (cross-repo mount)', async (t) => {
    const copied = await skopeo([
      '--debug', 'copy', '--src-tls-verify=false', '--dest-tls-verify=false',
      `docker://${host}/local/app:v1`, `docker://${host}/other/app:v1`,
    ]);
    // containers/image remembers where it saw each blob (its blob info cache, in our temp HOME) and
    // mounts from there: POST /v2/other/app/blobs/uploads/?from=local%2Fapp&mount=<digest>.
    const log = copied.stderr;
    t.match(log, blobInfoCache, `the blob info cache is the isolated one`, { stderr: log });
    for (const l of image.layers) {
      const d = encodeURIComponent(l.digest);
      t.ok(
        log.includes(`/v2/other/app/blobs/uploads/?from=local%2Fapp&mount=${d}`) ||
          log.includes(`/v2/other/app/blobs/uploads/?mount=${d}&from=local%2Fapp`),
        `skopeo asked to mount layer ${l.digest} from local/app`, { stderr: log },
      );
      t.notOk(log.includes(`Upload of layer ${l.digest} complete`), `layer ${l.digest} was not re-uploaded`, { stderr: log });
    }
    t.equal(log.match(/\.\.\. mount OK/g)?.length, image.layers.length, `every layer mount succeeded`, { stderr: log });
    t.notMatch(log, /level=(error|warning)/, `no errors or warnings in the debug log`, { stderr: log });

    const out = freshDir(root, 'pull-other');
    const pulled = await skopeo([...pull, `docker://${host}/other/app:v1`, `oci:${out}:v1`]);
    assertLayoutCopy(t, srcBlobs, out, 'v1', image.descriptor.digest, OCI_MANIFEST, image.blobs, pulled.stderr);
    const raw = await skopeo(['inspect', '--raw', '--tls-verify=false', `docker://${host}/other/app:v1`]);
    t.ok(raw.stdout.equals(image.manifestBytes), `manifest bytes identical in other/app`, { stderr: raw.stderr });
  });

  await t.test('multi-arch index with --all: push and pull back byte-identical', async (t) => {
    const digestFile = join(root, 'multi.digest');
    const pushed = await skopeo([
      ...push, '--all', '--digestfile', digestFile,
      `oci:${layout.dir}:${layout.indexTag}`, `docker://${host}/local/multi:v1`,
    ]);
    t.equal(readFileSync(digestFile, 'utf8').trim(), index.descriptor.digest, `pushed index digest`, { stderr: pushed.stderr });

    const out = freshDir(root, 'pull-multi');
    const pulled = await skopeo([...pull, '--all', `docker://${host}/local/multi:v1`, `oci:${out}:v1`]);
    assertLayoutCopy(t, srcBlobs, out, 'v1', index.descriptor.digest, OCI_INDEX, index.blobs, pulled.stderr);

    const raw = await skopeo(['inspect', '--raw', '--tls-verify=false', `docker://${host}/local/multi:v1`]);
    t.ok(raw.stdout.equals(index.indexBytes), `inspect --raw of the index: bytes identical`, { stderr: raw.stderr });
    for (const child of index.children) {
      const c = await skopeo([
        'inspect', '--raw', '--tls-verify=false', `docker://${host}/local/multi@${child.descriptor.digest}`,
      ]);
      t.ok(c.stdout.equals(child.manifestBytes), `child ${child.descriptor.platform?.architecture} bytes identical`);
    }

    // Platform selection through the index.
    for (const child of index.children) {
      const arch = child.descriptor.platform!.architecture;
      const res = await skopeo([
        '--override-os', 'linux', '--override-arch', arch,
        'inspect', '--tls-verify=false', `docker://${host}/local/multi:v1`,
      ]);
      const info = JSON.parse(res.stdout.toString('utf8')) as { Digest: string; Architecture: string; Layers: string[] };
      t.equal(info.Architecture, arch, `inspect ${arch}: Architecture`, { stderr: res.stderr });
      t.same(info.Layers, child.layers.map((l) => l.digest), `inspect ${arch}: Layers`);
      // skopeo reports the digest of the manifest it fetched by tag: the index.
      t.equal(info.Digest, index.descriptor.digest, `inspect ${arch}: Digest`);
    }

    // Single-platform copy out of the index picks the arm64 child.
    const arm = index.children.find((c) => c.descriptor.platform?.architecture === 'arm64')!;
    const out2 = freshDir(root, 'pull-arm64');
    const one = await skopeo([
      '--override-os', 'linux', '--override-arch', 'arm64',
      ...pull, `docker://${host}/local/multi:v1`, `oci:${out2}:v1`,
    ]);
    assertLayoutCopy(t, srcBlobs, out2, 'v1', arm.descriptor.digest, OCI_MANIFEST, arm.blobs, one.stderr);
  });

  await t.test('--format v2s2: push a Docker schema 2 manifest and pull it back', async (t) => {
    const digestFile = join(root, 'docker.digest');
    const pushed = await skopeo([
      ...push, '--format', 'v2s2', '--digestfile', digestFile,
      `oci:${layout.dir}:${layout.imageTag}`, `docker://${host}/local/docker:v1`,
    ]);
    const digest = readFileSync(digestFile, 'utf8').trim();

    const raw = await skopeo(['inspect', '--raw', '--tls-verify=false', `docker://${host}/local/docker:v1`]);
    t.equal(sha256(raw.stdout), digest, 'stored manifest matches the pushed digest', { stderr: pushed.stderr + raw.stderr });
    const manifest = JSON.parse(raw.stdout.toString('utf8')) as {
      mediaType: string;
      config: { mediaType: string; digest: string };
      layers: Array<{ mediaType: string; digest: string; size: number }>;
    };
    t.equal(manifest.mediaType, DOCKER_MANIFEST, 'Docker schema 2 media type');
    t.equal(manifest.config.mediaType, DOCKER_CONFIG, 'Docker config media type');
    t.same(manifest.layers.map((l) => l.mediaType), image.layers.map(() => DOCKER_LAYER_GZIP), 'Docker layer types');
    t.same(manifest.layers.map((l) => l.digest), image.layers.map((l) => l.digest), 'layers unchanged by conversion');

    const res = await skopeo(['inspect', '--tls-verify=false', `docker://${host}/local/docker:v1`]);
    const info = JSON.parse(res.stdout.toString('utf8')) as { Digest: string };
    t.equal(info.Digest, digest, `inspect Digest`, { stderr: res.stderr });

    // Pull to a dir: layout, which keeps the manifest as is.
    const out = freshDir(root, 'pull-docker');
    const pulled = await skopeo([...pull, `docker://${host}/local/docker:v1`, `dir:${out}`]);
    t.ok(readFileSync(join(out, 'manifest.json')).equals(raw.stdout), `dir: manifest identical`, { stderr: pulled.stderr });
    const files = readdirSync(out).filter((f) => /^[0-9a-f]{64}$/.test(f));
    t.same(
      files.sort(),
      [manifest.config.digest, ...manifest.layers.map((l) => l.digest)].map((d) => d.slice(7)).sort(),
      'dir: holds config and layers',
    );
    for (const f of files) {
      const bytes = readFileSync(join(out, f));
      t.equal(createHash('sha256').update(bytes).digest('hex'), f, `dir: blob ${f} content matches`);
    }
    for (const l of image.layers) {
      t.ok(readFileSync(join(out, l.digest.slice(7))).equals(srcBlobs.get(l.digest)!), `layer ${l.digest} identical`);
    }
  });
});
