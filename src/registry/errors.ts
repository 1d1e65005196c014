// The one error catalogue: every OCI distribution-spec error code with its HTTP status.
// The registry throws RegistryError; lower layers throw their own errors (an invalid digest, a blob
// not stored...) that asRegistryError maps to the catalogue, here and only here. The HTTP error
// handler turns either into the spec's body {"errors":[{"code","message","detail"}]}.
// docs/errors.md lists the same codes (a test keeps them in step).
// Spec: https://github.com/opencontainers/distribution-spec/blob/main/spec.md#error-codes
import { InvalidDigestError } from '../oci/digest.js';
import { MetadataUnavailableError } from '../metadata/metadata-errors.js';
import {
  BlobNotFoundError,
  DigestMismatchError,
  SizeMismatchError,
  StorageFullError,
  storageFullError,
} from '../storage/storage-errors.js';

export const ERROR_CATALOGUE = {
  BLOB_UNKNOWN: { status: 404, description: 'blob unknown to registry' },
  BLOB_UPLOAD_INVALID: { status: 400, description: 'blob upload invalid' },
  BLOB_UPLOAD_UNKNOWN: { status: 404, description: 'blob upload unknown to registry' },
  DIGEST_INVALID: { status: 400, description: 'provided digest did not match uploaded content' },
  MANIFEST_BLOB_UNKNOWN: { status: 400, description: 'manifest references a manifest or blob unknown to registry' },
  MANIFEST_INVALID: { status: 400, description: 'manifest invalid' },
  MANIFEST_UNKNOWN: { status: 404, description: 'manifest unknown to registry' },
  NAME_INVALID: { status: 400, description: 'invalid repository name' },
  NAME_UNKNOWN: { status: 404, description: 'repository name not known to registry' },
  SIZE_INVALID: { status: 400, description: 'provided length did not match content length' },
  UNAUTHORIZED: { status: 401, description: 'authentication required' },
  DENIED: { status: 403, description: 'requested access to the resource is denied' },
  UNSUPPORTED: { status: 405, description: 'the operation is unsupported' },
  TOOMANYREQUESTS: { status: 429, description: 'too many requests' },
  // Not in the spec's table, but spoken in the same body format.
  INVALID_REQUEST: { status: 400, description: 'malformed request (token endpoint, management API)' },
  PAGINATION_NUMBER_INVALID: { status: 400, description: 'invalid number of results requested' },
  RANGE_INVALID: { status: 416, description: 'requested range not satisfiable' },
  REQUEST_TIMEOUT: { status: 408, description: 'the request body stopped arriving' },
  NOT_FOUND: { status: 404, description: 'no such endpoint' },
  UNAVAILABLE: { status: 503, description: 'service unavailable' },
  STORAGE_FULL: { status: 507, description: 'the registry storage is full' },
  INTERNAL_ERROR: { status: 500, description: 'internal server error' },
} as const;

export type ErrorCode = keyof typeof ERROR_CATALOGUE;

export class RegistryError extends Error {
  readonly code: ErrorCode;
  readonly status: number;
  readonly detail: unknown;
  /** Extra response headers (e.g. Range on a 416 for an out-of-order chunk). */
  readonly headers: Record<string, string>;

  constructor(
    code: ErrorCode,
    message?: string,
    opts: { detail?: unknown; status?: number; headers?: Record<string, string>; cause?: unknown } = {},
  ) {
    super(message ?? ERROR_CATALOGUE[code].description, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = 'RegistryError';
    this.code = code;
    this.status = opts.status ?? ERROR_CATALOGUE[code].status;
    this.detail = opts.detail ?? null;
    this.headers = opts.headers ?? {};
  }
}


/**
 * The catalogue's answer to `err`: a RegistryError as it is, a lower layer's error mapped to its code,
 * undefined for anything else (a fault, an upstream failure, a raw errno).
 */
export function asRegistryError(err: unknown): RegistryError | undefined {
  if (err instanceof RegistryError) return err;
  if (err instanceof InvalidDigestError) {
    return new RegistryError('DIGEST_INVALID', err.message, { detail: { digest: err.digest }, cause: err });
  }
  if (err instanceof BlobNotFoundError) return new RegistryError('BLOB_UNKNOWN', err.message, { detail: { digest: err.digest }, cause: err });
  if (err instanceof DigestMismatchError) {
    return new RegistryError('DIGEST_INVALID', err.message, { detail: { expected: err.expected, actual: err.actual }, cause: err });
  }
  if (err instanceof SizeMismatchError) {
    const detail = err.received === undefined ? { expected: err.expected } : { expected: err.expected, received: err.received };
    return new RegistryError('SIZE_INVALID', err.message, { detail, cause: err });
  }
  if (err instanceof StorageFullError) return new RegistryError('STORAGE_FULL', err.message, { detail: { reason: err.reason }, cause: err });
  // The metadata database is out of reach: nothing was written, and the same request succeeds once
  // it is back, so the client is told to come back rather than that the registry failed.
  if (err instanceof MetadataUnavailableError) {
    return new RegistryError('UNAVAILABLE', err.message, { detail: { reason: 'metadata database unavailable' }, headers: { 'retry-after': '5' }, cause: err });
  }
  return undefined;
}

/**
 * asRegistryError, also taking a raw full-disk failure (ENOSPC, EDQUOT, SQLITE_FULL in `err` or its
 * causes) as 507 STORAGE_FULL saying `what` could not be stored.
 */
export function asRegistryErrorOrFull(err: unknown, what?: string): RegistryError | undefined {
  return asRegistryError(err) ?? asRegistryError(storageFullError(err, what));
}
