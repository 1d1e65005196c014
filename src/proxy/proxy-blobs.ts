// Blobs of upstream-routed repositories. A blob is served from storage only when the BlobLedger allows
// it under this repository: linked here, or stored for another repository and confirmed by this
// repository's upstream (a HEAD with Wharf's credentials for it), then linked without a second
// download. A miss joins the single fill for its digest and streams the bytes as they arrive; a
// client of another repository follows a running fill only once its own upstream has confirmed the
// digest. HEAD on a miss asks the upstream without downloading.
// In a cluster (cluster-fills.ts) a miss first claims the digest's fill lease: the node that gets it
// fills; the others stream the growing bytes from it (one stream per digest per node, shared by its
// clients: remote-fills.ts), and carry their clients on from where they were when it fails: from
// the store once the blob is committed there, from another holder, or by taking the fill over once
// the holder's lease has expired. A fill that failed cuts them, as it cuts local followers.
import { Readable } from 'node:stream';
import { RegistryError } from '../registry/errors.js';
import { parseRange } from '../registry/range.js';
import type { BlobRead } from '../registry/blob-service.js';
import type { BlobLedger } from '../ledger/blob-ledger.js';
import type { Hash } from 'node:crypto';
import type { BlobStore, BlobWriter, ByteRange } from '../storage/blob-store.js';
import { newHash } from '../oci/digest.js';
import { parseDigest } from '../registry/reference.js';
import type { FillLease } from '../metadata/fill-leases.js';
import type { MaybeStale } from '../registry/registry.js';
import type { CacheStore } from '../registry/cache-store.js';
import { Fill, FillTable, type FillSource } from './blob-fill.js';
import { noteCache, type UpstreamRepository } from './upstream-repository.js';
import { HolderUnavailable, type ClusterFills } from './cluster-fills.js';
import { RemoteFills } from './remote-fills.js';
import { discard, expectStatus, header, toRegistryError } from './upstream-failure.js';
import { NO_EVENTS, type EventSink } from '../events/event.js';

export interface FillEvents {
  onFill?: (event: 'started' | 'coalesced' | 'resumed' | 'committed' | 'failed' | 'remote' | 'rerouted', detail: Record<string, unknown>) => void;
}

/** Hops to another source without a byte of progress before a relayed client is cut. */
const MAX_HOPS = 6;

/** Where a miss is served from, decided by the fill lease: a fill here, the store, or another node. */
type Place = { fill: Fill } | 'stored' | FillLease;

/**
 * Waits between two tries at a holder: 10 ms at first (a holder whose fill is about to start), then
 * longer, up to the cluster's poll interval; throws what `giveUp` makes once a silent holder's lease
 * should have expired twice over.
 */
function patience(cluster: ClusterFills): (giveUp: () => Error) => Promise<void> {
  const deadline = Date.now() + cluster.patienceMs;
  let delay = 10;
  return async (giveUp) => {
    if (Date.now() > deadline) throw giveUp();
    await new Promise((resolve) => setTimeout(resolve, delay));
    delay = Math.min(delay * 2, cluster.pollMs);
  };
}

export class ProxyBlobs {
  readonly fills: FillTable;
  /** The repositories each running fill may serve: the one it fetches for, and those confirmed since. */
  private readonly confirmed = new WeakMap<Fill, Set<string>>();
  /** Lease claims under way in this node, by digest. */
  private readonly placing = new Map<string, Promise<Place>>();
  /** This node's streams of other nodes' fills, one per digest shared by its clients. */
  readonly remote: RemoteFills | undefined;

  constructor(
    private readonly local: CacheStore,
    private readonly ledger: BlobLedger,
    private readonly store: BlobStore,
    private readonly events: FillEvents = {},
    private readonly cluster?: ClusterFills,
    private readonly sink: EventSink = NO_EVENTS,
  ) {
    this.fills = new FillTable(store);
    this.remote = cluster ? new RemoteFills(cluster) : undefined;
  }

