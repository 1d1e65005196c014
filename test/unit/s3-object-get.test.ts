// The S3 store's own GETs (src/storage/s3-object-get.ts, s3-object-stream.ts) against a node:https
// server with a self-signed certificate (openssl) on 127.0.0.1:0, standing in for an S3 endpoint on
// HTTPS: whole objects and ranges, the connection kept for the next GET and replaced when the server
// has closed it, an error status with S3's code, a body without Content-Length refused, a body cut in
// the middle failing the stream (the destination never ended), a slow destination pausing the socket.
import { execFile as execFileCb } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:https';
import type { AddressInfo, Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { promisify } from 'node:util';
import t from 'tap';
import { ObjectGetter, S3GetError } from '../../src/storage/s3-object-get.js';
import { S3ObjectStream } from '../../src/storage/s3-object-stream.js';

const execFile = promisify(execFileCb);
const dir = mkdtempSync(join(tmpdir(), 'wharf-s3-get-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));
const keyFile = join(dir, 'key.pem');
const certFile = join(dir, 'cert.pem');
// prettier-ignore
await execFile('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', keyFile, '-out', certFile, '-days', '2', '-subj', '/CN=localhost', '-addext', 'subjectAltName=DNS:localhost,IP:127.0.0.1'], { timeout: 30_000 });
const ca = readFileSync(certFile);

const object = randomBytes(3 * 1024 * 1024 + 17);
/** What the server does with the next GET of /cut: send this many bytes of the object, then reset. */
const CUT_AT = 1024 * 1024;

const sockets = new Set<Socket>();
let connections = 0;
const server: Server = createServer({ key: readFileSync(keyFile), cert: ca }, (req, res) => {
  const path = new URL(req.url ?? '/', 'https://x').pathname;
  if (path === '/missing') {
    const xml = '<?xml version="1.0"?><Error><Code>NoSuchKey</Code><Message>The specified key does not exist.</Message></Error>';
    res.writeHead(404, { 'content-type': 'application/xml', 'content-length': xml.length }).end(xml);
    return;
  }
  if (path === '/chunked') {
    res.writeHead(200);
    res.write(object.subarray(0, 10));
    res.end();
    return;
  }
  if (path === '/cut') {
    res.writeHead(200, { 'content-length': object.length });
    res.write(object.subarray(0, CUT_AT), () => req.socket.destroy());
    return;
  }
  const m = /^bytes=(\d+)-(\d+)$/.exec(req.headers.range ?? '');
  if (m) {
    const [start, end] = [Number(m[1]), Math.min(Number(m[2]), object.length - 1)];
    res.writeHead(206, { 'content-length': end - start + 1, 'content-range': `bytes ${start}-${end}/${object.length}` }).end(object.subarray(start, end + 1));
    return;
  }
  res.writeHead(200, { 'content-length': object.length }).end(object);
});
server.on('secureConnection', (s: Socket) => {
  connections++;
  sockets.add(s);
  s.on('close', () => sockets.delete(s));
});
server.listen(0, '127.0.0.1');
await once(server, 'listening');
t.teardown(() => {
  for (const s of sockets) s.destroy();
  server.close();
});
const base = `https://127.0.0.1:${(server.address() as AddressInfo).port}`;
const getter = new ObjectGetter({ ca });
t.teardown(() => getter.close());

/** A destination that keeps what it is given; with `delay`, takes each write that much later. */
class Sink extends Writable {
  ended = false;
  private readonly chunks: Buffer[] = [];

  constructor(private readonly delay = 0) {
    super({ highWaterMark: 16 * 1024 });
    this.on('finish', () => (this.ended = true));
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, cb: () => void): void {
    this.chunks.push(Buffer.from(chunk));
    if (this.delay > 0) setTimeout(cb, this.delay);
    else cb();
  }

  bytes(): Buffer {
    return Buffer.concat(this.chunks);
  }
}

const sink = (delay = 0) => new Sink(delay);

t.test('a whole object over HTTPS, written to a destination; the next GET on the same connection', async (t) => {
  const before = connections;
  for (let i = 0; i < 2; i++) {
    const get = await getter.get(`${base}/obj?X-Amz-Signature=x`);
    t.equal(get.status, 200);
    const out = sink();
    await new S3ObjectStream(get, get.remaining).writeTo(out);
    t.ok(out.bytes().equals(object), 'the bytes');
  }
  t.equal(connections - before, 1, 'one connection for both');
});

t.test('a range, read as a plain stream', async (t) => {
  const get = await getter.get(`${base}/obj`, { start: 1000, end: 2_000_999 });
  t.equal(get.status, 206);
  t.equal(get.headers.get('content-range'), `bytes 1000-2000999/${object.length}`);
  const chunks: Buffer[] = [];
  for await (const c of new S3ObjectStream(get, get.remaining)) chunks.push(c as Buffer);
  t.ok(Buffer.concat(chunks).equals(object.subarray(1000, 2_001_000)));
});

t.test('a connection the server closed while idle is replaced', async (t) => {
  const first = await getter.get(`${base}/obj`, { start: 0, end: 9 });
  await new S3ObjectStream(first, first.remaining).writeTo(sink());
  const closed = [...sockets].map((s) => once(s, 'close'));
  for (const s of sockets) s.destroy();
  await Promise.all(closed);
  const again = await getter.get(`${base}/obj`, { start: 5, end: 14 });
  const out = sink();
  await new S3ObjectStream(again, again.remaining).writeTo(out);
  t.ok(out.bytes().equals(object.subarray(5, 15)));
});

t.test('an error status: S3GetError with its code and message', async (t) => {
  const err = await getter.get(`${base}/missing`).then(
    () => undefined,
    (e: unknown) => e,
  );
  t.ok(err instanceof S3GetError);
  t.equal((err as S3GetError).status, 404);
  t.equal((err as S3GetError).code, 'NoSuchKey');
  t.match((err as Error).message, 'The specified key does not exist.');
});

t.test('a body without Content-Length is refused', async (t) => {
  await t.rejects(getter.get(`${base}/chunked`), /without a Content-Length/);
});

t.test('a body cut in the middle fails the stream; the destination is not ended', async (t) => {
  const get = await getter.get(`${base}/cut`);
  const out = sink();
  await t.rejects(new S3ObjectStream(get, get.remaining).writeTo(out), /still to come/);
  t.equal(out.ended, false, 'not ended');
  t.ok(out.bytes().length <= CUT_AT && out.bytes().equals(object.subarray(0, out.bytes().length)), 'a prefix of the object');
});

t.test('a slow destination pauses the socket: the whole object arrives, in order', async (t) => {
  const get = await getter.get(`${base}/obj`);
  const out = sink(1);
  const finished = once(out, 'finish');
  await new S3ObjectStream(get, get.remaining).writeTo(out);
  // writeTo ends the destination after the last write; the destination takes it at its pace.
  await finished;
  t.ok(out.bytes().equals(object));
});

t.test('a destination that goes away stops the GET', async (t) => {
  const get = await getter.get(`${base}/obj`);
  const out = sink(1);
  const writing = new S3ObjectStream(get, get.remaining).writeTo(out);
  out.destroy();
  await t.rejects(writing, /went away/);
  await t.rejects(get.done, /went away/);
});
