// The listening socket, bound before anything else exists. `serve` binds the configured address
// first, so an address in use or not allowed is reported before the data directory, the database or
// a key file is created, and then hands that same socket to the server (no window in which another
// process could take the port between a trial bind and the real one).
//
// Node's server.listen() adopts an already-bound handle (`{ handle }`, as cluster workers receive
// theirs); fastify passes its listen options through to it.
//
// The socket listens from the bind on, so the kernel completes handshakes at once, and libuv accepts
// them whenever start-up yields to the event loop. Until the server adopts the handle, those
// connections are held here unread and then handed to it (`handOver`), to be answered like any other:
// a client that connects during start-up (a readiness probe, a script waiting for the port) gets its
// answer once the server is ready, instead of a connection nobody ever reads.
import { lookup } from 'node:dns/promises';
import { createServer, type Server, type Socket } from 'node:net';
import { ConfigKeyError } from '../config/key-error.js';
import { formatHostPort } from '../config/listen.js';

export interface BoundSocket {
  /** The bound handle, for `server.listen({ handle })` (fastify: `app.listen({ host, handle })`). */
  readonly handle: object;
  /** The address actually bound (port 0 resolved). */
  readonly port: number;
  /**
   * Gives `server`, once it has adopted the handle (its listen() returned), the connections accepted
   * before, as if it had accepted them itself.
   */
  handOver(server: Server): void;
  /** How many connections are held, accepted and waiting for a server. */
  held(): number;
  /** Closes the socket, and the connections held: only while no server has adopted it (start-up failed before listen). */
  close(): Promise<void>;
}

/** As many connections held during start-up as the kernel's backlog holds (net's default, 511); more are closed. */
const MAX_HELD = 511;

/** net.Server's count of its open connections: close() waits for it to reach 0. */
interface CountingServer {
  _connections: number;
}

/** Who owns an accepted socket, for that count (net.Server sets both when it accepts). */
interface OwnedSocket {
  server: Server | null;
  _server: Server | null;
}

const ignore = (): void => undefined;

/** Why `host:port` cannot be listened on, in words a person can act on. */
export function listenFailure(host: string, port: number, err: NodeJS.ErrnoException): string {
  const where = formatHostPort(host, port);
  switch (err.code) {
    case 'EADDRINUSE':
      return `${where} is in use (another process is listening there; stop it or choose another port)`;
    case 'EACCES':
      return port > 0 && port < 1024
        ? `not allowed to listen on ${where}: ports below 1024 need privileges (CAP_NET_BIND_SERVICE), or use a port above 1023`
        : `not allowed to listen on ${where}`;
    case 'EADDRNOTAVAIL':
      return `${host} is not an address of this machine (listen on one of its addresses, 0.0.0.0 or [::] for all)`;
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
    case 'EAI_FAIL':
    case 'EAI_NONAME':
      return `cannot resolve the host "${host}" (${err.code}): give an address of this machine or a name that resolves to one; an empty host means every IPv4 address`;
    default:
      return `cannot listen on ${where}: ${err.message}`;
  }
}

/** The error `bindListenSocket` throws: a problem with the `listen` key, in `listenFailure`'s words. */
export class ListenError extends ConfigKeyError {
  override name = 'ListenError';
  constructor(
    message: string,
    readonly code: string | undefined,
    options?: ErrorOptions,
  ) {
    super('listen', message, options);
  }
}

/** Binds and listens on host:port (the host resolved as listen() resolves it); throws a ListenError. */
export async function bindListenSocket(host: string, port: number): Promise<BoundSocket> {
  let address: string;
  try {
    // Resolved here, not by listen(), so that a name that does not resolve fails like a port in use.
    ({ address } = await lookup(host));
  } catch (err) {
    throw new ListenError(listenFailure(host, port, err as NodeJS.ErrnoException), (err as NodeJS.ErrnoException).code, { cause: err });
  }
  // Unread until handed over: no byte is taken from a connection before its server exists.
  const server = createServer({ pauseOnConnect: true });
  // Each held connection, with its listener that forgets it once closed.
  const held = new Map<Socket, () => void>();
  server.on('connection', (socket: Socket) => {
    if (held.size >= MAX_HELD) {
      socket.destroy();
      return;
    }
    const forget = () => held.delete(socket);
    held.set(socket, forget);
    // Nothing is read or written while held; a reset is the new server's to see.
    socket.on('error', ignore);
    socket.once('close', forget);
  });
  await new Promise<void>((resolve, reject) => {
    const failed = (err: NodeJS.ErrnoException) => reject(new ListenError(listenFailure(host, port, err), err.code, { cause: err }));
    server.once('error', failed);
    server.listen({ host: address, port }, () => {
      server.off('error', failed);
      resolve();
    });
  });
  const bound = server.address();
  return {
    handle: (server as Server & { _handle: object })._handle,
    port: typeof bound === 'object' && bound !== null ? bound.port : port,
    handOver: (to: Server) => {
      const sockets = [...held];
      held.clear();
      for (const [socket, forget] of sockets) {
        socket.off('error', ignore);
        socket.off('close', forget);
        if (socket.destroyed) continue;
        // Counted as the new server's, so that its close() waits for these connections too.
        (server as Server & CountingServer)._connections--;
        (to as Server & CountingServer)._connections++;
        const owned = socket as Socket & OwnedSocket;
        owned.server = to;
        owned._server = to;
        // What net.Server does with a connection it accepts: http.Server (or, with tls, the TLS
        // server, which handshakes first) and the listeners in front of it (connection-limits.ts)
        // take it from there.
        to.emit('connection', socket);
        socket.resume();
      }
    },
    held: () => held.size,
    close: async () => {
      for (const socket of [...held.keys()]) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/**
 * Why the configured listen host would not do, without taking its port (a running server may hold
 * it): the host resolves and is an address of this machine. undefined when it would do.
 */
export async function listenHostProblem(host: string): Promise<string | undefined> {
  try {
    const socket = await bindListenSocket(host, 0);
    await socket.close();
    return undefined;
  } catch (err) {
    if (err instanceof ListenError) return err.message;
    throw err;
  }
}
