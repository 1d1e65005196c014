// One upstream fetch per blob, however many clients ask (DESIGN.md "The pull-through path").
// The fill hashes the upstream bytes as they arrive and writes them through a BlobWriter; every
// client, the first included, follows the fill: recent bytes from memory, older ones from the
// writer's growing bytes. The last byte is held back until the digest and size
// are verified, so no client ever receives a complete wrong blob: on a mismatch or an upstream
// failure nothing is committed and the clients' streams are destroyed (their connections cut).
// A dropped upstream connection is resumed with Range where the upstream allows it. The fill does
// not belong to any client: a client that goes away does not stop it.
import type { Hash } from 'node:crypto';
import { Readable, type Writable } from 'node:stream';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { drained, type DirectBody } from '../storage/file-blob-stream.js';
import { RegistryError, asRegistryError, asRegistryErrorOrFull } from '../registry/errors.js';
import { parseDigest } from '../registry/reference.js';
import { newHash } from '../oci/digest.js';
import type { BlobReader, BlobStore, BlobWriter, ByteRange } from '../storage/blob-store.js';

/** What the upstream answered for a GET starting at `offset`. */
export interface FillSource {
  /** Where the body starts: 0 for a full response, `offset` for a 206. */
  start: number;
  /** The blob's total size when the upstream said it. */
  total?: number;
  body: AsyncIterable<Buffer>;
}

export type FillFetcher = (offset: number) => Promise<FillSource>;

export interface FillOptions {
  /** Resumptions after a dropped connection before giving up. */
  maxResumes?: number;
  /**
   * The slowest upstream worth waiting for: fewer than `bytesPerSecond` on average over any
   * `windowMs` ends the fill (an upstream that trickles a byte now and then never trips an idle
   * timeout, and would hold its followers forever). Off when absent or 0.
   */
  minRate?: { bytesPerSecond: number; windowMs: number };
  /**
   * Called once the bytes are verified (`digest` is their hash, `size` their length): places and
   * records them (the ledger's commit). The fill cancels the writer afterwards.
   */
  onCommit: (writer: BlobWriter, digest: string, size: number) => Promise<void>;
  onEvent?: (event: 'resumed' | 'committed' | 'failed', detail: Record<string, unknown>) => void;
  /**
   * The bytes a previous fill of the digest left in the writer (its node died part way): `size` of
   * them, hashed into `hash`. The fill goes on after them (a Range request upstream).
   */
  resumed?: { size: number; hash: Hash };
}

/** Most bytes handed to a follower at once from memory (one vectored socket write). */
const FOLLOW_BATCH = 1024 * 1024;

/**
 * The upstream's bytes are copied into slabs of this size, reused once nothing holds them. Each
 * socket read arrives in a fresh buffer that the process only frees at a garbage collection; kept
 * in the window for a while, such buffers outlive a scavenge, move to the old generation and pile
 * up there until the next full collection (measured: 40-55 MiB of dead buffers during a cold
 * 256 MiB pull, most of the peak RSS). Copied at once, they die young; the slabs hold what is kept.
 */
const SLAB = 1024 * 1024;
/** Spare slabs kept for the next fill (enough for one fill's window and writes). */
const SPARE_SLABS = 16;

/** A slab of fill bytes: reused once its holders (the window, a file write, socket writes) let go. */
class Slab {
  readonly buf = Buffer.allocUnsafeSlow(SLAB);
  used = 0;
  refs = 0;
}
const spareSlabs: Slab[] = [];

/**
 * The socket buffers the upstream's bytes arrived in are dead once copied, but V8 frees them only
 * at a scavenge, which it starts when the young generation fills (small objects: rarely, here) or
 * its buffers reach twice the largest semi-space (32 MiB at V8's default; bin/wharf.js starts node
 * with 2 MiB semi-spaces, but a process embedding Wharf may not). A scavenge of a young generation of
 * garbage costs ~0.2 ms; one every SCAVENGE_EVERY bytes copied keeps the dead buffers bounded by
 * that, not by the collector's timing.
 */
