// One warm job: each image resolved through the pull-through cache (a tag asked of the upstream, a tag
// pattern expanded from the upstream's tag list), its index children of the wanted platforms, configs
// and layers fetched into the cache through the same fill a pull uses, and referrers when asked.
// Progress goes out as events (POST /api/warm streams them as NDJSON); the job keeps its totals for
// GET /api/warm. Fetches are bounded by the job's concurrency; only single fetches hold a slot, so a
// manifest waiting for its children never starves them.
import { INDEX_TYPES, IMAGE_MANIFEST_TYPES, isNonDistributable } from '../oci/media-types.js';
import { cacheNamespace } from '../registry/router.js';
import { RegistryError } from '../registry/errors.js';
import { isValidTag } from '../registry/reference.js';
import type { StoredManifest } from '../registry/manifest-service.js';
import { formatImageRef, type ImageRef } from './image-ref.js';
import { platformMatches, type Platform } from './platform.js';
import { tagMatcher, isTagGlob } from './tag-glob.js';
import type { WarmRequest } from './warm-request.js';
import type { WarmSource } from './warm-source.js';

export type ImageState = 'resolving' | 'fetching' | 'done' | 'failed';

export interface ImageProgress {
  image: string;
  state: ImageState;
  manifests: number;
  blobs: number;
  blobsTotal: number;
  bytesFetched: number;
  bytesCached: number;
  error?: string;
}

export interface Failure {
  image: string;
  reason: string;
}

/** A tag found pointing elsewhere than the cache had it. */
export interface MovedTag {
  image: string;
  from: string;
  to: string;
}

export interface WarmSummary {
  images: number;
  manifests: number;
  blobs: number;
  bytesFetched: number;
  bytesCached: number;
  failures: Failure[];
}

export type WarmEvent =
  | { type: 'start'; jobId: string; images: string[] }
  | ({ type: 'image' } & ImageProgress)
  | ({ type: 'summary' } & WarmSummary);

export interface WarmJobView extends Omit<WarmSummary, 'images'> {
  id: string;
  images: string[];
  state: 'running' | 'done' | 'failed';
  startedAt: string;
  finishedAt: string | null;
  /** Who started it: the API (or `wharf warm`) or warm.images on its schedule. */
  trigger: 'api' | 'schedule';
  moved: MovedTag[];
}

/** Most tags one pattern may expand to. */
export const MAX_GLOB_TAGS = 500;
/** Referrers of referrers are followed this deep (a signature of an SBOM of the image). */
const REFERRER_DEPTH = 2;
/** Progress events of one image while bytes flow, at most one per this many milliseconds. */
const PROGRESS_EVERY_MS = 250;

export class WarmAborted extends Error {}

/** A limit of `n` tasks at once. */
function limiter(n: number): <T>(fn: () => Promise<T>) => Promise<T> {
  let active = 0;
  const waiting: Array<() => void> = [];
  return async (fn) => {
    while (active >= n) await new Promise<void>((resolve) => waiting.push(resolve));
    active++;
    try {
      return await fn();
    } finally {
      active--;
      waiting.shift()?.();
    }
  };
}

interface Target {
  progress: ImageProgress;
  /** The name the registry routes to the image's upstream (`docker.io/library/alpine`). */
  name: string;
  reference: string;
  tag?: string;
}

export class WarmJob {
  readonly images: string[];
  state: WarmJobView['state'] = 'running';
  readonly startedAt: number;
  finishedAt: number | undefined;
  readonly moved: MovedTag[] = [];
  private readonly progress: ImageProgress[] = [];
  private readonly failures: Failure[] = [];
  /** Fetches of this job (one slot each). */
  private readonly fetchSlot: <T>(fn: () => Promise<T>) => Promise<T>;
  /** Images in progress at once. */
  private readonly imageSlot: <T>(fn: () => Promise<T>) => Promise<T>;
  /** Blobs of this job by repository and digest: images sharing a layer fetch it once. */
  private readonly blobFills = new Map<string, Promise<{ size: number; cached: boolean }>>();
  private aborted: string | undefined;

