// Deterministic OCI image layouts (image-spec image-layout.md) for end-to-end tests with real clients.
// Everything is derived from a seed: the same seed gives the same bytes, hence the same digests.
import { createCipheriv, createHash } from 'node:crypto';
import { mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';

export const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
export const OCI_INDEX = 'application/vnd.oci.image.index.v1+json';
export const OCI_CONFIG = 'application/vnd.oci.image.config.v1+json';
export const OCI_LAYER_GZIP = 'application/vnd.oci.image.layer.v1.tar+gzip';
export const REF_NAME = 'org.opencontainers.image.ref.name';

export interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
  platform?: { architecture: string; os: string; variant?: string };
  annotations?: Record<string, string>;
}

export interface BuiltImage {
  /** The manifest descriptor (as listed in index.json or in a parent index). */
  descriptor: Descriptor;
  manifestBytes: Buffer;
  config: Descriptor;
  layers: Descriptor[];
  /** Every blob the image consists of: manifest, config and layers. */
  blobs: string[];
}

export interface BuiltIndex {
  descriptor: Descriptor;
  indexBytes: Buffer;
  children: BuiltImage[];
  /** The index itself and every blob of every child. */
  blobs: string[];
}

export function sha256(data: Buffer | string): string {
  return 'sha256:' + createHash('sha256').update(data).digest('hex');
}

/** A deterministic byte stream: SHA-256 in counter mode over the seed. */
export class Prng {
  private counter = 0;
  constructor(private readonly seed: string) {}

  bytes(n: number): Buffer {
    const out = Buffer.alloc(n);
    let off = 0;
    while (off < n) {
      const block = createHash('sha256').update(`${this.seed}/${this.counter++}`).digest();
      off += block.copy(out, off, 0, Math.min(block.length, n - off));
    }
    return out;
  }

  int(min: number, max: number): number {
    return min + (this.bytes(4).readUInt32BE(0) % (max - min + 1));
  }
}

/**
 * `n` deterministic pseudo-random bytes from `seed`, fast enough for large layers (AES-256-CTR
 * keystream keyed by the seed's SHA-256).
 */
export function bulkBytes(seed: string, n: number): Buffer {
  const key = createHash('sha256').update(`bulk/${seed}`).digest();
  return createCipheriv('aes-256-ctr', key, Buffer.alloc(16, 0)).update(Buffer.alloc(n, 0));
}

function octal(value: number, width: number): string {
  // width - 1 octal digits followed by NUL.
  return value.toString(8).padStart(width - 1, '0') + '\0';
}

/** A POSIX ustar archive of one regular file: header, data padded to 512, two zero blocks. */
export function tarOneFile(name: string, data: Buffer, mtime = 0): Buffer {
  if (Buffer.byteLength(name) > 100) throw new Error(`tar name too long: ${name}`);
  const header = Buffer.alloc(512, 0);
  header.write(name, 0, 100, 'utf8');
  header.write(octal(0o644, 8), 100, 8, 'ascii'); // mode
  header.write(octal(0, 8), 108, 8, 'ascii'); // uid
  header.write(octal(0, 8), 116, 8, 'ascii'); // gid
  header.write(octal(data.length, 12), 124, 12, 'ascii'); // size
  header.write(octal(mtime, 12), 136, 12, 'ascii'); // mtime
  header.write('        ', 148, 8, 'ascii'); // checksum placeholder: 8 spaces
  header.write('0', 156, 1, 'ascii'); // typeflag: regular file
  header.write('ustar\0', 257, 6, 'ascii'); // magic
  header.write('00', 263, 2, 'ascii'); // version
  header.write('root', 265, 32, 'ascii'); // uname
  header.write('root', 297, 32, 'ascii'); // gname
  let sum = 0;
  for (const b of header) sum += b;
  header.write(sum.toString(8).padStart(6, '0') + '\0 ', 148, 8, 'ascii');
  const pad = (512 - (data.length % 512)) % 512;
  return Buffer.concat([header, data, Buffer.alloc(pad + 1024, 0)]);
}

/** Collects blobs and writes them, plus oci-layout and index.json, into a directory. */
export class OciLayoutWriter {
  private readonly blobs = new Map<string, Buffer>();
  private readonly refs: Descriptor[] = [];

  addBlob(data: Buffer, mediaType: string): Descriptor {
    const digest = sha256(data);
    this.blobs.set(digest, data);
    return { mediaType, digest, size: data.length };
  }