const SCAVENGE_EVERY = 8 * 1024 * 1024;
let sinceScavenge = 0;
type Collect = (opts: { type: 'minor' | 'major' }) => void;
const collect = ((): Collect | undefined => {
  try {
    setFlagsFromString('--expose-gc');
    const gc: unknown = runInNewContext('gc');
    return typeof gc === 'function' ? (gc as Collect) : undefined;
  } catch {
    return undefined;
  }
})();

function copied(n: number): void {
  sinceScavenge += n;
  if (sinceScavenge < SCAVENGE_EVERY) return;
  sinceScavenge = 0;
  collect?.({ type: 'minor' });
}

function takeSlab(): Slab {
  const slab = spareSlabs.pop() ?? new Slab();
  slab.used = 0;
  slab.refs = 1; // the fill's, while it copies into it
  return slab;
}

function releaseSlab(slab: Slab): void {
  slab.refs--;
  if (slab.refs === 0 && spareSlabs.length < SPARE_SLABS) spareSlabs.push(slab);
}

/** Bytes of the fill and the slab they are in. */
interface Piece {
  buf: Buffer;
  slab: Slab;
}

/**
 * Bytes for a follower; an `owned` slab holds a ref taken for this follower when the bytes were
 * handed out (so nothing reuses it before the socket writes take refs of their own), released by letGo.
 */
interface FollowPiece {
  buf: Buffer;
  slab?: Slab;
  owned?: boolean;
}

/** Gives back the follower's refs once the bytes are queued (writes hold refs of their own). */
function letGo(pieces: FollowPiece[]): void {
  for (const { slab, owned } of pieces) if (owned && slab) releaseSlab(slab);
}

interface Cursor {
  pos: number;
  reader?: BlobReader;
}

/**
 * A SLAB-sized, SLAB-aligned block of the file, read once for every follower behind the window that
 * needs it: a herd that falls behind reads the file about once, not once per client (16 clients on a
 * cold 256 MiB blob: peak RSS 125 MiB against 133, the same wall time).
 * `len` is -1 while the read runs; a block read when the file was shorter is read again when needed.
 */
interface Block {
  index: number;
  slab: Slab;
  len: number;
  ready: Promise<void>;
}
/** File blocks kept for followers (a herd spread over more than this re-reads, as before). */
const SHARED_BLOCKS = 4;
/** Recent bytes kept in memory for followers that keep up with the upstream. */
const MEMORY_WINDOW = 4 * 1024 * 1024;
/** Most bytes taken from the upstream and not yet written: reading waits for a slower disk. */
const MAX_UNWRITTEN = 2 * MEMORY_WINDOW;
/** Bytes gathered before they are written to the file (one vectored write). */
const WRITE_BATCH = 1024 * 1024;
/** How long fewer bytes wait for more before they are written anyway. */
const WRITE_IDLE_MS = 5;

/** A reason to end a fill for good, not to resume it: the upstream is too slow. */
export class FillStopped extends Error {
  constructor(message: string, opts?: { cause?: unknown }) {
    super(message, opts);
    this.name = 'FillStopped';
  }
}

export class Fill {
  written = 0;
  size: number | undefined;
  state: 'running' | 'committed' | 'failed' = 'running';
  error: Error | undefined;
  readonly done: Promise<void>;
  private waiters: Array<() => void> = [];
  /** Bytes taken from the upstream (being hashed and written, or done). */
  private accepted = 0;
  /** The most recent accepted bytes, from offset `recentStart`. */
  private recent: Piece[] = [];
  private recentStart = 0;
  private scheduled = false;
  private blocks: Block[] = [];
  private followers = 0;

  constructor(
    readonly digest: string,
    private readonly writer: BlobWriter,
    fetcher: FillFetcher,
    private readonly opts: FillOptions,
  ) {
    if (opts.resumed) this.accepted = this.written = this.recentStart = opts.resumed.size;
    this.done = this.run(fetcher);
  }

  /** Resolves once the size is known (or the fill has ended). */
  async sized(): Promise<number> {
    while (this.size === undefined && this.state === 'running') await this.changed();
    if (this.state === 'failed') throw this.error;
    return this.size ?? this.written;
  }

