// A small HTTP client for the conformance workflows: global fetch (undici), bounded by a timeout,
// never following redirects unless asked, and recording enough of each exchange to explain a failure.
import type { Test } from 'tap';

export const REQUEST_TIMEOUT_MS = 10_000;

export interface RequestOptions {
  headers?: Record<string, string>;
  query?: Record<string, string | undefined>;
  body?: Buffer | string;
  /** Follow 3xx responses (GET/HEAD of blobs may be redirected to storage). Default: false. */
  follow?: boolean;
}

export class OciResponse {
  constructor(
    readonly method: string,
    readonly url: string,
    readonly status: number,
    readonly headers: Headers,
    readonly body: Buffer,
    readonly requestHeaders: Record<string, string>,
    readonly requestBodyLength: number,
  ) {}

  header(name: string): string | null {
    return this.headers.get(name);
  }

  text(): string {
    return this.body.toString('utf8');
  }

  /** The body parsed as JSON, or undefined when it is not JSON. */
  json(): unknown {
    try {
      return JSON.parse(this.text()) as unknown;
    } catch {
      return undefined;
    }
  }

  /** The exchange, for assertion diagnostics. */
  describe(): Record<string, unknown> {
    const headers: Record<string, string> = {};
    this.headers.forEach((v, k) => {
      headers[k] = v;
    });
    const text = this.text();
    return {
      request: `${this.method} ${this.url}`,
      requestHeaders: this.requestHeaders,
      requestBodyBytes: this.requestBodyLength,
      status: this.status,
      responseHeaders: headers,
      responseBody: text.length > 800 ? `${text.slice(0, 800)}…` : text,
    };
  }
}

export class OciClient {
  readonly base: string;

  constructor(base: string) {
    this.base = base.replace(/\/+$/, '');
  }

  /** Resolves a path, or a Location header value (absolute or relative), against the registry's base URL. */
  resolve(pathOrUrl: string): URL {
    return new URL(pathOrUrl, `${this.base}/`);
  }

  async request(method: string, pathOrUrl: string, opts: RequestOptions = {}): Promise<OciResponse> {
    let url = this.resolve(pathOrUrl);
    for (const [k, v] of Object.entries(opts.query ?? {})) {
      if (v !== undefined) url.searchParams.set(k, v);
    }
    const headers = { ...(opts.headers ?? {}) };
    const body = typeof opts.body === 'string' ? Buffer.from(opts.body) : opts.body;
    for (let hops = 0; ; hops++) {
      const res = await fetch(url, {
        method,
        headers,
        body: body === undefined ? undefined : new Uint8Array(body),
        redirect: 'manual',
        signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
      });
      const bytes = Buffer.from(await res.arrayBuffer());
      const location = res.headers.get('location');
      if (opts.follow && res.status >= 300 && res.status < 400 && location && hops < 5) {
        url = new URL(location, url);
        continue;
      }
      return new OciResponse(method, url.toString(), res.status, res.headers, bytes, headers, body?.length ?? 0);
    }
  }

  get(p: string, o?: RequestOptions) {
    return this.request('GET', p, o);
  }
  head(p: string, o?: RequestOptions) {
    return this.request('HEAD', p, o);
  }
  post(p: string, o?: RequestOptions) {
    return this.request('POST', p, o);
  }
  put(p: string, o?: RequestOptions) {
    return this.request('PUT', p, o);
  }
  patch(p: string, o?: RequestOptions) {
    return this.request('PATCH', p, o);
  }
  delete(p: string, o?: RequestOptions) {
    return this.request('DELETE', p, o);
  }
}

// ---------------------------------------------------------------------------------------------
// Assertions that carry the exchange in their diagnostics.

/** Every error code the distribution-spec defines (spec.md "Error Codes"). */
export const SPEC_ERROR_CODES = [
  'BLOB_UNKNOWN',
  'BLOB_UPLOAD_INVALID',
  'BLOB_UPLOAD_UNKNOWN',
  'DIGEST_INVALID',
  'MANIFEST_BLOB_UNKNOWN',
  'MANIFEST_INVALID',
  'MANIFEST_UNKNOWN',
  'NAME_INVALID',
  'NAME_UNKNOWN',
  'SIZE_INVALID',
  'UNAUTHORIZED',
  'DENIED',
  'UNSUPPORTED',
  'TOOMANYREQUESTS',
] as const;

export type StatusMatcher = number | readonly number[] | 'success';

function statusMatches(status: number, want: StatusMatcher): boolean {
  if (want === 'success') return status >= 200 && status < 300;
  if (typeof want === 'number') return status === want;
  return want.includes(status);
}

function describeMatcher(want: StatusMatcher): string {
  if (want === 'success') return '2xx';
  if (typeof want === 'number') return String(want);
  return want.join(' or ');
}

export function expectStatus(t: Test, res: OciResponse, want: StatusMatcher, what = 'status'): boolean {
  return t.ok(statusMatches(res.status, want), `${what}: ${res.method} answers ${describeMatcher(want)} (got ${res.status})`, {
    found: res.status,
    wanted: describeMatcher(want),
    exchange: res.describe(),
  });
}

export function expectHeader(t: Test, res: OciResponse, name: string, want: string, what?: string): boolean {
  return t.equal(res.header(name), want, what ?? `${name} header is ${want}`, { exchange: res.describe() });
}

export function expectHeaderPresent(t: Test, res: OciResponse, name: string, what?: string): boolean {
  const v = res.header(name);
  return t.ok(v !== null && v !== '', what ?? `${name} header is present`, { exchange: res.describe() });
}

/**
 * A 4xx body, when it is JSON, must be {"errors":[{"code","message","detail"}, ...]} with codes from the spec's table.
 * With `required`, a JSON error body must be there at all; with `code`, the first error must carry it.
 */
export function expectErrorBody(
  t: Test,
  res: OciResponse,
  opts: { required?: boolean; code?: string | readonly string[] } = {},
): void {
  if (res.method === 'HEAD') return; // HEAD responses carry no body
  const parsed = res.json();
  if (parsed === undefined) {
    if (opts.required || opts.code) t.fail(`${res.status} response carries a JSON error body`, { exchange: res.describe() });
    return;
  }
  const errors = (parsed as { errors?: unknown }).errors;
  const ok = Array.isArray(errors) && errors.length > 0;
  t.ok(ok, 'error body is {"errors":[...]} with at least one error', { exchange: res.describe() });
  if (!ok) return;
  for (const e of errors as unknown[]) {
    const err = e as { code?: unknown; message?: unknown; detail?: unknown };
    t.ok(
      typeof err.code === 'string' && /^[A-Z_]+$/.test(err.code),
      `error code ${String(err.code)} is uppercase letters and underscores`,
      { exchange: res.describe() },
    );
    t.ok(
      (SPEC_ERROR_CODES as readonly unknown[]).includes(err.code),
      `error code ${String(err.code)} is one of the spec's codes`,
      { exchange: res.describe() },
    );
    if (err.message !== undefined) t.type(err.message, 'string', 'error message, when present, is a string');
  }
  if (opts.code) {
    const wanted = typeof opts.code === 'string' ? [opts.code] : opts.code;
    const first = (errors as Array<{ code?: unknown }>)[0]?.code;
    t.ok(wanted.includes(first as string), `error code is ${wanted.join(' or ')} (got ${String(first)})`, {
      exchange: res.describe(),
    });
  }
}
