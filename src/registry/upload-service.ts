// Blob uploads into local repositories: monolithic, chunked, streamed, and cross-repository mounts.
// Session state (offset) lives in UploadSessions and the bytes in a session writer of the
// BlobStore, so a session survives a restart and any process can continue it. The running hash lives in the
// process that took the previous chunk; any other process rebuilds it from the stored bytes.
import { randomUUID, type Hash } from 'node:crypto';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { RegistryError, asRegistryErrorOrFull } from './errors.js';
import { newHash } from '../oci/digest.js';
import { parseDigest } from './reference.js';
import { KeyedLock } from './keyed-lock.js';
import type { BlobStore, BlobWriter } from '../storage/blob-store.js';
import type { UploadRecord, UploadSessions } from '../metadata/upload-sessions.js';
import { isSessionId } from '../storage/paths.js';
import type { BlobLedger, MayPull } from '../ledger/blob-ledger.js';

export interface UploadState {
  id: string;
  repo: string;
  offset: number;
}

/** An inclusive byte range as sent in Content-Range for a chunk. */
export interface ChunkRange {
  start: number;
  end: number;
}

interface RunningHash {
  offset: number;
  hash: Hash;
}

/** A blob an upload committed: its digest and size in bytes. */
export interface PushedBlob {
  digest: string;
  size: number;
}

export class UploadService {
  private readonly lock = new KeyedLock();
  /** sha256 of each session's bytes so far, when this process received them. */
  private readonly hashes = new Map<string, RunningHash>();

  constructor(
    private readonly sessions: UploadSessions,
    private readonly blobs: BlobStore,
    private readonly ledger: BlobLedger,
  ) {}

  async start(repo: string): Promise<UploadState> {
    const id = randomUUID();
    await this.blobs.writer(id);
    const now = Date.now();
    await this.sessions.createUpload({ id, repo, offset: 0, startedAt: now, updatedAt: now });
    this.hashes.set(id, { offset: 0, hash: newHash('sha256') });
    return { id, repo, offset: 0 };
  }

  /** Single-request upload (POST ?digest=): verified, committed and linked, or nothing is kept. */
  async monolithic(repo: string, digest: string, body: Readable, size?: number): Promise<PushedBlob> {
    const { algorithm } = parseDigest(digest);
    const writer = await this.blobs.writer();
    try {
      // Hashed as it streams in: the commit need not read the bytes again.
      const hash = newHash(algorithm);
      const written = await writer.append(body, { onData: (c) => hash.update(c), length: size });
      await this.ledger.commit(writer, digest, { local: true, repo, knownDigest: `${algorithm}:${hash.digest('hex')}` });
      return { digest, size: written };
    } finally {
      await writer.cancel();
    }
  }

  /**
   * Cross-repository mount: true when the blob is linked in `from` (without `from`: in a repository
   * `mayPull` accepts) and is now linked in `repo`.
   */
  mount(repo: string, digest: string, from: string | undefined, mayPull: MayPull): Promise<boolean> {
    return this.ledger.mount(repo, digest, from, mayPull);
  }

  async status(repo: string, id: string): Promise<UploadState> {
    const upload = await this.find(repo, id);
    return { id, repo, offset: upload.offset };
  }

  /** Appends a chunk. With `range`, the chunk must start at the current offset (else 416). */
  async append(repo: string, id: string, body: Readable, range?: ChunkRange, length?: number): Promise<UploadState> {
    return this.lock.run(id, async () => {
      const upload = await this.find(repo, id);
      if (range && range.start !== upload.offset) {
        throw outOfOrder(upload.offset, `chunk starts at byte ${range.start}, but the upload has ${upload.offset} bytes: send the chunk that starts at ${upload.offset}`);
      }
      const offset = await this.write(upload, await this.resume(upload), body, range ? range.end - range.start + 1 : length);
      return { id, repo, offset };
    });
  }

  /**
   * Completes the upload with an optional last chunk; returns the committed digest. With `range`, the
   * last chunk must start at the current offset, as a PATCH's must (else 416 and the session stays).
   */
  async complete(repo: string, id: string, digest: string, body?: Readable, length?: number, range?: ChunkRange): Promise<PushedBlob> {
    const { algorithm } = parseDigest(digest);
    return this.lock.run(id, async () => {
      const upload = await this.find(repo, id);
      if (body && range && range.start !== upload.offset) {
        throw outOfOrder(upload.offset, `last chunk starts at byte ${range.start}, but the upload has ${upload.offset} bytes: send the chunk that starts at ${upload.offset}`);
      }
      const writer = await this.resume(upload);
      const offset = body ? await this.write(upload, writer, body, range ? range.end - range.start + 1 : length) : upload.offset;
      const running = this.hashes.get(id);
      const known = algorithm === 'sha256' && running && running.offset === offset ? `sha256:${running.hash.copy().digest('hex')}` : undefined;
      try {
        await this.ledger.commit(writer, digest, { local: true, repo, knownDigest: known });
        return { digest, size: offset };
      } finally {
        // Success or digest mismatch: the session is over either way and nothing of it is left behind
        // (the ledger has cancelled the writer).
        this.hashes.delete(id);
        await this.sessions.deleteUpload(id);
      }
    });
  }

