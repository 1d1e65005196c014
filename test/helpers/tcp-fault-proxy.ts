// A TCP proxy in front of an HTTP server (radosgw) for faults in the middle of a response: cutAfter(n)
// lets each connection's answer through up to n more bytes and then resets the connection (or closes it
// cleanly with `how: 'fin'`); answer(text) answers every request itself with `text` (a 503, say)
// without asking the server; restore() lets everything through again. latest() is the connection
// that carried the last request, with when it closes and how many bytes of the answer had come by
// then, so a test can wait for a reader to give its connection up in the middle of an answer.
import { once } from 'node:events';
import { connect, createServer, type AddressInfo, type Socket } from 'node:net';

interface Teardownable {
  teardown(fn: () => unknown): void;
}

type Mode = { kind: 'pass' } | { kind: 'cut'; after: number; how: 'rst' | 'fin' } | { kind: 'answer'; text: string };

export interface TcpFaultProxy {
  /** http://127.0.0.1:PORT */
  url: string;
  cutAfter(bytes: number, how?: 'rst' | 'fin'): void;
  answer(text: string): void;
  restore(): void;
  /** Connections cut by a fault so far. */
  cuts(): number;
  /** The connection that carried the last request: resolves once it is closed, with the bytes the server had sent since that request. */
  latest(): Promise<{ answered: number }> | undefined;
}

interface Pair {
  client: Socket;
  server: Socket;
  /** Server bytes passed on since the last request began. */
  answered: number;
  closed: Promise<{ answered: number }>;
}

export async function startTcpFaultProxy(t: Teardownable, target: { host: string; port: number }): Promise<TcpFaultProxy> {
  let mode: Mode = { kind: 'pass' };
  let cuts = 0;
  const pairs = new Set<Pair>();
  let latest: Pair | undefined;
  const server = createServer((client) => {
    const upstream = connect(target);
    const pair: Pair = { client, server: upstream, answered: 0, closed: once(upstream, 'close').then(() => ({ answered: pair.answered })) };
    pairs.add(pair);
    // Bytes of the server's answers on this connection since the current cut was set.
    let sent = 0;
    let cutMode: Mode | undefined;
    const cut = (how: 'rst' | 'fin') => {
      cuts++;
      if (how === 'rst') client.resetAndDestroy();
      else client.end();
      upstream.destroy();
    };
    client.on('data', (d: Buffer) => {
      latest = pair;
      pair.answered = 0;
      if (mode.kind === 'answer') {
        client.end(mode.text);
        upstream.destroy();
        return;
      }
      upstream.write(d);
    });
    upstream.on('data', (d: Buffer) => {
      if (mode.kind !== 'cut') {
        pair.answered += d.length;
        client.write(d);
        return;
      }
      if (cutMode !== mode) {
        cutMode = mode;
        sent = 0;
      }
      const left = mode.after - sent;
      if (d.length <= left) {
        sent += d.length;
        pair.answered += d.length;
        client.write(d);
        return;
      }
      const how = mode.how;
      client.write(d.subarray(0, left), () => cut(how));
      upstream.pause();
    });
    client.on('error', () => upstream.destroy());
    upstream.on('error', () => client.destroy());
    client.on('close', () => upstream.destroy());
    upstream.on('end', () => client.end());
    upstream.on('close', () => {
      client.destroy();
      pairs.delete(pair);
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  t.teardown(async () => {
    for (const p of pairs) {
      p.client.destroy();
      p.server.destroy();
    }
    await new Promise((r) => server.close(r));
  });
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    cutAfter: (after, how = 'rst') => (mode = { kind: 'cut', after, how }),
    answer: (text) => (mode = { kind: 'answer', text }),
    restore: () => (mode = { kind: 'pass' }),
    cuts: () => cuts,
    latest: () => latest?.closed,
  };
}
