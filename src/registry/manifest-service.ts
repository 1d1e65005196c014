// Manifests in local repositories: get by tag or digest, put (validated, stored as exact bytes),
// delete. Manifest bytes are blobs in the BlobStore; hot manifests and tag resolutions are served
// from memory (manifest-cache.ts), kept in step with every change made here.
import { RegistryError } from './errors.js';
import { ManifestCache, type CachedManifest } from './manifest-cache.js';
import { digestOf } from '../oci/digest.js';
import { parseManifest, type ParseOptions, type ParsedManifest } from './manifest.js';
import { assertTag, isValidTag, parseDigest, parseReference } from './reference.js';
import type { BlobStore } from '../storage/blob-store.js';
import { MissingContentError, type ManifestRecord, type RegistryMetadata } from '../metadata/registry-metadata.js';
import type { AccessTracker } from '../metadata/access-tracker.js';
import type { BlobLedger } from '../ledger/blob-ledger.js';

export interface StoredManifest {
  digest: string;
  mediaType: string;
  size: number;
  /** May be absent for HEAD (present when the manifest was in memory anyway). */
  body?: Buffer;
}

export interface PutManifestResult {
  digest: string;
  subject: string | null;
  tags: string[];
}

/** Missing references listed in a MANIFEST_BLOB_UNKNOWN error's detail (the count says how many in all). */
const MISSING_LISTED = 100;

/** Default byte budget of the in-memory manifests (manifests.cacheSize). */
export const DEFAULT_MANIFEST_CACHE_BYTES = 64 * 1024 * 1024;

export class ManifestService {
  constructor(
    private readonly metadata: RegistryMetadata,
    private readonly blobs: BlobStore,
    private readonly ledger: BlobLedger,
    private readonly tracker?: AccessTracker,
    private readonly limits: ParseOptions = {},
    readonly cache: ManifestCache = new ManifestCache(DEFAULT_MANIFEST_CACHE_BYTES),
  ) {}

  /** Parses and validates a manifest under this registry's limits (pushed or pulled through alike). */
  parse(body: Buffer, contentType: string | undefined): ParsedManifest {
    return parseManifest(body, contentType, this.limits);
  }

  /** The manifest when it is held in memory (the pull recorded), else undefined. */
  hot(repo: string, reference: string): CachedManifest | undefined {
    // Only valid names and references are ever cached, so the reference as given is the key.
    const hot = reference.includes(':') ? this.cache.manifest(repo, reference) : this.cache.tagged(repo, reference);
    if (hot) this.tracker?.touchManifest(repo, hot.digest);
    return hot;
  }

  async get(repo: string, reference: string): Promise<StoredManifest> {
    const hot = this.hot(repo, reference);
    if (hot) return hot;
    const token = this.cache.token();
    const record = await this.resolve(repo, reference, token);
    this.tracker?.touchManifest(repo, record.digest);
    // A HEAD reads the bytes too: one file read, then the manifest is hot for both methods.
    return this.load(token, repo, record);
  }

  /** The digest `tag` points at in `repo`, or undefined (from memory when held). */
  async taggedDigest(repo: string, tag: string): Promise<string | undefined> {
    const held = this.cache.tagDigest(repo, tag);
    if (held !== undefined) return held;
    const token = this.cache.token();
    const digest = await this.metadata.getTag(repo, tag);
    if (digest !== undefined) this.cache.setTag(token, repo, tag, digest);
    return digest;
  }

  async put(repo: string, reference: string, body: Buffer, contentType: string | undefined, extraTags: string[] = []): Promise<PutManifestResult> {
    const ref = parseReference(reference);
    const tags = [...new Set([...(ref.kind === 'tag' ? [ref.tag] : []), ...extraTags.map(assertTag)])];
    const parsed = this.parse(body, contentType);
    const digest = ref.kind === 'digest' ? digestOf(body, parseDigest(ref.digest).algorithm) : digestOf(body);
    if (ref.kind === 'digest' && digest !== ref.digest) {
      throw new RegistryError('DIGEST_INVALID', `manifest digest is ${digest}, not ${ref.digest} as in the URL`, {
        detail: { expected: ref.digest, actual: digest },
      });
    }
    const missing: string[] = [];
    for (const r of parsed.references) {
      const present =
        r.kind === 'blob' ? await this.ledger.isLinked(repo, r.digest) : (await this.metadata.getManifest(repo, r.digest)) !== undefined;
      if (!present) missing.push(r.digest);
    }
    if (missing.length > 0) throw missingContent(repo, missing, 'not in', 'first');
    try {
      await this.store(repo, digest, body, parsed, tags, { local: true });
    } catch (err) {
      // The collector removed referenced content between the check above and the store.
      if (!(err instanceof MissingContentError)) throw err;
      throw missingContent(repo, err.missing, 'no longer in', 'again', err);
    }
    return { digest, subject: parsed.subject, tags };
  }

