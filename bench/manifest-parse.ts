// Large manifests: a 4 MiB image manifest holding as many distinct layer descriptors as fit (about
// 37,000 with a short media type), the shape of a manifest built to stall a registry. Measures, in
// this process, on this machine:
//
//   parse     parseManifest alone (JSON, validation, references), median of 5
//   push      PUT of the manifest to a real Wharf (its blobs linked beforehand), over a socket
//   pull      GET of the manifest by tag through the pull-through cache from a minimal upstream
//   refused   the same PUT with the default manifests.maxDescriptors (400 MANIFEST_INVALID)
//   stall     the longest event-loop delay seen during each of push and pull (every other client waits
//             that long)
//
// The push and pull run with manifests.maxDescriptors raised above the manifest's count.
// Usage: npm run bench:manifest   (or: node --import tsx bench/manifest-parse.ts [descriptors])
// Prints one JSON line with every figure.
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { request } from 'undici';
import { buildApp } from '../src/app.js';
import { withDefaults } from '../src/config/defaults.js';
import { SqliteDatabase } from '../src/metadata/sqlite-database.js';
import { SqliteRegistryMetadata } from '../src/metadata/sqlite-registry-metadata.js';
import { MAX_MANIFEST_BYTES, parseManifest } from '../src/registry/manifest.js';
import { metadataPath } from '../src/storage/paths.js';
import { median } from './lib/measure.js';

const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
const LAYER_TYPE = 'a/b';
const sha = (s: string | Buffer) => `sha256:${createHash('sha256').update(s).digest('hex')}`;
const log = (msg: string) => console.error(`[bench ${(performance.now() / 1000).toFixed(1)}s] ${msg}`);
const ms = (x: number) => Math.round(x * 10) / 10;

/** An image manifest of at most 4 MiB with `count` distinct layers (default: as many as fit). */
function bigManifest(count?: number): { body: Buffer; layers: string[]; config: string } {
  const config = sha('config');
  const doc = (layers: string[]) =>
    JSON.stringify({
      schemaVersion: 2,
      mediaType: OCI_MANIFEST,
      config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: config, size: 2 },
      layers: layers.map((digest) => ({ mediaType: LAYER_TYPE, digest, size: 1 })),
    });
  const perLayer = doc([sha('x'), sha('y')]).length - doc([sha('x')]).length;
  const n = count ?? Math.floor((MAX_MANIFEST_BYTES - doc([]).length) / perLayer);
  const layers = Array.from({ length: n }, (_, i) => sha(`layer ${i}`));
  const body = Buffer.from(doc(layers));
  if (body.length > MAX_MANIFEST_BYTES) throw new Error(`manifest is ${body.length} bytes, over ${MAX_MANIFEST_BYTES}`);
  return { body, layers, config };
}

/** Runs `fn` and reports its duration and the longest event-loop delay meanwhile. */
async function timed<T>(fn: () => Promise<T>): Promise<{ result: T; ms: number; stallMs: number }> {
  const delay = monitorEventLoopDelay({ resolution: 10 });
  delay.enable();
  const t0 = performance.now();
  const result = await fn();
  const elapsed = performance.now() - t0;
  delay.disable();
  return { result, ms: ms(elapsed), stallMs: ms(delay.max / 1e6) };
}

/** A one-manifest upstream registry: HEAD and GET of big:v1. */
async function upstream(body: Buffer): Promise<{ url: string; close(): Promise<void> }> {
  const digest = sha(body);
  const server = http.createServer((req, res) => {
    if (req.url === '/v2/' || req.url === '/v2') return res.writeHead(200).end('{}');
    if (req.url !== '/v2/big/manifests/v1') return res.writeHead(404).end();
    res.writeHead(200, { 'content-type': OCI_MANIFEST, 'content-length': body.length, 'docker-content-digest': digest });
    res.end(req.method === 'HEAD' ? undefined : body);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return { url: `http://127.0.0.1:${port}`, close: () => new Promise((resolve) => server.close(() => resolve())) };
}

async function main(): Promise<void> {
  const { body, layers, config } = bigManifest(process.argv[2] === undefined ? undefined : Number(process.argv[2]));
  const descriptors = layers.length + 1;
  log(`manifest: ${body.length} bytes, ${descriptors} descriptors`);
  const limit = { maxDescriptors: descriptors + 1 };

  const parses: number[] = [];
  for (let i = 0; i < 5; i++) {
    const t0 = performance.now();
    parseManifest(body, OCI_MANIFEST, limit);
    parses.push(performance.now() - t0);
  }
  log(`parse: median ${ms(median(parses))} ms`);

  const dir = mkdtempSync(join(tmpdir(), 'wharf-bench-manifest-'));
  const origin = await upstream(body);
  try {
    const database = SqliteDatabase.open(metadataPath(dir));
    const metadata = new SqliteRegistryMetadata(database);
    for (const digest of [config, ...layers]) {
      await metadata.putBlob(digest, 1, { local: true });
      await metadata.linkBlob('local/big', digest);
    }
    const settings = {
      log: { level: 'warn' },
      storage: { path: dir },
      local: { namespaces: ['local'] },
      upstreams: [{ name: 'up', url: origin.url, registry: 'up.test' }],
    };
    const app = await buildApp(withDefaults({ ...settings, manifests: limit }), { database });
    await app.listen({ host: '127.0.0.1', port: 0 });
    const base = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`;
    const put = (url: string) =>
      request(`${base}${url}`, { method: 'PUT', headers: { 'content-type': OCI_MANIFEST }, body }).then(async (r) => ({
        status: r.statusCode,
        text: (await r.body.text()).slice(0, 200),
      }));
    const push = await timed(() => put('/v2/local/big/manifests/v1'));
    log(`push: ${JSON.stringify(push)}`);
    const pull = await timed(() =>
      request(`${base}/v2/up.test/big/manifests/v1`, { headers: { accept: OCI_MANIFEST } }).then(async (r) => ({
        status: r.statusCode,
        bytes: (await r.body.arrayBuffer()).byteLength,
      })),
    );
    log(`pull: ${JSON.stringify(pull)}`);
    await app.close();

    const strict = await buildApp(withDefaults(settings), { database: SqliteDatabase.open(metadataPath(dir)) });
    await strict.listen({ host: '127.0.0.1', port: 0 });
    const strictBase = `http://127.0.0.1:${(strict.server.address() as AddressInfo).port}`;
    const refused = await timed(() =>
      request(`${strictBase}/v2/local/big/manifests/v2`, { method: 'PUT', headers: { 'content-type': OCI_MANIFEST }, body }).then(async (r) => ({
        status: r.statusCode,
        text: (await r.body.text()).slice(0, 300),
      })),
    );
    log(`refused with the default limit: ${JSON.stringify(refused)}`);
    await strict.close();

    console.log(
      JSON.stringify({
        bench: 'manifest-parse',
        bytes: body.length,
        descriptors,
        parseMs: ms(median(parses)),
        pushMs: push.ms,
        pushStatus: push.result.status,
        pushStallMs: push.stallMs,
        pullMs: pull.ms,
        pullStatus: pull.result.status,
        pullStallMs: pull.stallMs,
        refusedMs: refused.ms,
        refusedStatus: refused.result.status,
      }),
    );
    if (push.result.status !== 201 || pull.result.status !== 200) process.exitCode = 1;
  } finally {
    await origin.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