  async read(repo: UpstreamRepository, digest: string, opts: { rangeHeader?: string; head?: boolean }): Promise<BlobRead & MaybeStale> {
    const stored = await this.ledger.access(repo.name, digest, async () => {
      await this.headUpstream(repo, digest);
    });
    if (stored) {
      noteCache(repo, 'blob', 'hit');
      return this.local.serveBlob(digest, stored.size, opts);
    }
    let running = this.fills.get(digest);
    if (opts.head && !(running && this.confirmed.get(running)?.has(repo.name))) {
      noteCache(repo, 'blob', 'miss');
      return this.headUpstream(repo, digest, opts.rangeHeader);
    }
    if (!running && this.cluster && this.remote) {
      const found = await this.inCluster(this.cluster, this.remote, repo, digest, opts.rangeHeader);
      if (found instanceof Fill) running = found;
      else if (found) return found;
    }
    if (running) noteCache(repo, 'blob', 'coalesced');
    const fill = running ?? (await this.startFill(repo, digest));
    await this.follow(repo, fill);
    let size: number;
    try {
      size = await fill.sized();
    } catch (err) {
      throw toRegistryError(err, repo.upstream, { code: 'BLOB_UNKNOWN', subject: `blob ${digest} of ${repo.remote}` });
    }
    const range = parseRange(opts.rangeHeader, size);
    if (opts.head) return { digest, size, range };
    return { digest, size, range, body: fill.stream(range) };
  }

  /**
   * The blob fetched into the cache as a pull would, with no client (warming): `cached` when it was
   * stored already (linked here, or confirmed by this repository's upstream), else read through the
   * single fill (here or on the node of the cluster filling it) to its verified end, `onBytes` told of
   * the bytes as they pass. Throws what a pull would be cut with.
   */
  async warm(repo: UpstreamRepository, digest: string, onBytes?: (n: number) => void): Promise<{ size: number; cached: boolean }> {
    const stored = await this.ledger.access(repo.name, digest, async () => {
      await this.headUpstream(repo, digest);
    });
    if (stored) return { size: stored.size, cached: true };
    const read = await this.read(repo, digest, {});
    // The last byte comes only once the digest is verified and the blob committed.
    if (read.body) for await (const chunk of read.body as AsyncIterable<Buffer>) onBytes?.(chunk.length);
    return { size: read.size, cached: false };
  }

  /**
   * The running fill of `digest` on this node, for another node's client (the internal endpoint);
   * undefined when none runs here (any more).
   */
  async localFill(digest: string, rangeHeader: string | undefined): Promise<BlobRead | undefined> {
    const fill = await this.fills.current(digest);
    if (!fill) return undefined;
    let size: number;
    try {
      size = await fill.sized();
    } catch {
      return undefined;
    }
    const range = parseRange(rangeHeader, size);
    return { digest, size, range, body: fill.stream(range) };
  }

  /**
   * A miss in a cluster: the lease says who fills. The fill when this node does, else the blob as
   * stored or as relayed from the node filling it; undefined to fill here without a lease.
   */
  private async inCluster(cluster: ClusterFills, remotes: RemoteFills, repo: UpstreamRepository, digest: string, rangeHeader: string | undefined): Promise<Fill | (BlobRead & MaybeStale) | undefined> {
    const wait = patience(cluster);
    let vouched = false;
    for (;;) {
      const place = await this.place(cluster, repo, digest);
      if (place === 'stored') {
        const stored = await this.ledger.access(repo.name, digest, async () => {
          await this.headUpstream(repo, digest);
        });
        // Bytes in the store that nothing recorded (a crash between the two): filled again here.
        if (stored) noteCache(repo, 'blob', 'hit');
        return stored ? this.local.serveBlob(digest, stored.size, { rangeHeader }) : undefined;
      }
      if ('fill' in place) return place.fill;
      // The holder's upstream vouched for the digest in its repository; another repository asks its own.
      if (place.repo !== repo.name && !vouched) {
        await this.headUpstream(repo, digest);
        vouched = true;
      }
      let remote;
      try {
        remote = await remotes.open(place, digest, rangeHeader);
      } catch (err) {
        if (!(err instanceof HolderUnavailable)) throw err;
        // Not started there yet, just ended there, or the node is dead: asked again until its lease
        // says otherwise (released, or expired and taken over).
        await wait(
          () =>
            new RegistryError('UNAVAILABLE', `blob ${digest} is being fetched by node ${place.node}, which this node cannot reach (${err.message}), and its lease does not expire; retry later`, {
              headers: { 'retry-after': '5' },
            }),
        );
        continue;
      }
      const range = parseRange(rangeHeader, remote.size);
      this.events.onFill?.('remote', { upstream: repo.upstream.name, digest, node: place.node, shared: remote.shared });
      // Another node's fill serves it.
      noteCache(repo, 'blob', 'coalesced');
      const body = Readable.from(this.relay(cluster, remotes, repo, digest, place, remote.body, { start: range?.start ?? 0, end: range?.end ?? remote.size - 1 }), {
        objectMode: false,
      });
      return { digest, size: remote.size, range, body };
    }
  }

