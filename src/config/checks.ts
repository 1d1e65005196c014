// Rules between keys that a JSON schema cannot express; each broken rule is one violation. They run
// on the configuration as loaded, even when the schema found problems elsewhere, so that one run
// lists every mistake: each rule looks only at values of the right shape and leaves the others to
// the schema's violations.
import { readFileSync } from 'node:fs';
import { X509Certificate } from 'node:crypto';
import type { UpstreamProxy } from './schema.js';
import { isPlain, type Plain } from './plain.js';
import { parseDuration } from './duration.js';

/** The longest validity S3's signature version 4 allows a presigned URL: 7 days. */
const PRESIGN_MAX_MS = 7 * 24 * 3600 * 1000;

const str = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);

/** The upstream entries that are mappings, with their index (a non-mapping entry is the schema's to report). */
function upstreamsOf(config: unknown): Array<[number, Plain]> {
  const list = isPlain(config) ? config.upstreams : undefined;
  if (!Array.isArray(list)) return [];
  return list.flatMap((u, i): Array<[number, Plain]> => (isPlain(u) ? [[i, u]] : []));
}

/** The events.webhooks entries that are mappings, with their index. */
function webhooksOf(config: unknown): Array<[number, Plain]> {
  const events = isPlain(config) ? config.events : undefined;
  const list = isPlain(events) ? events.webhooks : undefined;
  if (!Array.isArray(list)) return [];
  return list.flatMap((w, i): Array<[number, Plain]> => (isPlain(w) ? [[i, w]] : []));
}

/** storage.s3 when it is a mapping. */
function s3Of(config: unknown): Plain | undefined {
  const storage = isPlain(config) ? config.storage : undefined;
  return isPlain(storage) && isPlain(storage.s3) ? storage.s3 : undefined;
}

export function crossFieldViolations(config: unknown): string[] {
  const out: string[] = [];
  const s3 = s3Of(config);
  if (s3) {
    const secrets = ['secretAccessKeyFile', 'secretAccessKeyEnv'].filter((k) => s3[k] !== undefined);
    if (secrets.length > 1) out.push('storage.s3: give only one of secretAccessKeyFile, secretAccessKeyEnv');
    if (s3.accessKeyId !== undefined && secrets.length === 0) {
      out.push('storage.s3.accessKeyId: give its secret key too, with secretAccessKeyFile or secretAccessKeyEnv (or leave both out for the AWS SDK chain: AWS_ACCESS_KEY_ID, profiles, instance roles)');
    }
    if (s3.accessKeyId === undefined && secrets.length > 0) out.push(`storage.s3.${secrets[0]}: give accessKeyId too (the key the secret belongs to)`);
    // S3 refuses presigned URLs (SigV4) valid for longer than a week, and a URL valid for less than a
    // second expires before the client follows the redirect.
    const expiry = durationOrUndefined(s3.presignExpiry);
    if (expiry !== undefined && (expiry < 1000 || expiry > PRESIGN_MAX_MS)) {
      out.push(`storage.s3.presignExpiry: between 1s and 7d (the longest S3 signs a URL for), not ${String(s3.presignExpiry)}`);
    }
  }
  const upstreams = upstreamsOf(config);
  const defaults = upstreams.filter(([, u]) => u.default === true).map(([i, u]) => str(u.name) ?? `upstreams.${i}`);
  if (defaults.length > 1) out.push(`upstreams: at most one upstream may be the default; ${defaults.join(', ')} all say default: true`);

  // Local namespaces, upstream registries and prefixes all name a first path component: each may
  // route to one place only.
  const seen = new Map<string, string>();
  const claim = (key: unknown, owner: string, where: string) => {
    if (typeof key !== 'string') return;
    const other = seen.get(key);
    if (other !== undefined) out.push(`${where}: "${key}" is already used by ${other}`);
    else seen.set(key, owner);
  };
  const local = isPlain(config) && isPlain(config.local) ? config.local.namespaces : undefined;
  if (Array.isArray(local)) local.forEach((ns, i) => claim(ns, 'local.namespaces', `local.namespaces.${i}`));
  const names = new Set<string>();
  for (const [i, u] of upstreams) {
    const at = `upstreams.${i}`;
    const name = str(u.name);
    if (name !== undefined && names.has(name)) out.push(`${at}.name: another upstream is already named "${name}"`);
    if (name !== undefined) names.add(name);
    const owner = `upstream ${name ?? at}`;
    claim(u.registry, owner, `${at}.registry`);
    claim(u.prefix, owner, `${at}.prefix`);
    const secrets = ['password', 'passwordFile', 'passwordEnv'].filter((k) => u[k] !== undefined);
    if (secrets.length > 1) out.push(`${at}: give only one of password, passwordFile, passwordEnv (found ${secrets.join(', ')})`);
    if (secrets.length > 0 && u.username === undefined) out.push(`${at}.username: required when ${secrets[0]} is given`);
    const tls = isPlain(u.tls) ? u.tls : undefined;
    if (tls && typeof u.url === 'string' && u.url.startsWith('http://') && (tls.ca !== undefined || tls.insecureSkipVerify === true)) {
      out.push(`${at}.tls: the url ${u.url} is plain http, so there is no certificate to verify; use https:// or leave tls out`);
    }
    if (tls && tls.ca !== undefined && tls.insecureSkipVerify === true) {
      out.push(`${at}.tls: give ca (verify against this CA) or insecureSkipVerify (verify nothing), not both`);
    }
  }
  const pg = postgresOf(config);
  if (pg) {
    const secrets = ['passwordFile', 'passwordEnv'].filter((k) => pg[k] !== undefined);
    if (secrets.length > 1) out.push(`metadata.postgres: give only one of passwordFile, passwordEnv (found both)`);
    if (secrets.length > 0 && urlPassword(pg.url)) {
      out.push(`metadata.postgres.url: holds a password while ${secrets[0]} gives one too: take the password out of the URL`);
    }
  }
  for (const [i, w] of webhooksOf(config)) {
    if (w.secretFile !== undefined && w.secretEnv !== undefined) out.push(`events.webhooks.${i}: give only one of secretFile, secretEnv (found both)`);
  }
  const cluster = isPlain(config) && isPlain(config.cluster) ? config.cluster : undefined;
  if (cluster) {
    if (!pg) out.push('cluster: needs metadata.postgres (the fill leases of the cluster live in the shared database)');
    const secrets = ['secret', 'secretFile'].filter((k) => cluster[k] !== undefined);
    if (secrets.length === 0) out.push('cluster: give the secret the nodes share, in secretFile (or secret, or WHARF_CLUSTER_SECRET)');
    if (secrets.length > 1) out.push('cluster: give only one of secret, secretFile (found both)');
    const heartbeat = durationOrUndefined(cluster.heartbeat ?? '2s');
    const leaseTimeout = durationOrUndefined(cluster.leaseTimeout ?? '10s');
    if (heartbeat !== undefined && leaseTimeout !== undefined && heartbeat * 2 > leaseTimeout) {
      out.push('cluster.heartbeat: renew at least twice per leaseTimeout (a late heartbeat would let a live fill be taken over)');
    }
  }
  return out;
}

