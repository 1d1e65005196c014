// Single-range `Range: bytes=` requests on blobs (RFC 9110 §14). A malformed or multi-range header is
// ignored (the whole blob is served, as the RFC allows); an unsatisfiable one is a 416, and so is one
// whose last position is before its first (`bytes=500-0`): it names no byte of the blob, and answering
// 200 with the whole blob would hand a client that asked for a slice gigabytes it did not ask for.
import { RegistryError } from './errors.js';
import type { ByteRange } from '../storage/blob-store.js';

export function parseRange(header: string | undefined, size: number): ByteRange | undefined {
  if (header === undefined) return undefined;
  const m = /^\s*bytes\s*=\s*(\d*)\s*-\s*(\d*)\s*$/i.exec(header);
  if (!m || (m[1] === '' && m[2] === '')) return undefined;
  let start: number;
  let end: number;
  if (m[1] === '') {
    const suffix = Number(m[2]);
    if (suffix === 0) throw unsatisfiable(size);
    start = Math.max(0, size - suffix);
    end = size - 1;
  } else {
    start = Number(m[1]);
    end = m[2] === '' ? size - 1 : Math.min(Number(m[2]), size - 1);
    if (m[2] !== '' && Number(m[2]) < start) throw unsatisfiable(size);
  }
  if (!Number.isSafeInteger(start) || start >= size) throw unsatisfiable(size);
  return { start, end };
}

function unsatisfiable(size: number): RegistryError {
  return new RegistryError('RANGE_INVALID', `requested range is not satisfiable: the blob has ${size} bytes`, {
    headers: { 'content-range': `bytes */${size}` },
    detail: { size },
  });
}
