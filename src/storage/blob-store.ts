// Content-addressed blob bytes. Small capabilities (stat, open, ingest, delete) and an upload area
// for sessions. Implementations: FsBlobStore now; object storage later. Contract: test/contract/blob-store.contract.ts.
import type { Readable } from 'node:stream';
import type { DigestAlgorithm } from '../oci/digest.js';

export interface ByteRange {
  /** First byte, inclusive. */
  start: number;
  /** Last byte, inclusive. */
  end: number;
}

export interface BlobStat {
  size: number;
}

export interface IngestResult {
  digest: string;
  size: number;
}

/**
 * Records a verified blob in the metadata (a fresh row, links) once its bytes are in place. The
 * store calls it after placing the file and puts the file back if a collector removed it meanwhile,
 * so a blob is never recorded without its bytes (see src/gc/collector.ts).
 */
export type RegisterBlob = (result: IngestResult) => Promise<void>;

export interface BlobStore {
  stat(digest: string): Promise<BlobStat | undefined>;
  /** Opens the bytes (or a range of them); throws BLOB_UNKNOWN when absent. */
  open(digest: string, range?: ByteRange): Promise<Readable>;
  /**
   * Streams `source` to a temporary file while hashing, verifies the expected digest and size
   * (when given), then renames it into place. On any mismatch or error nothing is left behind
   * and DIGEST_INVALID / SIZE_INVALID is thrown.
   */
  ingest(
    source: Readable,
    expected: { digest?: string; size?: number; algorithm?: DigestAlgorithm },
    register?: RegisterBlob,
  ): Promise<IngestResult>;
  delete(digest: string): Promise<boolean>;
  /** A temporary blob that is written while others read it (a pull-through fill). */
  temp(): Promise<TempBlob>;

  /** Upload area: one append-only file per session. */
  uploads: UploadArea;

  /** Committed blobs in digest order, after `after`, at most `limit` (the collector's orphan sweep, fsck). */
  list(after: string | undefined, limit: number): Promise<StoredBlob[]>;
  /**
   * The collector's two-step delete, step one: the bytes leave the digest's place (stat and open no
   * longer find them) but can come back with restore(); purge() drops them. undefined when absent.
   */
  setAside(digest: string): Promise<AsideHandle | undefined>;
  /** Puts set-aside bytes back; when a writer has placed the same blob meanwhile, its copy stays. */
  restore(handle: AsideHandle): Promise<void>;
  purge(handle: AsideHandle): Promise<void>;
  /** Bytes left set aside by a collector that stopped (a crash) before restoring or purging them. */
  leftAside(): AsyncIterable<AsideHandle>;
}

/** A committed blob as list() sees it. */
export interface StoredBlob {
  digest: string;
  size: number;
  /** ms since the epoch: when the bytes were placed (or last placed again). */
  modifiedAt: number;
}

/** Bytes set aside under a name of the store's own; the same handle restores or purges them. */
export interface AsideHandle {
  readonly digest: string;
  /** The store's name for the set-aside copy; opaque to callers. */
  readonly key: string;
}

export interface UploadArea {
  create(id: string): Promise<void>;
  /** Size of the session's file, undefined when it does not exist. */
  size(id: string): Promise<number | undefined>;
  /**
   * Appends `source` at `offset` and returns the new size. `onData` sees every byte taken, in
   * order (the running hash). With `length`, more or fewer bytes fail with SIZE_INVALID. A failed
   * append (that, a write error such as ENOSPC, a source error) leaves the file at `offset` bytes:
   * the chunk's bytes are given back and the session resumes where it was.
   */
  append(id: string, offset: number, source: Readable, onData?: (chunk: Buffer) => void, length?: number): Promise<number>;
  /** Cuts the session's file to `size` bytes (a chunk whose offset could not be recorded gives its bytes back). */
  truncate(id: string, size: number): Promise<void>;
  /** Reads the session's bytes [0, end) — used to rebuild a running hash in another process. */
  read(id: string, end?: number): Readable;
  /**
   * Cuts the session's file to `size` (bytes past it come from a failed chunk), verifies it has
   * `digest` (trusting `knownDigest` from a running hash when given) and moves it into the blob store.
   * Removes the file on mismatch.
   */
  commit(id: string, digest: string, opts: { size: number; knownDigest?: string; register?: RegisterBlob }): Promise<IngestResult>;
  remove(id: string): Promise<void>;
}

/** A blob being written that readers may follow as it grows; committed only once verified. */
export interface TempBlob {
  /** The one writer: bytes go in order from offset 0; a failed write (a full disk) rejects. */
  openWriter(): Promise<TempBlobWriter>;
  openReader(): Promise<TempBlobReader>;
  /** Moves the bytes into place under `digest` (the caller has verified them). */
  commit(digest: string, size: number, register?: RegisterBlob): Promise<void>;
  discard(): Promise<void>;
}

export interface TempBlobReader {
  /** Up to `length` bytes at `position` (fewer at the end of what is written). */
  read(position: number, length: number): Promise<Buffer>;
  close(): Promise<void>;
}

export interface TempBlobWriter {
  /** Writes every buffer, in order, at `position`. */
  write(buffers: Buffer[], position: number): Promise<void>;
  close(): Promise<void>;
}
