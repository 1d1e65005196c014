// GETs of objects by presigned URL over plain HTTP/1.1 sockets that read into one fixed buffer each
// (net/tls `onread`), kept alive between GETs. The AWS SDK's GetObject goes through Node's http client,
// whose sockets allocate a new buffer for every read (64 KiB, mostly garbage a moment later): eight
// clients pulling one 64 MiB blob took the RSS from 82 to 131 MiB (bench/s3-pull-memory.ts). Here the bytes of a read are valid only
// during the call that hands them on (S3ObjectStream copies them into buffers it recycles), and a
// consumer that returns false pauses the socket: backpressure reaches S3 through TCP.
// Only what a GET of an object needs: a status line, headers, a body of Content-Length bytes. The
// signature is in the URL (the SDK's presigner, with the SDK's credential chain), so nothing here signs.
import { connect as netConnect, isIP, type OnReadOpts, type Socket } from 'node:net';
import { connect as tlsConnect, type ConnectionOptions } from 'node:tls';

/**
 * What one read may bring at most: the size of each socket's buffer. 256 KiB rather than Node's 64:
 * fewer reads and writes per MiB (bench/s3-warm.ts, whole 256 MiB blob, Wharf/radosgw direct: 0.77
 * with 64 KiB, 0.83 with 256), the same peak RSS under 8 clients.
 */
export const READ_BUFFER = 256 * 1024;
const MAX_HEAD = 64 * 1024;
/** Idle sockets kept per origin, and how long. */
const MAX_IDLE = 16;
const IDLE_MS = 4_000;

/** An answer of S3 that is not the object: its status and S3's error code (NoSuchKey, AccessDenied, ...). */
export class S3GetError extends Error {
  readonly status: number;
  readonly code: string | undefined;

  constructor(status: number, code: string | undefined, message: string) {
    super(message);
    this.name = 'S3GetError';
    this.status = status;
    this.code = code;
  }
}

interface Conn {
  readonly socket: Socket;
  readonly origin: string;
  /** The GET on this socket; undefined while idle. */
  get: ObjectGet | undefined;
}

export interface ObjectGetterOptions {
  /** No byte from S3 for this long (while the consumer wants more) fails the GET; default 60 s. */
  timeoutMs?: number;
  /** Certificates to trust instead of Node's (tests on a self-signed server); NODE_EXTRA_CA_CERTS works too. */
  ca?: string | Buffer;
}

/** GETs by URL on sockets kept per origin (scheme, host and port). One per store. */
export class ObjectGetter {
  private readonly idle = new Map<string, Conn[]>();
  private readonly timeoutMs: number;
  private readonly ca: string | Buffer | undefined;

  constructor(opts: ObjectGetterOptions = {}) {
    this.timeoutMs = opts.timeoutMs ?? 60_000;
    this.ca = opts.ca;
  }

  /**
   * Sends GET `url` (with `Range: bytes=start-end` when given) and resolves once the head has come: a
   * status and headers, the body still to be taken with ObjectGet.take. A kept-alive socket that the
   * server had closed is replaced once.
   */
  async get(url: string, range?: { start: number; end: number }): Promise<ObjectGet> {
    const u = new URL(url);
    if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new Error(`not an http(s) URL: ${u.protocol}`);
    const request = Buffer.from(
      `GET ${u.pathname}${u.search} HTTP/1.1\r\nHost: ${u.host}\r\n${range ? `Range: bytes=${range.start}-${range.end}\r\n` : ''}User-Agent: wharf\r\n\r\n`,
      'latin1',
    );
    for (let attempt = 0; ; attempt++) {
      const { conn, reused } = this.connection(u);
      const get = new ObjectGet(conn, this.timeoutMs, (c) => this.release(c));
      conn.socket.write(request);
      try {
        await get.head;
        return get;
      } catch (err) {
        // Closed by the server before it answered, on a socket it had kept: a race with its idle timeout.
        if (reused && attempt === 0 && get.receivedNothing) continue;
        throw err;
      }
    }
  }

  /** Closes the idle sockets (the store is done with). */
  close(): void {
    for (const list of this.idle.values()) for (const c of list) c.socket.destroy();
    this.idle.clear();
  }

  private connection(u: URL): { conn: Conn; reused: boolean } {
    const origin = `${u.protocol}//${u.host}`;
    const list = this.idle.get(origin);
    while (list && list.length > 0) {
      const conn = list.pop()!;
      if (conn.socket.destroyed || conn.socket.readableEnded) continue;
      conn.socket.ref();
      return { conn, reused: true };
    }
    return { conn: this.open(u, origin), reused: false };
  }