  /**
   * Claims the lease of `digest` and starts the fill when this node gets it; or the blob turned out
   * stored meanwhile; or another node holds the lease. One claim at a time per digest in a node:
   * its concurrent callers share it, so nobody finds the lease held here and no fill yet.
   */
  private place(cluster: ClusterFills, repo: UpstreamRepository, digest: string): Promise<Place> {
    const pending = this.placing.get(digest);
    if (pending) return pending;
    const placed = this.claim(cluster, repo, digest).finally(() => {
      if (this.placing.get(digest) === placed) this.placing.delete(digest);
    });
    this.placing.set(digest, placed);
    return placed;
  }

  private async claim(cluster: ClusterFills, repo: UpstreamRepository, digest: string): Promise<Place> {
    const running = this.fills.get(digest);
    if (running) return { fill: running };
    const claim = await cluster.claim(digest, repo.name);
    if (!claim.owned) return claim.lease;
    // A fill that committed and released its lease between our miss and our claim left the blob stored.
    if (await this.store.stat(digest)) {
      if (!this.fills.get(digest)) cluster.release(digest);
      return 'stored';
    }
    // In the lease's writer when the store keeps sessions cheaply, so that a node taking the fill
    // over goes on from its bytes; otherwise a fill taken over starts again from the first byte.
    return { fill: this.fills.get(digest) ?? (await this.startFill(repo, digest, this.store.cheapSessions ? claim.writer : undefined)) };
  }

  /**
   * The bytes [range.start, range.end] relayed from the holder; when it fails part way, carried on
   * from where the client is: the store (committed meanwhile), another holder, or a fill taken over
   * here. Ends by linking the blob in `repo` (its last byte comes only once it is committed).
   */
  private async *relay(cluster: ClusterFills, remotes: RemoteFills, repo: UpstreamRepository, digest: string, holder: FillLease, first: Readable, range: ByteRange): AsyncGenerator<Buffer> {
    let pos = range.start;
    let source: Readable = first;
    let from: FillLease | undefined = holder;
    let hops = 0;
    try {
      for (;;) {
        let failure: unknown;
        const before = pos;
        try {
          for await (const chunk of source as AsyncIterable<Buffer>) {
            const left = range.end + 1 - pos;
            const piece = chunk.length > left ? chunk.subarray(0, left) : chunk;
            pos += piece.length;
            yield piece;
            if (pos > range.end) break;
          }
        } catch (err) {
          failure = err;
        }
        source.destroy();
        if (pos > range.end) break;
        hops = pos > before ? 0 : hops + 1;
        if (hops > MAX_HOPS) throw new Error(`blob ${digest}: no source made progress at ${pos} after ${MAX_HOPS} tries`, { cause: failure });
        const next = await this.carryOn(cluster, remotes, repo, digest, from, { start: pos, end: range.end }, failure);
        source = next.source;
        from = next.from;
        this.events.onFill?.('rerouted', { upstream: repo.upstream.name, digest, at: pos, node: from?.node ?? cluster.node, error: (failure as Error | undefined)?.message ?? 'short body' });
      }
    } finally {
      source.destroy();
    }
    if (from?.repo !== repo.name) {
      await this.ledger.adopt(repo.name, digest).catch((err: unknown) =>
        this.events.onFill?.('failed', { upstream: repo.upstream.name, digest, error: `link in ${repo.name}: ${(err as Error).message}` }),
      );
    }
  }

