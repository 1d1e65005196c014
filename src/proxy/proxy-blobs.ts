// Blobs of upstream-routed repositories. A blob is served from storage only when the BlobLedger allows
// it under this repository: linked here, or stored for another repository and confirmed by this
// repository's upstream (a HEAD with Wharf's credentials for it), then linked without a second
// download. A miss joins the single fill for its digest and streams the bytes as they arrive; a
// client of another repository follows a running fill only once its own upstream has confirmed the
// digest. HEAD on a miss asks the upstream without downloading.
import { RegistryError } from '../registry/errors.js';
import { parseRange } from '../registry/range.js';
import type { BlobRead } from '../registry/blob-service.js';
import type { BlobLedger } from '../ledger/blob-ledger.js';
import type { BlobStore } from '../storage/blob-store.js';
import type { MaybeStale } from '../registry/registry.js';
import type { CacheStore } from '../registry/cache-store.js';
import { FillTable, type Fill, type FillSource } from './blob-fill.js';
import type { UpstreamRepository } from './upstream-repository.js';
import { discard, expectStatus, header, toRegistryError } from './upstream-failure.js';

export interface FillEvents {
  onFill?: (event: 'started' | 'coalesced' | 'resumed' | 'committed' | 'failed', detail: Record<string, unknown>) => void;
}

export class ProxyBlobs {
  readonly fills: FillTable;
  /** The repositories each running fill may serve: the one it fetches for, and those confirmed since. */
  private readonly confirmed = new WeakMap<Fill, Set<string>>();

  constructor(
    private readonly local: CacheStore,
    private readonly ledger: BlobLedger,
    store: BlobStore,
    private readonly events: FillEvents = {},
  ) {
    this.fills = new FillTable(store);
  }

  async read(repo: UpstreamRepository, digest: string, opts: { rangeHeader?: string; head?: boolean }): Promise<BlobRead & MaybeStale> {
    const stored = await this.ledger.access(repo.name, digest, async () => {
      await this.headUpstream(repo, digest);
    });
    if (stored) return this.local.serveBlob(digest, stored.size, opts);
    const running = this.fills.get(digest);
    if (opts.head && !(running && this.confirmed.get(running)?.has(repo.name))) return this.headUpstream(repo, digest, opts.rangeHeader);
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

  private async startFill(repo: UpstreamRepository, digest: string): Promise<Fill> {
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
      },
      onEvent: (event, detail) => this.events.onFill?.(event, { upstream: repo.upstream.name, ...detail }),
    });
    // The fill's own GET asks the upstream about this repository: its readers need no other check.
    if (!coalesced) this.confirm(fill, repo.name);
    this.events.onFill?.(coalesced ? 'coalesced' : 'started', { upstream: repo.upstream.name, digest });
    return fill;
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