  /**
   * The blob's bytes (or a range of them), following the fill as it grows. As a DirectBody it can
   * also write itself to a response without a stream in between.
   */
  stream(range?: ByteRange): Readable & DirectBody {
    const readable = Readable.from(this.follow(range), { objectMode: false });
    const writeTo = async (out: Writable): Promise<void> => {
      readable.destroy();
      const cursor: Cursor = { pos: range?.start ?? 0 };
      this.followers++;
      try {
        for (;;) {
          const chunks = await this.next(cursor, range);
          if (!chunks) {
            if (out.destroyed) throw new Error('the client went away');
            out.end();
            return;
          }
          if (out.destroyed) {
            letGo(chunks);
            throw new Error('the client went away');
          }
          // Everything available goes out in one vectored write; a slab is held until its bytes are sent.
          out.cork();
          let more = true;
          for (const { buf, slab } of chunks) {
            if (slab) {
              slab.refs++;
              more = out.write(buf, () => releaseSlab(slab));
            } else {
              more = out.write(buf);
            }
          }
          out.uncork();
          letGo(chunks);
          if (!more) await drained(out);
        }
      } finally {
        this.left();
        await cursor.reader?.close();
      }
    };
    return Object.assign(readable, { writeTo });
  }

  private async *follow(range?: ByteRange): AsyncGenerator<Buffer> {
    const cursor: Cursor = { pos: range?.start ?? 0 };
    this.followers++;
    try {
      for (;;) {
        const chunks = await this.next(cursor, range);
        if (!chunks) return;
        // A stream's reader may keep what it gets for as long as it likes: slab bytes go out as copies.
        const copies = chunks.map(({ buf, slab }) => (slab ? Buffer.from(buf) : buf));
        letGo(chunks);
        for (const copy of copies) yield copy;
      }
    } finally {
      this.left();
      await cursor.reader?.close();
    }
  }

  /** A follower has gone: once the last one has, after the fill, the shared file blocks go too. */
  private left(): void {
    this.followers--;
    if (this.followers === 0 && this.state !== 'running') {
      for (const b of this.blocks.filter((x) => x.len >= 0)) this.dropBlock(b);
    }
  }

  private dropBlock(block: Block): void {
    const i = this.blocks.indexOf(block);
    if (i < 0) return;
    this.blocks.splice(i, 1);
    releaseSlab(block.slab);
  }

  /**
   * Bytes from `pos` (all on disk before `limit`) out of the shared block that holds them, read from
   * the file with `reader` unless another follower has read it or is reading it.
   */
  private async fromFile(reader: BlobReader, pos: number, limit: number): Promise<FollowPiece> {
    const index = Math.floor(pos / SLAB);
    const start = index * SLAB;
    for (;;) {
      const block = this.blocks.find((b) => b.index === index);
      if (block && block.len < 0) {
        await block.ready;
        continue;
      }
      if (block && start + block.len > pos) {
        block.slab.refs++;
        return { buf: block.slab.buf.subarray(pos - start, block.len), slab: block.slab, owned: true };
      }
      // Not read yet, or read when the file was shorter.
      if (block) this.dropBlock(block);
      const slab = takeSlab(); // its ref is the block's
      const entry: Block = { index, slab, len: -1, ready: Promise.resolve() };
      entry.ready = reader.read(start, Math.min(start + SLAB, limit) - start, slab.buf).then(
        (buf) => {
          entry.len = buf.length;
          if (buf.length <= pos - start) {
            this.dropBlock(entry);
            throw new Error(`fill of ${this.digest}: short read at ${pos}`);
          }
        },
        (err: unknown) => {
          entry.len = 0;
          this.dropBlock(entry);
          throw err;
        },
      );
      this.blocks.push(entry);
      // The oldest block nobody is reading makes room; one being read stays (its slab is in use).
      const old = this.blocks.find((b) => b.len >= 0);
      if (this.blocks.length > SHARED_BLOCKS && old) this.dropBlock(old);
      await entry.ready;
    }
  }

