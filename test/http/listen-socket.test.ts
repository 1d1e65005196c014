// The socket `serve` binds before anything exists: connections made before a server adopts it are
// held unread and answered by that server, counted as its own; closed if start-up fails instead.
import { readFileSync } from 'node:fs';
import { createServer as createHttpServer } from 'node:http';
import { createSecureServer } from 'node:http2';
import { connect, type Socket } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import t from 'tap';
import { bindListenSocket, type BoundSocket } from '../../src/http/listen-socket.js';
import { makeTestCa } from '../helpers/test-ca.js';

/** Connects to 127.0.0.1:port, resolving once the handshake completed. */
function connected(port: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port });
    socket.once('connect', () => resolve(socket)).once('error', reject);
  });
}

/** Everything the peer sends until it ends the connection, or the error that ended it. */
function readToEnd(socket: Socket): Promise<string> {
  return new Promise((resolve, reject) => {
    let text = '';
    socket.setEncoding('utf8');
    socket.on('data', (s: string) => (text += s));
    socket.once('end', () => resolve(text));
    socket.once('close', () => resolve(text));
    socket.once('error', reject);
  });
}

function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: not done within ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/** Resolves once `bound` holds `n` connections: accepted on a later turn of the event loop than the handshake. */
function holding(bound: BoundSocket, n: number): Promise<void> {
  return new Promise((resolve) => {
    const check = () => (bound.held() >= n ? resolve() : setImmediate(check));
    check();
  });
}

t.test('a connection made before the server adopts the socket is answered by it, and its close() waits for it', async (t) => {
  const bound = await bindListenSocket('127.0.0.1', 0);
  const early = await connected(bound.port);
  t.teardown(() => early.destroy());
  const answer = readToEnd(early);
  // Sent before any server exists: held unread until the handover.
  early.write('GET /early HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n');
  await within(holding(bound, 1), 10_000, 'the connection accepted and held');

  let release: () => void = () => undefined;
  const released = new Promise<void>((resolve) => (release = resolve));
  const server = createHttpServer((req, res) => {
    // The early request is held in flight until the server has been asked to close.
    if (req.url === '/early') void released.then(() => res.end('late answer'));
    else res.end('ok');
  });
  await new Promise<void>((resolve) => server.listen({ handle: bound.handle }, resolve));
  bound.handOver(server);

  const getConnections = () => new Promise<number>((resolve, reject) => server.getConnections((err, n) => (err ? reject(err) : resolve(n))));
  t.equal(bound.held(), 0, 'nothing held once handed over');
  t.equal(await getConnections(), 1, 'the held connection is counted as the server\'s');

  let closed = false;
  const closing = new Promise<void>((resolve) => server.close(() => resolve())).then(() => (closed = true));
  // Its request is still in flight: close() has not completed.
  await new Promise((resolve) => setImmediate(resolve));
  t.notOk(closed, 'close() waits for the connection handed over');
  release();
  const text = await within(answer, 10_000, 'the answer to the early request');
  t.match(text, /^HTTP\/1\.1 200 /);
  t.match(text, /late answer$/);
  early.destroy();
  await within(closing, 10_000, 'close() once the connection is gone');
});

t.test('close() before any server adopted the socket ends the connections it holds', async (t) => {
  const bound = await bindListenSocket('127.0.0.1', 0);
  const early = await connected(bound.port);
  t.teardown(() => early.destroy());
  const ended = readToEnd(early);
  early.write('GET / HTTP/1.1\r\nhost: x\r\n\r\n');
  await within(holding(bound, 1), 10_000, 'the connection accepted and held');
  await within(bound.close(), 10_000, 'close() with a connection held');
  t.equal(await within(ended.catch(() => ''), 10_000, 'the held connection ended'), '', 'nothing answered, connection ended');
});

t.test('over TLS: a connection whose handshake began before the HTTP/2 server adopts the socket is answered by it', async (t) => {
  const ca = makeTestCa(t);
  const pair = ca.issue('early');
  const bound = await bindListenSocket('127.0.0.1', 0);
  const raw = await connected(bound.port);
  // The ClientHello goes out at once; the server reads it only after the handover.
  const secure = tlsConnect({ socket: raw, ca: ca.caPem, ALPNProtocols: ['http/1.1'] });
  t.teardown(() => secure.destroy());
  const answer = readToEnd(secure);
  secure.once('secureConnect', () => secure.write('GET /early HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n'));
  await within(holding(bound, 1), 10_000, 'the connection accepted and held');

  // What app.ts builds with tls.http2: node's HTTP/2 secure server with HTTP/1.1 beside it.
  const server = createSecureServer({ allowHTTP1: true, cert: readFileSync(pair.cert), key: readFileSync(pair.key) }, (req, res) => res.end(`answered ${req.url}`));
  await new Promise<void>((resolve) => server.listen({ handle: bound.handle }, resolve));
  bound.handOver(server);
  const text = await within(answer, 10_000, 'the early request answered');
  t.match(text, /^HTTP\/1\.1 200 OK\r\n/);
  t.match(text, /answered \/early$/);
  t.equal(secure.authorized, true, 'the certificate verified against the test CA');
  await new Promise<void>((resolve) => server.close(() => resolve()));
});