  constructor(
    readonly id: string,
    private readonly request: WarmRequest,
    private readonly source: WarmSource,
    private readonly emit: (event: WarmEvent) => void,
    readonly trigger: WarmJobView['trigger'],
    private readonly now: () => number = Date.now,
    private readonly onMoved: (moved: MovedTag) => void = () => undefined,
  ) {
    this.images = request.images.map((i) => i.text);
    this.startedAt = now();
    this.fetchSlot = limiter(request.concurrency);
    this.imageSlot = limiter(request.concurrency);
  }

  /** Runs the job to its end (every image done or failed); never throws. */
  async run(): Promise<WarmSummary> {
    this.emit({ type: 'start', jobId: this.id, images: this.images });
    await Promise.all(this.request.images.map((image) => this.imageSlot(() => this.warmEntry(image.text, image.ref))));
    this.finishedAt = this.now();
    this.state = this.failures.length > 0 ? 'failed' : 'done';
    const summary = this.summary();
    this.emit({ type: 'summary', ...summary });
    return summary;
  }

  /** Stops starting fetches; those under way finish (the fills outlive their clients anyway). */
  abort(reason: string): void {
    this.aborted ??= reason;
  }

  summary(): WarmSummary {
    const sum = (key: 'manifests' | 'blobs' | 'bytesFetched' | 'bytesCached') => this.progress.reduce((n, p) => n + p[key], 0);
    return {
      images: this.progress.length,
      manifests: sum('manifests'),
      blobs: sum('blobs'),
      bytesFetched: sum('bytesFetched'),
      bytesCached: sum('bytesCached'),
      failures: [...this.failures],
    };
  }

  view(): WarmJobView {
    const { images: _count, ...totals } = this.summary();
    return {
      id: this.id,
      images: this.images,
      state: this.state,
      startedAt: new Date(this.startedAt).toISOString(),
      finishedAt: this.finishedAt === undefined ? null : new Date(this.finishedAt).toISOString(),
      ...totals,
      trigger: this.trigger,
      moved: [...this.moved],
    };
  }

  /** One entry of the request: an image, or a tag pattern standing for the matching tags. */
  private async warmEntry(text: string, ref: ImageRef): Promise<void> {
    if (ref.tag === undefined || !isTagGlob(ref.tag)) return this.warmImage(text, ref);
    let tags: string[];
    try {
      const name = this.routed(ref);
      const listed = await this.fetch(() => this.source.repository(name).tags.list({}));
      const matches = tagMatcher(ref.tag);
      tags = listed.items.filter(matches);
      if (tags.length === 0) throw new Error(`no tag of ${ref.host}/${ref.path} matches ${ref.tag} (${listed.items.length} tags listed)`);
      if (tags.length > MAX_GLOB_TAGS) throw new Error(`${ref.tag} matches ${tags.length} tags of ${ref.host}/${ref.path}, more than ${MAX_GLOB_TAGS}: narrow the pattern`);
    } catch (err) {
      const progress = this.track(text);
      this.fail(progress, err);
      return;
    }
    await Promise.all(tags.map((tag) => this.warmImage(formatImageRef({ host: ref.host, path: ref.path, tag }), { ...ref, tag })));
  }

  private track(image: string): ImageProgress {
    const progress: ImageProgress = { image, state: 'resolving', manifests: 0, blobs: 0, blobsTotal: 0, bytesFetched: 0, bytesCached: 0 };
    this.progress.push(progress);
    return progress;
  }

  private fail(progress: ImageProgress, err: unknown): void {
    const reason = err instanceof Error ? err.message : String(err);
    progress.state = 'failed';
    progress.error = reason;
    this.failures.push({ image: progress.image, reason });
    this.report(progress);
  }

