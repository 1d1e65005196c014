// NATS that is not there, then comes, goes and comes back (a nats-server of the test's own on a free
// port): requests are answered all along, events sent while it is away are dropped and said, and
// the connection is made and remade in the background.
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import t from 'tap';
import { freePort } from '../helpers/docker-registry.js';
import { startWharf } from '../helpers/server.js';
import { LogCapture } from '../helpers/log-capture.js';
import { digestOf } from '../helpers/http.js';
import { subscribe } from './nats-subscriber.js';

const NATS_SERVER = process.env.NATS_SERVER ?? 'nats-server';

/** A nats-server on 127.0.0.1:port, ready (its "Server is ready" line) when this resolves. */
async function startNats(t: Tap, port: number): Promise<ChildProcess> {
  const child = spawn(NATS_SERVER, ['-a', '127.0.0.1', '-p', String(port)], { stdio: ['ignore', 'ignore', 'pipe'] });
  t.teardown(() => {
    if (child.exitCode === null) child.kill('SIGKILL');
  });
  await new Promise<void>((resolve, reject) => {
    let text = '';
    child.stderr?.on('data', (c: Buffer) => {
      text += c.toString();
      if (text.includes('Server is ready')) resolve();
    });
    child.once('exit', (code) => reject(new Error(`nats-server exited (${code}): ${text}`)));
    child.once('error', reject);
  });
  return child;
}
type Tap = Parameters<Parameters<typeof t.test>[0]>[0];

async function stop(child: ChildProcess): Promise<void> {
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGKILL');
  await exited;
}

t.test('NATS away, then there, then gone and back: pushes answered throughout, events flow while it is up', async (t) => {
  const port = await freePort();
  const url = `nats://127.0.0.1:${port}`;
  const prefix = `wharftest.${randomBytes(6).toString('hex')}`;
  const logs = new LogCapture();
  const wharf = await startWharf(t, { local: { namespaces: ['team'] }, events: { nats: { url, subject: prefix } } }, { logs });
  const push = async (body: string) => {
    const started = performance.now();
    const res = await fetch(`${wharf.url}/v2/team/app/blobs/uploads/?digest=${digestOf(body)}`, { method: 'POST', body });
    t.equal(res.status, 201, `push of "${body}" answered`);
    t.ok(performance.now() - started < 5000, 'without waiting for NATS');
    return digestOf(body);
  };

  await push('while NATS is not there');
  await logs.waitFor((l) => l.msg.startsWith('events not sent to NATS'));

  let server = await startNats(t, port);
  const first = await subscribe(t, url, prefix);
  await logs.waitFor((l) => l.msg === 'events: connected to NATS', 15_000);
  const up = await push('once NATS is up');
  const e = await first.waitFor((r) => r.event.action === 'push');
  t.equal(e.event.target.digest, up, 'the first event received is the one pushed once connected');

  await stop(server);
  await logs.waitFor((l) => l.msg.startsWith('events: NATS connection lost'));
  await push('while NATS is gone');

  server = await startNats(t, port);
  await logs.waitFor((l) => l.msg === 'events: reconnected to NATS', 15_000);
  const second = await subscribe(t, url, prefix);
  const back = await push('once NATS is back');
  const again = await second.waitFor((r) => r.event.action === 'push');
  t.equal(again.event.target.digest, back);
  t.equal(second.received.length, 1, 'what was pushed while it was gone is not sent late');
});