  private open(u: URL, origin: string): Conn {
    const host = u.hostname.replace(/^\[|\]$/g, '');
    const port = Number(u.port || (u.protocol === 'https:' ? 443 : 80));
    const buffer = Buffer.allocUnsafeSlow(READ_BUFFER);
    // The GET on the socket takes each read; bytes on an idle socket are a protocol error.
    const callback = (n: number, buf: Buffer): boolean => {
      if (conn.get) return conn.get.onData(buf.subarray(0, n));
      conn.socket.destroy();
      return false;
    };
    const socket =
      u.protocol === 'https:'
        ? // tls.connect takes onread as net.connect does (documented; @types/node leaves it out).
          tlsConnect({ host, port, ...(isIP(host) === 0 ? { servername: host } : {}), ALPNProtocols: ['http/1.1'], ...(this.ca !== undefined ? { ca: this.ca } : {}), onread: { buffer, callback } } as ConnectionOptions & { onread: OnReadOpts })
        : netConnect({ host, port, onread: { buffer, callback } });
    socket.setNoDelay(true);
    const conn: Conn = { socket, origin, get: undefined };
    const closed = (err?: Error) => conn.get?.onClose(err);
    socket.on('error', closed);
    socket.on('end', () => closed());
    socket.on('close', () => {
      closed();
      const list = this.idle.get(origin);
      const at = list?.indexOf(conn) ?? -1;
      if (at >= 0) list!.splice(at, 1);
    });
    socket.on('timeout', () => {
      if (conn.get) conn.get.onTimeout();
      else socket.destroy();
    });
    return conn;
  }

  private release(conn: Conn): void {
    conn.get = undefined;
    const list = this.idle.get(conn.origin) ?? [];
    if (list.length >= MAX_IDLE || conn.socket.destroyed) {
      conn.socket.destroy();
      return;
    }
    conn.socket.setTimeout(IDLE_MS);
    // Read while idle, so that the server closing it is seen (and anything it sends is an error).
    conn.socket.resume();
    // An idle socket does not keep the process running.
    conn.socket.unref();
    list.push(conn);
    this.idle.set(conn.origin, list);
  }
}

/**
 * One GET on one socket. `head` resolves with the status and headers; take() then hands the body's
 * bytes to a consumer as they come; `done` settles when the last byte has been handed on (the socket
 * goes back to the getter) or the body failed (the socket is closed).
 */
export class ObjectGet {
  status = 0;
  readonly headers = new Map<string, string>();
  /** Bytes of the body not yet received. */
  remaining = 0;
  receivedNothing = true;
  readonly head: Promise<void>;
  readonly done: Promise<void>;
  private headState: { resolve: () => void; reject: (err: Error) => void } | undefined;
  private doneState!: { resolve: () => void; reject: (err: Error) => void };
  private headBytes = Buffer.alloc(0);
  /** Body bytes that came with the head, before anyone took the body. */
  private early: Buffer | undefined;
  private consumer: ((chunk: Buffer) => boolean) | undefined;
  private finished = false;
  private paused = false;
  /** Whether the socket may carry another GET once this body is done. */
  private reuse = true;

  constructor(
    private readonly conn: Conn,
    private readonly timeoutMs: number,
    private readonly release: (conn: Conn) => void,
  ) {
    conn.get = this;
    conn.socket.setTimeout(timeoutMs);
    // A socket handed back while paused (its body came whole with the head) reads again.
    conn.socket.resume();
    this.head = new Promise((resolve, reject) => (this.headState = { resolve, reject }));
    this.done = new Promise((resolve, reject) => (this.doneState = { resolve, reject }));
    // Observed by whoever takes the body; a GET refused at its head is never taken.
    this.done.catch(() => undefined);
  }

  /**
   * Hands the body to `consumer`: each chunk is valid only during the call (the socket reads into the
   * same buffer next); returning false pauses the socket until resume().
   */
  take(consumer: (chunk: Buffer) => boolean): void {
    if (this.consumer) throw new Error('the body of this GET is already taken');
    this.consumer = consumer;
    const early = this.early;
    this.early = undefined;
    if (early && !this.deliver(early)) return;
    if (!this.finished) this.resume();
  }

  resume(): void {
    if (this.finished || !this.paused) return;
    this.paused = false;
    this.conn.socket.setTimeout(this.timeoutMs);
    this.conn.socket.resume();
  }

  /** Stops the GET (its consumer has gone): the socket is closed, `done` rejects with `reason`. */
  abort(reason: Error): void {
    this.fail(reason);
  }

  /** A read from the socket; false pauses it. */
  onData(chunk: Buffer): boolean {
    this.receivedNothing = false;
    if (this.finished) return false;
    if (this.headState) return this.onHead(chunk);
    return this.deliver(chunk);
  }

  onClose(err?: Error): void {
    if (this.finished) return;
    const what = this.headState ? 'before S3 answered' : `with ${this.remaining} bytes of the object still to come`;
    this.fail(new Error(`the connection to S3 ${err ? 'failed' : 'was closed'} ${what}${err ? `: ${err.message}` : ''}`, { cause: err }));
  }

