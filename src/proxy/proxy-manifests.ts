// Manifests of upstream-routed repositories (DESIGN.md "The pull-through path").
// By digest: immutable; served from the cache, else fetched, verified, stored, served.
// By tag: fresh within tagTTL → the cache; otherwise revalidated with a HEAD and fetched only when
// the digest changed. The exact upstream bytes, media type and digest are kept (no conversion).
import type Keyv from 'keyv';
import { LRUCache } from 'lru-cache';
import { RegistryError } from '../registry/errors.js';
import { digestOf, tryParseDigest } from '../oci/digest.js';
import { DescriptorLimitError, MAX_MANIFEST_BYTES } from '../registry/manifest.js';
import { DOCKER_MANIFEST, DOCKER_MANIFEST_LIST, OCI_INDEX, OCI_MANIFEST, baseMediaType } from '../oci/media-types.js';
import { isValidTag, parseDigest, parseReference } from '../registry/reference.js';
import { SingleFlight } from '../registry/single-flight.js';
import type { StoredManifest } from '../registry/manifest-service.js';
import type { MaybeStale } from '../registry/registry.js';
import type { CacheStore } from '../registry/cache-store.js';
import { discard, expectStatus, header, isTransient, readAll, staleWarning, toRegistryError } from './upstream-failure.js';
import { noteCache, type UpstreamRepository } from './upstream-repository.js';
import type { EventSink } from '../events/event.js';

/** Every manifest type Wharf stores: asked for all at once so the upstream never converts. */
export const MANIFEST_ACCEPT = [OCI_INDEX, OCI_MANIFEST, DOCKER_MANIFEST_LIST, DOCKER_MANIFEST].join(', ');

interface Fetched {
  body: Buffer;
  mediaType: string | undefined;
  digest: string | undefined;
}

export class ProxyManifests {
  private readonly flights = new SingleFlight<StoredManifest & MaybeStale>();
  /**
   * Tag confirmations this process knows of (key → digest, until), bounded like the tags they are for;
   * counted through maxSize, since `max` would allocate the index arrays for every entry up front.
   */
  private readonly confirmed = new LRUCache<string, { digest: string; until: number }>({ maxSize: 50_000, sizeCalculation: () => 1 });

  constructor(
    private readonly local: CacheStore,
    /** Tag → digest resolutions still fresh (TTL = the upstream's tagTTL). */
    private readonly fresh: Keyv<string>,
    private readonly sink: EventSink,
  ) {}

  /** `revalidate`: a tag is asked of the upstream whatever its TTL (warming: a moved tag is seen at once). */
  async get(repo: UpstreamRepository, reference: string, opts: { revalidate?: boolean } = {}): Promise<StoredManifest & MaybeStale> {
    if (!reference.includes(':') && !isValidTag(reference)) {
      throw new RegistryError('MANIFEST_UNKNOWN', `manifest ${reference.slice(0, 200)} is not in repository ${repo.name}`);
    }
    const ref = parseReference(reference);
    if (ref.kind === 'tag') return this.byTag(repo, ref.tag, opts.revalidate === true);
    const found = await this.local.findManifest(repo.name, ref.digest);
    if (found) {
      noteCache(repo, 'manifest', 'hit');
      return found;
    }
    const key = `${repo.name}@${ref.digest}`;
    noteCache(repo, 'manifest', this.flights.has(key) ? 'coalesced' : 'miss');
    return this.flights.run(key, () => this.fetchByDigest(repo, ref.digest));
  }

  /**
   * The manifest when memory alone can answer: held, and for a tag confirmed within its TTL (the
   * freshness rule of byTag, decided from memory). Undefined otherwise: get() decides.
   */
  hot(upstream: string, remote: string, repo: string, reference: string): StoredManifest | undefined {
    if (reference.includes(':')) return this.local.hotManifest(repo, undefined, reference);
    const known = this.confirmed.get(`${upstream}:${remote}:${reference}`);
    if (known === undefined || known.until <= Date.now()) return undefined;
    const m = this.local.hotManifest(repo, undefined, reference);
    return m?.digest === known.digest ? m : undefined;
  }

  private async byTag(repo: UpstreamRepository, tag: string, revalidate: boolean): Promise<StoredManifest & MaybeStale> {
    const key = `${repo.upstream.name}:${repo.remote}:${tag}`;
    const cachedDigest = await this.local.taggedDigest(repo.name, tag);
    const cached = cachedDigest === undefined ? undefined : await this.local.findManifest(repo.name, cachedDigest);
    if (cached && !revalidate && (await this.isFresh(key, cachedDigest))) {
      noteCache(repo, 'manifest', 'hit');
      return cached;
    }
    // Concurrent requests for one stale tag share one revalidation (the first one notes its outcome).
    const flight = `${repo.name}:${tag}`;
    if (!this.flights.has(flight)) return this.flights.run(flight, () => this.revalidate(repo, tag, key, cachedDigest));
    const m = await this.flights.run(flight, () => this.revalidate(repo, tag, key, cachedDigest));
    noteCache(repo, 'manifest', m.warning === undefined ? 'coalesced' : 'stale');
    return m;
  }

