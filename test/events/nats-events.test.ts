// Events to a real NATS server: push, pull, delete through the HTTP API; fill and pull through the
// reference registry as upstream; each on <prefix>.<action> with distribution's envelope fields.
import t from 'tap';
import bcrypt from 'bcryptjs';
import { startDockerRegistry, pushTestImage } from '../helpers/docker-registry.js';
import { startWharf } from '../helpers/server.js';
import { LogCapture } from '../helpers/log-capture.js';
import { OCI_MANIFEST, digestOf } from '../helpers/http.js';
import { NATS_URL, subscribe, type Received } from './nats-subscriber.js';

const UA = 'events-test/1.0';

async function natsWharf(t: Tap, subject: string, over: Record<string, unknown> = {}) {
  const logs = new LogCapture();
  const wharf = await startWharf(t, { local: { namespaces: ['team'] }, events: { nats: { url: NATS_URL, subject } }, ...over }, { logs });
  // Events before the connection is up are dropped (never waited for): the test starts once it is.
  await logs.waitFor((l) => l.msg === 'events: connected to NATS');
  return { wharf, logs };
}
type Tap = Parameters<Parameters<typeof t.test>[0]>[0];

async function put(url: string, body: string | Buffer, contentType: string): Promise<Response> {
  return fetch(url, { method: 'PUT', body, headers: { 'content-type': contentType, 'user-agent': UA } });
}

t.test('push, pull and delete through the API reach NATS with the envelope of distribution', async (t) => {
  const sub = await subscribe(t);
  const { wharf } = await natsWharf(t, sub.prefix);
  const host = new URL(wharf.url).host;

  const layer = Buffer.from('layer of the events test');
  const layerDigest = digestOf(layer);
  const up = await fetch(`${wharf.url}/v2/team/app/blobs/uploads/?digest=${layerDigest}`, { method: 'POST', body: layer, headers: { 'user-agent': UA } });
  t.equal(up.status, 201);
  const config = '{"architecture":"amd64","os":"linux"}';
  t.equal((await fetch(`${wharf.url}/v2/team/app/blobs/uploads/?digest=${digestOf(config)}`, { method: 'POST', body: config })).status, 201);
  const manifest = JSON.stringify({
    schemaVersion: 2,
    mediaType: OCI_MANIFEST,
    config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: digestOf(config), size: config.length },
    layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: layerDigest, size: layer.length }],
  });
  const md = digestOf(manifest);
  const res = await put(`${wharf.url}/v2/team/app/manifests/v1`, manifest, OCI_MANIFEST);
  t.equal(res.status, 201);

  const blobPush = await sub.waitFor((r) => r.event.action === 'push' && r.event.target.digest === layerDigest);
  t.equal(blobPush.subject, `${sub.prefix}.push`);
  t.match(blobPush.event.target, { repository: 'team/app', size: layer.length, length: layer.length, mediaType: 'application/octet-stream' });
  t.match(blobPush.event.request, { method: 'POST', useragent: UA, host, addr: '127.0.0.1' });

  const push = await sub.waitFor((r) => r.event.action === 'push' && r.event.target.digest === md);
  t.equal(push.subject, `${sub.prefix}.push`);
  t.same(push.envelope.events.length, 1, 'one event per message');
  const e = push.event;
  t.same(e.target, { repository: 'team/app', digest: md, mediaType: OCI_MANIFEST, size: manifest.length, length: manifest.length, tag: 'v1', url: `${wharf.url}/v2/team/app/manifests/${md}` });
  t.match(e.request, { id: /^req-/, addr: '127.0.0.1', host, method: 'PUT', useragent: UA });
  t.same(e.actor, {}, 'anonymous: no actor name');
  t.match(e.source, { addr: host, instanceID: /^[0-9a-f-]{36}$/ });
  t.match(e.id, /^[0-9a-f-]{36}$/);
  t.ok(Math.abs(Date.parse(e.timestamp) - Date.now()) < 60_000, 'timestamp is now');
  t.not(e.id, blobPush.event.id, 'every event has its own id');
  t.equal(e.source.instanceID, blobPush.event.source.instanceID, 'one instance');

  // HEAD is no pull (as in distribution); GET by tag twice: the second is answered from memory.
  t.equal((await fetch(`${wharf.url}/v2/team/app/manifests/v1`, { method: 'HEAD' })).status, 200);
  for (let i = 0; i < 2; i++) t.equal((await fetch(`${wharf.url}/v2/team/app/manifests/v1`, { headers: { 'user-agent': UA } })).status, 200);
  const blob = await fetch(`${wharf.url}/v2/team/app/blobs/${layerDigest}`, { headers: { 'user-agent': UA } });
  t.equal(blob.status, 200);
  await blob.arrayBuffer();
  const blobPull = await sub.waitFor((r) => r.event.action === 'pull' && r.event.target.digest === layerDigest);
  t.equal(blobPull.subject, `${sub.prefix}.pull`);
  t.match(blobPull.event.target, { repository: 'team/app', size: layer.length, url: `${wharf.url}/v2/team/app/blobs/${layerDigest}` });
  const pulls = sub.received.filter((r) => r.event.action === 'pull' && r.event.target.digest === md);
  t.equal(pulls.length, 2, 'two GETs, two pulls; the HEAD none');
  for (const p of pulls) {
    t.equal(p.subject, `${sub.prefix}.pull`);
    t.match(p.event.target, { repository: 'team/app', digest: md, tag: 'v1', mediaType: OCI_MANIFEST, size: manifest.length });
    t.match(p.event.request, { method: 'GET', useragent: UA, addr: '127.0.0.1', host });
  }
  t.not(pulls[0]?.event.request?.id, pulls[1]?.event.request?.id, 'each pull names its request');

  t.equal((await fetch(`${wharf.url}/v2/team/app/manifests/v1`, { method: 'DELETE' })).status, 202);
  const del = await sub.waitFor((r) => r.event.action === 'delete');
  t.equal(del.subject, `${sub.prefix}.delete`);
  t.match(del.event.target, { repository: 'team/app', tag: 'v1' });
  t.match(del.event.request, { method: 'DELETE' });
  t.notOk(sub.received.some((r) => r.event.request?.method === 'HEAD'), 'no event for a HEAD');
});

