// Digest grammar and hashing (image-spec descriptor.md#digests).
// Only registered algorithms are accepted: anything else could not be verified.
// A leaf: it imports nothing of Wharf's; the registry maps InvalidDigestError to DIGEST_INVALID.
import { createHash, type Hash } from 'node:crypto';

export type DigestAlgorithm = 'sha256' | 'sha512';

const ENCODED_LENGTH: Record<DigestAlgorithm, number> = { sha256: 64, sha512: 128 };
const DIGEST_SHAPE = /^([a-z0-9]+(?:[+._-][a-z0-9]+)*):([a-zA-Z0-9=_-]+)$/;

export interface ParsedDigest {
  algorithm: DigestAlgorithm;
  hex: string;
  digest: string;
}

/** Parses a digest; returns undefined when it is not a digest we can verify. */
export function tryParseDigest(value: string): ParsedDigest | undefined {
  const m = DIGEST_SHAPE.exec(value);
  if (!m) return undefined;
  const algorithm = m[1] as DigestAlgorithm;
  const hex = m[2] as string;
  const len = ENCODED_LENGTH[algorithm];
  if (len === undefined || hex.length !== len || !/^[a-f0-9]+$/.test(hex)) return undefined;
  return { algorithm, hex, digest: value };
}

/** A value that is not a digest Wharf can verify; `digest` is the value (truncated) for the error's detail. */
export class InvalidDigestError extends Error {
  readonly digest: string;

  constructor(message: string, digest: string) {
    super(message);
    this.name = 'InvalidDigestError';
    this.digest = digest;
  }
}

/** Parses a digest; throws InvalidDigestError saying what is wrong with it. */
export function checkDigest(value: string): ParsedDigest {
  const parsed = tryParseDigest(value);
  if (parsed) return parsed;
  const m = DIGEST_SHAPE.exec(value);
  if (m && !(m[1] as string in ENCODED_LENGTH)) {
    throw new InvalidDigestError(`unsupported digest algorithm "${m[1]}": use sha256 or sha512`, value);
  }
  throw new InvalidDigestError(
    `"${truncate(value)}" is not a valid digest (expected sha256:<64 hex> or sha512:<128 hex>)`,
    truncate(value),
  );
}

export const isDigest = (value: string): boolean => tryParseDigest(value) !== undefined;

export function newHash(algorithm: DigestAlgorithm): Hash {
  return createHash(algorithm);
}

export function digestOf(bytes: Buffer | string, algorithm: DigestAlgorithm = 'sha256'): string {
  return `${algorithm}:${createHash(algorithm).update(bytes).digest('hex')}`;
}

export function truncate(value: string, max = 200): string {
  return value.length > max ? `${value.slice(0, max)}…` : value;
}