  private report(progress: ImageProgress): void {
    this.emit({ type: 'image', ...progress });
  }

  /** The name that routes to the image's upstream; an image of a registry no upstream stands for is refused. */
  private routed(ref: ImageRef): string {
    const name = `${ref.host}/${ref.path}`;
    const target = this.source.route(name);
    if (target.kind !== 'upstream' || !target.repo.startsWith(`${cacheNamespace(ref.host)}/`)) {
      throw new Error(`no upstream is configured for registry ${ref.host} (upstreams[].registry)`);
    }
    return name;
  }

  private async fetch<T>(fn: () => Promise<T>): Promise<T> {
    return this.fetchSlot(async () => {
      if (this.aborted !== undefined) throw new WarmAborted(this.aborted);
      return fn();
    });
  }

  private async warmImage(text: string, ref: ImageRef): Promise<void> {
    const progress = this.track(text);
    this.report(progress);
    try {
      const target: Target = { progress, name: this.routed(ref), reference: ref.digest ?? ref.tag!, ...(ref.tag === undefined ? {} : { tag: ref.tag }) };
      const top = await this.manifest(target.name, target.reference);
      if (top.previous !== undefined && top.previous !== top.digest) {
        const moved = { image: text, from: top.previous, to: top.digest };
        this.moved.push(moved);
        this.onMoved(moved);
      }
      const blobs = new Map<string, number>();
      await this.visit(target, top, blobs, new Set(), 0);
      progress.state = 'fetching';
      progress.blobsTotal = blobs.size;
      this.report(progress);
      const failed: string[] = [];
      await Promise.all([...blobs.keys()].map((digest) => this.blob(target, digest).catch((err: unknown) => failed.push(`blob ${digest}: ${(err as Error).message}`))));
      if (failed.length > 0) throw new Error(failed.length === 1 ? failed[0] : `${failed[0]} (and ${failed.length - 1} more blobs failed)`);
      progress.state = 'done';
      this.report(progress);
    } catch (err) {
      this.fail(progress, err);
    }
  }

  /** A manifest fetched into the cache; a stale copy (the upstream not reached) is a failure. */
  private async manifest(name: string, reference: string): Promise<StoredManifest & { previous?: string }> {
    const m = await this.fetch(() => this.source.refreshManifest(name, reference));
    if (m.warning !== undefined) throw new Error(`the upstream was not reached for ${reference}, the copy cached before is kept: ${m.warning}`);
    return m;
  }

  /** Walks a manifest: an index's wanted children, an image's config and layers, referrers when asked. */
  private async visit(target: Target, m: StoredManifest, blobs: Map<string, number>, seen: Set<string>, depth: number): Promise<void> {
    if (seen.has(m.digest)) return;
    seen.add(m.digest);
    target.progress.manifests++;
    const doc = parseBody(m) as { manifests?: Child[]; config?: Blob; layers?: Blob[] };
    if (INDEX_TYPES.has(m.mediaType)) {
      const children = selectChildren(doc.manifests ?? [], this.request.platforms, this.request.referrers);
      if (children.length === 0 && (doc.manifests ?? []).length > 0) {
        const has = [...new Set((doc.manifests ?? []).map((c) => (c.platform ? `${c.platform.os}/${c.platform.architecture}${c.platform.variant ? `/${c.platform.variant}` : ''}` : '?')))];
        throw new Error(`no manifest for the platforms asked in index ${m.digest} (it has ${has.join(', ')})`);
      }
      await Promise.all(
        children.map(async (c) => {
          if (seen.has(c.digest)) return;
          await this.visit(target, await this.manifest(target.name, c.digest), blobs, seen, depth);
        }),
      );
    } else if (IMAGE_MANIFEST_TYPES.has(m.mediaType)) {
      for (const b of [...(doc.config ? [doc.config] : []), ...(doc.layers ?? [])]) {
        // Foreign layers are fetched from where they say, never through a registry.
        if (!isNonDistributable(b.mediaType)) blobs.set(b.digest, b.size);
      }
    }
    if (this.request.referrers && depth < REFERRER_DEPTH) await this.referrers(target, m.digest, blobs, seen, depth + 1);
  }