  /**
   * The next bytes for a follower at `cursor` (which it advances): as many as memory holds at once
   * (up to FOLLOW_BATCH), else one chunk from the file; waits while there are none yet; null at the end.
   */
  private async next(cursor: Cursor, range?: ByteRange): Promise<FollowPiece[] | null> {
    for (;;) {
      // A failed fill cuts every follower at once, wherever it is.
      if (this.state === 'failed') throw this.error ?? new Error('fill failed');
      const pos = cursor.pos;
      const stop = range ? range.end + 1 : this.state === 'committed' ? this.written : Number.POSITIVE_INFINITY;
      if (pos >= stop) return null;
      // Everything accepted but the last byte may go out before verification.
      const readable = Math.min(this.state === 'committed' ? this.written : this.accepted - 1, stop);
      if (readable > pos) {
        // Recent bytes come from memory (a client keeping up never waits for the disk);
        // older ones from the file, where they are by then.
        const chunks = this.fromMemory(pos, Math.min(readable, pos + FOLLOW_BATCH));
        if (chunks.length > 0) {
          for (const c of chunks) {
            cursor.pos += c.buf.length;
            c.slab.refs++;
          }
          return chunks.map((c) => ({ ...c, owned: true }));
        }
        // pos is before the window, so on disk: recentStart <= written. The block comes in a pooled
        // slab, not a new buffer per read: sixteen followers behind the window would otherwise leave
        // a dead MiB per read each for the collector to find (a herd's peak RSS).
        cursor.reader ??= await this.writer.reader();
        const piece = await this.fromFile(cursor.reader, pos, Math.min(readable, this.written));
        cursor.pos += piece.buf.length;
        return [piece];
      }
      if (this.state === 'committed') return null;
      await this.changed();
    }
  }

  /** Bytes [pos, end) from the in-memory window, as slices of its chunks; [] when pos is older. */
  private fromMemory(pos: number, end: number): Piece[] {
    const out: Piece[] = [];
    if (pos < this.recentStart) return out;
    let offset = this.recentStart;
    let at = pos;
    for (const { buf: chunk, slab } of this.recent) {
      if (at >= end) break;
      if (at < offset + chunk.length) {
        out.push({ buf: chunk.subarray(at - offset, Math.min(chunk.length, end - offset)), slab });
        at = Math.min(offset + chunk.length, end);
      }
      offset += chunk.length;
    }
    return out;
  }

  /** Takes accepted bytes into the window, dropping written ones beyond its size. */
  private remember(piece: Piece): void {
    piece.slab.refs++;
    this.recent.push(piece);
    this.accepted += piece.buf.length;
    this.trimMemory();
  }

  private trimMemory(): void {
    let held = this.accepted - this.recentStart;
    while (this.recent.length > 0) {
      const first = this.recent[0] as Piece;
      const n = first.buf.length;
      // Only bytes already on disk may leave memory, and only beyond the window's size.
      if (this.recentStart + n > this.written || held - n < MEMORY_WINDOW) break;
      this.recent.shift();
      releaseSlab(first.slab);
      this.recentStart += n;
      held -= n;
    }
  }

  /** Empties the window (the fill has ended: followers read the file from now on). */
  private forget(): void {
    for (const { slab } of this.recent) releaseSlab(slab);
    this.recent = [];
  }

