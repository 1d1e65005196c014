// One upstream fetch per cold blob in a whole cluster (DESIGN.md "Several nodes"). The node that
// starts a fill holds its lease (metadata/fill-leases.ts) and renews every lease it holds with one
// statement per heartbeat; a node whose client asks for a blob that another node is filling streams
// the growing bytes from that node's internal endpoint (GET <url>/internal/fills/<digest>, Range
// allowed, bearer secret) instead of asking the upstream. This module holds the node's side of
// that: its leases and their heartbeat, and the requests to another node. The clients of this node
// share one such request per digest (remote-fills.ts). What to do when a holder fails is ProxyBlobs'
// (it knows the store and the local fills).
import { randomUUID } from 'node:crypto';
import { Agent as HttpAgent, request as httpRequest, type IncomingMessage } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import { RegistryError } from '../registry/errors.js';
import { parseRange } from '../registry/range.js';
import type { FillClaim, FillHolder, FillLease, FillLeases } from '../metadata/fill-leases.js';
import type { ByteRange } from '../storage/blob-store.js';

export interface ClusterOptions {
  leases: FillLeases;
  /** This node's id, unique per process run. */
  node: string;
  /** Where the other nodes reach this one (known once the server listens, hence a function). */
  url: () => string;
  /** The bearer token between nodes (cluster.secret). */
  secret: string;
  heartbeatMs: number;
  leaseMs: number;
  /** Longest silence of another node's response before it is given up (default 30 s). */
  idleMs?: number;
  onEvent?: (event: 'heartbeat failed' | 'release failed', detail: Record<string, unknown>) => void;
}

/** Another node cannot serve the fill now: unreachable, dead, or no such fill runs there any more. */
export class HolderUnavailable extends Error {
  constructor(message: string, opts?: { cause?: unknown }) {
    super(message, opts);
    this.name = 'HolderUnavailable';
  }
}

/** The growing bytes from another node: `size` is the blob's, `body` starts at the range asked for. */
export interface RemoteFill {
  size: number;
  body: IncomingMessage;
}

export class ClusterFills {
  /** Digests whose lease this node holds (its running fills): renewed by each heartbeat. */
  private readonly held = new Set<string>();
  private readonly pending = new Set<Promise<void>>();
  private readonly timer: NodeJS.Timeout;
  private beating = false;
  private readonly http = new HttpAgent({ keepAlive: true });
  private readonly https = new HttpsAgent({ keepAlive: true });
  private readonly auth: string;

  constructor(private readonly opts: ClusterOptions) {
    this.auth = `Bearer ${opts.secret}`;
    this.timer = setInterval(() => this.heartbeat(), opts.heartbeatMs);
    this.timer.unref();
  }

  get node(): string {
    return this.opts.node;
  }

  /** How long a caller waits for a silent holder's lease to expire before giving up (twice the timeout). */
  get patienceMs(): number {
    return 2 * this.opts.leaseMs + this.opts.heartbeatMs;
  }

  /** How often a lease is looked at again while waiting for it to change. */
  get pollMs(): number {
    return Math.max(10, Math.min(this.opts.heartbeatMs, 500));
  }

  /** Claims the lease of `digest`; a new lease names a new writer (an upload session id of the store). */
  claim(digest: string, repo: string): Promise<FillClaim> {
    const holder: FillHolder = { node: this.opts.node, url: this.opts.url(), repo };
    return this.opts.leases.claim(digest, holder, this.opts.leaseMs, randomUUID());
  }

  peek(digest: string): Promise<FillLease | undefined> {
    return this.opts.leases.peek(digest);
  }

  /**
   * Renews the lease of `digest` while `done` is pending; then releases it unless `running()` says a
   * later fill of the same digest runs here (its lease is the same row).
   */
  hold(digest: string, done: Promise<unknown>, running: () => boolean): void {
    this.held.add(digest);
    void done
      .catch(() => undefined)
      .then(() => {
        if (running()) return;
        this.held.delete(digest);
        this.release(digest);
      });
  }

