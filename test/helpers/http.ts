// Shared helpers for the route tests in test/http: requests through app.inject (light-my-request)
// or over a raw socket (node:http, the path sent byte for byte), the OCI error body check, digests,
// pushing blobs and manifests, and listing what a data directory holds.
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { join, relative } from 'node:path';
import type { FastifyInstance } from 'fastify';
import type { Test } from 'tap';

export type Algorithm = 'sha256' | 'sha512';

export const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
export const OCI_INDEX = 'application/vnd.oci.image.index.v1+json';
export const DOCKER_MANIFEST = 'application/vnd.docker.distribution.manifest.v2+json';
export const DOCKER_MANIFEST_LIST = 'application/vnd.docker.distribution.manifest.list.v2+json';
export const OCI_EMPTY = 'application/vnd.oci.empty.v1+json';
export const OCI_CONFIG = 'application/vnd.oci.image.config.v1+json';
export const OCI_LAYER = 'application/vnd.oci.image.layer.v1.tar+gzip';

export function digestOf(bytes: Buffer | string, algorithm: Algorithm = 'sha256'): string {
  return `${algorithm}:${createHash(algorithm).update(bytes).digest('hex')}`;
}

export interface Res {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
  text: string;
  /** A single header value (joined with ", " when repeated), undefined when absent. */
  header(name: string): string | undefined;
  /** All values of a header, one per header line. */
  headerValues(name: string): string[];
  json(): unknown;
}

function makeRes(status: number, rawHeaders: Record<string, unknown>, body: Buffer): Res {
  const headers: Record<string, string | string[] | undefined> = {};
  for (const [k, v] of Object.entries(rawHeaders)) {
    if (v === undefined) continue;
    headers[k.toLowerCase()] = Array.isArray(v) ? v.map(String) : String(v);
  }
  const text = body.toString('utf8');
  return {
    status,
    headers,
    body,
    text,
    header(name) {
      const v = headers[name.toLowerCase()];
      return Array.isArray(v) ? v.join(', ') : v;
    },
    headerValues(name) {
      const v = headers[name.toLowerCase()];
      return v === undefined ? [] : Array.isArray(v) ? v : [v];
    },
    json() {
      return JSON.parse(text) as unknown;
    },
  };
}

export interface ReqOptions {
  headers?: Record<string, string>;
  body?: Buffer | string;
}

/** A request through fastify's inject (no socket). Note: inject normalises `..` and `%2e%2e` in paths. */
export async function inject(app: FastifyInstance, method: string, url: string, opts: ReqOptions = {}): Promise<Res> {
  const res = await app.inject({
    method: method as 'GET',
    url,
    headers: opts.headers ?? {},
    ...(opts.body !== undefined ? { payload: opts.body } : {}),
  });
  return makeRes(res.statusCode, res.headers, res.rawPayload);
}

/** A request over a real socket with the path sent exactly as given (no URL normalisation). */
export function raw(baseUrl: string, method: string, path: string, opts: ReqOptions = {}): Promise<Res> {
  const { hostname, port } = new URL(baseUrl);
  const body = typeof opts.body === 'string' ? Buffer.from(opts.body) : opts.body;
  const headers: Record<string, string> = { ...(opts.headers ?? {}) };
  if (body !== undefined && !Object.keys(headers).some((h) => h.toLowerCase() === 'content-length')) {
    headers['content-length'] = String(body.length);
  }
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host: hostname, port: Number(port), method, path, headers, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        // Repeated headers stay separate: rawHeaders is [name, value, name, value, ...].
        const h: Record<string, string | string[]> = {};
        for (let i = 0; i < res.rawHeaders.length; i += 2) {
          const k = (res.rawHeaders[i] as string).toLowerCase();
          const v = res.rawHeaders[i + 1] as string;
          const prev = h[k];
          h[k] = prev === undefined ? v : Array.isArray(prev) ? [...prev, v] : [prev, v];
        }
        resolve(makeRes(res.statusCode ?? 0, h, Buffer.concat(chunks)));
      });
      res.on('error', reject);
    });
    req.setTimeout(30_000, () => req.destroy(new Error(`timeout: ${method} ${path}`)));
    req.on('error', reject);
    req.end(body);
  });
}

export interface OciErrorEntry {
  code: string;
  message: string;
  detail: unknown;
}

type Asserts = Pick<Test, 'equal' | 'ok' | 'fail'>;

/** Short description of an exchange for assertion diagnostics. */
export function describe(res: Res): Record<string, unknown> {
  return { status: res.status, headers: res.headers, body: res.text.length > 600 ? `${res.text.slice(0, 600)}…` : res.text };
}

/**
 * The body is the distribution-spec error body {"errors":[{code,message,detail}]}; returns the entries.
 * Fails the test (and returns []) when it is not.
 */
export function ociErrors(t: Asserts, res: Res, what = ''): OciErrorEntry[] {
  const label = what ? `${what}: ` : '';
  let doc: unknown;
  try {
    doc = res.json();
  } catch {
    t.fail(`${label}error body is JSON`, describe(res));
    return [];
  }
  const errors = (doc as { errors?: unknown })?.errors;
  if (!Array.isArray(errors) || errors.length === 0) {
    t.fail(`${label}error body is {"errors":[...]}`, describe(res));
    return [];
  }
  for (const e of errors as unknown[]) {
    const entry = e as Record<string, unknown>;
    const shaped =
      typeof entry === 'object' && entry !== null && typeof entry.code === 'string' && typeof entry.message === 'string' && 'detail' in entry;
    if (!shaped) {
      t.fail(`${label}each error has a string code, a string message and a detail`, describe(res));
      return [];
    }
  }
  return errors as OciErrorEntry[];
}

