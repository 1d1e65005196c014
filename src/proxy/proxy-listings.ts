// Tag lists and referrers of upstream-routed repositories: from the upstream, cached for listTTL,
// falling back to what the cache holds when the upstream cannot be asked.
import type Keyv from 'keyv';
import { paginate, type DiscoveryService, type Listing, type ReferrersIndex } from '../registry/discovery-service.js';
import { isValidTag } from '../registry/reference.js';
import type { MaybeStale } from '../registry/repository.js';
import type { Page } from '../oci/page.js';
import { OCI_INDEX } from '../oci/media-types.js';
import type { ProxyTarget } from './proxy-manifests.js';
import { expectStatus, header, isTransient, readAll, staleWarning, toRegistryError, UpstreamStatus } from './upstream-failure.js';

const MAX_LIST_BYTES = 16 * 1024 * 1024;
/** Pages of an upstream tag list followed at most (a bound against a Link loop). */
const MAX_TAG_PAGES = 100;

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
    try {
      return paginate(await this.allTags(t), page);
    } catch (err) {
      if (isTransient(err) || err instanceof SyntaxError) {
        const local = await this.discovery.tags(t.repo, page).catch(() => undefined);
        if (local) return { ...local, warning: staleWarning(t.upstream, err) };
      }
      throw toRegistryError(err, t.upstream, { code: 'NAME_UNKNOWN', subject: `repository ${t.remote}` });
    }
  }

  /**
   * The upstream's whole tag list, sorted (the spec's lexical order; not every upstream sorts or
   * paginates), cached for listTTL; `n` and `last` are applied here.
   */
  private async allTags(t: ListTarget): Promise<string[]> {
    const key = `tags:${t.upstream.name}:${t.remote}`;
    const hit = (await this.cache.get(key)) as string[] | undefined;
    if (hit) return hit;
    const tags = new Set<string>();
    let path: string | undefined = `/v2/${t.remote}/tags/list`;
    for (let pages = 0; path !== undefined && pages < MAX_TAG_PAGES; pages++) {
      const res = await t.client.request({ method: 'GET', path, repository: t.remote });
      expectStatus(res, [200]);
      const doc = JSON.parse((await readAll(res.body, MAX_LIST_BYTES)).toString('utf8')) as { tags?: unknown };
      for (const tag of Array.isArray(doc.tags) ? doc.tags : []) if (typeof tag === 'string' && isValidTag(tag)) tags.add(tag);
      // Follow the upstream's own next link, only on its own origin and for this repository.
      const link = /<([^>]*)>\s*;\s*rel="?next"?/.exec(header(res.headers, 'link') ?? '')?.[1];
      const next = link === undefined ? undefined : new URL(link, 'http://upstream');
      path = next && next.host === 'upstream' && next.pathname === `/v2/${t.remote}/tags/list` ? `${next.pathname}${next.search}` : undefined;
    }
    const sorted = [...tags].sort();
    await this.cache.set(key, sorted, t.listTtlMs);
    return sorted;
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

