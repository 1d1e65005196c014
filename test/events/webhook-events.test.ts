// Events to webhooks: a real receiver on 127.0.0.1 checks the HMAC-SHA256 signature over the raw
// body, refuses the first attempts to prove the retries and their doubling backoff, and a receiver
// that never answers shows that a full queue drops its oldest events and never holds a pull.
import { createHmac, timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import t from 'tap';
import { startWharf } from '../helpers/server.js';
import { LogCapture } from '../helpers/log-capture.js';
import { OCI_MANIFEST, digestOf } from '../helpers/http.js';
import type { Envelope } from '../../src/events/event.js';

type Tap = Parameters<Parameters<typeof t.test>[0]>[0];

interface Delivery {
  at: number;
  body: Buffer;
  headers: IncomingMessage['headers'];
  status: number;
}

/** A webhook receiver: `answer` decides each attempt's status (undefined: never answer). */
async function receiver(t: Tap, answer: (attempt: number) => number | undefined) {
  const deliveries: Delivery[] = [];
  const held: ServerResponse[] = [];
  let waiters: Array<() => void> = [];
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const status = answer(deliveries.length);
      deliveries.push({ at: performance.now(), body: Buffer.concat(chunks), headers: req.headers, status: status ?? 0 });
      if (status === undefined) held.push(res);
      else res.writeHead(status).end();
      const w = waiters;
      waiters = [];
      for (const f of w) f();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(() => {
    for (const res of held) res.destroy();
    server.closeAllConnections();
    return new Promise((resolve) => server.close(resolve));
  });
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook?token=abc`,
    deliveries,
    /** Resolves once `count` deliveries have arrived. */
    async waitFor(count: number, ms = 10_000): Promise<void> {
      const deadline = Date.now() + ms;
      while (deliveries.length < count) {
        const left = deadline - Date.now();
        if (left <= 0) throw new Error(`${deliveries.length} of ${count} deliveries within ${ms} ms`);
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, left);
          waiters.push(() => {
            clearTimeout(timer);
            resolve();
          });
        });
      }
    },
  };
}

function verified(secret: string, d: Delivery): boolean {
  const header = d.headers['x-wharf-signature'];
  if (typeof header !== 'string' || !header.startsWith('sha256=')) return false;
  const expected = createHmac('sha256', secret).update(d.body).digest();
  const given = Buffer.from(header.slice('sha256='.length), 'hex');
  return given.length === expected.length && timingSafeEqual(given, expected);
}

async function pushImage(url: string, repo: string, tag: string): Promise<string> {
  const config = `{"seed":"${repo}:${tag}"}`;
  const r = await fetch(`${url}/v2/${repo}/blobs/uploads/?digest=${digestOf(config)}`, { method: 'POST', body: config });
  if (r.status !== 201) throw new Error(`blob push: ${r.status}`);
  const manifest = JSON.stringify({ schemaVersion: 2, mediaType: OCI_MANIFEST, config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: digestOf(config), size: config.length }, layers: [] });
  const m = await fetch(`${url}/v2/${repo}/manifests/${tag}`, { method: 'PUT', body: manifest, headers: { 'content-type': OCI_MANIFEST } });
  if (m.status !== 201) throw new Error(`manifest push: ${m.status} ${await m.text()}`);
  return digestOf(manifest);
}

t.test('a signed envelope, retried with a doubling backoff until the receiver takes it; only the actions asked for', async (t) => {
  const secret = 'webhook-test-key';
  // The first three attempts fail (500, 503, 404), the fourth is taken.
  const hook = await receiver(t, (attempt) => [500, 503, 404][attempt] ?? 202);
  const wharf = await startWharf(t, {
    local: { namespaces: ['team'] },
    events: { webhooks: [{ url: hook.url, actions: ['push'], secret, retries: 3, backoff: '40ms', maxBackoff: '1s' }] },
  });
  const digest = await pushImage(wharf.url, 'team/app', 'v1');
  // Pulls are not asked for: none is sent.
  t.equal((await fetch(`${wharf.url}/v2/team/app/manifests/v1`)).status, 200);
  // The blob push first (its 4 attempts), then the manifest's.
  await hook.waitFor(5);
  const attempts = hook.deliveries.slice(0, 4);
  t.same(attempts.map((d) => d.status), [500, 503, 404, 202]);
  for (const d of hook.deliveries) {
    t.ok(verified(secret, d), 'HMAC-SHA256 of the raw body');
    t.equal(d.headers['content-type'], 'application/vnd.docker.distribution.events.v1+json');
  }
  t.equal(new Set(attempts.map((d) => d.body.toString())).size, 1, 'every attempt sends the same bytes');
  const gaps = attempts.slice(1).map((d, i) => d.at - (attempts[i] as Delivery).at);
  t.ok(gaps[0]! >= 35, `first retry after the backoff (${gaps[0]} ms)`);
  t.ok(gaps[1]! >= 75, `then twice as long (${gaps[1]} ms)`);
  t.ok(gaps[2]! >= 155, `then four times (${gaps[2]} ms)`);
  const blob = (JSON.parse(attempts[0]!.body.toString()) as Envelope).events[0]!;
  t.match(blob, { action: 'push', target: { repository: 'team/app', mediaType: 'application/octet-stream' } });
  const manifest = JSON.parse(hook.deliveries[4]!.body.toString()) as Envelope;
  t.equal(manifest.events.length, 1);
  t.match(manifest.events[0], { action: 'push', target: { repository: 'team/app', digest, tag: 'v1', mediaType: OCI_MANIFEST }, request: { method: 'PUT' } });
  // Another push after the pull: the next delivery is that push, never the pull.
  const d2 = await pushImage(wharf.url, 'team/app', 'v2');
  await hook.waitFor(7);
  const actions = hook.deliveries.map((d) => (JSON.parse(d.body.toString()) as Envelope).events[0]?.action);
  t.notOk(actions.includes('pull'), 'no pull events: the filter says push');
  t.match((JSON.parse(hook.deliveries[6]!.body.toString()) as Envelope).events[0], { target: { digest: d2, tag: 'v2' } });
});

t.test('an event still refused after its retries is dropped with a warning, and the next one goes', async (t) => {
  const logs = new LogCapture();
  const hook = await receiver(t, (attempt) => (attempt < 2 ? 500 : 200));
  const wharf = await startWharf(t, { local: { namespaces: ['team'] }, events: { webhooks: [{ url: hook.url, retries: 1, backoff: '10ms' }] } }, { logs });
  const body = 'one blob';
  t.equal((await fetch(`${wharf.url}/v2/team/app/blobs/uploads/?digest=${digestOf(body)}`, { method: 'POST', body })).status, 201);
  const warn = await logs.waitFor((l) => /dropped after 2 attempts/.test(l.msg));
  t.match(warn, { component: 'events', outlet: 'webhook', reason: 'answered 500', url: hook.url.replace(/\?.*$/, '') });
  t.notOk(JSON.stringify(warn).includes('token=abc'), 'the query string (it may hold a secret) is not logged');
  t.equal((await fetch(`${wharf.url}/v2/team/app/blobs/${digestOf(body)}`)).status, 200);
  await hook.waitFor(3);
  t.equal(hook.deliveries[2]!.status, 200);
  t.match((JSON.parse(hook.deliveries[2]!.body.toString()) as Envelope).events[0], { action: 'pull' });
});

t.test('a receiver that never answers: pulls go on, the full queue drops its oldest events with a counted warning', async (t) => {
  const logs = new LogCapture();
  const hook = await receiver(t, () => undefined);
  const wharf = await startWharf(
    t,
    { local: { namespaces: ['team'] }, events: { webhooks: [{ url: hook.url, timeout: '60s', retries: 0, queueSize: 4 }] } },
    { logs },
  );
  await pushImage(wharf.url, 'team/app', 'v1');
  await hook.waitFor(1);
  // The receiver holds the first event; 50 pulls are answered all the same.
  const started = performance.now();
  for (let i = 0; i < 50; i++) {
    const res = await fetch(`${wharf.url}/v2/team/app/manifests/v1`);
    t.equal(res.status, 200);
    await res.arrayBuffer();
  }
  const ms = performance.now() - started;
  t.ok(ms < 10_000, `50 pulls in ${Math.round(ms)} ms while the receiver holds a request for 60 s`);
  const warn = await logs.waitFor((l) => /queue of 4 events is full/.test(l.msg));
  t.match(warn, { component: 'events', outlet: 'webhook', queueSize: 4 });
  t.ok((warn.overflowed as number) >= 1, 'dropped events counted');
  t.equal(hook.deliveries.length, 1, 'nothing more sent while the first POST is unanswered');
});