t.test('a pull through an upstream: fill events for what is fetched and committed, then pulls; cached content fills no more', async (t) => {
  const sub = await subscribe(t);
  const upstream = await startDockerRegistry(t);
  const image = await pushTestImage(upstream, 'library/evt', 'v1', { seed: 'events' });
  const { wharf } = await natsWharf(t, sub.prefix, { upstreams: [{ name: 'hub', url: upstream.url, registry: 'docker.io', default: true }] });

  const m = await fetch(`${wharf.url}/v2/library/evt/manifests/v1`, { headers: { 'user-agent': UA } });
  t.equal(m.status, 200);
  await m.arrayBuffer();
  const fill = await sub.waitFor((r) => r.event.action === 'fill' && r.event.target.digest === image.manifestDigest);
  t.equal(fill.subject, `${sub.prefix}.fill`);
  t.match(fill.event.target, { repository: 'library/evt', tag: 'v1', mediaType: image.mediaType, size: image.manifest.length });
  t.match(fill.event.request, { method: 'GET', useragent: UA });
  const pull = await sub.waitFor((r) => r.event.action === 'pull' && r.event.target.digest === image.manifestDigest);
  t.match(pull.event.target, { repository: 'library/evt', tag: 'v1' });
  t.equal(pull.event.request?.id, fill.event.request?.id, 'the fill names the pull that caused it');

  const blob = image.blobs[0]!;
  const b = await fetch(`${wharf.url}/v2/library/evt/blobs/${blob.digest}`, { headers: { 'user-agent': UA } });
  t.equal(b.status, 200);
  await b.arrayBuffer();
  const blobFill = await sub.waitFor((r) => r.event.action === 'fill' && r.event.target.digest === blob.digest);
  t.match(blobFill.event.target, { repository: 'library/evt', size: blob.size, length: blob.size });
  const blobPull = await sub.waitFor((r) => r.event.action === 'pull' && r.event.target.digest === blob.digest);
  t.equal(blobPull.event.request?.id, blobFill.event.request?.id);

  // Pulled again: from the cache, a pull and no second fill.
  const again = await fetch(`${wharf.url}/v2/library/evt/blobs/${blob.digest}`);
  await again.arrayBuffer();
  await sub.waitFor((r) => r.event.action === 'pull' && r.event.target.digest === blob.digest && r.event.request?.id !== blobPull.event.request?.id);
  const m2 = await fetch(`${wharf.url}/v2/library/evt/manifests/${image.manifestDigest}`);
  await m2.arrayBuffer();
  await sub.waitFor((r) => r.event.action === 'pull' && r.event.target.digest === image.manifestDigest && r.event.target.tag === undefined);
  const fills = (d: string) => sub.received.filter((r: Received) => r.event.action === 'fill' && r.event.target.digest === d).length;
  t.equal(fills(blob.digest), 1, 'one fill for the blob');
  t.equal(fills(image.manifestDigest), 1, 'one fill for the manifest');
});