  /**
   * Whether the tag was confirmed at `digest` within its TTL: decided from memory when this process
   * confirmed it; otherwise the shared cache is asked (another node may have), and what it says is
   * remembered until the same expiry. An expired confirmation is a miss: the tag is revalidated.
   */
  private async isFresh(key: string, digest: string | undefined): Promise<boolean> {
    const known = this.confirmed.get(key);
    const now = Date.now();
    if (known && known.until > now) return known.digest === digest;
    const shared = await this.fresh.get<string>(key, { raw: true });
    if (shared?.value === undefined) return false;
    if (shared.expires !== undefined) this.confirmed.set(key, { digest: shared.value, until: shared.expires });
    return shared.value === digest;
  }

  /** Records a confirmation here and in the shared cache, with the same expiry. */
  private async confirm(key: string, digest: string, ttlMs: number): Promise<void> {
    this.confirmed.set(key, { digest, until: Date.now() + ttlMs });
    await this.fresh.set(key, digest, ttlMs);
  }

  private async revalidate(repo: UpstreamRepository, tag: string, key: string, cachedDigest: string | undefined): Promise<StoredManifest & MaybeStale> {
    const cached = cachedDigest === undefined ? undefined : await this.local.findManifest(repo.name, cachedDigest);
    const path = `/v2/${repo.remote}/manifests/${tag}`;
    // Asked upstream: a miss unless the HEAD confirms the cached digest (or the copy is served stale).
    noteCache(repo, 'manifest', 'miss');
    try {
      const head = await repo.client.request({ method: 'HEAD', path, repository: repo.remote, headers: { accept: MANIFEST_ACCEPT } });
      expectStatus(head, [200]);
      discard(head.body);
      const upstreamDigest = header(head.headers, 'docker-content-digest');
      if (cached && upstreamDigest === cachedDigest) {
        await this.confirm(key, cached.digest, repo.tagTtlMs);
        // Confirmed by a HEAD: served from the cache.
        noteCache(repo, 'manifest', 'hit');
        return cached;
      }
      const fetched = await this.fetch(repo, path);
      const digest = verify(repo, fetched, undefined);
      const stored = await this.store(repo, digest, fetched, [tag]);
      await this.confirm(key, digest, repo.tagTtlMs);
      return stored;
    } catch (err) {
      if (cached && isTransient(err)) {
        noteCache(repo, 'manifest', 'stale');
        return { ...cached, warning: staleWarning(repo.upstream, err) };
      }
      throw toRegistryError(err, repo.upstream, { code: 'MANIFEST_UNKNOWN', subject: `manifest ${repo.remote}:${tag}` });
    }
  }

  private async fetchByDigest(repo: UpstreamRepository, digest: string): Promise<StoredManifest & MaybeStale> {
    try {
      const fetched = await this.fetch(repo, `/v2/${repo.remote}/manifests/${digest}`);
      return await this.store(repo, verify(repo, fetched, digest), fetched, []);
    } catch (err) {
      throw toRegistryError(err, repo.upstream, { code: 'MANIFEST_UNKNOWN', subject: `manifest ${repo.remote}@${digest}` });
    }
  }

  private async fetch(repo: UpstreamRepository, path: string): Promise<Fetched> {
    const res = await repo.client.request({ method: 'GET', path, repository: repo.remote, headers: { accept: MANIFEST_ACCEPT } });
    expectStatus(res, [200]);
    const body = await readAll(res.body, MAX_MANIFEST_BYTES);
    return { body, mediaType: baseMediaType(header(res.headers, 'content-type')), digest: header(res.headers, 'docker-content-digest') };
  }

  private async store(repo: UpstreamRepository, digest: string, fetched: Fetched, tags: string[]): Promise<StoredManifest> {
    let parsed;
    try {
      parsed = this.local.parseManifest(fetched.body, fetched.mediaType);
    } catch (err) {
      if (err instanceof DescriptorLimitError) {
        // The same limit as for a push, named as such: not an upstream failure, nothing is stored.
        throw new RegistryError('MANIFEST_INVALID', `upstream ${repo.upstream.name} sent a manifest Wharf does not store: ${err.message}`, {
          detail: err.detail,
          cause: err,
        });
      }
      throw new RegistryError('UNAVAILABLE', `upstream ${repo.upstream.name} sent a manifest Wharf cannot serve: ${(err as Error).message}`, { cause: err });
    }
    await this.local.storeManifest(repo.name, digest, fetched.body, parsed, tags);
    if (this.sink.enabled) {
      this.sink.emit({
        action: 'fill',
        target: { repository: repo.name, digest, mediaType: parsed.mediaType, size: fetched.body.length, ...(tags[0] !== undefined ? { tag: tags[0] } : {}) },
        ...(repo.request ? { request: repo.request } : {}),
      });
    }
    return { digest, mediaType: parsed.mediaType, size: fetched.body.length, body: fetched.body };
  }
}

/** The digest of fetched bytes, checked against what was asked for and what the upstream claimed. */
function verify(repo: UpstreamRepository, fetched: Fetched, expected: string | undefined): string {
  const algorithm = expected ? parseDigest(expected).algorithm : 'sha256';
  const actual = digestOf(fetched.body, algorithm);
  const claimed = fetched.digest && tryParseDigest(fetched.digest);
  const mismatch =
    (expected !== undefined && actual !== expected) ||
    (claimed && digestOf(fetched.body, claimed.algorithm) !== claimed.digest);
  if (mismatch) {
    throw new RegistryError('UNAVAILABLE', `upstream ${repo.upstream.name} sent manifest bytes that do not match ${expected ?? fetched.digest}: not stored`, {
      detail: { upstream: repo.upstream.name, expected: expected ?? fetched.digest, actual },
    });
  }
  return actual;
}
