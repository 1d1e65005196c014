// GET /api/openapi.json (issue 13): an OpenAPI 3.1 document that describes every /api route the
// server registers (listed as fastify registers them: a route added without its entry fails here),
// the contract's routes besides, with every $ref resolving and every path parameter declared.
import { rmSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import bcrypt from 'bcryptjs';
import t, { type Test } from 'tap';
import { buildApp } from '../../src/app.js';
import { withDefaults } from '../../src/config/defaults.js';
import { tempDir } from '../helpers/server.js';

type Doc = { openapi: string; info: { title: string }; paths: Record<string, Record<string, { responses?: Record<string, unknown>; parameters?: Array<{ name: string; in: string }> }>> };

const METHODS = ['get', 'put', 'post', 'delete', 'patch', 'head', 'options'];

/** Starts a server with auth on (so /api/tokens is registered too), recording the routes it registers. */
async function start(t: Test) {
  const dir = tempDir('wharf-openapi-');
  const routes: Array<{ method: string; url: string }> = [];
  const config = withDefaults({
    log: { level: 'silent' },
    storage: { path: dir },
    auth: { users: [{ name: 'root', password: bcrypt.hashSync('pw', 4), groups: ['admin'] }] },
  });
  const app = await buildApp(config, { onRoute: (r) => routes.push(r) });
  await app.listen({ host: '127.0.0.1', port: 0 });
  t.teardown(async () => {
    await app.close();
    rmSync(dir, { recursive: true, force: true });
  });
  return { url: `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`, routes };
}

/**
 * Whether the document describes a route as fastify registered it: `:param` is `{param}`, and a
 * wildcard `*` (names with slashes) is covered by the document's paths under its prefix.
 */
function described(doc: Doc, method: string, url: string): boolean {
  const m = method.toLowerCase();
  if (url.endsWith('*')) {
    const prefix = url.slice(0, -1);
    return Object.entries(doc.paths).some(([path, ops]) => path.startsWith(prefix) && path.length > prefix.length && ops[m] !== undefined);
  }
  const path = url.replace(/:([A-Za-z0-9_]+)/g, '{$1}');
  return doc.paths[path]?.[m] !== undefined;
}

t.test('every /api route fastify registered is in /api/openapi.json with its method', async (t) => {
  const s = await start(t);
  // Served to anyone, auth on or off: it holds no content.
  const res = await fetch(`${s.url}/api/openapi.json`);
  t.equal(res.status, 200);
  t.match(res.headers.get('content-type') ?? '', /^application\/json/);
  const doc = (await res.json()) as Doc;
  t.equal(doc.openapi, '3.1.0');
  t.ok(doc.info.title);

  const api = s.routes.filter((r) => r.url === '/api' || r.url.startsWith('/api/'));
  t.ok(api.length >= 9, `${api.length} routes under /api: ${api.map((r) => `${r.method} ${r.url}`).join(', ')}`);
  for (const r of ['GET /api/gc', 'POST /api/gc', 'GET /api/tokens', 'DELETE /api/tokens/:id', 'GET /api/repositories', 'DELETE /api/repositories/*', 'GET /api/openapi.json']) {
    t.ok(api.some((x) => `${x.method} ${x.url}` === r), `${r} is registered (the listing sees routes)`);
  }
  for (const r of api) t.ok(described(doc, r.method, r.url), `${r.method} ${r.url} is documented`);
  t.notOk(described(doc, 'GET', '/api/nope'), 'an undocumented route is caught');
  t.notOk(described(doc, 'PUT', '/api/gc'), 'a method not documented is caught');

  // The contract's routes, registered here or not yet.
  const contract: Array<[string, string]> = [
    ['get', '/api/repositories'],
    ['get', '/api/repositories/{name}'],
    ['delete', '/api/repositories/{name}'],
    ['get', '/api/repositories/{name}/-/tags'],
    ['delete', '/api/repositories/{name}/-/tags/{tag}'],
    ['get', '/api/repositories/{name}/-/manifests'],
    ['get', '/api/stats'],
    ['get', '/api/gc'],
    ['post', '/api/gc'],
    ['get', '/api/warm'],
    ['post', '/api/warm'],
    ['get', '/api/whoami'],
    ['get', '/api/openapi.json'],
    ['get', '/api/tokens'],
    ['post', '/api/tokens'],
    ['delete', '/api/tokens/{id}'],
  ];
  for (const [method, path] of contract) t.ok(doc.paths[path]?.[method], `${method.toUpperCase()} ${path}`);
});

t.test('the document holds together: refs resolve, path parameters are declared, operations answer', async (t) => {
  const s = await start(t);
  const text = await (await fetch(`${s.url}/api/openapi.json`)).text();
  const doc = JSON.parse(text) as Doc & { components: { schemas: Record<string, unknown> } };
  const refs = [...text.matchAll(/"\$ref":"([^"]+)"/g)].map((m) => m[1]!);
  t.ok(refs.length > 10);
  for (const r of new Set(refs)) {
    const name = /^#\/components\/schemas\/(.+)$/.exec(r)?.[1];
    t.ok(name !== undefined && doc.components.schemas[name] !== undefined, `${r} resolves`);
  }
  for (const [path, ops] of Object.entries(doc.paths)) {
    t.ok(path.startsWith('/api/'), `${path} is under /api`);
    const templated = [...path.matchAll(/\{([^}]+)\}/g)].map((m) => m[1]!);
    for (const [method, op] of Object.entries(ops)) {
      t.ok(METHODS.includes(method), `${method} is an HTTP method`);
      t.ok(op.responses && Object.keys(op.responses).length > 0, `${method} ${path} has responses`);
      const declared = (op.parameters ?? []).filter((p) => p.in === 'path').map((p) => p.name);
      t.same(declared.sort(), [...templated].sort(), `${method} ${path}: path parameters declared`);
    }
  }
  // The Repository schema carries the contract's fields.
  const repo = doc.components.schemas['Repository'] as { required: string[] };
  t.same(repo.required.sort(), ['kind', 'lastPull', 'lastPush', 'manifestCount', 'name', 'sizeBytes', 'tagCount', 'upstream']);
  // Admins sign in with Basic credentials or a Bearer token carrying the api scope: both schemes, on every admin operation.
  const schemes = (doc.components as unknown as { securitySchemes: Record<string, { type: string; scheme: string; description?: string }> }).securitySchemes;
  t.match(schemes['adminBasic'], { type: 'http', scheme: 'basic' });
  t.match(schemes['adminBearer'], { type: 'http', scheme: 'bearer' });
  t.match(schemes['adminBearer']?.description, 'wharf:api:manage', 'the bearer scheme names the scope');
  const tokens = (doc.paths['/api/tokens'] as Record<string, { security?: unknown }>)['get'];
  t.same(tokens?.security, [{ adminBasic: [] }, { adminBearer: [] }], 'an admin operation takes either');
});
