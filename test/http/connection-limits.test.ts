// What one client may hold, over real sockets: a request body that stops arriving is cut after
// http.bodyIdleTimeout (small values here), an upload that keeps making progress is not, and one
// address may keep only http.maxConnectionsPerAddress connections open.
import { connect, type Socket } from 'node:net';
import bcrypt from 'bcryptjs';
import t from 'tap';
import { startWharf } from '../helpers/server.js';
import { digestOf, inject, sessionOf } from '../helpers/http.js';

/** A raw connection to `url`; `received()` is everything the server sent once it closed the connection. */
async function open(url: string): Promise<{ socket: Socket; received: Promise<string> }> {
  const { hostname, port } = new URL(url);
  const socket = connect({ host: hostname, port: Number(port) });
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve);
    socket.once('error', reject);
  });
  // A server that never cuts a stalled body would hold this test forever: give up after 10 s.
  socket.setTimeout(10_000, () => socket.destroy());
  const chunks: Buffer[] = [];
  socket.on('data', (c: Buffer) => chunks.push(c));
  const received = new Promise<string>((resolve) => {
    socket.on('error', () => undefined);
    socket.once('close', () => resolve(Buffer.concat(chunks).toString('utf8')));
  });
  return { socket, received };
}

/** Sends one request on `socket` and resolves with the response head and body once it is complete. */
function exchange(socket: Socket, request: string): Promise<string> {
  return new Promise((resolve) => {
    let text = '';
    const onData = (c: Buffer) => {
      text += c.toString('utf8');
      const head = text.indexOf('\r\n\r\n');
      const length = /content-length: (\d+)/i.exec(text)?.[1];
      if (head >= 0 && length !== undefined && text.length >= head + 4 + Number(length)) {
        socket.off('data', onData);
        resolve(text);
      }
    };
    socket.on('data', onData);
    socket.write(request);
  });
}

t.test('a token request whose body stops arriving is answered 408 and closed after http.bodyIdleTimeout', async (t) => {
  const { url } = await startWharf(t, {
    http: { bodyIdleTimeout: '200ms' },
    auth: { users: [{ name: 'bob', password: bcrypt.hashSync('bob-pw', 4) }] },
  });
  const { socket, received } = await open(url);
  const started = performance.now();
  socket.write('POST /auth/token HTTP/1.1\r\nhost: x\r\ncontent-type: application/x-www-form-urlencoded\r\ncontent-length: 60000\r\n\r\ngrant_type=');
  const text = await received;
  const ms = performance.now() - started;
  t.match(text, /^HTTP\/1\.1 408 /, 'a 408');
  t.match(text, /"code":"REQUEST_TIMEOUT"/, 'with an OCI error body');
  t.match(text, /http\.bodyIdleTimeout/, 'naming the setting');
  t.ok(ms >= 200, `not before the timeout (${Math.round(ms)} ms)`);
});

t.test('a PATCH whose body stops arriving is cut; the upload keeps its offset and the server keeps serving', async (t) => {
  const { url, app } = await startWharf(t, { http: { bodyIdleTimeout: '200ms' } });
  const { path } = sessionOf(await inject(app, 'POST', '/v2/team/app/blobs/uploads/'));
  t.equal((await inject(app, 'PATCH', path, { headers: { 'content-type': 'application/octet-stream' }, body: 'abc' })).status, 202);
  const { socket, received } = await open(url);
  socket.write(`PATCH ${path} HTTP/1.1\r\nhost: x\r\ncontent-type: application/octet-stream\r\ncontent-length: 1000000\r\n\r\ndefgh`);
  t.match(await received, /^HTTP\/1\.1 408 /);
  const status = await inject(app, 'GET', path);
  t.equal(status.header('range'), '0-2', 'the cut chunk was not recorded');
  t.equal((await inject(app, 'PATCH', path, { headers: { 'content-type': 'application/octet-stream' }, body: 'def' })).status, 202, 'the upload resumes');
  const digest = digestOf('abcdef');
  t.equal((await inject(app, 'PUT', `${path}${path.includes('?') ? '&' : '?'}digest=${digest}`)).status, 201);
});

t.test('an upload that keeps making progress is not cut, however much longer than the timeout it takes', async (t) => {
  const { url, app } = await startWharf(t, { http: { bodyIdleTimeout: '150ms' } });
  const { path } = sessionOf(await inject(app, 'POST', '/v2/team/slow/blobs/uploads/'));
  const chunks = Array.from({ length: 12 }, (_, i) => Buffer.alloc(1000, 97 + i));
  const body = Buffer.concat(chunks);
  const { socket } = await open(url);
  const answered = new Promise<string>((resolve) => {
    let text = '';
    socket.on('data', (c: Buffer) => {
      text += c.toString('utf8');
      if (text.includes('\r\n\r\n')) resolve(text);
    });
  });
  socket.write(`PATCH ${path} HTTP/1.1\r\nhost: x\r\ncontent-type: application/octet-stream\r\ncontent-length: ${body.length}\r\n\r\n`);
  const started = performance.now();
  // One chunk every 50 ms: 600 ms in all, four times the idle timeout, never idle for long.
  for (const chunk of chunks) {
    socket.write(chunk);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  const text = await answered;
  t.ok(performance.now() - started > 450, 'the body took longer than the timeout');
  t.match(text, /^HTTP\/1\.1 202 /, 'accepted');
  t.match(text, /range: 0-11999/i);
  socket.destroy();
});

t.test('one address may hold http.maxConnectionsPerAddress connections; the next is answered 429 and closed', async (t) => {
  const { url } = await startWharf(t, { http: { maxConnectionsPerAddress: 3 } });
  const held: Socket[] = [];
  t.teardown(() => held.forEach((s) => s.destroy()));
  for (let i = 0; i < 3; i++) {
    const { socket } = await open(url);
    held.push(socket);
    // A full exchange: the server has accepted and counted this connection.
    t.match(await exchange(socket, 'GET /v2/ HTTP/1.1\r\nhost: x\r\n\r\n'), /^HTTP\/1\.1 200 /, `connection ${i + 1} is served`);
  }
  const extra = await open(url);
  extra.socket.write('GET /v2/ HTTP/1.1\r\nhost: x\r\n\r\n');
  const refused = await extra.received;
  t.match(refused, /^HTTP\/1\.1 429 /, 'the fourth is refused');
  t.match(refused, /"code":"TOOMANYREQUESTS"/);
  t.match(refused, /http\.maxConnectionsPerAddress/);
  t.match(await exchange(held[0]!, 'GET /v2/ HTTP/1.1\r\nhost: x\r\n\r\n'), /^HTTP\/1\.1 200 /, 'the held connections still work');

  // Once one closes, a new connection is served (the server sees the close a moment later).
  const closed = held.shift()!;
  await new Promise<void>((resolve) => {
    closed.once('close', () => resolve());
    closed.end();
  });
  let served = false;
  for (let attempt = 0; attempt < 50 && !served; attempt++) {
    const next = await open(url);
    const answer = await exchange(next.socket, 'GET /v2/ HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n').catch(() => '');
    served = /^HTTP\/1\.1 200 /.test(answer);
    next.socket.destroy();
    if (!served) await next.received;
  }
  t.ok(served, 'a connection is served again after one closed');
});
