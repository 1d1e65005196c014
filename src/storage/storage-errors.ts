// What can go wrong in storage, said in storage's own terms: a blob that is not stored, content
// whose digest or size is not the one declared, a full disk. The registry maps each to its OCI
// code once (asRegistryError in src/registry/errors.ts); storage knows nothing of the wire.

/** A blob that is not in the store (never written, or removed meanwhile). */
export class BlobNotFoundError extends Error {
  readonly digest: string;

  constructor(digest: string, opts: { cause?: unknown } = {}) {
    super(`blob ${digest} is not stored`, opts);
    this.name = 'BlobNotFoundError';
    this.digest = digest;
  }
}

/** Content whose digest is not the declared one; nothing of it was kept. */
export class DigestMismatchError extends Error {
  readonly expected: string;
  readonly actual: string;

  constructor(message: string, expected: string, actual: string) {
    super(message);
    this.name = 'DigestMismatchError';
    this.expected = expected;
    this.actual = actual;
  }
}

/** Content longer or shorter than declared; `received` is undefined when it was cut off as too long. */
export class SizeMismatchError extends Error {
  readonly expected: number;
  readonly received: number | undefined;

  constructor(message: string, expected: number, received?: number) {
    super(message);
    this.name = 'SizeMismatchError';
    this.expected = expected;
    this.received = received;
  }
}

/**
 * A full disk (or quota, or a full SQLite database) is not an internal error: the operator must free
 * space. Recognised wherever it surfaces (a blob write, an upload, a metadata write) and answered as
 * 507 STORAGE_FULL; reads of what is stored go on working. `reason` is the errno-style code.
 */
export class StorageFullError extends Error {
  readonly reason: string;

  constructor(reason: string, what: string, cause: unknown) {
    super(`the registry's storage is full (${reason}): ${what} could not be stored; content already stored is still served`, { cause });
    this.name = 'StorageFullError';
    this.reason = reason;
  }
}

const FULL = new Set(['ENOSPC', 'EDQUOT', 'SQLITE_FULL']);

/** The errno-style code of a storage-full failure in `err` or its causes, if any. */
export function storageFullCode(err: unknown): string | undefined {
  let e: unknown = err;
  for (let depth = 0; depth < 5 && e instanceof Error; depth++) {
    if (e instanceof StorageFullError) return e.reason;
    const code = (e as NodeJS.ErrnoException).code;
    if (typeof code === 'string' && FULL.has(code)) return code;
    e = e.cause;
  }
  return undefined;
}

/** `err` as a StorageFullError when it is a storage-full failure; undefined otherwise. */
export function storageFullError(err: unknown, what = 'the content'): StorageFullError | undefined {
  if (err instanceof StorageFullError) return err;
  const code = storageFullCode(err);
  if (code === undefined) return undefined;
  return new StorageFullError(code, what, err);
}
