// A full disk (or quota, or a full SQLite database) is not an internal error: the operator must free
// space. Recognised wherever it surfaces (a blob write, an upload, a metadata write) and answered as
// 507 STORAGE_FULL; reads of what is stored go on working.
import { RegistryError } from '../registry/errors.js';

const FULL = new Set(['ENOSPC', 'EDQUOT', 'SQLITE_FULL']);

/** The errno-style code of a storage-full failure in `err` or its causes, if any. */
export function storageFullCode(err: unknown): string | undefined {
  let e: unknown = err;
  for (let depth = 0; depth < 5 && e instanceof Error; depth++) {
    const code = (e as NodeJS.ErrnoException).code;
    if (typeof code === 'string' && FULL.has(code)) return code;
    e = e.cause;
  }
  return undefined;
}

/** `err` as a 507 STORAGE_FULL when it is a storage-full failure; undefined otherwise. */
export function storageFullError(err: unknown, what = 'the content'): RegistryError | undefined {
  if (err instanceof RegistryError) return err.code === 'STORAGE_FULL' ? err : undefined;
  const code = storageFullCode(err);
  if (code === undefined) return undefined;
  return new RegistryError('STORAGE_FULL', `the registry's storage is full (${code}): ${what} could not be stored; content already stored is still served`, {
    detail: { reason: code },
    cause: err,
  });
}
