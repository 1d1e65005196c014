// The clients of one node following another node's fill share one stream of it: the first opens
// GET <holder>/internal/fills/<digest> (cluster-fills.ts) and the bytes are relayed to every client of
// this node that asks for the same digest, as a local fill's followers read its growing bytes
// (blob-fill.ts). The relay keeps the last WINDOW bytes in memory for clients that join late or read
// slower than the holder sends; a client whose position is outside that reach (it asks for bytes the
// window has dropped, or far beyond them) gets a stream of its own, as every client did before. The
// relay does not hold the holder back: a client that falls out of the window is cut at its position
// (ProxyBlobs carries it on from there with a stream of its own). When the holder's stream fails, the
// relay's clients are cut at their positions too, and carried on by ProxyBlobs; when the last client
// goes away, the stream is closed.
import { Readable } from 'node:stream';
import { parseRange } from '../registry/range.js';
import type { ByteRange } from '../storage/blob-store.js';
import type { FillLease } from '../metadata/fill-leases.js';
import { HolderUnavailable, type ClusterFills, type RemoteFill } from './cluster-fills.js';

/** Bytes kept behind the newest one received (per digest relayed; the same as a local fill's window). */
const WINDOW = 4 * 1024 * 1024;

/** The bytes of another node's fill for one client: `shared` when they come from this node's relay. */
export interface RemoteBytes {
  size: number;
  body: Readable;
  shared: boolean;
}

export class RemoteFills {
  /** The relay of each digest whose fill this node follows on another node. */
  private readonly relays = new Map<string, Relay>();

  constructor(
    private readonly cluster: ClusterFills,
    private readonly window = WINDOW,
  ) {}

  /** How many streams this node has open to other nodes (relays running or opening). */
  get streams(): number {
    return this.relays.size;
  }

  /**
   * The bytes of `digest` from the node holding `lease`: the range `range` asks (a client's Range
   * header, or positions), or all of them; from this node's relay of it when one reaches the range,
   * else from a new relay, else from a stream of their own. Throws as ClusterFills.open does.
   */
  async open(lease: FillLease, digest: string, range?: string | ByteRange): Promise<RemoteBytes> {
    let relay = this.relays.get(digest);
    const creator = relay === undefined;
    if (!relay) {
      const start = startOf(range);
      // A suffix range starts where only the holder knows (the size): asked of it alone.
      if (start === undefined) return this.alone(lease, digest, range);
      relay = new Relay(lease.node, start, this.cluster.open(lease, digest, start === 0 ? undefined : `bytes=${start}-`), this.window, (r) => {
        if (this.relays.get(digest) === r) this.relays.delete(digest);
      });
      this.relays.set(digest, relay);
    } else if (relay.node !== lease.node) {
      // Still relaying a node that has lost the lease since: the new holder is asked directly.
      return this.alone(lease, digest, range);
    }
    relay.waiting++;
    try {
      try {
        await relay.ready;
      } catch (err) {
        // The holder cannot serve the fill: so for every client. Any other failure (a range that
        // the relay's first client asked and the blob cannot satisfy) is the first client's only.
        if (creator || err instanceof HolderUnavailable) throw err;
        return await this.alone(lease, digest, range);
      }
      const wanted = typeof range === 'object' ? range : parseRange(range, relay.size);
      const body = relay.follow(wanted?.start ?? 0, wanted?.end ?? relay.size - 1);
      if (body) return { size: relay.size, body, shared: true };
    } finally {
      relay.waiting--;
      relay.idle();
    }
    return this.alone(lease, digest, range);
  }

  private async alone(lease: FillLease, digest: string, range?: string | ByteRange): Promise<RemoteBytes> {
    const remote = await this.cluster.open(lease, digest, range);
    return { size: remote.size, body: remote.body, shared: false };
  }
}

/**
 * Where the bytes a Range header asks for start (0 without one, or with one that parseRange ignores);
 * undefined for a suffix range (`bytes=-n`).
 */
function startOf(range: string | ByteRange | undefined): number | undefined {
  if (range === undefined) return 0;
  if (typeof range === 'object') return range.start;
  const m = /^\s*bytes\s*=\s*(\d*)\s*-\s*(\d*)\s*$/i.exec(range);
  if (!m || (m[1] === '' && m[2] === '')) return 0;
  if (m[1] === '') return undefined;
  const start = Number(m[1]);
  return Number.isSafeInteger(start) ? start : undefined;
}

/** One stream from the holder, read as fast as it sends, and the clients of this node following it. */
class Relay {
  size = 0;
  /** The position of the next byte to arrive. */
  private head: number;
  /** The bytes kept, from `windowStart` to `head`. */
  private chunks: Buffer[] = [];
  private windowStart: number;
  private state: 'opening' | 'running' | 'ended' | 'failed' = 'opening';
  private error: Error | undefined;
  private body: Readable | undefined;
  private readonly readers = new Set<RelayReader>();
  /** Clients between asking and following (their claim keeps the stream open). */
  waiting = 0;
  readonly ready: Promise<void>;

