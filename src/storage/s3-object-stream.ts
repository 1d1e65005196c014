// An object's body from S3 as a stream, with the same faster way out for an HTTP response as a blob
// file (file-blob-stream.ts): writeTo copies each socket read into one of a few recycled buffers and
// writes that slice, and a buffer is reused once the client's socket has taken every slice of it. When
// none is free the S3 socket is paused: memory per GET stays at BUFFERS x CHUNK whatever the client's
// pace, and nothing is allocated per read. Piped as a plain Readable (manifests read whole, the rare
// consumer that is not an HTTP response), each read is copied into a buffer of its own.
import { Readable, type Writable } from 'node:stream';
import type { DirectBody } from './file-blob-stream.js';
import { READ_BUFFER, type ObjectGet } from './s3-object-get.js';

const CHUNK = 512 * 1024;
const BUFFERS = 4;

interface Slot {
  buf: Buffer;
  /** Bytes copied in so far. */
  fill: number;
  /** Slices written to the client and not yet taken by its socket. */
  refs: number;
}

export class S3ObjectStream extends Readable implements DirectBody {
  private taken = false;

  /** The body of `get` (its head received), `length` bytes. */
  constructor(
    private readonly get: ObjectGet,
    readonly length: number,
  ) {
    super({ highWaterMark: CHUNK });
  }

  override _read(): void {
    if (this.taken) {
      this.get.resume();
      return;
    }
    this.taken = true;
    this.get.done.then(
      () => this.push(null),
      (err: Error) => this.destroy(err),
    );
    this.get.take((chunk) => this.push(Buffer.from(chunk)));
  }

  override _destroy(err: Error | null, cb: (err?: Error | null) => void): void {
    this.get.abort(err ?? new Error('the reader of the object went away'));
    cb(err);
  }

  writeTo(out: Writable): Promise<void> {
    if (this.taken) return Promise.reject(new Error('the body of this object is already being read'));
    this.taken = true;
    const get = this.get;
    const slots: Slot[] = [];
    let cur: Slot | undefined;
    const reusable = (s: Slot) => s.refs === 0 && (s !== cur || s.fill === s.buf.length);
    /** Room for one more read: in the current buffer, a free one, or one still to allocate. */
    const room = (): boolean => {
      const need = Math.min(READ_BUFFER, get.remaining);
      return need === 0 || (cur !== undefined && cur.buf.length - cur.fill >= need) || slots.length < BUFFERS || slots.some(reusable);
    };
    const nextSlot = (): Slot | undefined => {
      const s = slots.find(reusable);
      if (s) {
        s.fill = 0;
        return s;
      }
      if (slots.length >= BUFFERS) return undefined;
      // A small object gets a buffer of its size (the bytes still to come, this read's included).
      const fresh = { buf: Buffer.allocUnsafeSlow(Math.min(CHUNK, Math.max(1, get.remaining + READ_BUFFER))), fill: 0, refs: 0 };
      slots.push(fresh);
      return fresh;
    };
    let waiting = false;
    const taken = (s: Slot) => () => {
      s.refs--;
      if (waiting && room()) {
        waiting = false;
        get.resume();
      }
    };
    return new Promise<void>((resolve, reject) => {
      let settled = false;
      const settle = (err?: Error) => {
        if (settled) return;
        settled = true;
        out.off('close', gone);
        out.off('error', gone);
        if (err) reject(err);
        else resolve();
      };
      const gone = () => {
        get.abort(new Error('the client went away'));
        settle(new Error('the client went away'));
      };
      if (out.destroyed) return gone();
      out.on('close', gone);
      out.on('error', gone);
      get.done.then(
        () => {
          if (out.destroyed) return gone();
          // Every byte has been written: the response ends right after the last one.
          out.end();
          settle();
        },
        (err: Error) => settle(err),
      );
      get.take((chunk) => {
        let at = 0;
        while (at < chunk.length) {
          if (cur === undefined || cur.fill === cur.buf.length) cur = nextSlot();
          if (cur === undefined) {
            // Only when a read came while paused (TLS hands on what it has decrypted): a copy of its own.
            out.write(Buffer.from(chunk.subarray(at)));
            break;
          }
          const n = chunk.copy(cur.buf, cur.fill, at);
          const slice = cur.buf.subarray(cur.fill, cur.fill + n);
          cur.fill += n;
          cur.refs++;
          at += n;
          out.write(slice, taken(cur));
        }
        if (room()) return true;
        waiting = true;
        return false;
      });
    });
  }
}