  /**
   * A single-platform image with `layerCount` gzip'd tar layers of random content. With
   * `layerSize`, each layer holds one file of exactly that many random bytes, gzip'd without
   * compression (level 0, so large layers build fast); the layer blob is slightly larger.
   */
  addImage(
    seed: string,
    opts: { layerCount?: number; architecture?: string; os?: string; layerSize?: number } = {},
  ): BuiltImage {
    const rng = new Prng(seed);
    const architecture = opts.architecture ?? 'amd64';
    const os = opts.os ?? 'linux';
    const layerCount = opts.layerCount ?? 3;
    const layers: Descriptor[] = [];
    const diffIds: string[] = [];
    const history: Array<Record<string, unknown>> = [];
    for (let i = 0; i < layerCount; i++) {
      const content =
        opts.layerSize === undefined ? rng.bytes(rng.int(1000, 40000)) : bulkBytes(`${seed}/${i}`, opts.layerSize);
      const tar = tarOneFile(`layer${i}/data-${seed.replace(/[^a-zA-Z0-9.-]/g, '_')}.bin`, content);
      diffIds.push(sha256(tar));
      layers.push(this.addBlob(gzipSync(tar, { level: opts.layerSize === undefined ? 6 : 0 }), OCI_LAYER_GZIP));
      history.push({ created: '2024-01-01T00:00:00Z', created_by: `wharf-test layer ${i}` });
    }
    const configJson = {
      created: '2024-01-01T00:00:00Z',
      architecture,
      os,
      config: { Env: ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'], Cmd: ['/bin/sh'] },
      rootfs: { type: 'layers', diff_ids: diffIds },
      history,
    };
    const config = this.addBlob(Buffer.from(JSON.stringify(configJson)), OCI_CONFIG);
    const manifest = {
      schemaVersion: 2,
      mediaType: OCI_MANIFEST,
      config,
      layers,
      annotations: { 'org.opencontainers.image.title': `wharf-test ${seed}` },
    };
    const manifestBytes = Buffer.from(JSON.stringify(manifest, null, 2));
    const md = this.addBlob(manifestBytes, OCI_MANIFEST);
    const descriptor: Descriptor = { ...md, platform: { architecture, os } };
    return {
      descriptor,
      manifestBytes,
      config,
      layers,
      blobs: [md.digest, config.digest, ...layers.map((l) => l.digest)],
    };
  }

  /** An image index over one image per platform. */
  addIndex(
    seed: string,
    platforms: Array<{ architecture: string; os: string }>,
    opts: { layerSize?: number } = {},
  ): BuiltIndex {
    const children = platforms.map((p, i) =>
      this.addImage(`${seed}/${p.os}/${p.architecture}`, { ...p, layerCount: 2 + i, ...opts }),
    );
    const index = {
      schemaVersion: 2,
      mediaType: OCI_INDEX,
      manifests: children.map((c) => c.descriptor),
      annotations: { 'org.opencontainers.image.title': `wharf-test ${seed}` },
    };
    const indexBytes = Buffer.from(JSON.stringify(index, null, 2));
    const descriptor = this.addBlob(indexBytes, OCI_INDEX);
    return {
      descriptor,
      indexBytes,
      children,
      blobs: [descriptor.digest, ...children.flatMap((c) => c.blobs)],
    };
  }

  /** Lists a manifest or index in index.json under a tag (org.opencontainers.image.ref.name). */
  tag(desc: Descriptor, name: string): void {
    const { mediaType, digest, size } = desc;
    this.refs.push({ mediaType, digest, size, annotations: { [REF_NAME]: name } });
  }

  write(dir: string): void {
    mkdirSync(join(dir, 'blobs', 'sha256'), { recursive: true });
    writeFileSync(join(dir, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }));
    for (const [digest, data] of this.blobs) {
      writeFileSync(join(dir, 'blobs', 'sha256', digest.slice('sha256:'.length)), data);
    }
    writeFileSync(
      join(dir, 'index.json'),
      JSON.stringify({ schemaVersion: 2, mediaType: OCI_INDEX, manifests: this.refs }, null, 2),
    );
  }
}

export interface TestLayout {
  dir: string;
  image: BuiltImage;
  index: BuiltIndex;
  /** Tags in index.json. */
  imageTag: string;
  indexTag: string;
}

/** A layout with a 3-layer linux/amd64 image (tag "app") and a linux/amd64 + linux/arm64 index (tag "multi"). */
export function writeTestLayout(dir: string, seed = 'wharf-e2e'): TestLayout {
  const w = new OciLayoutWriter();
  const image = w.addImage(`${seed}/app`, { layerCount: 3 });
  const index = w.addIndex(`${seed}/multi`, [
    { architecture: 'amd64', os: 'linux' },
    { architecture: 'arm64', os: 'linux' },
  ]);
  w.tag(image.descriptor, 'app');
  w.tag(index.descriptor, 'multi');
  w.write(dir);
  return { dir, image, index, imageTag: 'app', indexTag: 'multi' };
}

/** Reads a layout's blobs: digest -> bytes (digest taken from the file name). */
export function readLayoutBlobs(dir: string): Map<string, Buffer> {
  const out = new Map<string, Buffer>();
  const root = join(dir, 'blobs', 'sha256');
  for (const name of readdirSync(root)) out.set(`sha256:${name}`, readFileSync(join(root, name)));
  return out;
}

/** The descriptor index.json lists under a tag, or undefined. */
export function layoutRef(dir: string, name: string): Descriptor | undefined {
  const idx = JSON.parse(readFileSync(join(dir, 'index.json'), 'utf8')) as { manifests: Descriptor[] };
  return idx.manifests.find((m) => m.annotations?.[REF_NAME] === name);
}
