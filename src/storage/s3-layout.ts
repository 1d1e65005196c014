// Object layout of the S3 blob store in its bucket (layout version 1), under the configured prefix:
//
//   <prefix>/blobs/<algorithm>/<hex>          committed, content-addressed bytes (blobs and manifests)
//   <prefix>/uploads/<writer>/data            a writer's multipart upload (its staging key); once
//                                             completed, the staging object the digest's key is copied from
//   <prefix>/uploads/<writer>/tail            a session writer's bytes after its stored parts, with where
//                                             they start and the upload's id in its metadata (the session
//                                             exists while this object does)
//   <prefix>/trash/<algorithm>-<hex>.<random> a blob the collector set aside: restored or purged next
//
// <writer> is an upload session's id or an anonymous writer's `.writer-<random>` (paths.ts). Only
// digests that passed checkDigest and writer ids of those shapes are ever joined into a key.
import { checkDigest, tryParseDigest } from '../oci/digest.js';
import { isWriterId } from './paths.js';

export class S3Layout {
  /** '' or the prefix with one trailing slash. */
  readonly root: string;

  constructor(prefix: string) {
    const trimmed = prefix.replace(/^\/+|\/+$/g, '');
    this.root = trimmed === '' ? '' : `${trimmed}/`;
  }

  get blobs(): string {
    return `${this.root}blobs/`;
  }

  get uploads(): string {
    return `${this.root}uploads/`;
  }

  get trash(): string {
    return `${this.root}trash/`;
  }

  blob(digest: string): string {
    const { algorithm, hex } = checkDigest(digest);
    return `${this.blobs}${algorithm}/${hex}`;
  }

  /** The digest a key under blobs/ holds; undefined for anything else. */
  digestOf(key: string): string | undefined {
    if (!key.startsWith(this.blobs)) return undefined;
    const [algorithm, hex, ...rest] = key.slice(this.blobs.length).split('/');
    if (rest.length > 0 || algorithm === undefined || hex === undefined) return undefined;
    return tryParseDigest(`${algorithm}:${hex}`)?.digest;
  }

  /** A writer's staging key (its multipart upload, then the completed object). */
  data(id: string): string {
    return `${this.writer(id)}data`;
  }

  /** A session writer's tail object. */
  tail(id: string): string {
    return `${this.writer(id)}tail`;
  }

  /** The writer id of a key under uploads/; undefined for anything else. */
  writerOf(key: string): string | undefined {
    if (!key.startsWith(this.uploads)) return undefined;
    const id = key.slice(this.uploads.length).split('/')[0];
    return id !== undefined && isWriterId(id) ? id : undefined;
  }

  private writer(id: string): string {
    if (!isWriterId(id)) throw new Error(`not a blob writer id: ${id}`);
    return `${this.uploads}${id}/`;
  }
}

/** Whether an S3 error says the key, bucket object or multipart upload is not there. */
export function isS3NotFound(err: unknown): boolean {
  const e = err as { name?: string; $metadata?: { httpStatusCode?: number } } | undefined;
  return e?.name === 'NotFound' || e?.name === 'NoSuchKey' || e?.name === 'NoSuchUpload' || e?.$metadata?.httpStatusCode === 404;
}
