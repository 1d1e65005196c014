// A TCP proxy between a pool and the PostgreSQL server, for faults that must not touch the machine's
// shared server: cut() drops every connection and refuses new ones (as a server that went away),
// blackhole() drops them and then accepts new ones without ever answering (as a network that loses
// packets), restore() lets them through again. It also counts the statements clients send, from the protocol's
// message framing, so tests can say how many queries a burst of requests cost.
import { createServer, connect, type AddressInfo, type Socket } from 'node:net';

interface Teardownable {
  teardown(fn: () => unknown): void;
}

export interface PgProxy {
  /** postgres:// URL through the proxy, with `options` (e.g. the search_path) as a URL parameter. */
  url(user: string, database: string, options?: string): string;
  /** Statements sent so far: simple queries ('Q') and extended-protocol Syncs ('S'). */
  statements(): number;
  cut(): void;
  blackhole(): void;
  restore(): void;
}

/** Counts the statements in the frontend messages of one connection (the first is the untyped startup). */
function statementCounter(onStatement: () => void): (chunk: Buffer) => void {
  let pending = Buffer.alloc(0);
  let started = false;
  return (chunk) => {
    pending = Buffer.concat([pending, chunk]);
    for (;;) {
      if (!started) {
        if (pending.length < 4) return;
        const len = pending.readUInt32BE(0);
        if (pending.length < len) return;
        pending = pending.subarray(len);
        started = true;
        continue;
      }
      if (pending.length < 5) return;
      const type = String.fromCharCode(pending[0]!);
      const len = pending.readUInt32BE(1);
      if (pending.length < 1 + len) return;
      if (type === 'Q' || type === 'S') onStatement();
      pending = pending.subarray(1 + len);
    }
  };
}

export async function startPgProxy(t: Teardownable, target = { host: '127.0.0.1', port: 5432 }): Promise<PgProxy> {
  const open = new Set<Socket>();
  let mode: 'up' | 'cut' | 'blackhole' = 'up';
  let statements = 0;
  const server = createServer((client) => {
    if (mode === 'cut') {
      client.destroy();
      return;
    }
    if (mode === 'blackhole') {
      // Held open and never answered; closed by the next cut, restore or teardown.
      open.add(client);
      client.on('error', () => client.destroy());
      client.on('close', () => open.delete(client));
      return;
    }
    const upstream = connect(target.port, target.host);
    open.add(client);
    open.add(upstream);
    const count = statementCounter(() => statements++);
    client.on('data', (d: Buffer) => {
      count(d);
      upstream.write(d);
    });
    upstream.on('data', (d: Buffer) => client.write(d));
    const close = (): void => {
      client.destroy();
      upstream.destroy();
      open.delete(client);
      open.delete(upstream);
    };
    for (const s of [client, upstream]) {
      s.on('close', close);
      s.on('error', close);
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  t.teardown(
    () =>
      new Promise<void>((resolve) => {
        for (const s of open) s.destroy();
        server.close(() => resolve());
      }),
  );
  return {
    url: (user, database, options) =>
      `postgres://${user}@127.0.0.1:${port}/${database}${options !== undefined ? `?options=${encodeURIComponent(options)}` : ''}`,
    statements: () => statements,
    cut: () => {
      mode = 'cut';
      for (const s of open) s.destroy();
    },
    blackhole: () => {
      mode = 'blackhole';
      for (const s of open) s.destroy();
    },
    restore: () => {
      mode = 'up';
      for (const s of open) s.destroy();
    },
  };
}