  /** Wakes the followers once the chunks read in this turn of the event loop are all in. */
  private schedule(): void {
    if (this.scheduled) return;
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      this.notify();
    });
  }

  private changed(): Promise<void> {
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  private notify(): void {
    const waiters = this.waiters;
    this.waiters = [];
    for (const w of waiters) w();
  }

  private async run(fetcher: FillFetcher): Promise<void> {
    const { algorithm } = parseDigest(this.digest);
    // The hash runs here, on each chunk as it arrives. With SHA instructions SHA-256 costs ~0.85 ms
    // per MiB; a worker thread hashing in parallel cost more than it saved: a copy of every byte
    // into its message buffers, messages both ways, and a second isolate starting with the first
    // fill (~0.1 s of CPU, ~10 MB), on a 2-core machine whose other core the upstream, the disk
    // writes and the compiler already fill. Measured in one run on a fresh process's cold 256 MiB
    // pull: the same client throughput either way, ~0.15 s less CPU and ~10 MB less peak RSS inline.
    // (Without SHA instructions, at 250–365 MiB/s, a worker would be worth its costs again.)
    // The bytes are written through the writer with vectored writes of up to WRITE_BATCH (whatever
    // queued while the last write ran goes out in the next one); followers read memory meanwhile.
    const hash = this.opts.resumed?.hash ?? newHash(algorithm);
    let queued: Piece[] = [];
    let slab: Slab | undefined;
    let queuedBytes = 0;
    let writing: Promise<void> | undefined;
    // Why the fill must end now (a failed write, an upstream below the minimum rate), and the body
    // being read, which `stop` destroys: reading from the upstream ends at once, even mid-wait.
    let stopped: Error | undefined;
    let body: Readable | undefined;
    const stop = (err: Error): void => {
      if (stopped) return;
      stopped = err;
      body?.destroy(err);
    };
    /** Writes what is queued unless a write is running (its end writes what queued up meanwhile). */
    const pump = (force = false): void => {
      if (writing || queued.length === 0 || stopped) return;
      if (!force && queuedBytes < WRITE_BATCH) return;
      const batch = queued;
      const bytes = queuedBytes;
      queued = [];
      queuedBytes = 0;
      const done = (): void => {
        for (const p of batch) releaseSlab(p.slab);
      };
      writing = this.writer.write(batch.map((p) => p.buf)).then(
        () => {
          done();
          this.written += bytes;
          writing = undefined;
          this.trimMemory();
          if (held && this.accepted - this.written <= MAX_UNWRITTEN) release();
          pump(held !== undefined);
        },
        (err: unknown) => {
          done();
          writing = undefined;
          for (const p of queued) releaseSlab(p.slab);
          queued = [];
          queuedBytes = 0;
          stop(
            asRegistryErrorOrFull(err, `blob ${this.digest}`) ??
              // Our disk failing is not the upstream's fault: no 503 blaming it.
              new RegistryError('INTERNAL_ERROR', `writing blob ${this.digest} failed: ${(err as Error).message}`, { cause: err }),
          );
        },
      );
    };
    let idle: NodeJS.Timeout | undefined;
    const flushIdle = (): void => {
      idle = undefined;
      pump(true);
    };
    const settled = async (): Promise<void> => {
      while ((writing || queued.length > 0) && !stopped) {
        pump(true);
        await writing;
      }
      if (stopped) throw stopped;
    };
    const rate = this.opts.minRate;
    let lastCheck = 0;
    let bodyEnded = false;
    // Waiting on our side (upstream headers, the hash, a slow disk) is not the upstream's slowness: a
    // window in which we waited at all is not judged.
    let ourWaits = 0;
    let lastWaitEnd = -Infinity;
    const ours = async <T>(p: Promise<T>): Promise<T> => {
      ourWaits++;
      try {
        return await p;
      } finally {
        ourWaits--;
        lastWaitEnd = performance.now();
      }
    };
    // The stream paused while the disk catches up (our wait, not the upstream's slowness).
    let held: Readable | undefined;
    const hold = (stream: Readable): void => {
      held = stream;
      ourWaits++;
      stream.pause();
      pump(true);
    };
    const release = (): void => {
      const stream = held;
      if (!stream) return;
      held = undefined;
      ourWaits--;
      lastWaitEnd = performance.now();
      stream.resume();
    };
    const rateTimer =
      rate && rate.bytesPerSecond > 0 && rate.windowMs > 0
        ? setInterval(() => {
            // The body is in: what is left (hashing, the disk, the commit) is not the upstream's to hurry.
            if (bodyEnded) return;
            const got = this.accepted - lastCheck;
            lastCheck = this.accepted;
            if (ourWaits > 0 || performance.now() - lastWaitEnd < rate.windowMs) return;
            const least = (rate.bytesPerSecond * rate.windowMs) / 1000;
            if (got < least) {
              stop(
                new FillStopped(
                  `the upstream sent ${got} bytes of ${this.digest} in ${rate.windowMs} ms, below the minimum rate of ${rate.bytesPerSecond} bytes/s`,
                ),
              );
            }
          }, rate.windowMs)
        : undefined;
    rateTimer?.unref();
    const maxResumes = this.opts.maxResumes ?? 3;
    let resumes = 0;
    try {
      for (;;) {
        let source: FillSource;
        try {
          if (stopped) throw stopped;
          bodyEnded = false;
          source = await ours(fetcher(this.accepted));
          if (stopped) {
            (source.body as Partial<Readable>).destroy?.(stopped);
            throw stopped;
          }
        } catch (err) {
          if (this.accepted > 0 && resumes < maxResumes && resumable(err)) {
            resumes++;
            continue;
          }
          throw err;
        }
        if (source.total !== undefined) {
          if (this.size !== undefined && this.size !== source.total) {
            throw new Error(`upstream changed the size of ${this.digest} from ${this.size} to ${source.total}`);
          }
          this.size = source.total;
          this.notify();
        }
        // A full response after a partial one: skip what we already have.
        let skip = this.accepted - source.start;
        const stream = source.body instanceof Readable ? source.body : Readable.from(source.body, { objectMode: false });
        body = stream;
        try {
          // Chunks are taken as the stream emits them, each hashed and queued at once: no promise per
          // chunk, and no copy (a stream's async iterator concatenates what it has buffered).
          await new Promise<void>((resolve, reject) => {
            const onData = (raw: Buffer): void => {
              let chunk = raw;
              if (skip > 0) {
                const n = Math.min(skip, chunk.length);
                skip -= n;
                chunk = chunk.subarray(n);
                if (chunk.length === 0) return;
              }
              if (this.size !== undefined && this.accepted + chunk.length > this.size) {
                stream.destroy(new RegistryError('BLOB_UNKNOWN', `upstream sent more than the ${this.size} bytes of ${this.digest}`));
                return;
              }
              hash.update(chunk);
              // Copied into slabs: the socket's buffer is garbage as soon as this returns.
              for (let at = 0; at < chunk.length; ) {
                if (!slab || slab.used === SLAB) {
                  if (slab) releaseSlab(slab);
                  slab = takeSlab();
                }
                const n = Math.min(chunk.length - at, SLAB - slab.used);
                chunk.copy(slab.buf, slab.used, at, at + n);
                const piece = { buf: slab.buf.subarray(slab.used, slab.used + n), slab };
                slab.used += n;
                at += n;
                this.remember(piece);
                slab.refs++;
                queued.push(piece);
              }
              queuedBytes += chunk.length;
              copied(chunk.length);
              if (queuedBytes >= WRITE_BATCH) pump();
              // Fewer bytes go out after a moment, so a pause upstream leaves nothing unwritten.
              else idle ??= setTimeout(flushIdle, WRITE_IDLE_MS);
              // A disk slower than the upstream: reading waits for it rather than hold ever more in memory.
              if (this.accepted - this.written > MAX_UNWRITTEN && !held) hold(stream);
              this.schedule();
            };
            const cleanup = (): void => {
              stream.off('data', onData).off('end', onEnd).off('error', onError).off('close', onClose);
              // An error the stream may still emit is the fill's to report, not an uncaught one.
              stream.on('error', () => undefined);
            };
            const onEnd = (): void => {
              cleanup();
              resolve();
            };
            const onError = (err: Error): void => {
              cleanup();
              reject(err);
            };
            const onClose = (): void => {
              cleanup();
              reject(Object.assign(new Error('the upstream body ended prematurely'), { code: 'ERR_STREAM_PREMATURE_CLOSE' }));
            };
            stream.on('data', onData).on('end', onEnd).on('error', onError).on('close', onClose);
            if (stopped) stream.destroy(stopped);
          });
          bodyEnded = true;
          if (stopped) throw stopped;
          await settled();
        } catch (err) {
          release();
          // What arrived before the failure is good: keep it, and resume after it.
          await settled();
          if (resumes < maxResumes && resumable(err)) {
            resumes++;
            this.opts.onEvent?.('resumed', { digest: this.digest, at: this.accepted, error: (err as Error).message });
            continue;
          }
          throw err;
        }
        if (this.size !== undefined && this.accepted < this.size) {
          // The body ended early without an error: a dropped connection by another name.
          if (resumes < maxResumes) {
            resumes++;
            this.opts.onEvent?.('resumed', { digest: this.digest, at: this.accepted, error: 'short body' });
            continue;
          }
          throw new Error(`upstream sent ${this.accepted} of ${this.size} bytes of ${this.digest}`);
        }
        break;
      }
      const actual = `${algorithm}:${hash.digest('hex')}`;
      if (actual !== this.digest) throw new Error(`upstream content for ${this.digest} hashes to ${actual}: not committed`);
      this.size = this.written;
      // The ledger places the bytes, records them and puts them back if a collector set them aside
      // meanwhile: a committed fill is never recorded without its bytes.
      await this.opts.onCommit(this.writer, this.digest, this.written);
      await this.writer.cancel();
      this.state = 'committed';
      // From now on followers read the committed file.
      this.forget();
      this.recentStart = this.written;
      this.opts.onEvent?.('committed', { digest: this.digest, size: this.written, resumes });
    } catch (err) {
      await writing;
      this.error = err instanceof Error ? err : new Error(String(err));
      this.state = 'failed';
      this.forget();
      this.opts.onEvent?.('failed', { digest: this.digest, written: this.written, error: this.error.message });
      await this.writer.cancel().catch(() => undefined);
    } finally {
      if (slab) releaseSlab(slab);
      clearInterval(rateTimer);
      clearTimeout(idle);
      this.notify();
    }
  }
}