  /**
   * Referrers of `digest`: the upstream's referrers API (or what the cache knows when it has none), the
   * referrers tag schema's index (`sha256-<hex>`, what clients push to registries without the API) and
   * cosign's `.sig`, `.att` and `.sbom` tags.
   */
  private async referrers(target: Target, digest: string, blobs: Map<string, number>, seen: Set<string>, depth: number): Promise<void> {
    const found = new Set<string>();
    const listed = await this.fetch(() => this.source.repository(target.name).referrers.list(digest));
    for (const r of listed.manifests) found.add(r.digest);
    const base = digest.replace(':', '-');
    for (const suffix of ['', '.sig', '.att', '.sbom']) {
      const tag = base + suffix;
      if (!isValidTag(tag)) continue;
      let m;
      try {
        m = await this.manifest(target.name, tag);
      } catch (err) {
        if (err instanceof RegistryError && err.code === 'MANIFEST_UNKNOWN') continue;
        throw err;
      }
      if (suffix === '' && INDEX_TYPES.has(m.mediaType)) {
        // The tag schema's index lists the referrers; it is no image itself.
        if (!seen.has(m.digest)) target.progress.manifests++;
        seen.add(m.digest);
        const doc = parseBody(m) as { manifests?: Child[] };
        for (const r of doc.manifests ?? []) found.add(r.digest);
      } else {
        await this.visit(target, m, blobs, seen, depth);
      }
    }
    await Promise.all(
      [...found].map(async (d) => {
        if (seen.has(d)) return;
        await this.visit(target, await this.manifest(target.name, d), blobs, seen, depth);
      }),
    );
  }

  /** One blob into the cache, counted as fetched or as already cached (also when another image of this job fetched it). */
  private async blob(target: Target, digest: string): Promise<void> {
    const progress = target.progress;
    const key = `${target.name}@${digest}`;
    let fill = this.blobFills.get(key);
    const own = fill === undefined;
    if (fill === undefined) {
      let last = 0;
      fill = this.fetch(() =>
        this.source.fillBlob(target.name, digest, (n) => {
          progress.bytesFetched += n;
          const t = this.now();
          if (t - last >= PROGRESS_EVERY_MS) {
            last = t;
            this.report(progress);
          }
        }),
      );
      this.blobFills.set(key, fill);
    }
    const result = await fill;
    if (!own || result.cached) progress.bytesCached += result.size;
    progress.blobs++;
    this.report(progress);
  }
}

/** The JSON of a manifest fetched with GET (which always carries its bytes). */
function parseBody(m: StoredManifest): unknown {
  if (!m.body) throw new Error(`manifest ${m.digest} came without its bytes`);
  return JSON.parse(m.body.toString('utf8'));
}

interface Blob {
  mediaType: string;
  digest: string;
  size: number;
}

interface Child extends Blob {
  platform?: Partial<Platform>;
  annotations?: Record<string, string>;
}

/**
 * The children of an index to warm: all of them, or those of the wanted platforms; with referrers, also
 * the attestation manifests (docker buildx's SBOMs and provenance) of the children selected.
 */
function selectChildren(children: Child[], platforms: readonly Platform[] | undefined, referrers: boolean): Child[] {
  if (platforms === undefined) return children;
  const chosen = children.filter((c) => platformMatches(platforms, c.platform));
  if (!referrers) return chosen;
  const digests = new Set(chosen.map((c) => c.digest));
  return [...chosen, ...children.filter((c) => c.annotations?.['vnd.docker.reference.type'] === 'attestation-manifest' && digests.has(c.annotations['vnd.docker.reference.digest'] ?? ''))];
}
