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
    const free: Buffer[] = [];
    let waiting: (() => void) | undefined;
    const release = (buf: Buffer) => {
      free.push(buf);
      waiting?.();
    };
    let gone = false;
    const onGone = () => {
      gone = true;
      waiting?.();
    };
    out.once('close', onGone);
    try {
      let allocated = 0;
      while (this.pos <= this.end) {
        if (gone || out.destroyed) throw new Error('the client went away');
        let buf = free.pop();
        if (!buf && allocated < BUFFERS) {
          buf = Buffer.allocUnsafeSlow(CHUNK);
          allocated++;
        }
        if (!buf) {
          await new Promise<void>((r) => (waiting = r));
          waiting = undefined;
          continue;
        }
        const { bytesRead } = await this.handle.read(buf, 0, Math.min(CHUNK, this.end - this.pos + 1), this.pos);
        if (bytesRead === 0) throw new Error(`blob file ended early at byte ${this.pos}`);
        this.pos += bytesRead;
        const chunk = buf;
        // The callback says the socket is done with the bytes: only then is the buffer reused.
        const more = out.write(chunk.subarray(0, bytesRead), () => release(chunk));
        if (!more && !gone) {
          await new Promise<void>((r) => {
            waiting = r;
            out.once('drain', r);
          });
          waiting = undefined;
        }
      }
    } finally {
      out.off('close', onGone);
      await this.close();
    }
  }

  private async close(): Promise<void> {
    if (this.handleClosed) return;
    this.handleClosed = true;
    await this.handle.close();
  }
}