  /**
   * Where the bytes from `range.start` come from once `failed` (a holder) stopped sending them, or a
   * fill here failed (`failed` undefined). Throws (cutting the client) when the fill itself failed.
   */
  private async carryOn(
    cluster: ClusterFills,
    remotes: RemoteFills,
    repo: UpstreamRepository,
    digest: string,
    failed: FillLease | undefined,
    range: ByteRange,
    failure: unknown,
  ): Promise<{ source: Readable; from?: FillLease }> {
    const wait = patience(cluster);
    const reason = (failure as Error | undefined)?.message ?? 'short body';
    for (;;) {
      const running = this.fills.get(digest);
      // The latest fill here failed: its followers are cut, these too.
      if (running?.state === 'failed') throw new Error(`the fill of ${digest} failed: ${running.error?.message ?? reason}`, { cause: failure });
      if (running) {
        this.confirm(running, repo.name);
        return { source: running.stream(range) };
      }
      const lease = await cluster.peek(digest);
      // Held here with no fill and no claim under way: the fill here has just ended.
      if (!lease || (lease.node === cluster.node && !this.placing.has(digest))) {
        // The fill ended where it ran: committed (the store has it) or failed, which cuts its followers.
        if (await this.store.stat(digest)) return { source: await this.store.open(digest, range) };
        throw new Error(`the fill of ${digest} ${failed ? `on node ${failed.node}` : 'here'} failed: ${reason}`, { cause: failure });
      }
      if (failed && lease.node === failed.node && !lease.expired) {
        // Still held by the node that stopped sending: dead with a lease not expired yet, or alive
        // and about to release it (its fill failed). Asked again, never claimed from under it.
        try {
          return { source: (await remotes.open(lease, digest, range)).body, from: lease };
        } catch (err) {
          if (!(err instanceof HolderUnavailable)) throw err;
          await wait(() => new Error(`blob ${digest}: node ${lease.node} stopped sending it (${reason}) and its lease does not expire`, { cause: failure }));
          continue;
        }
      }
      // Expired, or held by another node: the claim decides.
      const place = await this.place(cluster, repo, digest);
      if (place === 'stored') return { source: await this.store.open(digest, range) };
      if ('fill' in place) {
        this.confirm(place.fill, repo.name);
        return { source: place.fill.stream(range) };
      }
      try {
        return { source: (await remotes.open(place, digest, range)).body, from: place };
      } catch (err) {
        if (!(err instanceof HolderUnavailable)) throw err;
        await wait(() => new Error(`blob ${digest}: node ${place.node} stopped sending it (${reason}) and its lease does not expire`, { cause: failure }));
      }
    }
  }

  /**
   * Lets `repo.name` read a running fill: at once when the fill fetches for it, otherwise after its
   * upstream confirms the digest; the blob is linked there too once the fill commits.
   */
  private async follow(repo: UpstreamRepository, fill: Fill): Promise<void> {
    if (this.confirmed.get(fill)?.has(repo.name)) return;
    await this.headUpstream(repo, fill.digest);
    this.confirm(fill, repo.name);
    void fill.done.then(async () => {
      if (fill.state === 'committed') await this.ledger.adopt(repo.name, fill.digest);
    }).catch((err: unknown) => this.events.onFill?.('failed', { upstream: repo.upstream.name, digest: fill.digest, error: `link in ${repo.name}: ${(err as Error).message}` }));
  }

  /** Records that `repo` may read `fill` (added to, never replacing, what followers recorded). */
  private confirm(fill: Fill, repo: string): void {
    const repos = this.confirmed.get(fill);
    if (repos) repos.add(repo);
    else this.confirmed.set(fill, new Set([repo]));
  }

