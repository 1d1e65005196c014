// Manifests in local repositories: get by tag or digest, put (validated, stored as exact bytes),
// delete. Manifest bytes are blobs in the BlobStore; hot ones are kept in an LRU by digest.
import { LRUCache } from 'lru-cache';
import { RegistryError } from './errors.js';
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
  /** Absent for HEAD. */
  body?: Buffer;
}

export interface PutManifestResult {
  digest: string;
  subject: string | null;
  tags: string[];
}

/** Missing references listed in a MANIFEST_BLOB_UNKNOWN error's detail (the count says how many in all). */
const MISSING_LISTED = 100;

export class ManifestService {
  private readonly hot = new LRUCache<string, Buffer>({
    maxSize: 64 * 1024 * 1024,
    sizeCalculation: (b) => Math.max(1, b.length),
  });

  constructor(
    private readonly metadata: RegistryMetadata,
    private readonly blobs: BlobStore,
    private readonly ledger: BlobLedger,
    private readonly tracker?: AccessTracker,
    private readonly limits: ParseOptions = {},
  ) {}

  /** Parses and validates a manifest under this registry's limits (pushed or pulled through alike). */
  parse(body: Buffer, contentType: string | undefined): ParsedManifest {
    return parseManifest(body, contentType, this.limits);
  }

  async get(repo: string, reference: string, opts: { head?: boolean } = {}): Promise<StoredManifest> {
    const record = await this.resolve(repo, reference);
    this.tracker?.touchManifest(repo, record.digest);
    if (opts.head) return { digest: record.digest, mediaType: record.mediaType, size: record.size };
    return { digest: record.digest, mediaType: record.mediaType, size: record.size, body: await this.bytes(record.digest) };
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
    this.hot.set(digest, body);
  }

  /** The manifest with this digest in `repo`, or undefined. */
  async find(repo: string, digest: string, opts: { head?: boolean } = {}): Promise<StoredManifest | undefined> {
    const record = await this.metadata.getManifest(repo, digest);
    if (!record) return undefined;
    this.tracker?.touchManifest(repo, digest);
    const base = { digest: record.digest, mediaType: record.mediaType, size: record.size };
    return opts.head ? base : { ...base, body: await this.bytes(record.digest) };
  }

  /** By digest: the manifest and its tags go. By tag: only the tag goes. */
  async delete(repo: string, reference: string): Promise<void> {
    const ref = parseReference(reference);
    if (ref.kind === 'tag') {
      if (!(await this.metadata.deleteTag(repo, ref.tag))) throw unknown(repo, reference);
      return;
    }
    if (!(await this.metadata.deleteManifest(repo, ref.digest))) throw unknown(repo, reference);
  }

  private async resolve(repo: string, reference: string): Promise<ManifestRecord> {
    // A tag that cannot exist is simply not there (what the conformance suite expects of reads).
    if (!reference.includes(':') && !isValidTag(reference)) throw unknown(repo, reference.slice(0, 200));
    const ref = parseReference(reference);
    const digest = ref.kind === 'digest' ? ref.digest : await this.metadata.getTag(repo, ref.tag);
    const record = digest === undefined ? undefined : await this.metadata.getManifest(repo, digest);
    if (!record) {
      if (!(await this.metadata.repositoryExists(repo))) {
        throw new RegistryError('NAME_UNKNOWN', `repository ${repo} is not known to this registry`, { status: 404, detail: { name: repo } });
      }
      throw unknown(repo, reference);
    }
    return record;
  }

  private async bytes(digest: string): Promise<Buffer> {
    const cached = this.hot.get(digest);
    if (cached) return cached;
    const chunks: Buffer[] = [];
    for await (const chunk of await this.blobs.open(digest)) chunks.push(chunk as Buffer);
    const body = Buffer.concat(chunks);
    this.hot.set(digest, body);
    return body;
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
