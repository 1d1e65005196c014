// Hot manifests and tag resolutions in memory (DESIGN.md "Storage": in-process caches hold hot
// manifests): a pull of a cached manifest reads neither the metadata store nor the blob file.
//
// What is cached is exactly what the metadata said when it was read, and it is dropped by whatever
// changes it: a tag pushed again (moved), a tag or manifest deleted, and the collector's sweeps, in
// this process (told directly) or in another one on the same store (told through the store's change
// signal, see app.ts). A reader that looked a manifest up before such a change must not put what it
// read back after the change was applied: it takes a token (the epoch) before reading, and a token
// older than the last change makes its set a no-op. Misses are never cached.
import { LRUCache } from 'lru-cache';

/** A manifest as served from memory (a StoredManifest whose bytes are always present). */
export interface CachedManifest {
  readonly digest: string;
  readonly mediaType: string;
  readonly size: number;
  readonly body: Buffer;
}

/** Per-entry overhead counted against the byte budget besides the body (key, record, LRU node). */
const ENTRY_OVERHEAD = 256;
/** Tag resolutions kept (each a short key and a digest, a few hundred bytes). */
const MAX_TAGS = 50_000;

export class ManifestCache {
  private readonly manifests: LRUCache<string, CachedManifest>;
  // Bounded by a count through maxSize, not `max`: with `max`, lru-cache allocates its index arrays
  // for all 50,000 entries up front (~1.6 MiB held from start-up, empty).
  private readonly tags = new LRUCache<string, string>({ maxSize: MAX_TAGS, sizeCalculation: () => 1 });
  private epoch = 0;

  /** @param maxBytes manifest bytes (plus a small overhead per entry) held at most; 0 = nothing is cached. */
  constructor(private readonly maxBytes: number) {
    this.manifests = new LRUCache<string, CachedManifest>({
      maxSize: Math.max(1, maxBytes),
      sizeCalculation: (m, key) => m.body.length + key.length + ENTRY_OVERHEAD,
    });
  }

  /** Taken before reading the metadata; hand it to the set that stores what was read. */
  token(): number {
    return this.epoch;
  }

  manifest(repo: string, digest: string): CachedManifest | undefined {
    return this.manifests.get(manifestKey(repo, digest));
  }

  /** The manifest `tag` resolves to, when both the resolution and the manifest are held. */
  tagged(repo: string, tag: string): CachedManifest | undefined {
    const digest = this.tags.get(tagKey(repo, tag));
    return digest === undefined ? undefined : this.manifests.get(manifestKey(repo, digest));
  }

  /** The digest `tag` resolves to, if held. */
  tagDigest(repo: string, tag: string): string | undefined {
    return this.tags.get(tagKey(repo, tag));
  }

  /** Stores what was read with `token`, unless something changed since. */
  setManifest(token: number, repo: string, m: CachedManifest): void {
    if (token !== this.epoch || this.maxBytes <= 0) return;
    this.manifests.set(manifestKey(repo, m.digest), m);
  }

  setTag(token: number, repo: string, tag: string, digest: string): void {
    if (token !== this.epoch || this.maxBytes <= 0) return;
    this.tags.set(tagKey(repo, tag), digest);
  }

  /**
   * A manifest was stored (pushed or pulled through) with `tags` pointing at it: those tags now
   * resolve to it (called after the metadata committed).
   */
  stored(repo: string, m: CachedManifest, tags: readonly string[]): void {
    this.epoch++;
    if (this.maxBytes <= 0) return;
    this.manifests.set(manifestKey(repo, m.digest), m);
    for (const tag of tags) this.tags.set(tagKey(repo, tag), m.digest);
  }

  tagDeleted(repo: string, tag: string): void {
    this.epoch++;
    this.tags.delete(tagKey(repo, tag));
  }

  /** The manifest and every tag of `repo` that pointed at it are gone. */
  manifestDeleted(repo: string, digest: string): void {
    this.epoch++;
    this.manifests.delete(manifestKey(repo, digest));
    const prefix = `${repo}:`;
    for (const [key, d] of this.tags.entries()) {
      if (d === digest && key.startsWith(prefix)) this.tags.delete(key);
    }
  }

  /** A repository was deleted: these tags and manifests of it are gone. */
  repositoryDeleted(repo: string, tags: readonly string[], digests: readonly string[]): void {
    this.epoch++;
    for (const tag of tags) this.tags.delete(tagKey(repo, tag));
    for (const digest of digests) this.manifests.delete(manifestKey(repo, digest));
  }

  /** Drops everything (the collector swept, here or in another process). */
  clear(): void {
    this.epoch++;
    this.manifests.clear();
    this.tags.clear();
  }
}

// A tag never contains ':' and a digest always does, so `repo:tag` and `repo@digest` keys cannot
// collide; repository names contain neither.
function manifestKey(repo: string, digest: string): string {
  return `${repo}@${digest}`;
}

function tagKey(repo: string, tag: string): string {
  return `${repo}:${tag}`;
}
