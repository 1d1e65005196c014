// Manifests of upstream-routed repositories (DESIGN.md "The pull-through path").
// By digest: immutable; served from the cache, else fetched, verified, stored, served.
// By tag: fresh within tagTTL → the cache; otherwise revalidated with a HEAD and fetched only when
// the digest changed. The exact upstream bytes, media type and digest are kept (no conversion).
import type Keyv from 'keyv';
import { RegistryError } from '../registry/errors.js';
import { digestOf, tryParseDigest } from '../oci/digest.js';
import { DescriptorLimitError, MAX_MANIFEST_BYTES } from '../registry/manifest.js';
import { DOCKER_MANIFEST, DOCKER_MANIFEST_LIST, OCI_INDEX, OCI_MANIFEST, baseMediaType } from '../oci/media-types.js';
import { isValidTag, parseDigest, parseReference } from '../registry/reference.js';
import { SingleFlight } from '../registry/single-flight.js';
import type { ManifestService, StoredManifest } from '../registry/manifest-service.js';
import type { MaybeStale } from '../registry/repository.js';
import type { MetadataStore } from '../metadata/metadata-store.js';
import { discard, expectStatus, header, isTransient, readAll, staleWarning, toRegistryError, type UpstreamInfo } from './upstream-failure.js';
import type { UpstreamFetcher } from './upstream-fetcher.js';

/** Every manifest type Wharf stores: asked for all at once so the upstream never converts. */
export const MANIFEST_ACCEPT = [OCI_INDEX, OCI_MANIFEST, DOCKER_MANIFEST_LIST, DOCKER_MANIFEST].join(', ');

export interface ProxyTarget {
  upstream: UpstreamInfo;
  client: UpstreamFetcher;
  tagTtlMs: number;
  /** The slowest blob download worth waiting for (upstreams[].timeouts.minRate). */
  minRate?: { bytesPerSecond: number; windowMs: number };
  /** Name at the upstream. */
  remote: string;
  /** Name of the cache here. */
  repo: string;
}

interface Fetched {
  body: Buffer;
  mediaType: string | undefined;
  digest: string | undefined;
}

export class ProxyManifests {
  private readonly flights = new SingleFlight<StoredManifest & MaybeStale>();

  constructor(
    private readonly manifests: ManifestService,
    private readonly metadata: MetadataStore,
    /** Tag → digest resolutions still fresh (TTL = the upstream's tagTTL). */
    private readonly fresh: Keyv<string>,
  ) {}

  async get(t: ProxyTarget, reference: string, opts: { head?: boolean }): Promise<StoredManifest & MaybeStale> {
    if (!reference.includes(':') && !isValidTag(reference)) {
      throw new RegistryError('MANIFEST_UNKNOWN', `manifest ${reference.slice(0, 200)} is not in repository ${t.repo}`);
    }
    const ref = parseReference(reference);
    const result: StoredManifest & MaybeStale =
      ref.kind === 'digest'
        ? ((await this.manifests.find(t.repo, ref.digest, opts)) ?? (await this.flights.run(`${t.repo}@${ref.digest}`, () => this.fetchByDigest(t, ref.digest))))
        : await this.byTag(t, ref.tag, opts);
    return opts.head ? { digest: result.digest, mediaType: result.mediaType, size: result.size, warning: result.warning } : result;
  }

  private async byTag(t: ProxyTarget, tag: string, opts: { head?: boolean }): Promise<StoredManifest & MaybeStale> {
    const key = `${t.upstream.name}:${t.remote}:${tag}`;
    const cachedDigest = await this.metadata.getTag(t.repo, tag);
    const cached = cachedDigest === undefined ? undefined : await this.manifests.find(t.repo, cachedDigest, opts);
    if (cached && (await this.fresh.get(key)) === cachedDigest) return cached;
    // Concurrent requests for one stale tag share one revalidation.
    return this.flights.run(`${t.repo}:${tag}`, () => this.revalidate(t, tag, key, cachedDigest));
  }

