// A blob file's bytes as a stream, with a faster way out for an HTTP response: `writeTo` reads into
// a few recycled buffers and reuses each one once the socket has taken it, so serving a large blob
// allocates nothing per chunk (a plain file stream allocates a new buffer per read, and the garbage
// collector then runs once every few dozen MiB).
import type { FileHandle } from 'node:fs/promises';
import { Readable, type Writable } from 'node:stream';

const CHUNK = 1024 * 1024;
const BUFFERS = 4;

/** A body that can write itself to a destination more cheaply than by being piped. */
export interface DirectBody {
  /**
   * Writes every byte to `out` and ends it right after the last one, before any clean-up: a client
   * that closes as soon as it has the whole body then finds a finished response (not one cut short).
   */
  writeTo(out: Writable): Promise<void>;
}

/** Resolves when `out` wants more, or has closed (the next write then finds it destroyed). */
export function drained(out: Writable): Promise<void> {
  return new Promise<void>((resolve) => {
    const done = () => {
      out.off('drain', done);
      out.off('close', done);
      resolve();
    };
    out.once('drain', done);
    out.once('close', done);
  });
}

export const isDirectBody = (body: unknown): body is DirectBody =>
  typeof body === 'object' && body !== null && typeof (body as Partial<DirectBody>).writeTo === 'function';

export class FileBlobStream extends Readable implements DirectBody {
  private pos: number;
  private handleClosed = false;

  /** Serves bytes [start, end] (inclusive) of the open file; the handle is closed when done. */
  constructor(
    private readonly handle: FileHandle,
    start: number,
    private readonly end: number,
  ) {
    super({ highWaterMark: CHUNK });
    this.pos = start;
  }

  override _read(size: number): void {
    const n = Math.min(Math.max(size, CHUNK), this.end - this.pos + 1);
    if (n <= 0) {
      this.push(null);
      return;
    }
    const buf = Buffer.allocUnsafe(n);
    this.handle.read(buf, 0, n, this.pos).then(
      ({ bytesRead }) => {
        if (bytesRead === 0) return this.destroy(new Error(`blob file ended early at byte ${this.pos}`));
        this.pos += bytesRead;
        this.push(buf.subarray(0, bytesRead));
      },
      (err: Error) => this.destroy(err),
    );
  }

  override _destroy(err: Error | null, cb: (err?: Error | null) => void): void {
    this.close().then(() => cb(err), cb);
  }

  async writeTo(out: Writable): Promise<void> {
    // One read is always in flight ahead of the socket, so disk and network overlap; a buffer goes
    // back to the pool only once the socket has taken its bytes (the write callback).
    const free: Buffer[] = [];
    let allocated = 0;
    // Everyone waiting (for a free buffer, for drain) re-checks after any change.
    let waiters: Array<() => void> = [];
    const signal = () => {
      const ws = waiters;
      waiters = [];
      for (const w of ws) w();
    };
    const changed = () => new Promise<void>((r) => waiters.push(r));
    const release = (buf: Buffer) => {
      free.push(buf);
      signal();
    };
    let gone = false;
    const onGone = () => {
      gone = true;
      signal();
    };
    out.on('close', onGone);
    out.on('drain', signal);
    const take = async (): Promise<Buffer> => {
      for (;;) {
        if (gone || out.destroyed) throw new Error('the client went away');
        const buf = free.pop();
        if (buf) return buf;
        if (allocated < BUFFERS) {
          allocated++;
          return Buffer.allocUnsafeSlow(CHUNK);
        }
        await changed();
      }
    };
    const readNext = async (): Promise<{ buf: Buffer; n: number } | null> => {
      if (this.pos > this.end) return null;
      const buf = await take();
      const at = this.pos;
      const want = Math.min(CHUNK, this.end - at + 1);
      this.pos += want;
      const { bytesRead } = await this.handle.read(buf, 0, want, at);
      if (bytesRead !== want) throw new Error(`blob file ended early at byte ${at + bytesRead}`);
      return { buf, n: want };
    };
    let pending: Promise<{ buf: Buffer; n: number } | null> | undefined;
    try {
      let chunk = await readNext();
      while (chunk) {
        pending = readNext();
        // The rejection is observed below; this stops it being reported as unhandled meanwhile.
        pending.catch(() => undefined);
        const { buf } = chunk;
        const more = out.write(buf.subarray(0, chunk.n), () => release(buf));
        // The next read runs while the socket drains; after the last chunk there is nothing to wait for.
        const next = await pending;
        pending = undefined;
        if (next) while (!more && !gone && out.writableNeedDrain) await changed();
        chunk = next;
      }
      if (gone || out.destroyed) throw new Error('the client went away');
      out.end();
    } finally {
      out.off('close', onGone);
      out.off('drain', signal);
      if (pending) await pending.catch(() => undefined);
      await this.close();
    }
  }

  private async close(): Promise<void> {
    if (this.handleClosed) return;
    this.handleClosed = true;
    await this.handle.close();
  }
}
