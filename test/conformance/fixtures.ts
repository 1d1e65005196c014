// Test content for the conformance workflows, generated fresh per run (the upstream suite's setup):
// one config + image manifest per workflow, a small gzipped tar layer, two random blobs (one to be
// pushed in chunks), referrer artifacts (config-typed, artifactType + empty config, an index),
// and an image manifest without layers. Every digest, including those inside descriptors, uses
// the run's algorithm.
import { createHash, randomBytes } from 'node:crypto';
import { gzipSync } from 'node:zlib';

export type Algorithm = 'sha256' | 'sha512';

export const MT = {
  manifest: 'application/vnd.oci.image.manifest.v1+json',
  index: 'application/vnd.oci.image.index.v1+json',
  config: 'application/vnd.oci.image.config.v1+json',
  layerGzip: 'application/vnd.oci.image.layer.v1.tar+gzip',
  empty: 'application/vnd.oci.empty.v1+json',
  octet: 'application/octet-stream',
} as const;

/** The empty JSON blob `{}` has well-known digests. */
export const EMPTY_JSON_DIGEST: Record<Algorithm, string> = {
  sha256: 'sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a',
  sha512:
    'sha512:27c74670adb75075fad058d5ceaf7b20c4e7786c83bae8a32f626f9782af34c9a33c2046ef60fd2a7878d378e29fec851806bbd9a67878f3a9f1cda4830763fd',
};

export const ARTIFACT_TYPE_A = 'application/vnd.example.conformance.alpha';
export const ARTIFACT_TYPE_B = 'application/vnd.example.conformance.beta';
export const ARTIFACT_TYPE_INDEX = 'application/vnd.example.conformance.bundle';
export const ANNOTATION_KEY = 'org.opencontainers.conformance.test';

export interface TestBlob {
  content: Buffer;
  digest: string;
  length: number;
}

export interface TestManifest extends TestBlob {
  mediaType: string;
}

export interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
  [extra: string]: unknown;
}

export function digestOf(bytes: Buffer | string, algorithm: Algorithm): string {
  return `${algorithm}:${createHash(algorithm).update(bytes).digest('hex')}`;
}

/** True when `value` names `bytes` under sha256 or sha512. */
export function isDigestOf(value: string | null, bytes: Buffer): boolean {
  return value !== null && (value === digestOf(bytes, 'sha256') || value === digestOf(bytes, 'sha512'));
}

function blob(content: Buffer, algorithm: Algorithm): TestBlob {
  return { content, digest: digestOf(content, algorithm), length: content.length };
}

/** Serialised the way the upstream suite does (tab-indented JSON), so bytes are not canonical-looking. */
function manifestBlob(doc: object, mediaType: string, algorithm: Algorithm): TestManifest {
  return { ...blob(Buffer.from(JSON.stringify(doc, null, '\t')), algorithm), mediaType };
}

/** A one-file ustar archive, gzipped: a real (tiny) image layer. */
function tarGzLayer(): Buffer {
  const name = 'conformance.txt';
  const data = Buffer.from(`layer content ${randomBytes(8).toString('hex')}\n`);
  const header = Buffer.alloc(512, 0);
  header.write(name, 0, 'ascii');
  header.write('0000644\0', 100, 'ascii'); // mode
  header.write('0000000\0', 108, 'ascii'); // uid
  header.write('0000000\0', 116, 'ascii'); // gid
  header.write(`${data.length.toString(8).padStart(11, '0')}\0`, 124, 'ascii'); // size
  header.write(`${Math.floor(Date.now() / 1000).toString(8).padStart(11, '0')}\0`, 136, 'ascii'); // mtime
  header.write('        ', 148, 'ascii'); // checksum placeholder
  header.write('0', 156, 'ascii'); // regular file
  header.write('ustar\0', 257, 'ascii');
  header.write('00', 263, 'ascii');
  let sum = 0;
  for (const b of header) sum += b;
  header.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 'ascii');
  const padded = Buffer.alloc(Math.ceil(data.length / 512) * 512, 0);
  data.copy(padded);
  return gzipSync(Buffer.concat([header, padded, Buffer.alloc(1024, 0)]));
}