  private async revalidate(t: ProxyTarget, tag: string, key: string, cachedDigest: string | undefined): Promise<StoredManifest & MaybeStale> {
    const cached = cachedDigest === undefined ? undefined : await this.manifests.find(t.repo, cachedDigest);
    const path = `/v2/${t.remote}/manifests/${tag}`;
    try {
      const head = await t.client.request({ method: 'HEAD', path, repository: t.remote, headers: { accept: MANIFEST_ACCEPT } });
      expectStatus(head, [200]);
      discard(head.body);
      const upstreamDigest = header(head.headers, 'docker-content-digest');
      if (cached && upstreamDigest === cachedDigest) {
        await this.fresh.set(key, cachedDigest, t.tagTtlMs);
        return cached;
      }
      const fetched = await this.fetch(t, path);
      const digest = verify(t, fetched, undefined);
      const stored = await this.store(t, digest, fetched, [tag]);
      await this.fresh.set(key, digest, t.tagTtlMs);
      return stored;
    } catch (err) {
      if (cached && isTransient(err)) return { ...cached, warning: staleWarning(t.upstream, err) };
      throw toRegistryError(err, t.upstream, { code: 'MANIFEST_UNKNOWN', subject: `manifest ${t.remote}:${tag}` });
    }
  }

  private async fetchByDigest(t: ProxyTarget, digest: string): Promise<StoredManifest & MaybeStale> {
    try {
      const fetched = await this.fetch(t, `/v2/${t.remote}/manifests/${digest}`);
      return await this.store(t, verify(t, fetched, digest), fetched, []);
    } catch (err) {
      throw toRegistryError(err, t.upstream, { code: 'MANIFEST_UNKNOWN', subject: `manifest ${t.remote}@${digest}` });
    }
  }

  private async fetch(t: ProxyTarget, path: string): Promise<Fetched> {
    const res = await t.client.request({ method: 'GET', path, repository: t.remote, headers: { accept: MANIFEST_ACCEPT } });
    expectStatus(res, [200]);
    const body = await readAll(res.body, MAX_MANIFEST_BYTES);
    return { body, mediaType: baseMediaType(header(res.headers, 'content-type')), digest: header(res.headers, 'docker-content-digest') };
  }

  private async store(t: ProxyTarget, digest: string, fetched: Fetched, tags: string[]): Promise<StoredManifest> {
    let parsed;
    try {
      parsed = this.manifests.parse(fetched.body, fetched.mediaType);
    } catch (err) {
      if (err instanceof DescriptorLimitError) {
        // The same limit as for a push, named as such: not an upstream failure, nothing is stored.
        throw new RegistryError('MANIFEST_INVALID', `upstream ${t.upstream.name} sent a manifest Wharf does not store: ${err.message}`, {
          detail: err.detail,
          cause: err,
        });
      }
      throw new RegistryError('UNAVAILABLE', `upstream ${t.upstream.name} sent a manifest Wharf cannot serve: ${(err as Error).message}`, { cause: err });
    }
    await this.manifests.store(t.repo, digest, fetched.body, parsed, tags, { local: false });
    return { digest, mediaType: parsed.mediaType, size: fetched.body.length, body: fetched.body };
  }
}

/** The digest of fetched bytes, checked against what was asked for and what the upstream claimed. */
function verify(t: ProxyTarget, fetched: Fetched, expected: string | undefined): string {
  const algorithm = expected ? parseDigest(expected).algorithm : 'sha256';
  const actual = digestOf(fetched.body, algorithm);
  const claimed = fetched.digest && tryParseDigest(fetched.digest);
  const mismatch =
    (expected !== undefined && actual !== expected) ||
    (claimed && digestOf(fetched.body, claimed.algorithm) !== claimed.digest);
  if (mismatch) {
    throw new RegistryError('UNAVAILABLE', `upstream ${t.upstream.name} sent manifest bytes that do not match ${expected ?? fetched.digest}: not stored`, {
      detail: { upstream: t.upstream.name, expected: expected ?? fetched.digest, actual },
    });
  }
  return actual;
}
