// HTTPS on the listen address (config tls): the options fastify builds its server with, and the
// certificate reloader.
//
// With tls.http2 the server is node's Http2SecureServer with allowHTTP1: ALPN offers h2 and
// http/1.1, and both arrive as 'request' events (HTTP/2 through the compatibility API), so fastify's
// routes and the listeners that sit in front of it (connection-limits.ts, hot-manifests.ts) see one
// kind of event for both.
//
// The certificate and key are re-read when either file changes (a certificate renewed by an ACME
// client, a Kubernetes Secret whose mounted files are swapped): stat-polled with fs.watchFile, which
// follows a path through symlink swaps where inotify on the old file would not. A new pair is
// loaded into the server with setSecureContext: handshakes from then on present it, connections
// already open keep theirs. A pair that does not load (half written, key and certificate that do not
// match) is logged and the previous one kept; the next change tries again.
import { readFileSync, unwatchFile, watchFile, type Stats } from 'node:fs';
import { X509Certificate } from 'node:crypto';
import { createSecureContext, type SecureContextOptions } from 'node:tls';
import type { TlsConfig } from '../config/schema.js';

interface Logger {
  info(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

/** What setSecureContext takes: tls.Server and Http2SecureServer both have it. */
export interface SecureServer {
  setSecureContext(options: SecureContextOptions): void;
}

/** The certificate and key as files hold them now; throws when they do not make a usable pair. */
export function readKeyPair(tls: Pick<TlsConfig, 'cert' | 'key'>): { cert: string; key: string; certificate: X509Certificate } {
  const cert = readFileSync(tls.cert, 'utf8');
  const key = readFileSync(tls.key, 'utf8');
  let certificate: X509Certificate;
  try {
    certificate = new X509Certificate(cert);
  } catch {
    throw new Error(`${tls.cert} holds no PEM certificate (-----BEGIN CERTIFICATE-----)`);
  }
  // Parses the key and checks it belongs to the certificate ("key values mismatch" otherwise).
  createSecureContext({ cert, key });
  return { cert, key, certificate };
}

/** Fastify's server options for tls: HTTP/2 with HTTP/1.1 beside it, or HTTPS over HTTP/1.1 only. */
export function tlsServerOptions(tls: TlsConfig): { http2: true; https: { allowHTTP1: true; cert: string; key: string } } | { https: { cert: string; key: string } } {
  const { cert, key } = readKeyPair(tls);
  return tls.http2 ? { http2: true, https: { allowHTTP1: true, cert, key } } : { https: { cert, key } };
}

/** What a log line says of a certificate. */
function describe(certificate: X509Certificate): object {
  return { subject: certificate.subject.replace(/\n/g, ', '), validTo: certificate.validTo, fingerprint256: certificate.fingerprint256 };
}

/** Reloads cert and key into `server` when either file changes; close() stops watching. */
export function watchKeyPair(server: SecureServer, tls: TlsConfig, log: Logger): { close(): void } {
  let pending: NodeJS.Timeout | undefined;
  const reload = (): void => {
    pending = undefined;
    try {
      const { cert, key, certificate } = readKeyPair(tls);
      server.setSecureContext({ cert, key });
      log.info({ component: 'tls', cert: tls.cert, ...describe(certificate) }, 'TLS certificate reloaded: new connections get it, open ones keep theirs');
    } catch (err) {
      log.error(
        { component: 'tls', cert: tls.cert, key: tls.key, err: { message: (err as Error).message } },
        `TLS certificate not reloaded (${(err as Error).message}): still serving the previous one`,
      );
    }
  };
  const changed = (now: Stats, before: Stats): void => {
    if (now.mtimeMs === before.mtimeMs && now.size === before.size && now.ino === before.ino) return;
    // Certificate and key are often written one after the other: one reload for both.
    clearTimeout(pending);
    pending = setTimeout(reload, Math.min(200, tls.reloadCheck)).unref();
  };
  const options = { interval: tls.reloadCheck, persistent: false };
  watchFile(tls.cert, options, changed);
  watchFile(tls.key, options, changed);
  return {
    close() {
      clearTimeout(pending);
      unwatchFile(tls.cert, changed);
      unwatchFile(tls.key, changed);
    },
  };
}
