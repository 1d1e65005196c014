// The registry as its operators see it (the management API, issue 13): repositories with their size,
// tag and manifest counts, last push and last pull, and whether their content is pushed here (local)
// or cached from an upstream (which one, by the routing); a repository's tags and manifests; deleting
// a tag or a whole repository (the collector then removes the blobs nothing holds any more).
//
// Repositories are named as stored: a local name as pushed, an upstream image as `<registry>/<remote>`
// where its cache lives (docker.io/library/alpine). A name given for one repository may also be
// spelled as a client pulls it (library/alpine through the default upstream): it is routed.
// Every page is one metadata statement (metadata/inventory-queries.ts), whatever its length.
import { RegistryError } from './errors.js';
import { assertName, isValidTag } from './reference.js';
import type { RouteTarget } from './router.js';
import type { ManifestDetail, RegistryMetadata, RepositoryStats, TagDetail } from '../metadata/registry-metadata.js';
import type { Page } from '../oci/page.js';

export interface RepositorySummary extends RepositoryStats {
  /** local = pushed here; cached = content of an upstream, named by `upstream`. */
  kind: 'local' | 'cached';
  /** The configured name of the upstream a cached repository comes from; null for a local one. */
  upstream: string | null;
}

/** A page and the `last` value of the next one, when there is one. */
export interface PageOf<T> {
  items: T[];
  next?: string;
}

/** What the service needs of the local registry: its pull times written, and its memory kept true. */
export interface ManagedStore {
  /** Writes the pull times held in memory (a pull just made shows at once). */
  flushAccess(): Promise<void>;
  /** Deletes a tag (metadata and memory); false when it was not there. */
  deleteTag(repo: string, tag: string): Promise<boolean>;
  /** Deletes a repository's tags, manifests and links (metadata and memory); false when it did not exist. */
  deleteRepository(repo: string): Promise<boolean>;
}

export interface ManagementDeps {
  metadata: RegistryMetadata;
  store: ManagedStore;
  /** Where a name leads (the registry's routing). */
  route(name: string): RouteTarget;
}

export class ManagementService {
  constructor(private readonly deps: ManagementDeps) {}

  /** A page of repositories in name order (`page.n` entries at most; `last` a stored name). */
  async repositories(page: Page & { n: number }): Promise<PageOf<RepositorySummary>> {
    if (page.n === 0) return { items: [] };
    await this.deps.store.flushAccess();
    const rows = await this.deps.metadata.listRepositoryStats({ last: page.last, n: page.n + 1 });
    return pageOf(rows.map((r) => this.summary(r)), page.n, (r) => r.name);
  }

  /** One repository (NAME_UNKNOWN when it does not exist). */
  async repository(name: string): Promise<RepositorySummary> {
    await this.deps.store.flushAccess();
    const repo = await this.resolve(name);
    const stats = await this.deps.metadata.repositoryStats(repo);
    if (!stats) throw unknownRepository(name);
    return this.summary(stats);
  }

  /** A page of the repository's tags in lexical order; `repo` is its stored name. */
  async tags(name: string, page: Page & { n: number }): Promise<PageOf<TagDetail> & { repo: string }> {
    const repo = await this.resolve(name);
    if (page.n === 0) return { repo, items: [] };
    const rows = await this.deps.metadata.listTagDetails(repo, { last: page.last, n: page.n + 1 });
    return { repo, ...pageOf(rows, page.n, (t) => t.tag) };
  }

  /** A page of the repository's manifests in digest order; `repo` is its stored name. */
  async manifests(name: string, page: Page & { n: number }): Promise<PageOf<ManifestDetail> & { repo: string }> {
    await this.deps.store.flushAccess();
    const repo = await this.resolve(name);
    if (page.n === 0) return { repo, items: [] };
    const rows = await this.deps.metadata.listManifestDetails(repo, { last: page.last, n: page.n + 1 });
    return { repo, ...pageOf(rows, page.n, (m) => m.digest) };
  }

  /** Deletes a tag; the manifest stays (the collector takes it when nothing else holds it). */
  /** Deletes the tag; the repository's stored name. */
  async deleteTag(name: string, tag: string): Promise<string> {
    if (!isValidTag(tag)) {
      throw new RegistryError('INVALID_REQUEST', `invalid tag "${tag.slice(0, 200)}": [a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}`, { detail: { tag: tag.slice(0, 200) } });
    }
    const repo = await this.resolve(name);
    if (!(await this.deps.store.deleteTag(repo, tag))) {
      throw new RegistryError('MANIFEST_UNKNOWN', `tag ${tag} is not in repository ${repo}`, { detail: { name: repo, tag } });
    }
    return repo;
  }

  /** Deletes a repository's tags and manifests; its blobs go with the next collection. */
  /** Deletes the repository; its stored name. */
  async deleteRepository(name: string): Promise<string> {
    const repo = await this.resolve(name);
    if (!(await this.deps.store.deleteRepository(repo))) throw unknownRepository(name);
    return repo;
  }

  /**
   * The stored name `name` stands for: itself when stored, else where its routing leads when that
   * is stored (a name as a client pulls it); NAME_INVALID for a bad name, NAME_UNKNOWN otherwise.
   */
  private async resolve(name: string): Promise<string> {
    assertName(name);
    const { metadata } = this.deps;
    if (await metadata.repositoryExists(name)) return name;
    const routed = this.routeOf(name);
    if (routed !== undefined && routed.repo !== name && (await metadata.repositoryExists(routed.repo))) return routed.repo;
    throw unknownRepository(name);
  }

  /** Local or cached, by the routing: a stored name that routes to itself through an upstream is its cache. */
  private summary(stats: RepositoryStats): RepositorySummary {
    const target = this.routeOf(stats.name);
    return target?.kind === 'upstream' && target.repo === stats.name
      ? { ...stats, kind: 'cached', upstream: target.upstream }
      : { ...stats, kind: 'local', upstream: null };
  }

  private routeOf(name: string): RouteTarget | undefined {
    try {
      return this.deps.route(name);
    } catch {
      // Too long once turned into a cache name: it leads nowhere.
      return undefined;
    }
  }
}

/** `rows` fetched with one more than `n`: the page, and `next` when that extra row exists. */
function pageOf<T>(rows: T[], n: number, key: (row: T) => string): PageOf<T> {
  if (rows.length <= n) return { items: rows };
  const items = rows.slice(0, n);
  return { items, next: key(items[items.length - 1]!) };
}

function unknownRepository(name: string): RegistryError {
  return new RegistryError('NAME_UNKNOWN', `repository ${name} is not known to this registry`, { status: 404, detail: { name } });
}
