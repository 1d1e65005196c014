// Blobs of upstream-routed repositories. A blob already stored here is served (and linked into this
// cache repository if it came through another); a miss joins the single fill for its digest and
// streams the bytes as they arrive. HEAD on a miss asks the upstream without downloading.
import { RegistryError } from '../registry/errors.js';
import { parseRange } from '../registry/range.js';
import type { BlobRead, BlobService } from '../registry/blob-service.js';
import type { BlobStore } from '../storage/blob-store.js';
import type { MetadataStore } from '../metadata/metadata-store.js';
import type { MaybeStale } from '../registry/repository.js';
import { FillTable, type Fill, type FillSource } from './blob-fill.js';
import type { ProxyTarget } from './proxy-manifests.js';
import { discard, expectStatus, header, toRegistryError } from './upstream-failure.js';

export interface FillEvents {
  onFill?: (event: 'started' | 'coalesced' | 'resumed' | 'committed' | 'failed', detail: Record<string, unknown>) => void;
}

export class ProxyBlobs {
  readonly fills: FillTable;

  constructor(
    private readonly blobs: BlobService,
    private readonly store: BlobStore,
    private readonly metadata: MetadataStore,
    private readonly events: FillEvents = {},
  ) {
    this.fills = new FillTable(store);
  }

  async read(t: ProxyTarget, digest: string, opts: { rangeHeader?: string; head?: boolean }): Promise<BlobRead & MaybeStale> {
    if (await this.metadata.isBlobLinked(t.repo, digest)) {
      if (await this.store.stat(digest)) return this.blobs.read(t.repo, digest, opts);
    } else if (await this.metadata.refreshBlob(digest)) {
      // Stored through another repository. The row is made fresh before the file is relied on, so a
      // collector does not remove it now; without a row (swept, or an orphan file) the fill runs.
      if (await this.store.stat(digest)) {
        await this.metadata.linkBlob(t.repo, digest);
        return this.blobs.read(t.repo, digest, opts);
      }
    }
    const running = this.fills.get(digest);
    if (!running && opts.head) return this.headUpstream(t, digest, opts.rangeHeader);
    const fill = running ?? (await this.startFill(t, digest));
    let size: number;
    try {
      size = await fill.sized();
    } catch (err) {
      throw toRegistryError(err, t.upstream, { code: 'BLOB_UNKNOWN', subject: `blob ${digest} of ${t.remote}` });
    }
    const range = parseRange(opts.rangeHeader, size);
    if (opts.head) return { digest, size, range };
    return { digest, size, range, body: fill.stream(range) };
  }

  private async startFill(t: ProxyTarget, digest: string): Promise<Fill> {
    const path = `/v2/${t.remote}/blobs/${digest}`;
    const fetcher = async (offset: number): Promise<FillSource> => {
      const res = await t.client.request({
        method: 'GET',
        path,
        repository: t.remote,
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
      ...(t.minRate ? { minRate: t.minRate } : {}),
      onCommit: async (d, size) => {
        await this.metadata.putBlob(d, size, { local: false });
        await this.metadata.linkBlob(t.repo, d);
      },
      onEvent: (event, detail) => this.events.onFill?.(event, { upstream: t.upstream.name, ...detail }),
    });
    this.events.onFill?.(coalesced ? 'coalesced' : 'started', { upstream: t.upstream.name, digest });
    return fill;
  }

  private async headUpstream(t: ProxyTarget, digest: string, rangeHeader: string | undefined): Promise<BlobRead> {
    try {
      const res = await t.client.request({ method: 'HEAD', path: `/v2/${t.remote}/blobs/${digest}`, repository: t.remote });
      expectStatus(res, [200]);
      discard(res.body);
      const length = Number(header(res.headers, 'content-length'));
      if (!Number.isSafeInteger(length) || length < 0) {
        throw new RegistryError('UNAVAILABLE', `upstream ${t.upstream.name} gave no size for blob ${digest}`);
      }
      return { digest, size: length, range: parseRange(rangeHeader, length) };
    } catch (err) {
      throw toRegistryError(err, t.upstream, { code: 'BLOB_UNKNOWN', subject: `blob ${digest} of ${t.remote}` });
    }
  }
}