  /**
   * Starts (or joins) the fill of `digest` for `repo`. With `writer` (a cluster lease's), the bytes go
   * to that upload session of the store, and a session a dead node left is taken up where it ends.
   */
  private async startFill(repo: UpstreamRepository, digest: string, writer?: string): Promise<Fill> {
    const path = `/v2/${repo.remote}/blobs/${digest}`;
    const fetcher = async (offset: number): Promise<FillSource> => {
      const res = await repo.client.request({
        method: 'GET',
        path,
        repository: repo.remote,
        headers: offset > 0 ? { range: `bytes=${offset}-` } : {},
      });
      expectStatus(res, [200, 206]);
      const length = header(res.headers, 'content-length');
      if (res.status === 206) {
        const m = /^bytes (\d+)-(\d+)\/(\d+|\*)$/.exec(header(res.headers, 'content-range') ?? '');
        if (!m || Number(m[1]) !== offset) {
          discard(res.body);
          throw new Error(`upstream answered a resume at ${offset} with Content-Range ${header(res.headers, 'content-range')}`);
        }
        return { start: offset, total: m[3] === '*' ? undefined : Number(m[3]), body: res.body };
      }
      return { start: 0, total: length === undefined ? undefined : Number(length), body: res.body };
    };
    const { fill, coalesced } = await this.fills.join(digest, fetcher, {
      ...(repo.minRate ? { minRate: repo.minRate } : {}),
      // The fill hashed the bytes as they arrived: the commit need not read them again.
      onCommit: async (writer, d, size) => {
        await this.ledger.commit(writer, d, { local: false, repo: repo.name, knownDigest: d, size });
        if (this.sink.enabled) {
          this.sink.emit({
            action: 'fill',
            target: { repository: repo.name, digest: d, mediaType: 'application/octet-stream', size },
            ...(repo.request ? { request: repo.request } : {}),
          });
        }
      },
      onEvent: (event, detail) => this.events.onFill?.(event, { upstream: repo.upstream.name, ...detail }),
    }, writer === undefined ? undefined : () => this.openWriter(digest, writer));
    // The fill's own GET asks the upstream about this repository: its readers need no other check.
    if (!coalesced) {
      this.confirm(fill, repo.name);
      // Its lease (claimed by the caller) is renewed while it runs, and released after.
      this.cluster?.hold(digest, fill.done, () => this.fills.get(digest) !== undefined && this.fills.get(digest) !== fill);
    }
    this.events.onFill?.(coalesced ? 'coalesced' : 'started', { upstream: repo.upstream.name, digest });
    noteCache(repo, 'blob', coalesced ? 'coalesced' : 'miss');
    return fill;
  }

  /**
   * The writer `id` of a fill: the bytes a previous holder stored in it (hashed again here, read back
   * from the store), or a new one. Bytes that cannot be read back are dropped, and the fill starts
   * from the first byte in a fresh writer.
   */
  private async openWriter(digest: string, id: string): Promise<{ writer: BlobWriter; resumed?: { size: number; hash: Hash } }> {
    const stored = await this.store.resume(id);
    if (!stored) return { writer: await this.store.writer(id) };
    if (stored.size === 0) return { writer: stored };
    const hash = newHash(parseDigest(digest).algorithm);
    try {
      for await (const chunk of stored.read(stored.size)) hash.update(chunk as Buffer);
    } catch (err) {
      this.events.onFill?.('resumed', { digest, at: 0, writer: id, error: `the bytes stored by the previous holder cannot be read back: ${(err as Error).message}` });
      await stored.cancel().catch(() => undefined);
      return { writer: await this.store.writer() };
    }
    this.events.onFill?.('resumed', { digest, at: stored.size, writer: id });
    return { writer: stored, resumed: { size: stored.size, hash } };
  }

  /** What this repository's upstream says of the digest (size), without downloading; throws when it refuses. */
  private async headUpstream(repo: UpstreamRepository, digest: string, rangeHeader?: string): Promise<BlobRead> {
    try {
      const res = await repo.client.request({ method: 'HEAD', path: `/v2/${repo.remote}/blobs/${digest}`, repository: repo.remote });
      expectStatus(res, [200]);
      discard(res.body);
      const length = Number(header(res.headers, 'content-length'));
      if (!Number.isSafeInteger(length) || length < 0) {
        throw new RegistryError('UNAVAILABLE', `upstream ${repo.upstream.name} gave no size for blob ${digest}`);
      }
      return { digest, size: length, range: parseRange(rangeHeader, length) };
    } catch (err) {
      throw toRegistryError(err, repo.upstream, { code: 'BLOB_UNKNOWN', subject: `blob ${digest} of ${repo.remote}` });
    }
  }
}