export interface ChunkedBlob extends TestBlob {
  chunk1: Buffer;
  chunk2: Buffer;
  /** Content-Range values, inclusive on both ends, without a unit: "0-21". */
  chunk1Range: string;
  chunk2Range: string;
}

export function chunkedBlob(size: number, algorithm: Algorithm): ChunkedBlob {
  const content = randomBytes(size);
  const split = Math.floor(size / 2) + 1;
  return {
    ...blob(content, algorithm),
    chunk1: content.subarray(0, split),
    chunk2: content.subarray(split),
    chunk1Range: `0-${split - 1}`,
    chunk2Range: `${split}-${size - 1}`,
  };
}

export interface Fixtures {
  algorithm: Algorithm;
  /** One config per workflow slot (0 pull, 1 push, 2 discovery, 3 management, 4 referrers subject). */
  configs: TestBlob[];
  /** One image manifest per slot, each referencing its config and the layer. */
  manifests: TestManifest[];
  layer: TestBlob;
  /** An image manifest with an empty layer list (and no mediaType field), config = configs[1]. */
  emptyLayerManifest: TestManifest;
  blobA: TestBlob;
  blobB: ChunkedBlob;
  emptyJSON: TestBlob;
  refBlobA: TestBlob;
  refBlobB: TestBlob;
  /** Referrers of manifests[4]: artifact type carried by config.mediaType. */
  refsAConfig: TestManifest;
  refsBConfig: TestManifest;
  /** Referrers of manifests[4]: artifactType field, config = the empty JSON descriptor. */
  refsALayer: TestManifest;
  refsBLayer: TestManifest;
  /** Referrer of manifests[3], which is never pushed in the discovery workflow. */
  refsCLayer: TestManifest;
  /** An index with artifactType and a subject (manifests[4]), listing refsAConfig and refsALayer. */
  refsIndex: TestManifest;
  /** Expected annotation value for each referrer digest. */
  annotations: Map<string, string>;
  /** Expected artifactType of each referrer digest in a referrers response. */
  artifactTypes: Map<string, string>;
  /** A digest of content never pushed. */
  dummyDigest: string;
}

