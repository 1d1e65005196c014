// Small readers for what the v2 routes take from a request: query values, lengths, bodies.
import type { FastifyRequest } from 'fastify';
import { RegistryError } from '../registry/errors.js';
import type { Page } from '../oci/page.js';

type Query = Record<string, string | string[] | undefined>;

export function queryValues(request: FastifyRequest, key: string): string[] {
  const v = (request.query as Query)[key];
  if (v === undefined) return [];
  return Array.isArray(v) ? v : [v];
}

export function queryValue(request: FastifyRequest, key: string): string | undefined {
  return queryValues(request, key)[0];
}

/** Content-Length as a number, undefined when absent; a malformed one is a 400. */
export function contentLength(request: FastifyRequest): number | undefined {
  const raw = request.headers['content-length'];
  if (raw === undefined) return undefined;
  if (!/^\d+$/.test(raw)) throw new RegistryError('SIZE_INVALID', `Content-Length "${raw.slice(0, 40)}" is not a number`);
  return Number(raw);
}

/** Whether the request carries a body at all (a length above zero or a chunked transfer). */
export function hasBody(request: FastifyRequest): boolean {
  const length = contentLength(request);
  return (length !== undefined && length > 0) || request.headers['transfer-encoding'] !== undefined;
}

/** Reads the whole body into memory, refusing more than `limit` bytes with 413 SIZE_INVALID. */
export async function readBody(request: FastifyRequest, limit: number): Promise<Buffer> {
  const tooLarge = () =>
    new RegistryError('SIZE_INVALID', `body is larger than the ${limit} bytes this endpoint accepts`, { status: 413, detail: { limit } });
  const declared = contentLength(request);
  if (declared !== undefined && declared > limit) throw tooLarge();
  const chunks: Buffer[] = [];
  let total = 0;
  for await (const chunk of request.raw) {
    total += (chunk as Buffer).length;
    if (total > limit) throw tooLarge();
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks);
}

/** `n` and `last` pagination parameters of tag and catalog listings. */
export function pageOf(request: FastifyRequest): Page {
  const n = queryValue(request, 'n');
  const last = queryValue(request, 'last');
  if (n !== undefined && (!/^\d{1,9}$/.test(n))) {
    throw new RegistryError('PAGINATION_NUMBER_INVALID', `n must be a non-negative integer, not "${n.slice(0, 40)}"`, { detail: { n: n.slice(0, 40) } });
  }
  return { n: n === undefined ? undefined : Number(n), last: last === undefined || last === '' ? undefined : last };
}

/** The next page's Link; `ns` is kept so a name routed by it is routed the same way. */
export function nextLink(path: string, n: number, last: string, ns?: string): string {
  const nsParam = ns === undefined ? '' : `&ns=${encodeURIComponent(ns)}`;
  return `<${path}?n=${n}&last=${encodeURIComponent(last)}${nsParam}>; rel="next"`;
}