  constructor(
    readonly node: string,
    start: number,
    opened: Promise<RemoteFill>,
    private readonly window: number,
    private readonly ended: (relay: Relay) => void,
  ) {
    this.head = this.windowStart = start;
    this.ready = opened.then(
      ({ size, body }) => {
        this.size = size;
        this.body = body;
        if (this.state !== 'opening') {
          body.destroy();
          return;
        }
        this.state = 'running';
        body
          .on('data', (chunk: Buffer) => this.received(chunk))
          .once('end', () => (this.head === this.size ? this.end() : this.fail(new Error(`node ${this.node} sent ${this.head} of ${this.size} bytes`))))
          .once('error', (err) => this.fail(err))
          .once('close', () => this.fail(Object.assign(new Error(`node ${this.node} closed the stream`), { code: 'ERR_STREAM_PREMATURE_CLOSE' })));
      },
      (err: unknown) => {
        this.fail(err instanceof Error ? err : new Error(String(err)));
        throw err;
      },
    );
    this.ready.catch(() => undefined);
  }

  /** A reader of [from, to], or undefined when the window does not reach `from` (or the stream failed). */
  follow(from: number, to: number): RelayReader | undefined {
    if (this.state === 'failed' || from < this.windowStart || from > this.head + this.window) return undefined;
    const reader = new RelayReader(this, from, to);
    this.readers.add(reader);
    return reader;
  }

  /** Closes the stream once no client follows it or is about to. */
  idle(): void {
    if (this.readers.size === 0 && this.waiting === 0 && this.state === 'running') this.fail(new Error('no client follows the relay any more'));
  }

  detach(reader: RelayReader): void {
    this.readers.delete(reader);
    this.idle();
  }

  /** Hands `reader` what it can take now; the bytes it has not reached yet wake it when they arrive. */
  pump(reader: RelayReader): void {
    while (reader.wanting && !reader.destroyed) {
      if (reader.pos > reader.last) {
        reader.wanting = false;
        reader.push(null);
        return;
      }
      if (reader.pos < this.windowStart) {
        reader.destroy(new Error(`fell more than ${this.window} bytes behind node ${this.node}'s stream`));
        return;
      }
      if (reader.pos >= this.head) {
        if (this.state === 'failed' || this.state === 'ended') reader.destroy(this.error ?? new Error(`node ${this.node}'s stream ended at ${this.head}`));
        return;
      }
      const piece = this.slice(reader.pos, reader.last + 1);
      reader.pos += piece.length;
      reader.wanting = reader.push(piece);
    }
  }

  /** The kept bytes from `pos` (in the window, before `head`) to the end of their chunk or `limit`. */
  private slice(pos: number, limit: number): Buffer {
    let offset = this.windowStart;
    for (const chunk of this.chunks) {
      if (pos < offset + chunk.length) return chunk.subarray(pos - offset, Math.min(chunk.length, limit - offset));
      offset += chunk.length;
    }
    throw new Error(`relay: ${pos} is not kept`);
  }

  private received(chunk: Buffer): void {
    if (this.state !== 'running') return;
    if (this.head + chunk.length > this.size) {
      this.fail(new Error(`node ${this.node} sent more than the ${this.size} bytes of the blob`));
      return;
    }
    this.chunks.push(chunk);
    this.head += chunk.length;
    // The window keeps at least its size behind the newest byte; older chunks go.
    while (this.chunks.length > 1 && this.head - (this.windowStart + this.chunks[0]!.length) >= this.window) {
      this.windowStart += this.chunks.shift()!.length;
    }
    this.wake();
  }

  private end(): void {
    if (this.state !== 'running') return;
    this.state = 'ended';
    this.ended(this);
    this.wake();
  }

  private fail(err: Error): void {
    if (this.state === 'failed' || this.state === 'ended') return;
    this.state = 'failed';
    this.error = err;
    this.body?.destroy();
    this.ended(this);
    this.wake();
  }

  private wake(): void {
    for (const reader of this.readers) if (reader.wanting) this.pump(reader);
  }
}

/** A client's bytes [pos, last] out of a relay. */
class RelayReader extends Readable {
  /** Asked for more and not given all it can take yet. */
  wanting = false;

  constructor(
    private readonly relay: Relay,
    public pos: number,
    readonly last: number,
  ) {
    super();
  }

  override _read(): void {
    this.wanting = true;
    this.relay.pump(this);
  }

  override _destroy(err: Error | null, callback: (error?: Error | null) => void): void {
    this.wanting = false;
    this.relay.detach(this);
    callback(err);
  }
}
