// An upstream for the warm tests: a multi-platform index (linux/amd64 and linux/arm64) pushed to the
// reference registry, with a signature-like artifact whose subject is the index, pushed as clients push
// referrers to a registry without the referrers API: the manifest, and the referrers tag schema's index
// at the tag `sha256-<hex of the subject>` listing it.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { pushTestImage, type DockerRegistry, type PushedImage } from './docker-registry.js';
import { OCI_INDEX, OCI_MANIFEST, bulkBytes } from './oci-layout.js';
import { sha } from './proxy-http.js';

const OCI_EMPTY = 'application/vnd.oci.empty.v1+json';
export const SIGNATURE_TYPE = 'application/vnd.example.signature.v1';

export interface WarmUpstreamImage {
  index: PushedImage;
  /** Config and layers of each platform's image. */
  amd64: string[];
  arm64: string[];
  referrer: { digest: string; blobs: string[] };
  /** Every blob a full warm with referrers fetches. */
  allBlobs: string[];
  allBytes: number;
}

async function putBlob(r: DockerRegistry, repo: string, data: Buffer): Promise<string> {
  const start = await fetch(`${r.url}/v2/${repo}/blobs/uploads/`, { method: 'POST' });
  await start.arrayBuffer();
  if (start.status !== 202) throw new Error(`upload start at the upstream: ${start.status}`);
  const loc = new URL(start.headers.get('location') ?? '', r.url);
  loc.searchParams.set('digest', sha(data));
  const put = await fetch(loc.href, { method: 'PUT', body: data, headers: { 'content-type': 'application/octet-stream' } });
  await put.arrayBuffer();
  if (put.status !== 201) throw new Error(`blob upload at the upstream: ${put.status}`);
  return sha(data);
}

export async function putManifest(r: DockerRegistry, repo: string, reference: string, body: Buffer, mediaType: string): Promise<string> {
  const res = await fetch(`${r.url}/v2/${repo}/manifests/${reference}`, { method: 'PUT', body, headers: { 'content-type': mediaType } });
  const text = await res.text();
  if (res.status !== 201) throw new Error(`manifest put at the upstream: ${res.status} ${text}`);
  return sha(body);
}

/** Pushes the index as `repo:tag` and its signature; what a warm should bring into the cache. */
export async function pushWarmImage(r: DockerRegistry, repo: string, tag: string, seed: string): Promise<WarmUpstreamImage> {
  const index = await pushTestImage(r, repo, tag, { index: true, seed });
  const platformBlobs = (arch: string): string[] => {
    const child = index.children.find((c) => c.platform?.architecture === arch);
    if (!child) throw new Error(`no ${arch} child`);
    const m = JSON.parse(child.manifest.toString('utf8')) as { config: { digest: string }; layers: Array<{ digest: string }> };
    return [m.config.digest, ...m.layers.map((l) => l.digest)];
  };
  const empty = Buffer.from('{}');
  const signature = bulkBytes(`${seed}/signature`, 700);
  await putBlob(r, repo, empty);
  await putBlob(r, repo, signature);
  const artifact = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: OCI_MANIFEST,
      artifactType: SIGNATURE_TYPE,
      config: { mediaType: OCI_EMPTY, digest: sha(empty), size: empty.length },
      layers: [{ mediaType: 'application/vnd.example.signature.layer', digest: sha(signature), size: signature.length }],
      subject: { mediaType: OCI_INDEX, digest: index.manifestDigest, size: index.manifest.length },
    }),
  );
  const referrer = await putManifest(r, repo, sha(artifact), artifact, OCI_MANIFEST);
  const schemaIndex = Buffer.from(
    JSON.stringify({ schemaVersion: 2, mediaType: OCI_INDEX, manifests: [{ mediaType: OCI_MANIFEST, digest: referrer, size: artifact.length, artifactType: SIGNATURE_TYPE }] }),
  );
  await putManifest(r, repo, index.manifestDigest.replace(':', '-'), schemaIndex, OCI_INDEX);
  const sizes = new Map(index.blobs.map((b) => [b.digest, b.size]));
  sizes.set(sha(empty), empty.length);
  sizes.set(sha(signature), signature.length);
  const referrerBlobs = [sha(empty), sha(signature)];
  const allBlobs = [...platformBlobs('amd64'), ...platformBlobs('arm64'), ...referrerBlobs];
  return {
    index,
    amd64: platformBlobs('amd64'),
    arm64: platformBlobs('arm64'),
    referrer: { digest: referrer, blobs: referrerBlobs },
    allBlobs,
    allBytes: allBlobs.reduce((n, d) => n + (sizes.get(d) ?? 0), 0),
  };
}

/** Whether the blob store of a Wharf data directory holds `digest`. */
export const stored = (dataDir: string, digest: string): boolean => {
  const hex = digest.slice('sha256:'.length);
  return existsSync(join(dataDir, 'blobs', 'sha256', hex.slice(0, 2), hex));
};

export interface NdjsonEvent {
  type: string;
  [key: string]: unknown;
}

/** POSTs to /api/warm and reads the NDJSON stream to its end. */
export async function postWarm(url: string, body: unknown, headers: Record<string, string> = {}): Promise<{ status: number; contentType: string | null; events: NdjsonEvent[]; text: string }> {
  const res = await fetch(`${url}/api/warm`, {
    method: 'POST',
    body: typeof body === 'string' ? body : JSON.stringify(body),
    headers: { 'content-type': 'application/json', ...headers },
    signal: AbortSignal.timeout(120_000),
  });
  const text = await res.text();
  const events = res.status === 200 ? text.split('\n').filter(Boolean).map((l) => JSON.parse(l) as NdjsonEvent) : [];
  return { status: res.status, contentType: res.headers.get('content-type'), events, text };
}