  async cancel(repo: string, id: string): Promise<void> {
    await this.lock.run(id, async () => {
      await this.find(repo, id);
      this.hashes.delete(id);
      await this.sessions.deleteUpload(id);
      await this.blobs.removeWriter(id);
    });
  }

  private async find(repo: string, id: string): Promise<UploadRecord> {
    const upload = isSessionId(id) ? await this.sessions.getUpload(id) : undefined;
    if (!upload || upload.repo !== repo) throw unknownUpload(repo, id);
    return upload;
  }

  /**
   * The session's writer at the recorded offset: the offset is the truth, bytes past it come from a
   * chunk cut by a crash.
   */
  private async resume(upload: UploadRecord): Promise<BlobWriter> {
    const writer = await this.blobs.resume(upload.id);
    if (!writer) throw unknownUpload(upload.repo, upload.id);
    if (writer.size !== upload.offset) await writer.truncate(upload.offset);
    return writer;
  }

  /**
   * Writes a chunk at the recorded offset, feeding a copy of the running hash, and records the new
   * offset; returns it.
   * A chunk that fails (a full disk, a body shorter or longer than declared) leaves the file, the
   * recorded offset and the running hash where they were: the session resumes at that offset, which
   * the error's Range header tells the client.
   */
  private async write(upload: UploadRecord, writer: BlobWriter, body: Readable, declared?: number): Promise<number> {
    const base = await this.runningHash(upload, writer);
    const next = base.hash.copy();
    // A failed append has already cut its own bytes back.
    const offset = await writer.append(body, { onData: (c) => next.update(c), length: declared }).catch((err: unknown) => {
      throw resumable(err, upload.offset);
    });
    const advanced = await this.sessions.advanceUpload(upload.id, upload.offset, offset).catch(async (err: unknown) => {
      // The new offset could not be recorded (a full database): the chunk's bytes go back too.
      await writer.truncate(upload.offset).catch(() => undefined);
      throw resumable(err, upload.offset);
    });
    if (!advanced) {
      this.hashes.delete(upload.id);
      throw outOfOrder(upload.offset, 'another request advanced this upload at the same time; check its status and resume');
    }
    this.hashes.set(upload.id, { offset, hash: next });
    return offset;
  }

  private async runningHash(upload: UploadRecord, writer: BlobWriter): Promise<RunningHash> {
    const cached = this.hashes.get(upload.id);
    if (cached && cached.offset === upload.offset) return cached;
    const hash = newHash('sha256');
    await pipeline(writer.read(upload.offset), async (src: AsyncIterable<Buffer>) => {
      for await (const chunk of src) hash.update(chunk);
    });
    const rebuilt = { offset: upload.offset, hash };
    this.hashes.set(upload.id, rebuilt);
    return rebuilt;
  }
}

export function rangeHeaders(offset: number): Record<string, string> {
  return { range: `0-${offset > 0 ? offset - 1 : 0}` };
}

/** A failed chunk's error, carrying the offset the session resumes at (a full disk as 507 STORAGE_FULL). */
function resumable(err: unknown, offset: number): unknown {
  const known = asRegistryErrorOrFull(err, `the chunk (the upload keeps its first ${offset} bytes and resumes there once space is freed)`);
  if (!known) return err;
  return new RegistryError(known.code, known.message, {
    status: known.status,
    detail: known.detail,
    headers: { ...known.headers, ...rangeHeaders(offset) },
    cause: known.cause ?? err,
  });
}

function unknownUpload(repo: string, id: string): RegistryError {
  return new RegistryError('BLOB_UPLOAD_UNKNOWN', `upload ${id} is not in progress for repository ${repo}: start a new one with POST /v2/${repo}/blobs/uploads/`, {
    detail: { uuid: id },
  });
}

function outOfOrder(offset: number, message: string): RegistryError {
  return new RegistryError('BLOB_UPLOAD_INVALID', message, { status: 416, headers: rangeHeaders(offset), detail: { offset } });
}
