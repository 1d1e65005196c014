// What one client may hold of the server: a request body must keep arriving (http.bodyIdleTimeout),
// and one address may keep only so many connections open (http.maxConnectionsPerAddress).
//
// requestTimeout is 0 on purpose (an upload of many gigabytes may take hours), so without these a
// client that announces a body and stops sending it (a stalled PATCH, an anonymous POST /auth/token
// with a large Content-Length) holds its socket forever, and enough of them exhaust the server.
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { Http2SecureServer } from 'node:http2';
import type { Socket } from 'node:net';
import { Server as TlsServer } from 'node:tls';
import { addressKey } from '../auth/login-limiter.js';
import { RegistryError } from '../registry/errors.js';
import { errorBody } from './plugins/error-handler.js';

/** node:http's server, or node:http2's secure one with allowHTTP1 (tls.http2): both emit 'request'
 * with a request and a response of the same shape (HTTP/2 through the compatibility API). */
export type RequestServer = Server | Http2SecureServer;

interface Logger {
  warn(obj: object, msg: string): void;
}

/**
 * Cuts a request whose body stops arriving for `idleMs`, however long the whole body takes. Only the
 * client's silence counts: while bytes wait in the request for the server to read them (a slow disk
 * behind an upload), the body is not idle. The reader of the body fails with a 408 REQUEST_TIMEOUT,
 * which the client gets when the response has not started, and the connection is closed.
 */
export function timeBodyIdle(server: RequestServer, idleMs: number, log: Logger): void {
  if (idleMs <= 0) return;
  const tickMs = Math.max(5, Math.floor(idleMs / 4));
  server.on('request', (req: IncomingMessage, res: ServerResponse) => {
    if (!hasBody(req)) return;
    const socket = req.socket;
    let seen = socket.bytesRead;
    let lastProgress = Date.now();
    const timer = setInterval(() => {
      if (req.complete || socket.destroyed) return clearInterval(timer);
      const now = Date.now();
      // Progress: new bytes from the client, or bytes the server has not consumed yet.
      if (socket.bytesRead !== seen || req.readableLength > 0) {
        seen = socket.bytesRead;
        lastProgress = now;
        return;
      }
      if (now - lastProgress < idleMs) return;
      clearInterval(timer);
      const err = new RegistryError('REQUEST_TIMEOUT', `the request body stopped arriving: no byte for ${idleMs} ms (http.bodyIdleTimeout)`, {
        detail: { idleMs, setting: 'http.bodyIdleTimeout' },
      });
      log.warn({ method: req.method, url: (req.url ?? '').split('?')[0]?.slice(0, 200), address: socket.remoteAddress, idleMs }, 'request body stalled; connection closed');
      if (req.httpVersionMajor === 2) {
        // One stream of a shared connection: answered and reset on its own, the connection stays.
        if (!res.headersSent) {
          const body = JSON.stringify(errorBody(err.code, err.message, err.detail));
          res.writeHead(408, { 'content-type': 'application/json; charset=utf-8', 'content-length': String(Buffer.byteLength(body)) });
          res.end(body, () => req.destroy(err));
        } else {
          req.destroy(err);
        }
      } else if (!res.headersSent) {
        // Written by hand: the route may still be waiting for the body and will fail once it is destroyed.
        socket.end(rawErrorResponse(err, '408 Request Timeout'));
        socket.once('finish', () => req.destroy(err));
      } else {
        req.destroy(err);
      }
    }, tickMs);
    timer.unref();
    req.once('end', () => clearInterval(timer));
    socket.once('close', () => clearInterval(timer));
  });
}

function hasBody(req: IncomingMessage): boolean {
  const length = req.headers['content-length'];
  return (length !== undefined && length !== '0') || req.headers['transfer-encoding'] !== undefined;
}

/**
 * Refuses connections beyond `max` open ones from one client address (IPv6 per /64) with a 429 and
 * closes them before HTTP sees them, so no route runs. Trusted proxies are not capped. One warning
 * per address each time it reaches the cap.
 */
export function capConnectionsPerAddress(server: RequestServer, max: number, isTrustedProxy: (address: string) => boolean, log: Logger): void {
  if (max <= 0) return;
  const open = new Map<string, number>();
  const warned = new Set<string>();
  const tlsServer = server instanceof TlsServer;
  const emit = server.emit.bind(server) as (event: string | symbol, ...args: unknown[]) => boolean;
  // net.Server announces each accepted socket with emit('connection'); http.Server's own listener
  // takes it from there. A refused socket never reaches that listener.
  server.emit = ((event: string | symbol, ...args: unknown[]): boolean => {
    if (event !== 'connection') return emit(event, ...args);
    const socket = args[0] as Socket;
    const address = socket.remoteAddress;
    if (address === undefined || isTrustedProxy(address)) return emit(event, ...args);
    const key = addressKey(address);
    const count = open.get(key) ?? 0;
    if (count >= max) {
      if (!warned.has(key)) {
        warned.add(key);
        log.warn({ address: key, open: count, max }, 'connection refused: too many open connections from one address (http.maxConnectionsPerAddress)');
      }
      // Over TLS no plain-text answer can be read before a handshake: the connection is closed.
      if (tlsServer) socket.destroy();
      else refuse(socket, max);
      return true;
    }
    open.set(key, count + 1);
    socket.once('close', () => {
      const left = (open.get(key) ?? 1) - 1;
      if (left > 0) open.set(key, left);
      else open.delete(key);
      if (left < max) warned.delete(key);
    });
    return emit(event, ...args);
  }) as typeof server.emit;
}

function refuse(socket: Socket, max: number): void {
  const err = new RegistryError('TOOMANYREQUESTS', `too many open connections from your address (at most ${max}); close some and retry`, {
    detail: { max, setting: 'http.maxConnectionsPerAddress' },
  });
  socket.on('error', () => undefined);
  // Read and drop what the client sends, so closing does not reset the connection under the answer.
  socket.resume();
  socket.end(rawErrorResponse(err, '429 Too Many Requests', 'retry-after: 1\r\n'));
  socket.setTimeout(2000, () => socket.destroy());
}

/** An OCI error written straight to the socket (no route, or a route that cannot answer), closing it. */
function rawErrorResponse(err: RegistryError, status: string, extraHeaders = ''): string {
  const body = JSON.stringify(errorBody(err.code, err.message, err.detail));
  return (
    `HTTP/1.1 ${status}\r\ncontent-type: application/json; charset=utf-8\r\ncontent-length: ${Buffer.byteLength(body)}\r\n` +
    `${extraHeaders}connection: close\r\n\r\n${body}`
  );
}