t.test('NATS out of reach: requests are answered, events dropped with a warning', async (t) => {
  const logs = new LogCapture();
  // A port nothing listens on (the test NATS is on 4222).
  const wharf = await startWharf(t, { local: { namespaces: ['team'] }, events: { nats: { url: 'nats://127.0.0.1:1', subject: 'wharftest.unreachable' } } }, { logs });
  const body = 'a blob while NATS is away';
  const started = Date.now();
  const res = await fetch(`${wharf.url}/v2/team/app/blobs/uploads/?digest=${digestOf(body)}`, { method: 'POST', body });
  t.equal(res.status, 201);
  t.ok(Date.now() - started < 5000, 'answered without waiting for NATS');
  const warn = await logs.waitFor((l) => l.msg.startsWith('events not sent to NATS'));
  t.match(warn, { component: 'events', outlet: 'nats' });
});

t.test('the actor is the signed-in user; behind a trusted proxy the address is the client X-Forwarded-For names', async (t) => {
  const sub = await subscribe(t);
  const { wharf } = await natsWharf(t, sub.prefix, {
    http: { trustProxy: ['loopback'] },
    auth: { users: [{ name: 'alice', password: bcrypt.hashSync('alice-pw', 4), groups: [] }], defaultPolicies: false, policies: [{ repositories: ['**'], subjects: ['alice'], actions: ['*'] }] },
  });
  const body = 'pushed by alice';
  const headers = { authorization: `Basic ${Buffer.from('alice:alice-pw').toString('base64')}`, 'x-forwarded-for': '203.0.113.7' };
  t.equal((await fetch(`${wharf.url}/v2/team/app/blobs/uploads/?digest=${digestOf(body)}`, { method: 'POST', body, headers })).status, 201);
  const push = await sub.waitFor((r) => r.event.action === 'push');
  t.same(push.event.actor, { name: 'alice' });
  t.match(push.event.request, { addr: '203.0.113.7', method: 'POST' });
});

t.test('a pull answered from memory (no auth) names the client behind a trusted proxy too', async (t) => {
  const sub = await subscribe(t);
  const { wharf } = await natsWharf(t, sub.prefix, { http: { trustProxy: ['loopback'] } });
  const config = '{}';
  t.equal((await fetch(`${wharf.url}/v2/team/app/blobs/uploads/?digest=${digestOf(config)}`, { method: 'POST', body: config })).status, 201);
  const manifest = JSON.stringify({ schemaVersion: 2, mediaType: OCI_MANIFEST, config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: digestOf(config), size: 2 }, layers: [] });
  t.equal((await put(`${wharf.url}/v2/team/app/manifests/v1`, manifest, OCI_MANIFEST)).status, 201);
  // The push put it in memory: this GET is answered before fastify (src/http/hot-manifests.ts).
  const res = await fetch(`${wharf.url}/v2/team/app/manifests/v1`, { headers: { 'x-forwarded-for': '198.51.100.1, 203.0.113.9', 'user-agent': UA } });
  t.equal(res.status, 200);
  const pull = await sub.waitFor((r) => r.event.action === 'pull');
  t.match(pull.event.request, { addr: '203.0.113.9', method: 'GET', useragent: UA, id: /^req-/ });
  t.match(pull.event.target, { repository: 'team/app', tag: 'v1', digest: digestOf(manifest), url: `${wharf.url}/v2/team/app/manifests/${digestOf(manifest)}` });
});