export function makeFixtures(algorithm: Algorithm): Fixtures {
  const configs: TestBlob[] = [];
  for (let i = 0; i < 5; i++) {
    const config = {
      author: `conformance-${randomBytes(8).toString('hex')}`, // unique digest per run and slot
      architecture: 'amd64',
      os: 'linux',
      rootfs: { type: 'layers', diff_ids: [] as string[] },
    };
    configs.push(blob(Buffer.from(JSON.stringify(config, null, '\t')), algorithm));
  }
  const layer = blob(tarGzLayer(), algorithm);
  const layerDesc = { mediaType: MT.layerGzip, digest: layer.digest, size: layer.length, newUnspecifiedField: null };

  // Config descriptors carry the config itself in `data`, plus a field no spec defines:
  // a registry must store and serve manifests with unknown fields untouched.
  const configDesc = (c: TestBlob) => ({
    mediaType: MT.config,
    digest: c.digest,
    size: c.length,
    data: c.content.toString('base64'),
    newUnspecifiedField: Buffer.from('unspecified').toString('base64'),
  });

  const manifests = configs.map((c) =>
    manifestBlob({ schemaVersion: 2, mediaType: MT.manifest, config: configDesc(c), layers: [layerDesc] }, MT.manifest, algorithm),
  );
  const configs1 = configs[1] as TestBlob;
  const emptyLayerManifest = manifestBlob({ schemaVersion: 2, config: configDesc(configs1), layers: [] }, MT.manifest, algorithm);

  const blobA = blob(randomBytes(42), algorithm);
  const blobB = chunkedBlob(42, algorithm);

  const emptyJSON = blob(Buffer.from('{}'), algorithm);
  const emptyDesc = { mediaType: MT.empty, digest: emptyJSON.digest, size: emptyJSON.length, newUnspecifiedField: null };

  const refBlobA = blob(Buffer.from(`alpha referrer payload ${randomBytes(4).toString('hex')}`), algorithm);
  const refBlobB = blob(Buffer.from(`beta referrer payload ${randomBytes(4).toString('hex')}`), algorithm);

  const subjectOf = (m: TestManifest) => ({ mediaType: MT.manifest, digest: m.digest, size: m.length, newUnspecifiedField: null });
  const m4 = manifests[4] as TestManifest;
  const m3 = manifests[3] as TestManifest;
  const annotations = new Map<string, string>();
  const artifactTypes = new Map<string, string>();

  const configArtifact = (type: string, payload: TestBlob, note: string) => {
    const m = manifestBlob(
      {
        schemaVersion: 2,
        mediaType: MT.manifest,
        config: { mediaType: type, digest: payload.digest, size: payload.length, newUnspecifiedField: null },
        layers: [emptyDesc],
        subject: subjectOf(m4),
        annotations: { [ANNOTATION_KEY]: note },
      },
      MT.manifest,
      algorithm,
    );
    annotations.set(m.digest, note);
    artifactTypes.set(m.digest, type);
    return m;
  };
  const layerArtifact = (type: string, payload: TestBlob, subject: TestManifest, note?: string) => {
    const doc: Record<string, unknown> = {
      schemaVersion: 2,
      mediaType: MT.manifest,
      artifactType: type,
      config: emptyDesc,
      layers: [{ mediaType: type, digest: payload.digest, size: payload.length, newUnspecifiedField: null }],
      subject: subjectOf(subject),
    };
    if (note !== undefined) doc.annotations = { [ANNOTATION_KEY]: note };
    const m = manifestBlob(doc, MT.manifest, algorithm);
    if (note !== undefined) annotations.set(m.digest, note);
    artifactTypes.set(m.digest, type);
    return m;
  };

  const refsAConfig = configArtifact(ARTIFACT_TYPE_A, refBlobA, 'config-typed artifact alpha');
  const refsBConfig = configArtifact(ARTIFACT_TYPE_B, refBlobB, 'config-typed artifact beta');
  const refsALayer = layerArtifact(ARTIFACT_TYPE_A, refBlobA, m4, 'artifactType artifact alpha');
  const refsBLayer = layerArtifact(ARTIFACT_TYPE_B, refBlobB, m4, 'artifactType artifact beta');
  const refsCLayer = layerArtifact(ARTIFACT_TYPE_B, refBlobB, m3);

  const refsIndex = manifestBlob(
    {
      schemaVersion: 2,
      mediaType: MT.index,
      artifactType: ARTIFACT_TYPE_INDEX,
      manifests: [
        { mediaType: MT.manifest, digest: refsAConfig.digest, size: refsAConfig.length, newUnspecifiedField: null },
        { mediaType: MT.manifest, digest: refsALayer.digest, size: refsALayer.length, newUnspecifiedField: null },
      ],
      subject: subjectOf(m4),
      annotations: { [ANNOTATION_KEY]: 'artifact index' },
    },
    MT.index,
    algorithm,
  );
  annotations.set(refsIndex.digest, 'artifact index');
  artifactTypes.set(refsIndex.digest, ARTIFACT_TYPE_INDEX);

  return {
    algorithm,
    configs,
    manifests,
    layer,
    emptyLayerManifest,
    blobA,
    blobB,
    emptyJSON,
    refBlobA,
    refBlobB,
    refsAConfig,
    refsBConfig,
    refsALayer,
    refsBLayer,
    refsCLayer,
    refsIndex,
    annotations,
    artifactTypes,
    dummyDigest: digestOf('hello world', algorithm),
  };
}
