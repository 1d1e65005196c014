// Errors from talking to an upstream registry. Each one names the upstream (config name and URL) and
// says what to check, so an operator can act on the log line alone. Never include credentials, tokens
// or signed query strings (CDN redirect URLs carry signatures): URLs go through displayUrl().

/** `denied`: the upstream (or its token service) refused our credentials — an answer, not an outage. */
export type UpstreamErrorKind = 'unreachable' | 'timeout' | 'protocol' | 'denied';

export interface UpstreamRef {
  /** The upstream's name in the configuration. */
  name: string;
  /** Its configured base URL. */
  url: string;
}

export class UpstreamError extends Error {
  override name = 'UpstreamError';
  readonly kind: UpstreamErrorKind;
  /** The upstream's configured name. */
  readonly upstream: string;
  /** The upstream's base URL, without user info. */
  readonly url: string;

  constructor(kind: UpstreamErrorKind, upstream: UpstreamRef, detail: string, options?: ErrorOptions) {
    const url = displayUrl(upstream.url);
    super(`upstream "${upstream.name}" (${url}): ${detail}`, options);
    this.kind = kind;
    this.upstream = upstream.name;
    this.url = url;
  }
}

/** scheme://host[:port]/path, no user info, no query or fragment. */
export function displayUrl(url: string | URL): string {
  try {
    const u = new URL(url);
    const path = u.pathname === '/' ? '' : u.pathname;
    return `${u.protocol}//${u.host}${path}`;
  } catch {
    return '(invalid URL)';
  }
}

const TIMEOUTS: Record<string, { what: string; setting: string }> = {
  UND_ERR_CONNECT_TIMEOUT: { what: 'did not accept a connection in time', setting: 'timeouts.connect' },
  UND_ERR_HEADERS_TIMEOUT: { what: 'sent no response headers in time', setting: 'timeouts.headers' },
  UND_ERR_BODY_TIMEOUT: { what: 'paused its response body for too long', setting: 'timeouts.bodyIdle' },
};

/** OpenSSL's codes for a certificate chain that leads to no trusted CA. */
const TLS_TRUST = new Set([
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'CERT_UNTRUSTED',
]);

/** True for the error a request raises when its AbortSignal fires: that is the caller's decision, not an upstream failure. */
export function isAbort(err: unknown): boolean {
  const e = err as { name?: unknown; code?: unknown } | null;
  return !!e && (e.name === 'AbortError' || e.code === 'UND_ERR_ABORTED' || e.code === 'ABORT_ERR');
}

/**
 * Map an error thrown by undici (or a Node socket) while talking to `target` into an UpstreamError.
 * Aborts are returned unchanged, as are UpstreamErrors. Callers reading an upstream body can use this too.
 */
export function toUpstreamError(err: unknown, upstream: UpstreamRef, target?: string | URL): Error {
  if (err instanceof UpstreamError || isAbort(err)) return err as Error;
  const e = (err ?? {}) as { code?: unknown; message?: unknown };
  const code = typeof e.code === 'string' ? e.code : undefined;
  const where = target ? displayUrl(target) : displayUrl(upstream.url);
  const cause = err instanceof Error ? err : undefined;
  const timeout = code ? TIMEOUTS[code] : undefined;
  if (timeout) {
    return new UpstreamError('timeout', upstream, `${where} ${timeout.what}; check the upstream's health or raise upstreams[].${timeout.setting}`, { cause });
  }
  if (code?.startsWith('HPE_') || code === 'UND_ERR_RES_CONTENT_LENGTH_MISMATCH') {
    return new UpstreamError('protocol', upstream, `${where} sent a malformed HTTP response (${code}); is the URL really a registry over ${new URL(upstream.url).protocol.slice(0, -1)}?`, { cause });
  }
  if (code !== undefined && TLS_TRUST.has(code)) {
    return new UpstreamError(
      'unreachable',
      upstream,
      `${where} presented a TLS certificate that is not trusted (${code}): give upstreams[].tls.ca the PEM file of the CA that signed it (or, for a test setup only, tls.insecureSkipVerify: true)`,
      { cause },
    );
  }
  if (code === 'ERR_TLS_CERT_ALTNAME_INVALID') {
    return new UpstreamError('unreachable', upstream, `${where} presented a TLS certificate for another name (${code}): use a URL whose host the certificate names`, { cause });
  }
  if (code === 'CERT_HAS_EXPIRED' || code === 'CERT_NOT_YET_VALID') {
    return new UpstreamError('unreachable', upstream, `${where} presented a TLS certificate outside its validity period (${code})`, { cause });
  }
  const why = code ?? (typeof e.message === 'string' ? e.message : String(err));
  return new UpstreamError('unreachable', upstream, `cannot reach ${where} (${why}); check the URL, DNS, proxy and firewall`, { cause });
}