t.test('a chunked upload: one push event when it completes, with the whole size', async (t) => {
  const sub = await subscribe(t);
  const { wharf } = await natsWharf(t, sub.prefix);
  const parts = [Buffer.alloc(1000, 1), Buffer.alloc(500, 2), Buffer.alloc(24, 3)];
  const whole = Buffer.concat(parts);
  const start = await fetch(`${wharf.url}/v2/team/chunked/blobs/uploads/`, { method: 'POST' });
  t.equal(start.status, 202);
  let location = start.headers.get('location') as string;
  let offset = 0;
  for (const part of parts.slice(0, 2)) {
    const res = await fetch(new URL(location, wharf.url), { method: 'PATCH', body: part, headers: { 'content-range': `${offset}-${offset + part.length - 1}`, 'content-type': 'application/octet-stream' } });
    t.equal(res.status, 202);
    location = res.headers.get('location') as string;
    offset += part.length;
  }
  const done = await fetch(new URL(`${location}?digest=${digestOf(whole)}`, wharf.url), { method: 'PUT', body: parts[2], headers: { 'content-type': 'application/octet-stream' } });
  t.equal(done.status, 201);
  const push = await sub.waitFor((r) => r.event.action === 'push');
  t.match(push.event.target, { repository: 'team/chunked', digest: digestOf(whole), size: whole.length, length: whole.length });
  t.match(push.event.request, { method: 'PUT' });
  t.equal(sub.received.filter((r) => r.event.action === 'push').length, 1, 'the PATCHes send none');
});

t.test('deletes through the management API: a tag, then the repository, each a delete event', async (t) => {
  const sub = await subscribe(t);
  const { wharf } = await natsWharf(t, sub.prefix);
  const config = '{"m":1}';
  t.equal((await fetch(`${wharf.url}/v2/team/managed/blobs/uploads/?digest=${digestOf(config)}`, { method: 'POST', body: config })).status, 201);
  const manifest = JSON.stringify({ schemaVersion: 2, mediaType: OCI_MANIFEST, config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: digestOf(config), size: config.length }, layers: [] });
  for (const tag of ['v1', 'v2']) t.equal((await put(`${wharf.url}/v2/team/managed/manifests/${tag}`, manifest, OCI_MANIFEST)).status, 201);
  t.equal((await fetch(`${wharf.url}/api/repositories/team/managed/-/tags/v1`, { method: 'DELETE', headers: { 'user-agent': UA } })).status, 204);
  const tagDel = await sub.waitFor((r) => r.event.action === 'delete');
  t.equal(tagDel.subject, `${sub.prefix}.delete`);
  t.same(tagDel.event.target, { repository: 'team/managed', tag: 'v1' });
  t.match(tagDel.event.request, { method: 'DELETE', useragent: UA, addr: '127.0.0.1' });
  t.equal((await fetch(`${wharf.url}/api/repositories/team/managed`, { method: 'DELETE' })).status, 204);
  const repoDel = await sub.waitFor((r) => r.event.action === 'delete' && r.event.target.tag === undefined);
  t.same(repoDel.event.target, { repository: 'team/managed' });
  // A refused delete (no such tag) sends nothing.
  t.equal((await fetch(`${wharf.url}/api/repositories/team/other/-/tags/v9`, { method: 'DELETE' })).status, 404);
  t.equal(sub.received.filter((r) => r.event.action === 'delete').length, 2);
});
