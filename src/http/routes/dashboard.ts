// The dashboard: a page at / and its script, style sheet and icon under /dashboard/, read once from the
// dashboard/ folder shipped next to src/ and dist/ (the page's data comes from the management API).
//
// Caching: the page is revalidated on every load (ETag); it names the other files with ?v=<hash of
// their contents>, so those are cached for a year and a new version is fetched as soon as it ships.
// Security: a strict Content-Security-Policy (scripts, styles and images from this origin only, no
// inline script or style, fetches to this origin only, no framing, no form posts), nosniff, no
// referrer. The script inserts every value from the API as text, never as markup.
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { RegistryError } from '../../registry/errors.js';
import { queryValue } from '../request-helpers.js';

/** The folder of the dashboard's files: ../../../dashboard from src/http/routes and from dist/http/routes alike. */
export const DASHBOARD_DIR = fileURLToPath(new URL('../../../dashboard/', import.meta.url));

export const CONTENT_SECURITY_POLICY = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self'",
  "connect-src 'self'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ');

const ASSETS: Record<string, string> = {
  'app.js': 'text/javascript; charset=utf-8',
  'app.css': 'text/css; charset=utf-8',
  'icon.svg': 'image/svg+xml',
};

interface Asset {
  body: Buffer;
  type: string;
  etag: string;
}

const etagOf = (body: Buffer) => `"${createHash('sha256').update(body).digest('base64url').slice(0, 22)}"`;

/** Reads the dashboard's files; the page gets the version of the others in their URLs. */
export function loadDashboard(dir = DASHBOARD_DIR): { page: Asset; assets: Map<string, Asset>; version: string } {
  const assets = new Map<string, Asset>();
  const hash = createHash('sha256');
  for (const [name, type] of Object.entries(ASSETS)) {
    const body = readFileSync(`${dir}${name}`);
    hash.update(body);
    assets.set(name, { body, type, etag: etagOf(body) });
  }
  const version = hash.digest('hex').slice(0, 12);
  const page = Buffer.from(readFileSync(`${dir}index.html`, 'utf8').replaceAll('%VERSION%', version));
  return { page: { body: page, type: 'text/html; charset=utf-8', etag: etagOf(page) }, assets, version };
}

function send(request: FastifyRequest, reply: FastifyReply, asset: Asset, cacheControl: string): FastifyReply {
  reply
    .header('content-security-policy', CONTENT_SECURITY_POLICY)
    .header('x-content-type-options', 'nosniff')
    .header('referrer-policy', 'no-referrer')
    .header('x-frame-options', 'DENY')
    .header('cross-origin-opener-policy', 'same-origin')
    .header('cache-control', cacheControl)
    .header('etag', asset.etag);
  const match = request.headers['if-none-match'];
  if (typeof match === 'string' && match.split(',').some((tag) => tag.trim().replace(/^W\//, '') === asset.etag)) {
    return reply.code(304).send();
  }
  return reply.type(asset.type).send(asset.body);
}

export function registerDashboardRoutes(app: FastifyInstance, log: { warn(obj: object, msg: string): void }): void {
  let files: ReturnType<typeof loadDashboard> | undefined;
  try {
    files = loadDashboard();
  } catch (err) {
    // The registry works without its page: say what is missing instead of refusing to start.
    log.warn({ err: { message: (err as Error).message } }, `dashboard not served: its files are not readable in ${DASHBOARD_DIR}`);
  }
  const missing = () => new RegistryError('NOT_FOUND', `the dashboard's files are not installed (${DASHBOARD_DIR})`);

  app.get('/', async (request, reply) => {
    if (!files) throw missing();
    return send(request, reply, files.page, 'no-cache');
  });

  app.get('/dashboard/:file', async (request, reply) => {
    if (!files) throw missing();
    const { file } = request.params as { file: string };
    const asset = files.assets.get(file);
    if (!asset) throw new RegistryError('NOT_FOUND', `no dashboard file "${file.slice(0, 100)}"`);
    // Only the current version is cached for good: an old page asking for an old ?v= gets today's file, revalidated.
    const immutable = queryValue(request, 'v') === files.version;
    return send(request, reply, asset, immutable ? 'public, max-age=31536000, immutable' : 'no-cache');
  });
}
