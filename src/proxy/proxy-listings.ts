// Tag lists and referrers of upstream-routed repositories: from the upstream, cached for listTTL,
// falling back to what the cache holds when the upstream cannot be asked.
import type Keyv from 'keyv';
import { paginate, type Listing, type ReferrersIndex } from '../registry/discovery-service.js';
import { isValidTag } from '../registry/reference.js';
import type { MaybeStale, Registry } from '../registry/registry.js';
import type { Page } from '../oci/page.js';
import { OCI_INDEX } from '../oci/media-types.js';
import type { UpstreamRepository } from './upstream-repository.js';
import { expectStatus, header, isTransient, readAll, staleWarning, toRegistryError, UpstreamStatus } from './upstream-failure.js';

const MAX_LIST_BYTES = 16 * 1024 * 1024;
/** Pages of an upstream tag list followed at most (a bound against a Link loop). */
const MAX_TAG_PAGES = 100;

type Referrers = ReferrersIndex & MaybeStale & { filtered: boolean };

export class ProxyListings {
  constructor(
    /** The local registry: what the cache holds when the upstream cannot be asked. */
    private readonly local: Registry,
    private readonly cache: Keyv<unknown>,
  ) {}

  async tags(repo: UpstreamRepository, page: Page): Promise<Listing & MaybeStale> {
    try {
      return paginate(await this.allTags(repo), page);
    } catch (err) {
      if (isTransient(err) || err instanceof SyntaxError) {
        const local = await this.local.repository(repo.name).tags.list(page).catch(() => undefined);
        if (local) return { ...local, warning: staleWarning(repo.upstream, err) };
      }
      throw toRegistryError(err, repo.upstream, { code: 'NAME_UNKNOWN', subject: `repository ${repo.remote}` });
    }
  }

  /**
   * The upstream's whole tag list, sorted (the spec's lexical order; not every upstream sorts or
   * paginates), cached for listTTL; `n` and `last` are applied here.
   */
  private async allTags(repo: UpstreamRepository): Promise<string[]> {
    const key = `tags:${repo.upstream.name}:${repo.remote}`;
    const hit = (await this.cache.get(key)) as string[] | undefined;
    if (hit) return hit;
    const tags = new Set<string>();
    let path: string | undefined = `/v2/${repo.remote}/tags/list`;
    for (let pages = 0; path !== undefined && pages < MAX_TAG_PAGES; pages++) {
      const res = await repo.client.request({ method: 'GET', path, repository: repo.remote });
      expectStatus(res, [200]);
      const doc = JSON.parse((await readAll(res.body, MAX_LIST_BYTES)).toString('utf8')) as { tags?: unknown };
      for (const tag of Array.isArray(doc.tags) ? doc.tags : []) if (typeof tag === 'string' && isValidTag(tag)) tags.add(tag);
      // Follow the upstream's own next link, only on its own origin and for this repository.
      const link = /<([^>]*)>\s*;\s*rel="?next"?/.exec(header(res.headers, 'link') ?? '')?.[1];
      const next = link === undefined ? undefined : new URL(link, 'http://upstream');
      path = next && next.host === 'upstream' && next.pathname === `/v2/${repo.remote}/tags/list` ? `${next.pathname}${next.search}` : undefined;
    }
    const sorted = [...tags].sort();
    await this.cache.set(key, sorted, repo.listTtlMs);
    return sorted;
  }

  async referrers(repo: UpstreamRepository, digest: string, artifactType?: string): Promise<Referrers> {
    const key = `referrers:${repo.upstream.name}:${repo.remote}:${digest}:${artifactType ?? ''}`;
    const hit = (await this.cache.get(key)) as Referrers | undefined;
    if (hit) return hit;
    const qs = artifactType === undefined ? '' : `?${new URLSearchParams({ artifactType }).toString()}`;
    let index: Referrers;
    try {
      const res = await repo.client.request({ method: 'GET', path: `/v2/${repo.remote}/referrers/${digest}${qs}`, repository: repo.remote });
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
        throw toRegistryError(err, repo.upstream, { code: 'NAME_UNKNOWN', subject: `repository ${repo.remote}` });
      }
      const result: Referrers = await this.local.repository(repo.name).referrers.list(digest, artifactType);
      if (!noApi) result.warning = staleWarning(repo.upstream, err);
      return result;
    }
    await this.cache.set(key, index, repo.listTtlMs);
    return index;
  }
}