  /**
   * Stores verified manifest bytes under `digest` and records it (with `tags`) in `repo`.
   * Callers have checked the digest; references are recorded, not required (cached content
   * arrives lazily).
   */
  async store(repo: string, digest: string, body: Buffer, parsed: ParsedManifest, tags: string[], opts: { local: boolean }): Promise<void> {
    const input = {
      repo,
      digest,
      mediaType: parsed.mediaType,
      size: body.length,
      subject: parsed.subject,
      artifactType: parsed.artifactType,
      annotations: parsed.annotations,
      references: parsed.references,
      tags,
      local: opts.local,
      // Local pushes need their content present; cached manifests record references lazily.
      verify: opts.local ? ('references' as const) : ('self' as const),
    };
    for (let attempt = 1; ; attempt++) {
      const writer = await this.blobs.writer();
      try {
        await writer.write([body]);
        await this.ledger.commit(writer, digest, opts);
      } finally {
        await writer.cancel();
      }
      try {
        await this.metadata.putManifest(input);
        break;
      } catch (err) {
        // Only the manifest's own bytes were swept since they were written: write them again.
        if (!(err instanceof MissingContentError && err.self && err.missing.length === 1 && attempt < 3)) throw err;
      }
    }
    // Committed: these tags now resolve here (a pushed tag that moved no longer serves the old one).
    this.cache.stored(repo, { digest, mediaType: parsed.mediaType, size: body.length, body }, tags);
    // Content is fetched from an upstream because a client asked for it: the fill is its first pull.
    if (!opts.local) this.tracker?.touchManifest(repo, digest);
  }

  /** The manifest with this digest in `repo`, or undefined. */
  async find(repo: string, digest: string): Promise<StoredManifest | undefined> {
    const hot = this.cache.manifest(repo, digest);
    if (hot) {
      this.tracker?.touchManifest(repo, digest);
      return hot;
    }
    const token = this.cache.token();
    const record = await this.metadata.getManifest(repo, digest);
    if (!record) return undefined;
    this.tracker?.touchManifest(repo, digest);
    return this.load(token, repo, record);
  }

  /** Deletes a tag (the manifest stays); false when it was not there. */
  async deleteTag(repo: string, tag: string): Promise<boolean> {
    const deleted = await this.metadata.deleteTag(repo, tag);
    this.cache.tagDeleted(repo, tag);
    return deleted;
  }

  /** Deletes a repository's tags, manifests and blob links; false when it did not exist. */
  async deleteRepository(repo: string): Promise<boolean> {
    const removed = await this.metadata.deleteRepository(repo);
    if (removed) this.cache.repositoryDeleted(repo, removed.tags, removed.manifests);
    return removed !== undefined;
  }

  /** By digest: the manifest and its tags go. By tag: only the tag goes. */
  async delete(repo: string, reference: string): Promise<void> {
    const ref = parseReference(reference);
    if (ref.kind === 'tag') {
      const deleted = await this.metadata.deleteTag(repo, ref.tag);
      this.cache.tagDeleted(repo, ref.tag);
      if (!deleted) throw unknown(repo, reference);
      return;
    }
    const deleted = await this.metadata.deleteManifest(repo, ref.digest);
    this.cache.manifestDeleted(repo, ref.digest);
    if (!deleted) throw unknown(repo, reference);
  }

  private async resolve(repo: string, reference: string, token: number): Promise<ManifestRecord> {
    // A tag that cannot exist is simply not there (what the conformance suite expects of reads).
    if (!reference.includes(':') && !isValidTag(reference)) throw unknown(repo, reference.slice(0, 200));
    const ref = parseReference(reference);
    const digest = ref.kind === 'digest' ? ref.digest : await this.metadata.getTag(repo, ref.tag);
    const record = digest === undefined ? undefined : await this.metadata.getManifest(repo, digest);
    if (record && ref.kind === 'tag') this.cache.setTag(token, repo, ref.tag, record.digest);
    if (!record) {
      if (!(await this.metadata.repositoryExists(repo))) {
        throw new RegistryError('NAME_UNKNOWN', `repository ${repo} is not known to this registry`, { status: 404, detail: { name: repo } });
      }
      throw unknown(repo, reference);
    }
    return record;
  }

  /** The record with its bytes, kept in memory unless something changed since `token`. */
  private async load(token: number, repo: string, record: ManifestRecord): Promise<CachedManifest> {
    const chunks: Buffer[] = [];
    for await (const chunk of await this.blobs.open(record.digest)) chunks.push(chunk as Buffer);
    const m: CachedManifest = { digest: record.digest, mediaType: record.mediaType, size: record.size, body: Buffer.concat(chunks) };
    this.cache.setManifest(token, repo, m);
    return m;
  }
}

/**
 * MANIFEST_BLOB_UNKNOWN for references missing from `repo`, named in full only up to a point: a
 * manifest of 10,000 unknown layers must not answer megabytes.
 */
function missingContent(repo: string, missing: string[], where: string, when: string, cause?: unknown): RegistryError {
  const named = missing.slice(0, 10).join(', ') + (missing.length > 10 ? ` and ${missing.length - 10} more` : '');
  const what = missing.length === 1 ? 'content' : `${missing.length} items`;
  return new RegistryError('MANIFEST_BLOB_UNKNOWN', `manifest references ${what} ${where} repository ${repo}: ${named}; push ${missing.length === 1 ? 'it' : 'them'} ${when}`, {
    detail: { missing: missing.slice(0, MISSING_LISTED), ...(missing.length > MISSING_LISTED ? { count: missing.length } : {}) },
    cause,
  });
}

function unknown(repo: string, reference: string): RegistryError {
  return new RegistryError('MANIFEST_UNKNOWN', `manifest ${reference} is not in repository ${repo}`, {
    detail: { name: repo, reference },
  });
}