  /** Gives up the lease now (the blob turned out to be stored already). */
  release(digest: string): void {
    const p = this.opts.leases.release(digest, this.opts.node).catch((err: unknown) => {
      // Left to expire: the other nodes wait at most leaseTimeout for it.
      this.opts.onEvent?.('release failed', { digest, error: (err as Error).message });
    });
    this.pending.add(p);
    void p.finally(() => this.pending.delete(p));
  }

  /**
   * The growing bytes of `digest` from the node holding `lease`: the range `range` asks (a client's
   * Range header, passed on as it is, or positions), or all of them. A range the blob cannot satisfy
   * throws RANGE_INVALID. HolderUnavailable when the node cannot serve it.
   */
  open(lease: FillLease, digest: string, range?: string | ByteRange): Promise<RemoteFill> {
    const header = range === undefined ? undefined : typeof range === 'string' ? range : `bytes=${range.start}-${range.end}`;
    let url: URL;
    try {
      url = new URL(`internal/fills/${digest}`, lease.url.endsWith('/') ? lease.url : `${lease.url}/`);
    } catch (err) {
      return Promise.reject(new HolderUnavailable(`node ${lease.node} advertises ${lease.url}, not a URL`, { cause: err }));
    }
    const secure = url.protocol === 'https:';
    return new Promise<RemoteFill>((resolve, reject) => {
      const req = (secure ? httpsRequest : httpRequest)(url, {
        method: 'GET',
        agent: secure ? this.https : this.http,
        headers: { authorization: this.auth, ...(header !== undefined ? { range: header } : {}) },
        timeout: this.opts.idleMs ?? 30_000,
      });
      const unavailable = (why: string, cause?: unknown): HolderUnavailable =>
        new HolderUnavailable(`node ${lease.node} at ${lease.url} cannot serve the fill of ${digest}: ${why}`, { cause });
      req.on('timeout', () => req.destroy(unavailable('no answer in time')));
      // Kept for the whole exchange: an error after the response has started is the body's to report.
      req.on('error', (err) => reject(err instanceof HolderUnavailable ? err : unavailable(err.message, err)));
      req.once('response', (res) => {
        const status = res.statusCode ?? 0;
        const fail = (err: Error): void => {
          res.resume();
          reject(err);
        };
        if (status === 200 || status === 206) {
          const size = status === 200 ? Number(res.headers['content-length']) : Number(/\/(\d+)$/.exec(res.headers['content-range'] ?? '')?.[1]);
          if (!Number.isSafeInteger(size)) return fail(unavailable(`answered ${status} without the blob's size`));
          // A silent holder is given up (its body errors), then its lease is looked at again.
          res.setTimeout(this.opts.idleMs ?? 30_000, () => res.destroy(unavailable('no bytes in time')));
          return resolve({ size, body: res });
        }
        if (status === 416) {
          const total = Number(/^bytes \*\/(\d+)$/.exec(res.headers['content-range'] ?? '')?.[1]);
          if (Number.isSafeInteger(total) && header !== undefined) {
            try {
              parseRange(header, total);
            } catch (err) {
              return fail(err as Error);
            }
          }
          return fail(unavailable('answered 416'));
        }
        if (status === 401 || status === 403) {
          // A configuration mistake, not a node going away: said as such, and not waited out.
          return fail(
            new RegistryError('UNAVAILABLE', `node ${lease.node} at ${lease.url} refused this node's cluster secret (${status}): every node needs the same cluster.secret`, {
              headers: { 'retry-after': '5' },
            }),
          );
        }
        fail(unavailable(`answered ${status}`));
      });
      req.end();
    });
  }

  /** Waits for the releases under way (shutdown, before the database closes), and stops the heartbeat. */
  async close(): Promise<void> {
    clearInterval(this.timer);
    await Promise.allSettled([...this.pending]);
    this.http.destroy();
    this.https.destroy();
  }

  private heartbeat(): void {
    if (this.beating || this.held.size === 0) return;
    this.beating = true;
    const digests = [...this.held];
    this.opts.leases
      .renew(this.opts.node, digests, this.opts.leaseMs)
      .catch((err: unknown) => this.opts.onEvent?.('heartbeat failed', { fills: digests.length, error: (err as Error).message }))
      .finally(() => (this.beating = false));
  }
}
