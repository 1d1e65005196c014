// Content discovery: tag lists, the catalog and the referrers index.
import { RegistryError } from './errors.js';
import { parseDigest } from './reference.js';
import { OCI_INDEX } from '../oci/media-types.js';
import type { RegistryMetadata } from '../metadata/registry-metadata.js';
import type { Page } from '../oci/page.js';

export interface Listing {
  items: string[];
  /** The `last` value for the next page, when there is one. */
  next?: string;
}

export interface ReferrersIndex {
  schemaVersion: 2;
  mediaType: typeof OCI_INDEX;
  manifests: Array<{ mediaType: string; digest: string; size: number; artifactType?: string; annotations?: Record<string, string> }>;
}

export class DiscoveryService {
  constructor(private readonly metadata: RegistryMetadata) {}

  async tags(repo: string, page: Page): Promise<Listing> {
    if (!(await this.metadata.repositoryExists(repo))) {
      throw new RegistryError('NAME_UNKNOWN', `repository ${repo} is not known to this registry`, { status: 404, detail: { name: repo } });
    }
    return paginateStore(page, (p) => this.metadata.listTags(repo, p));
  }

  /**
   * Canonical repository names (each stored name mapped by `canonicalOf`, Router.canonicalOf when
   * upstreams are routed: what clients send and policies judge) in lexical order, only those `visible`
   * accepts when given (what the caller may pull); `last` and `next` are canonical names too. Canonical names do not sort like the
   * stored ones (`docker.io/library/alpine` lists as `library/alpine`), so the names are read, mapped
   * and sorted here; `visible` is asked only until the page is full.
   */
  async catalog(page: Page, canonicalOf: (repo: string) => string, visible?: (canonical: string) => Promise<boolean>): Promise<Listing> {
    if (page.n === 0) return { items: [] };
    const names: string[] = [];
    for (let last: string | undefined; ; ) {
      const batch = await this.metadata.listRepositories({ last, n: CATALOG_BATCH });
      for (const repo of batch) names.push(canonicalOf(repo));
      if (batch.length < CATALOG_BATCH) break;
      last = batch[batch.length - 1];
    }
    names.sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
    const items: string[] = [];
    let i = page.last === undefined ? 0 : names.findIndex((x) => x > page.last!);
    if (i < 0) return { items };
    for (; i < names.length; i++) {
      const name = names[i]!;
      if (name === names[i - 1]) continue;
      if (visible && !(await visible(name))) continue;
      if (page.n !== undefined && items.length === page.n) return { items, next: items[items.length - 1] };
      items.push(name);
    }
    return { items };
  }

  async referrers(repo: string, subject: string, artifactType?: string): Promise<ReferrersIndex> {
    parseDigest(subject);
    const records = await this.metadata.listReferrers(repo, subject, artifactType);
    return {
      schemaVersion: 2,
      mediaType: OCI_INDEX,
      manifests: records.map((r) => ({
        mediaType: r.mediaType,
        digest: r.digest,
        size: r.size,
        ...(r.artifactType ? { artifactType: r.artifactType } : {}),
        ...(r.annotations ? { annotations: r.annotations } : {}),
      })),
    };
  }
}

/** A page of a sorted list held in memory (`last` excluded, one more looked at for `next`). */
export function paginate(sorted: readonly string[], page: Page): Listing {
  let from = 0;
  if (page.last !== undefined) {
    const last = page.last;
    from = sorted.findIndex((x) => x > last);
    if (from < 0) return { items: [] };
  }
  if (page.n === undefined) return { items: sorted.slice(from) };
  const items = sorted.slice(from, from + page.n);
  return from + page.n < sorted.length && items.length > 0 ? { items, next: items[items.length - 1] } : { items };
}

/** Fetches one more than asked to know whether a next page exists. */
async function paginateStore(page: Page, list: (p: Page) => Promise<string[]>): Promise<Listing> {
  if (page.n === undefined) return { items: await list({ last: page.last }) };
  if (page.n === 0) return { items: [] };
  const items = await list({ last: page.last, n: page.n + 1 });
  if (items.length <= page.n) return { items };
  const shown = items.slice(0, page.n);
  return { items: shown, next: shown[shown.length - 1] };
}

const CATALOG_BATCH = 1000;