/** A duration as written, in ms; undefined when it is none (the schema reports it). */
function durationOrUndefined(value: unknown): number | undefined {
  try {
    return typeof value === 'string' ? parseDuration(value) : undefined;
  } catch {
    return undefined;
  }
}

/** metadata.postgres when it is a mapping. */
function postgresOf(config: unknown): Plain | undefined {
  const metadata = isPlain(config) ? config.metadata : undefined;
  return isPlain(metadata) && isPlain(metadata.postgres) ? metadata.postgres : undefined;
}

/** Whether a postgres:// URL carries a password (user:password@host). */
function urlPassword(url: unknown): boolean {
  if (typeof url !== 'string') return false;
  try {
    return new URL(url).password !== '';
  } catch {
    return false;
  }
}

/**
 * Resolves passwordFile and passwordEnv into password (and storage.s3's secretAccessKeyFile or
 * secretAccessKeyEnv into secretAccessKey, a key no file may write), so nothing below config/ reads
 * the environment. Returns the violations (missing file or variable).
 */
export function resolveSecrets(config: unknown, env: NodeJS.ProcessEnv): string[] {
  const out: string[] = [];
  const s3 = s3Of(config);
  const s3File = str(s3?.secretAccessKeyFile);
  const s3Variable = str(s3?.secretAccessKeyEnv);
  if (s3 && s3File !== undefined) {
    try {
      s3.secretAccessKey = readFileSync(s3File, 'utf8').replace(/\r?\n$/, '');
    } catch (err) {
      out.push(`storage.s3.secretAccessKeyFile: cannot read ${s3File}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
    }
  } else if (s3 && s3Variable !== undefined) {
    const value = env[s3Variable];
    if (value === undefined || value === '') out.push(`storage.s3.secretAccessKeyEnv: the environment variable ${s3Variable} is not set`);
    else s3.secretAccessKey = value;
  }
  for (const [i, u] of upstreamsOf(config)) {
    const file = str(u.passwordFile);
    const variable = str(u.passwordEnv);
    if (file !== undefined) {
      try {
        u.password = readFileSync(file, 'utf8').replace(/\r?\n$/, '');
      } catch (err) {
        out.push(`upstreams.${i}.passwordFile: cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
      }
    } else if (variable !== undefined) {
      const value = env[variable];
      if (value === undefined || value === '') out.push(`upstreams.${i}.passwordEnv: the environment variable ${variable} is not set`);
      else u.password = value;
    }
    const ca = isPlain(u.tls) ? str(u.tls.ca) : undefined;
    if (ca !== undefined && isPlain(u.tls)) {
      const problem = readCertificates(ca, (pem) => ((u.tls as Plain).caPem = pem));
      if (problem) out.push(`upstreams.${i}.tls.ca: ${problem}`);
    }
  }
  // The database password is kept beside the URL, never in it (a URL ends up in logs and messages).
  const pg = postgresOf(config);
  const file = str(pg?.passwordFile);
  const variable = str(pg?.passwordEnv);
  if (pg && file !== undefined) {
    try {
      pg.password = readFileSync(file, 'utf8').replace(/\r?\n$/, '');
    } catch (err) {
      out.push(`metadata.postgres.passwordFile: cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
    }
  } else if (pg && variable !== undefined) {
    const value = env[variable];
    if (value === undefined || value === '') out.push(`metadata.postgres.passwordEnv: the environment variable ${variable} is not set`);
    else pg.password = value;
  }
  for (const [i, w] of webhooksOf(config)) {
    const file = str(w.secretFile);
    const variable = str(w.secretEnv);
    if (file !== undefined) {
      try {
        w.secret = readFileSync(file, 'utf8').replace(/\r?\n$/, '');
      } catch (err) {
        out.push(`events.webhooks.${i}.secretFile: cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
      }
    } else if (variable !== undefined) {
      const value = env[variable];
      if (value === undefined || value === '') out.push(`events.webhooks.${i}.secretEnv: the environment variable ${variable} is not set`);
      else w.secret = value;
    }
    if (typeof w.secret === 'string' && w.secret.length === 0) out.push(`events.webhooks.${i}.secretFile: ${String(file)} is empty`);
  }
  const cluster = isPlain(config) && isPlain(config.cluster) ? config.cluster : undefined;
  const secretFile = str(cluster?.secretFile);
  if (cluster && secretFile !== undefined) {
    try {
      const secret = readFileSync(secretFile, 'utf8').replace(/\r?\n$/, '');
      if (secret.length < 16) out.push(`cluster.secretFile: ${secretFile} holds ${secret.length} characters; the secret needs 16 at least`);
      else cluster.secret = secret;
    } catch (err) {
      out.push(`cluster.secretFile: cannot read ${secretFile}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
    }
  }
  return out;
}

/**
 * Reads a PEM file of certificates and hands its text to `use`; returns why it cannot be used
 * (unreadable, or no certificate in it), undefined when it can.
 */
function readCertificates(file: string, use: (pem: string) => void): string | undefined {
  let pem: string;
  try {
    pem = readFileSync(file, 'utf8');
  } catch (err) {
    return `cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`;
  }
  try {
    // The first certificate parses, or the file is not what it should be (a key, DER bytes, ...).
    new X509Certificate(pem);
  } catch {
    return `${file} holds no PEM certificate (-----BEGIN CERTIFICATE-----)`;
  }
  use(pem);
  return undefined;
}

/** The proxy variables, lower case first as curl and undici read them. */
const PROXY_VARIABLES = [
  ['httpsProxy', ['https_proxy', 'HTTPS_PROXY']],
  ['httpProxy', ['http_proxy', 'HTTP_PROXY']],
  ['noProxy', ['no_proxy', 'NO_PROXY']],
] as const;

/**
 * The forward proxies for upstream traffic named by HTTPS_PROXY, HTTP_PROXY and NO_PROXY (undefined
 * when no proxy is set), and the violations for values that are no proxy URL.
 */
export function upstreamProxyFrom(env: NodeJS.ProcessEnv): { proxy?: UpstreamProxy; violations: string[] } {
  const proxy: UpstreamProxy = {};
  const violations: string[] = [];
  for (const [key, names] of PROXY_VARIABLES) {
    const name = names.find((n) => env[n] !== undefined && env[n] !== '');
    if (name === undefined) continue;
    const value = env[name]!;
    if (key !== 'noProxy') {
      let url: URL | undefined;
      try {
        url = new URL(value);
      } catch {
        url = undefined;
      }
      if (!url || !['http:', 'https:', 'socks5:', 'socks:'].includes(url.protocol)) {
        violations.push(`${name}: ${JSON.stringify(value)} is not a proxy URL (http://HOST:PORT, https://..., socks5://...)`);
        continue;
      }
    }
    proxy[key] = value;
  }
  if (proxy.httpProxy === undefined && proxy.httpsProxy === undefined) return { violations };
  return { proxy, violations };
}