  onTimeout(): void {
    if (this.finished) return;
    if (this.consumer === undefined && !this.headState) {
      this.fail(new Error(`nobody read the object's body for ${this.timeoutMs / 1000} s`));
      return;
    }
    if (this.paused) return;
    this.fail(new Error(`S3 sent nothing for ${this.timeoutMs / 1000} s ${this.headState ? 'after the GET' : 'in the middle of the object'}`));
  }

  private onHead(chunk: Buffer): boolean {
    this.headBytes = this.headBytes.length === 0 ? Buffer.from(chunk) : Buffer.concat([this.headBytes, chunk]);
    const end = this.headBytes.indexOf('\r\n\r\n', 0, 'latin1');
    if (end < 0) {
      if (this.headBytes.length > MAX_HEAD) this.fail(new Error(`S3's answer has a head longer than ${MAX_HEAD} bytes`));
      return !this.finished;
    }
    const rest = this.headBytes.subarray(end + 4);
    const lines = this.headBytes.toString('latin1', 0, end).split('\r\n');
    this.headBytes = Buffer.alloc(0);
    const status = /^HTTP\/1\.([01]) (\d{3})(?: |$)/.exec(lines[0] ?? '');
    if (!status) return this.failHead(new Error(`S3 answered with no HTTP/1.x status line: ${JSON.stringify((lines[0] ?? '').slice(0, 100))}`));
    this.status = Number(status[2]);
    for (const line of lines.slice(1)) {
      const colon = line.indexOf(':');
      if (colon <= 0) return this.failHead(new Error(`S3 answered with a malformed header line: ${JSON.stringify(line.slice(0, 100))}`));
      const name = line.slice(0, colon).trim().toLowerCase();
      const value = line.slice(colon + 1).trim();
      const had = this.headers.get(name);
      if (had !== undefined && (name === 'content-length' || name === 'content-range')) return this.failHead(new Error(`S3 answered with two ${name} headers`));
      this.headers.set(name, had === undefined ? value : `${had}, ${value}`);
    }
    const state = this.headState!;
    this.headState = undefined;
    if (this.status < 200 || this.status >= 300) {
      // Not the object: the socket is not reused, whatever its body.
      const text = rest.toString('utf8', 0, Math.min(rest.length, 4096));
      const code = /<Code>([^<]{1,100})<\/Code>/.exec(text)?.[1];
      const message = /<Message>([^<]{0,300})<\/Message>/.exec(text)?.[1];
      const err = new S3GetError(this.status, code, `S3 answered the GET with ${this.status}${code ? ` ${code}` : ''}${message ? `: ${message}` : ''}`);
      this.fail(err);
      state.reject(err);
      return false;
    }
    const length = this.headers.get('content-length');
    if (this.headers.has('transfer-encoding') || length === undefined || !/^\d{1,15}$/.test(length)) {
      return this.failHead(new Error('S3 answered the GET without a Content-Length'), state);
    }
    this.remaining = Number(length);
    if (rest.length > this.remaining) return this.failHead(new Error(`S3 sent more than the ${this.remaining} bytes it announced`), state);
    if (status[1] === '0' || /\bclose\b/i.test(this.headers.get('connection') ?? '')) this.reuse = false;
    if (rest.length > 0) this.early = rest;
    state.resolve();
    if (this.remaining === 0) {
      this.finish();
      return true;
    }
    // Nobody has the body yet: nothing more is read until someone takes it (within the timeout).
    this.paused = true;
    return false;
  }

  private failHead(err: Error, state = this.headState): false {
    this.headState = undefined;
    this.fail(err);
    state?.reject(err);
    return false;
  }

  private deliver(chunk: Buffer): boolean {
    if (chunk.length > this.remaining) {
      this.fail(new Error(`S3 sent more than the bytes it announced (${chunk.length - this.remaining} too many)`));
      return false;
    }
    this.remaining -= chunk.length;
    const more = this.consumer!(chunk);
    if (this.remaining === 0) {
      this.finish();
      return true;
    }
    if (this.finished) return false;
    if (!more) {
      this.paused = true;
      // Waiting for the consumer is not S3's silence.
      this.conn.socket.setTimeout(0);
    }
    return more;
  }

  private finish(): void {
    if (this.finished) return;
    this.finished = true;
    if (this.reuse) this.release(this.conn);
    else {
      this.conn.get = undefined;
      this.conn.socket.destroy();
    }
    this.doneState.resolve();
  }

  private fail(err: Error): void {
    if (this.finished) return;
    this.finished = true;
    this.conn.get = undefined;
    this.conn.socket.destroy();
    this.headState?.reject(err);
    this.headState = undefined;
    this.doneState.reject(err);
  }
}