/** Status, OCI error body and (when given) the first error code of an error response. */
export function assertError(t: Asserts, res: Res, status: number, code: string | string[] | undefined, what = ''): void {
  const label = what ? `${what}: ` : '';
  t.equal(res.status, status, `${label}status ${status}`, describe(res));
  const errors = ociErrors(t, res, what);
  if (code === undefined) return;
  const codes = Array.isArray(code) ? code : [code];
  const got = errors[0]?.code;
  t.ok(got !== undefined && codes.includes(got), `${label}error code ${codes.join(' or ')} (got ${String(got)})`, describe(res));
}

/** An error answer to a HEAD: the status, and no body. */
export function assertHeadError(t: Asserts, res: Res, status: number, what = ''): void {
  t.equal(res.status, status, `${what ? `${what}: ` : ''}status ${status}`, describe(res));
  t.equal(res.body.length, 0, 'HEAD answer has no body');
}

/** Monolithic POST ?digest=; throws unless the server answers 201. */
export async function pushBlob(app: FastifyInstance, repo: string, bytes: Buffer | string, algorithm: Algorithm = 'sha256'): Promise<string> {
  const digest = digestOf(bytes, algorithm);
  const res = await inject(app, 'POST', `/v2/${repo}/blobs/uploads/?digest=${digest}`, {
    headers: { 'content-type': 'application/octet-stream' },
    body: typeof bytes === 'string' ? Buffer.from(bytes) : bytes,
  });
  if (res.status !== 201) throw new Error(`pushBlob ${repo} ${digest}: ${JSON.stringify(describe(res))}`);
  return digest;
}

/** PUT a manifest (raw bytes as given); throws unless 201. Returns the digest the server reports. */
export async function pushManifest(
  app: FastifyInstance,
  repo: string,
  reference: string,
  body: string | Buffer,
  mediaType: string,
): Promise<string> {
  const res = await inject(app, 'PUT', `/v2/${repo}/manifests/${reference}`, { headers: { 'content-type': mediaType }, body });
  if (res.status !== 201) throw new Error(`pushManifest ${repo}:${reference}: ${JSON.stringify(describe(res))}`);
  return res.header('docker-content-digest') as string;
}

export type { Descriptor } from '../../src/registry/manifest.js';
import type { Descriptor } from '../../src/registry/manifest.js';

export function descriptorOf(mediaType: string, bytes: Buffer | string, algorithm: Algorithm = 'sha256'): Descriptor {
  return { mediaType, digest: digestOf(bytes, algorithm), size: Buffer.byteLength(bytes) };
}

/** Pushes a config and one layer to `repo` and returns an OCI image manifest (string) that references them. */
export async function imageManifest(
  app: FastifyInstance,
  repo: string,
  seed: string,
  extra: Record<string, unknown> = {},
): Promise<{ body: string; digest: string; config: Descriptor; layer: Descriptor }> {
  const configBytes = JSON.stringify({ architecture: 'amd64', os: 'linux', seed });
  const layerBytes = `layer bytes of ${seed}`;
  await pushBlob(app, repo, configBytes);
  await pushBlob(app, repo, layerBytes);
  const config = descriptorOf(OCI_CONFIG, configBytes);
  const layer = descriptorOf(OCI_LAYER, layerBytes);
  const body = JSON.stringify({ schemaVersion: 2, mediaType: OCI_MANIFEST, config, layers: [layer], ...extra });
  return { body, digest: digestOf(body), config, layer };
}

/** Pushes the empty config `{}` and returns an artifact manifest (string) with the given subject and fields. */
export async function artifactManifest(
  app: FastifyInstance,
  repo: string,
  artifactType: string,
  extra: Record<string, unknown> = {},
): Promise<{ body: string; digest: string }> {
  await pushBlob(app, repo, '{}');
  const empty = { mediaType: OCI_EMPTY, digest: digestOf('{}'), size: 2 };
  const body = JSON.stringify({ schemaVersion: 2, mediaType: OCI_MANIFEST, artifactType, config: empty, layers: [empty], ...extra });
  return { body, digest: digestOf(body) };
}

/** Every file under `dir`, as paths relative to it; [] when it does not exist. */
export function filesUnder(dir: string): string[] {
  if (!existsSync(dir)) return [];
  const out: string[] = [];
  const walk = (d: string) => {
    for (const name of readdirSync(d)) {
      const p = join(d, name);
      if (statSync(p).isDirectory()) walk(p);
      else out.push(relative(dir, p));
    }
  };
  walk(dir);
  return out.sort();
}

/** Where the filesystem store keeps a committed blob (storage/paths.ts layout v1). */
export function blobFile(dataDir: string, digest: string): string {
  const [algorithm, hex] = digest.split(':') as [string, string];
  return join(dataDir, 'blobs', algorithm, hex.slice(0, 2), hex);
}

/** Parses the Location of an upload session: the header, its path (with any query) and the uuid. */
export function sessionOf(res: Res): { location: string; path: string; uuid: string } {
  const location = res.header('location');
  if (!location) throw new Error(`no Location: ${JSON.stringify(describe(res))}`);
  const url = new URL(location, 'http://x');
  const uuid = url.pathname.split('/').pop() as string;
  return { location, path: `${url.pathname}${url.search}`, uuid };
}

/** Appends a query parameter to a Location that may already carry a query string. */
export function withQuery(location: string, query: string): string {
  return `${location}${location.includes('?') ? '&' : '?'}${query}`;
}