/** The fills in progress, by digest; owned by one proxy instance. */
export class FillTable {
  private readonly starting = new Map<string, Promise<Fill>>();
  private readonly running = new Map<string, Fill>();

  constructor(private readonly blobs: BlobStore) {}

  /** The fill in progress for `digest`, if any. */
  get(digest: string): Fill | undefined {
    return this.running.get(digest);
  }

  /** The fill of `digest` running or about to (its writer being opened); undefined when none. */
  async current(digest: string): Promise<Fill | undefined> {
    return this.running.get(digest) ?? (await this.starting.get(digest)?.catch(() => undefined));
  }

  /** Fills running now. */
  get size(): number {
    return this.running.size;
  }

  /** Digests being filled now (the collector keeps them). */
  digests(): string[] {
    return [...new Set([...this.starting.keys(), ...this.running.keys()])];
  }


  /**
   * The running fill for `digest`, or a new one; `coalesced` tells which. `open` gives the new
   * fill's writer (default: a fresh anonymous one), and what a previous fill left in it.
   */
  async join(
    digest: string,
    fetcher: FillFetcher,
    opts: FillOptions,
    open?: () => Promise<{ writer: BlobWriter; resumed?: FillOptions['resumed'] }>,
  ): Promise<{ fill: Fill; coalesced: boolean }> {
    const existing = this.starting.get(digest);
    if (existing) return { fill: await existing, coalesced: true };
    // The slot is claimed synchronously, before any await, so concurrent callers find it.
    const opened = open ? open() : this.blobs.writer().then((writer) => ({ writer, resumed: undefined }));
    const entry = opened.then(({ writer, resumed }) => {
      const fill = new Fill(digest, writer, fetcher, resumed ? { ...opts, resumed } : opts);
      this.running.set(digest, fill);
      void fill.done.finally(() => {
        if (this.starting.get(digest) === entry) this.starting.delete(digest);
        if (this.running.get(digest) === fill) this.running.delete(digest);
      });
      return fill;
    });
    this.starting.set(digest, entry);
    entry.catch(() => {
      if (this.starting.get(digest) === entry) this.starting.delete(digest);
    });
    return { fill: await entry, coalesced: false };
  }

  /** Waits for every fill to end (shutdown). */
  async drain(): Promise<void> {
    await Promise.allSettled([...this.running.values()].map((f) => f.done));
  }
}

/**
 * Whether a failure is worth an immediate resume: a dropped or stalled connection or a 5xx is; an
 * answer such as 404, 401 or 429 (whose Retry-After asks us to wait) is not.
 */
function resumable(err: unknown): boolean {
  if (asRegistryError(err) || err instanceof FillStopped) return false;
  const status = (err as { status?: unknown }).status;
  return typeof status !== 'number' || status >= 500;
}
