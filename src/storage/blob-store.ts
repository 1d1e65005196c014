// Content-addressed blob bytes. Small capabilities: stat and open what is committed; writers that
// take bytes, let readers follow them as they grow, verify them and place them under their digest;
// list and the collector's two-step delete (setAside, then restore or purge: never a plain delete,
// so bytes a writer recorded again meanwhile can come back).
// No file path crosses this interface, so an object store can implement it too (a writer is then a
// multipart upload to a staging key, commit a copy to the digest's key once verified).
// Implementations: FsBlobStore, S3BlobStore. Contract: test/contract/blob-store.contract.ts.
import type { Readable } from 'node:stream';

export interface ByteRange {
  /** First byte, inclusive. */
  start: number;
  /** Last byte, inclusive. */
  end: number;
}

export interface BlobStat {
  size: number;
  /** When the bytes were last written (ms since the epoch). */
  modifiedAt: number;
}

export interface BlobStore {
  /**
   * true when a session writer costs what an anonymous one does per write (a file under another
   * name), so a fill may write to one and be taken up by another process where it stopped; absent
   * when each write of a session stores more (S3 keeps a session's tail as an object after each).
   */
  readonly cheapSessions?: boolean;
  stat(digest: string): Promise<BlobStat | undefined>;
  /** Opens the bytes (or a range of them); throws BlobNotFoundError when absent. */
  open(digest: string, range?: ByteRange): Promise<Readable>;
  /**
   * A URL a client may download the committed blob from itself (an object store's presigned URL),
   * or undefined; stores that offer none leave it out. The caller has decided the client may read it.
   */
  url?(digest: string): Promise<string | undefined>;
  /**
   * A new writer. With `session` (an upload's id), the bytes persist under that id across requests
   * and processes until the writer is committed and cancelled, or removed.
   */
  writer(session?: string): Promise<BlobWriter>;
  /** The writer of an upload session at its stored size; undefined when there is none. */
  resume(session: string): Promise<BlobWriter | undefined>;
  /** Writers (sessions and anonymous ones) not written since `before` (ms): abandoned by a crash or a client. */
  staleWriters(before: number): AsyncIterable<StaleWriter>;
  /** Drops a writer's bytes by its id (a stale one, an upload cancelled); nothing when there are none. */
  removeWriter(id: string): Promise<void>;

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

export interface StaleWriter {
  id: string;
  /** An upload session's writer (its metadata row decides whether it is abandoned), not an anonymous one. */
  session: boolean;
}

/**
 * Bytes being written, in order from offset 0, one call at a time. Readers may follow them as they
 * grow; nothing is visible under a digest before commit() has verified it.
 */
export interface BlobWriter {
  readonly id: string;
  /** Bytes written so far. */
  readonly size: number;
  /** Appends the buffers in order (a fill's vectored writes). A failed write rejects and leaves `size` unchanged. */
  write(buffers: Buffer[]): Promise<void>;
  /**
   * Appends a stream (an upload chunk); `onData` sees every byte taken, in order (the running hash).
   * With `length`, more or fewer bytes fail with SizeMismatchError. A failed append (that, a write
   * error such as ENOSPC, a source error) leaves the writer at its previous size: the bytes are given
   * back at once. Returns the new size.
   */
  append(source: Readable, opts?: { onData?: (chunk: Buffer) => void; length?: number }): Promise<number>;
  /** Cuts back to `size` (a chunk whose offset could not be recorded gives its bytes back). */
  truncate(size: number): Promise<void>;
  /**
   * A reader for followers of the growing bytes: read(position, length) returns what is written
   * there (fewer at the end). It stays valid after commit (it then reads the committed blob).
   */
  reader(): Promise<BlobReader>;
  /** The written bytes [0, end) (all when `end` is absent), to rebuild a running hash in another process. */
  read(end?: number): Readable;
  /**
   * Verifies the bytes (cut to `size` first when given; hashed unless `knownDigest` of the same
   * algorithm is given) and places them under `digest`. A wrong digest: DigestMismatchError, and
   * nothing becomes visible under any digest. The writer keeps its own copy until cancel(): commit
   * with the same digest again after a success puts the bytes back if a collector set them aside
   * meanwhile (the ledger does this once it has recorded the blob). No write after a commit.
   */
  commit(digest: string, opts?: { knownDigest?: string; size?: number }): Promise<BlobStat>;
  /** Drops the writer's own bytes (a committed blob stays). Idempotent. */
  cancel(): Promise<void>;
}

export interface BlobReader {
  /**
   * Up to `length` bytes at `position` (fewer at the end of what is written), read into `into` when
   * given (a buffer of at least `length` bytes the caller reuses), else into a new buffer.
   */
  read(position: number, length: number, into?: Buffer): Promise<Buffer>;
  close(): Promise<void>;
}
