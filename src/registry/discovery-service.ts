// Content discovery: tag lists, the catalog and the referrers index.
import { RegistryError } from './errors.js';
import { parseDigest } from './digest.js';
import { OCI_INDEX } from './media-types.js';
import type { MetadataStore, Page } from '../metadata/metadata-store.js';

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
  constructor(private readonly metadata: MetadataStore) {}

  async tags(repo: string, page: Page): Promise<Listing> {
    if (!(await this.metadata.repositoryExists(repo))) {
      throw new RegistryError('NAME_UNKNOWN', `repository ${repo} is not known to this registry`, { status: 404, detail: { name: repo } });
    }
    return paginateStore(page, (p) => this.metadata.listTags(repo, p));
  }

  /** Repository names, only those `visible` accepts when given (what the caller may pull). */
  async catalog(page: Page, visible?: (repo: string) => boolean): Promise<Listing> {
    if (!visible) return paginateStore(page, (p) => this.metadata.listRepositories(p));
    return paginateStore(page, (p) => filteredList(p, visible, (q) => this.metadata.listRepositories(q)));
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
  return from + page.n < sorted.length && items.length > 0 ? { items, next: items[items.length - 1] as string } : { items };
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

/** Store pages read in batches until `p.n` names pass the filter (or the store runs out). */
async function filteredList(p: Page, keep: (name: string) => boolean, list: (p: Page) => Promise<string[]>): Promise<string[]> {
  const BATCH = 500;
  const out: string[] = [];
  let last = p.last;
  for (;;) {
    const batch = await list({ last, n: BATCH });
    for (const name of batch) {
      if (!keep(name)) continue;
      out.push(name);
      if (p.n !== undefined && out.length >= p.n) return out;
    }
    if (batch.length < BATCH) return out;
    last = batch[batch.length - 1];
  }
}
