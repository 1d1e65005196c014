// Tag lists and referrers of upstream-routed repositories: from the upstream, cached for listTTL,
// falling back to what the cache holds when the upstream cannot be asked.
import type Keyv from 'keyv';
import type { DiscoveryService, Listing, ReferrersIndex } from '../registry/discovery-service.js';
import type { MaybeStale } from '../registry/repository.js';
import type { Page } from '../metadata/metadata-store.js';
import { OCI_INDEX } from '../registry/media-types.js';
import type { ProxyTarget } from './proxy-manifests.js';
import { expectStatus, header, isTransient, readAll, staleWarning, toRegistryError, UpstreamStatus } from './upstream-failure.js';

const MAX_LIST_BYTES = 16 * 1024 * 1024;

export interface ListTarget extends ProxyTarget {
  listTtlMs: number;
}

type Referrers = ReferrersIndex & MaybeStale & { filtered: boolean };

export class ProxyListings {
  constructor(
    private readonly discovery: DiscoveryService,
    private readonly cache: Keyv<unknown>,
  ) {}

  async tags(t: ListTarget, page: Page): Promise<Listing & MaybeStale> {
    const key = `tags:${t.upstream.name}:${t.remote}:${page.n ?? ''}:${page.last ?? ''}`;
    const hit = (await this.cache.get(key)) as Listing | undefined;
    if (hit) return hit;
    const query = new URLSearchParams();
    if (page.n !== undefined) query.set('n', String(page.n));
    if (page.last !== undefined) query.set('last', page.last);
    const qs = query.size > 0 ? `?${query}` : '';
    try {
      const res = await t.client.request({ method: 'GET', path: `/v2/${t.remote}/tags/list${qs}`, repository: t.remote });
      expectStatus(res, [200]);
      const doc = JSON.parse((await readAll(res.body, MAX_LIST_BYTES)).toString('utf8')) as { tags?: unknown };
      const items = Array.isArray(doc.tags) ? doc.tags.filter((x): x is string => typeof x === 'string') : [];
      // The upstream's Link points at its own names: keep only where the next page starts.
      const link = header(res.headers, 'link');
      const next = link ? new URL(/<([^>]*)>/.exec(link)?.[1] ?? '', 'http://upstream').searchParams.get('last') ?? undefined : undefined;
      const listing: Listing = next === undefined ? { items } : { items, next };
      await this.cache.set(key, listing, t.listTtlMs);
      return listing;
    } catch (err) {
      if (isTransient(err) || err instanceof SyntaxError) {
        const local = await this.discovery.tags(t.repo, page).catch(() => undefined);
        if (local) return { ...local, warning: staleWarning(t.upstream, err) };
      }
      throw toRegistryError(err, t.upstream, { code: 'NAME_UNKNOWN', subject: `repository ${t.remote}` });
    }
  }

  async referrers(t: ListTarget, digest: string, artifactType?: string): Promise<Referrers> {
    const key = `referrers:${t.upstream.name}:${t.remote}:${digest}:${artifactType ?? ''}`;
    const hit = (await this.cache.get(key)) as Referrers | undefined;
    if (hit) return hit;
    const qs = artifactType === undefined ? '' : `?${new URLSearchParams({ artifactType })}`;
    let index: Referrers;
    try {
      const res = await t.client.request({ method: 'GET', path: `/v2/${t.remote}/referrers/${digest}${qs}`, repository: t.remote });
      expectStatus(res, [200]);
      const doc = JSON.parse((await readAll(res.body, MAX_LIST_BYTES)).toString('utf8')) as { manifests?: unknown };
      let manifests = (Array.isArray(doc.manifests) ? doc.manifests : []) as ReferrersIndex['manifests'];
      const upstreamFiltered = (header(res.headers, 'oci-filters-applied') ?? '').split(',').map((s) => s.trim()).includes('artifactType');
      if (artifactType !== undefined && !upstreamFiltered) manifests = manifests.filter((m) => m.artifactType === artifactType);
      index = { schemaVersion: 2, mediaType: OCI_INDEX, manifests, filtered: artifactType !== undefined };
    } catch (err) {
      // An upstream without the referrers API (404) or out of reach: what the cache knows.
      const noApi = err instanceof UpstreamStatus && err.status === 404;
      if (!noApi && !isTransient(err) && !(err instanceof SyntaxError)) {
        throw toRegistryError(err, t.upstream, { code: 'NAME_UNKNOWN', subject: `repository ${t.remote}` });
      }
      const local = await this.discovery.referrers(t.repo, digest, artifactType);
      const result: Referrers = { ...local, filtered: artifactType !== undefined };
      if (!noApi) result.warning = staleWarning(t.upstream, err);
      return result;
    }
    await this.cache.set(key, index, t.listTtlMs);
    return index;
  }
}

