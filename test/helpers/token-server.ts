// A Docker Registry v2 token server (distribution's docs/spec/auth/token.md) whose tokens the real
// reference registry (docker-registry 2.8, auth.token) accepts. The signing key is an EC P-256 key
// with a self-signed X.509 certificate made by the `openssl` CLI (Debian package: openssl); tokens are
// ES256 JWTs signed with node:crypto whose header carries the certificate in `x5c`, which the
// registry verifies against its rootcertbundle (= certFile).
//
// GET /token?service=S&scope=repository:NAME:pull,push[&scope=...] with Basic credentials of a
// configured user grants every requested action; without credentials it grants pull only when
// anonymousPull is set (and nothing otherwise, as Docker Hub does); wrong credentials get 401.
import { execFile as execFileCb } from 'node:child_process';
import { createPrivateKey, randomUUID, sign, X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

const execFile = promisify(execFileCb);
const OPENSSL = process.env.OPENSSL ?? 'openssl';

interface Teardownable {
  teardown(fn: () => unknown): void;
}

export interface TokenUser {
  username: string;
  password: string;
}

export interface TokenAccess {
  type: string;
  name: string;
  actions: string[];
}

export interface TokenRequest {
  method: string;
  path: string;
  headers: IncomingHttpHeaders;
  /** The Basic username presented, if any. */
  account?: string;
  scopes: string[];
  /** HTTP status the token server answered with. */
  status: number;
  /** What the issued token grants (empty when no token was issued). */
  granted: TokenAccess[];
}

export interface TokenServerOptions {
  users: TokenUser[];
  service: string;
  issuer: string;
  /** Grant `pull` to requests without credentials (default false: anonymous gets no access). */
  anonymousPull?: boolean;
  /** Token lifetime in seconds (default 300). */
  expiresIn?: number;
}

export interface TokenServer {
  /** http://127.0.0.1:PORT */
  url: string;
  /** The token endpoint: URL + '/token' (auth.token.realm). */
  realm: string;
  service: string;
  issuer: string;
  /** PEM certificate of the signing key: auth.token.rootcertbundle. */
  certFile: string;
  keyFile: string;
  /** Every request served, in order. */
  requests: TokenRequest[];
  /** Number of requests served (optionally only those with a 200, i.e. tokens issued). */
  count(opts?: { issuedOnly?: boolean }): number;
  /** Signs a token for arbitrary claims (overrides merged into the defaults). */
  issue(access: TokenAccess[], overrides?: Record<string, unknown>): string;
  close(): Promise<void>;
}

function b64url(data: Buffer | string): string {
  return Buffer.from(data).toString('base64url');
}

/** Generates an EC P-256 key and a self-signed certificate with the openssl CLI. */
export async function makeSigningCert(dir: string, cn = 'wharf-test-token-issuer'): Promise<{ keyFile: string; certFile: string }> {
  const keyFile = join(dir, 'token-key.pem');
  const certFile = join(dir, 'token-cert.pem');
  try {
    await execFile(
      OPENSSL,
      [
        'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
        '-keyout', keyFile, '-out', certFile, '-days', '2', '-subj', `/CN=${cn}`,
      ],
      { timeout: 30_000, killSignal: 'SIGKILL' },
    );
  } catch (err) {
    const e = err as NodeJS.ErrnoException & { stderr?: string };
    if (e.code === 'ENOENT') throw new Error(`openssl not found (${OPENSSL}): install it (apt-get install openssl)`);
    throw new Error(`openssl req failed: ${e.message}\n${e.stderr ?? ''}`);
  }
  return { keyFile, certFile };
}

function parseBasic(header: string | undefined): { username: string; password: string } | undefined {
  const m = /^Basic\s+(\S+)$/i.exec(header ?? '');
  if (!m) return undefined;
  const decoded = Buffer.from(m[1]!, 'base64').toString('utf8');
  const i = decoded.indexOf(':');
  if (i < 0) return undefined;
  return { username: decoded.slice(0, i), password: decoded.slice(i + 1) };
}

/** "repository:foo/bar:pull,push" -> access entry; the name may not contain ':' except a port-less one. */
function parseScope(scope: string): TokenAccess | undefined {
  const first = scope.indexOf(':');
  const last = scope.lastIndexOf(':');
  if (first < 0 || last === first) return undefined;
  return {
    type: scope.slice(0, first),
    name: scope.slice(first + 1, last),
    actions: scope.slice(last + 1).split(',').filter(Boolean),
  };
}

export async function startTokenServer(t: Teardownable, opts: TokenServerOptions): Promise<TokenServer> {
  const dir = mkdtempSync(join(tmpdir(), 'wharf-token-'));
  let closed = false;
  const sockets = new Set<Socket>();
  // eslint-disable-next-line prefer-const -- assigned once below; close() above it may run before that
  let server: Server | undefined;
  const close = async (): Promise<void> => {
    if (closed) return;
    closed = true;
    if (server) {
      const s = server;
      await new Promise<void>((resolve) => {
        s.close(() => resolve());
        for (const sock of sockets) sock.destroy();
      });
    }
    rmSync(dir, { recursive: true, force: true });
  };
  t.teardown(close);

  const { keyFile, certFile } = await makeSigningCert(dir);
  const key = createPrivateKey(readFileSync(keyFile));
  const certDer = new X509Certificate(readFileSync(certFile)).raw;
  const expiresIn = opts.expiresIn ?? 300;
  const requests: TokenRequest[] = [];

  const issue = (access: TokenAccess[], overrides: Record<string, unknown> = {}): string => {
    const now = Math.floor(Date.now() / 1000);
    const header = { typ: 'JWT', alg: 'ES256', x5c: [certDer.toString('base64')] };
    const claims = {
      iss: opts.issuer,
      sub: '',
      // distribution 2.8 decodes `aud` as a single string.
      aud: opts.service,
      exp: now + expiresIn,
      nbf: now - 10,
      iat: now,
      jti: randomUUID(),
      access,
      ...overrides,
    };
    const input = `${b64url(JSON.stringify(header))}.${b64url(JSON.stringify(claims))}`;
    // JOSE ES256 signatures are raw r||s (IEEE P1363), not DER.
    const sig = sign('sha256', Buffer.from(input), { key, dsaEncoding: 'ieee-p1363' });
    return `${input}.${b64url(sig)}`;
  };

  server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://token.invalid');
    const scopes = url.searchParams.getAll('scope').flatMap((s) => s.split(' ')).filter(Boolean);
    const creds = parseBasic(req.headers.authorization);
    const record: TokenRequest = {
      method: req.method ?? '',
      path: req.url ?? '',
      headers: req.headers,
      scopes,
      status: 0,
      granted: [],
      ...(creds ? { account: creds.username } : {}),
    };
    requests.push(record);
    const reply = (status: number, body: unknown, headers: Record<string, string> = {}): void => {
      record.status = status;
      const text = JSON.stringify(body);
      res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), ...headers });
      res.end(text);
    };
    req.resume();
    if (req.method !== 'GET' || url.pathname !== '/token') {
      reply(404, { errors: [{ code: 'NOT_FOUND', message: 'not found' }] });
      return;
    }
    const service = url.searchParams.get('service');
    if (service !== null && service !== opts.service) {
      reply(400, { errors: [{ code: 'UNSUPPORTED', message: `unknown service ${service}` }] });
      return;
    }
    let sub = '';
    let granted: TokenAccess[] = [];
    if (creds) {
      const user = opts.users.find((u) => u.username === creds.username && u.password === creds.password);
      if (!user) {
        reply(401, { errors: [{ code: 'UNAUTHORIZED', message: 'invalid credentials' }] }, {
          'www-authenticate': 'Basic realm="wharf-test-token"',
        });
        return;
      }
      sub = user.username;
      granted = scopes.map(parseScope).filter((a): a is TokenAccess => a !== undefined);
    } else if (opts.anonymousPull) {
      granted = scopes
        .map(parseScope)
        .filter((a): a is TokenAccess => a !== undefined && a.type === 'repository' && a.actions.includes('pull'))
        .map((a) => ({ ...a, actions: ['pull'] }));
    }
    record.granted = granted;
    const token = issue(granted, { sub });
    reply(200, { token, access_token: token, expires_in: expiresIn, issued_at: new Date().toISOString() });
  });
  server.on('connection', (sock) => {
    sockets.add(sock);
    sock.on('close', () => sockets.delete(sock));
  });
  const s = server;
  await new Promise<void>((resolve, reject) => {
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => resolve());
  });
  const { port } = s.address() as AddressInfo;
  const url = `http://127.0.0.1:${port}`;
  return {
    url,
    realm: `${url}/token`,
    service: opts.service,
    issuer: opts.issuer,
    certFile,
    keyFile,
    requests,
    count: (o = {}) => (o.issuedOnly ? requests.filter((r) => r.status === 200).length : requests.length),
    issue,
    close,
  };
}
