// How an upstream's answer or failure reaches our clients. With a cached copy, a transient failure
// (unreachable, timeout, 5xx, 429) serves the copy with a Warning; without one it becomes an OCI
// error that names the upstream.
import type { Readable } from 'node:stream';
import { RegistryError, asRegistryError, asRegistryErrorOrFull, type ErrorCode } from '../registry/errors.js';
import { UpstreamError } from '../upstream/upstream-errors.js';

export interface UpstreamInfo {
  name: string;
  url: string;
}

/** A response status from the upstream that is not a success. */
export class UpstreamStatus extends Error {
  constructor(
    readonly status: number,
    readonly retryAfter: string | undefined,
  ) {
    super(`upstream answered ${status}`);
  }
}

/** Whether serving a cached copy instead is right: the upstream failed, it did not say "no". */
export function isTransient(err: unknown): boolean {
  if (err instanceof UpstreamStatus) return err.status >= 500 || err.status === 429;
  if (err instanceof UpstreamError && err.kind === 'denied') return false;
  return asRegistryError(err) === undefined;
}

export function staleWarning(upstream: UpstreamInfo, err: unknown): string {
  const why = err instanceof UpstreamStatus ? `answered ${err.status}` : 'could not be reached';
  return `299 - "served from the cache: upstream ${upstream.name} ${why}; the content may be stale"`;
}

/** The OCI error a client gets when nothing cached can stand in. */
export function toRegistryError(err: unknown, upstream: UpstreamInfo, what: { code: ErrorCode; subject: string }): RegistryError {
  // Our own disk failing is not the upstream's fault.
  const known = asRegistryErrorOrFull(err, what.subject);
  if (known) return known;
  if (err instanceof UpstreamStatus) {
    if (err.status === 404) {
      return new RegistryError(what.code, `${what.subject} is not known to upstream ${upstream.name}`, { detail: { upstream: upstream.name } });
    }
    if (err.status === 401 || err.status === 403) {
      return new RegistryError(what.code, `upstream ${upstream.name} refused access to ${what.subject} (${err.status}): it does not exist there or needs credentials`, {
        detail: { upstream: upstream.name, status: err.status },
      });
    }
    if (err.status === 429) {
      return new RegistryError('TOOMANYREQUESTS', `upstream ${upstream.name} is rate-limiting this registry; retry later`, {
        headers: err.retryAfter ? { 'retry-after': err.retryAfter } : {},
        detail: { upstream: upstream.name },
      });
    }
    return new RegistryError('UNAVAILABLE', `upstream ${upstream.name} (${upstream.url}) answered ${err.status} for ${what.subject}`, {
      detail: { upstream: upstream.name, status: err.status },
    });
  }
  if (err instanceof UpstreamError && err.kind === 'denied') {
    return new RegistryError(what.code, `upstream ${upstream.name} refused access to ${what.subject}: ${err.message}`, {
      detail: { upstream: upstream.name },
    });
  }
  return new RegistryError('UNAVAILABLE', `upstream ${upstream.name} (${upstream.url}) is unavailable: ${(err as Error).message}`, {
    detail: { upstream: upstream.name },
    cause: err,
  });
}

/** Throws UpstreamStatus for anything but the accepted statuses, after discarding the body. */
export function expectStatus(res: { status: number; headers: Record<string, string | string[] | undefined>; body: Readable }, ok: number[]): void {
  if (ok.includes(res.status)) return;
  discard(res.body);
  throw new UpstreamStatus(res.status, header(res.headers, 'retry-after'));
}

export function header(headers: Record<string, string | string[] | undefined>, name: string): string | undefined {
  const v = headers[name];
  return Array.isArray(v) ? v[0] : v;
}

/** Lets a response body go without reading it (undici's dump keeps the connection reusable). */
export function discard(body: Readable): void {
  const dumpable = body as Readable & { dump?: () => Promise<void> };
  if (typeof dumpable.dump === 'function') dumpable.dump().catch(() => undefined);
  else body.resume();
}

export async function readAll(body: Readable, limit: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let total = 0;
  for await (const chunk of body) {
    total += (chunk as Buffer).length;
    if (total > limit) {
      body.destroy();
      throw new Error(`upstream response is larger than ${limit} bytes`);
    }
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks);
}
