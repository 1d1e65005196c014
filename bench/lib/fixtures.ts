// Test content for the mirror benchmark: pseudo-random files written (and hashed) in one pass without
// holding them in memory, small distinct OCI images, pushes of both to the origin registry, and the
// same bytes laid out as files at the registry's URL paths for the static nginx.
import { createCipheriv, createHash } from 'node:crypto';
import { closeSync, mkdirSync, openSync, symlinkSync, writeFileSync, writeSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { pushMonolithic } from './clients.js';

export const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
const OCI_CONFIG = 'application/vnd.oci.image.config.v1+json';
const OCI_LAYER = 'application/vnd.oci.image.layer.v1.tar+gzip';

export interface BlobFile {
  file: string;
  size: number;
  digest: string;
}

const sha256 = (b: Buffer | string): string => `sha256:${createHash('sha256').update(b).digest('hex')}`;

/**
 * Writes `size` pseudo-random bytes (AES-128-CTR keystream of `seed`) to `file`, hashing as it goes.
 * With `chunkSize`, also writes the same bytes as chunk files `file.0`, `file.1`, ... (for PATCHes).
 */
export function writeRandomFile(file: string, size: number, seed: string, chunkSize?: number): BlobFile & { chunks: Array<{ file: string; size: number }> } {
  const key = createHash('sha256').update(seed).digest();
  const cipher = createCipheriv('aes-128-ctr', key.subarray(0, 16), key.subarray(16, 32));
  const zeros = Buffer.alloc(4 * 1024 * 1024);
  const hash = createHash('sha256');
  const fd = openSync(file, 'w');
  const chunks: Array<{ file: string; size: number }> = [];
  let chunkFd: number | undefined;
  try {
    for (let done = 0; done < size; ) {
      const n = Math.min(zeros.length, size - done);
      const block = cipher.update(zeros.subarray(0, n));
      hash.update(block);
      writeSync(fd, block);
      for (let off = 0; chunkSize && off < n; ) {
        const pos = done + off;
        if (pos % chunkSize === 0) {
          if (chunkFd !== undefined) closeSync(chunkFd);
          chunks.push({ file: `${file}.${chunks.length}`, size: Math.min(chunkSize, size - pos) });
          chunkFd = openSync(`${file}.${chunks.length - 1}`, 'w');
        }
        const take = Math.min(n - off, chunkSize - (pos % chunkSize));
        writeSync(chunkFd ?? -1, block, off, take);
        off += take;
      }
      done += n;
    }
  } finally {
    closeSync(fd);
    if (chunkFd !== undefined) closeSync(chunkFd);
  }
  return { file, size, digest: `sha256:${hash.digest('hex')}`, chunks };
}

export interface Image {
  repo: string;
  tag: string;
  digest: string;
  manifest: Buffer;
  blobs: Array<{ digest: string; bytes?: Buffer; file?: string; size: number }>;
}

/** An OCI image of a config and the given layers (small ones in memory, big ones as files). */
export function buildImage(repo: string, tag: string, layers: Array<{ bytes: Buffer } | BlobFile>): Image {
  const blobs = layers.map((l) => ('bytes' in l ? { digest: sha256(l.bytes), bytes: l.bytes, size: l.bytes.length } : { digest: l.digest, file: l.file, size: l.size }));
  const config = Buffer.from(
    JSON.stringify({ architecture: 'amd64', os: 'linux', config: {}, rootfs: { type: 'layers', diff_ids: blobs.map((b) => b.digest) }, history: [{ created_by: `bench ${repo}:${tag}` }] }),
  );
  const configDesc = { mediaType: OCI_CONFIG, digest: sha256(config), size: config.length };
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: OCI_MANIFEST,
      config: configDesc,
      layers: blobs.map((b) => ({ mediaType: OCI_LAYER, digest: b.digest, size: b.size })),
    }),
  );
  return { repo, tag, digest: sha256(manifest), manifest, blobs: [{ digest: configDesc.digest, bytes: config, size: config.length }, ...blobs] };
}

/** Pushes every blob (monolithic, files streamed by curl) and the manifest by tag. */
export async function pushImage(base: string, img: Image, tmpDir: string): Promise<void> {
  for (const b of img.blobs) {
    const head = await fetch(`${base}/v2/${img.repo}/blobs/${b.digest}`, { method: 'HEAD', signal: AbortSignal.timeout(30_000) });
    if (head.status === 200) continue;
    let file = b.file;
    if (!file) {
      file = join(tmpDir, `push-${b.digest.slice(7, 23)}`);
      writeFileSync(file, b.bytes ?? Buffer.alloc(0));
    }
    const r = await pushMonolithic(base, img.repo, file, b.size, b.digest);
    if (!r.ok) throw new Error(`push of ${b.digest} to ${img.repo}: ${r.detail}`);
  }
  const res = await fetch(`${base}/v2/${img.repo}/manifests/${img.tag}`, {
    method: 'PUT',
    headers: { 'content-type': OCI_MANIFEST },
    body: img.manifest,
    signal: AbortSignal.timeout(30_000),
  });
  await res.arrayBuffer();
  if (res.status !== 201) throw new Error(`manifest PUT ${img.repo}:${img.tag}: ${res.status}`);
}

/**
 * Lays `img` out under `root` as the static nginx serves it: v2/REPO/manifests/{TAG,DIGEST} files and
 * v2/REPO/blobs/DIGEST (symlinks to big files). Returns the manifest's URL paths.
 */
export function layOut(root: string, img: Image): string[] {
  const put = (rel: string, data: Buffer | { link: string }) => {
    const file = join(root, rel);
    mkdirSync(dirname(file), { recursive: true });
    if (Buffer.isBuffer(data)) writeFileSync(file, data);
    else symlinkSync(data.link, file);
  };
  for (const b of img.blobs) put(`v2/${img.repo}/blobs/${b.digest}`, b.bytes ?? { link: b.file ?? '' });
  const paths = [`/v2/${img.repo}/manifests/${img.tag}`, `/v2/${img.repo}/manifests/${img.digest}`];
  for (const p of paths) put(p.slice(1), img.manifest);
  return paths;
}
