// A minimal distribution-API upstream (node:http on 127.0.0.1:0) serving fixed content, for injecting
// network and HTTP faults between Wharf and its upstream. Not a registry: for real upstream behaviour
// use test/helpers/docker-registry.ts.
//
// Routes: GET /v2/ -> 200 {}; GET/HEAD /v2/NAME/manifests/(TAG|DIGEST); GET/HEAD /v2/NAME/blobs/DIGEST
// (any NAME); GET /v2/NAME/tags/list; anything else 404 with an OCI error body.
//
// Faults (one at a time, setFault; each may carry `match`, a substring the request path must contain,
// and `times`, after which many matching responses it stops applying):
//   status   -> every matching request (any route, HEAD too) gets that status, an OCI error body and
//               Retry-After if given;
//   offline  -> every open socket is destroyed at once and new connections are destroyed on accept;
//   drop, corrupt, truncate, stall, slow -> the body of matching successful GET responses of
//               manifests, blobs and tags/list (not of GET /v2/):
//     drop     headers with the full Content-Length, `afterBytes` body bytes, then a TCP reset;
//     truncate headers with the full Content-Length, `bytes` body bytes, then a clean close (FIN);
//     corrupt  one byte flipped (byte `atByte` of the content, default the middle), same length and
//              headers (Docker-Content-Digest still names the true digest);
//     stall    waits `ms` before the headers (no afterBytes) or after `afterBytes` body bytes, then
//              sends the rest;
//     slow     `bytesPerChunk` bytes every `delayMs`;
//     hold     headers, `afterBytes` body bytes, then the rest once `until` resolves (a fill caught
//              part way for as long as a test needs, with no timer).
// supportsRange: honour "Range: bytes=N-" / "bytes=N-M" on blobs with 206 + Content-Range (416 when
// unsatisfiable); faults then apply to the partial body (corrupt's atByte stays a content offset).
import { createHash } from 'node:crypto';
import {
  createServer,
  type IncomingHttpHeaders,
  type IncomingMessage,
  type OutgoingHttpHeaders,
  type ServerResponse,
} from 'node:http';
import type { AddressInfo, Socket } from 'node:net';

interface Teardownable {
  teardown(fn: () => unknown): void;
}

interface FaultCommon {
  /** Apply only to requests whose path contains this string. */
  match?: string;
  /** Apply only to the first N matching responses. */
  times?: number;
}

export type Fault = FaultCommon &
  (
    | { kind: 'drop'; afterBytes: number }
    | { kind: 'corrupt'; atByte?: number }
    | { kind: 'truncate'; bytes: number }
    | { kind: 'stall'; afterBytes?: number; ms: number }
    | { kind: 'status'; status: 500 | 429 | 401 | 503; retryAfter?: string }
    | { kind: 'slow'; bytesPerChunk: number; delayMs: number }
    | { kind: 'hold'; afterBytes: number; until: Promise<void> }
    | { kind: 'offline' }
  );

export interface FaultContent {
  manifests: Array<{ repo: string; tag?: string; digest: string; mediaType: string; body: Buffer }>;
  blobs: Array<{ digest: string; body: Buffer }>;
}

export interface FaultUpstreamOptions {
  /** Honour Range requests on blobs (default false: Range is ignored, 200 with the whole blob). */
  supportsRange?: boolean;
}

export interface FaultRequest {
  method: string;
  path: string;
  headers: IncomingHttpHeaders;
}

export interface FaultUpstream {
  /** http://127.0.0.1:PORT */
  url: string;
  /** 127.0.0.1:PORT */
  host: string;
  requests: FaultRequest[];
  /** Requests so far with this method (case-insensitive; '' or '*' for any) whose path contains pathIncludes. */
  count(method: string, pathIncludes: string): number;
  setFault(f: Fault | undefined): void;
  /** Mutable: whether Range requests are honoured. */
  supportsRange: boolean;
  /** How many responses the current fault has been applied to. */
  faultHits(): number;
  close(): Promise<void>;
}

/** A manifest/blob entry from raw bytes, digest computed. */
export function contentEntry(body: Buffer): { digest: string; body: Buffer } {
  return { digest: 'sha256:' + createHash('sha256').update(body).digest('hex'), body };
}

function ociError(code: string, message: string, detail?: unknown): string {
  return JSON.stringify({ errors: [{ code, message, ...(detail !== undefined ? { detail } : {}) }] });
}

const STATUS_CODES: Record<number, string> = {
  401: 'UNAUTHORIZED',
  429: 'TOOMANYREQUESTS',
  500: 'UNKNOWN',
  503: 'UNAVAILABLE',
};

export async function startFaultUpstream(
  t: Teardownable,
  content: FaultContent,
  opts: FaultUpstreamOptions = {},
): Promise<FaultUpstream> {
  const requests: FaultRequest[] = [];
  const sockets = new Set<Socket>();
  let fault: Fault | undefined;
  let hits = 0;
  let closed = false;

  const blobs = new Map(content.blobs.map((b) => [b.digest, b.body]));

  /** Claims the current fault for this response if it matches (and has uses left). */
  const claim = (path: string, kinds: ReadonlyArray<Fault['kind']>): Fault | undefined => {
    const f = fault;
    if (!f || !kinds.includes(f.kind)) return undefined;
    if (f.match !== undefined && !path.includes(f.match)) return undefined;
    if (f.times !== undefined && hits >= f.times) return undefined;
    hits++;
    return f;
  };

  const alive = (res: ServerResponse): boolean => !closed && !res.destroyed && !(res.socket?.destroyed ?? true);

  /** Resolves after ms, or early when the response's socket goes away. */
  const wait = (res: ServerResponse, ms: number): Promise<void> =>
    new Promise((resolve) => {
      const sock = res.socket;
      const done = (): void => {
        clearTimeout(timer);
        sock?.off('close', done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      sock?.once('close', done);
    });

  /** Writes a chunk; resolves once it is handed to the kernel (or the socket is gone). */
  const write = (res: ServerResponse, chunk: Buffer): Promise<void> =>
    new Promise((resolve) => {
      if (!alive(res) || chunk.length === 0) return resolve();
      const sock = res.socket;
      const done = (): void => {
        sock?.off('close', done);
        resolve();
      };
      sock?.once('close', done);
      res.write(chunk, () => done());
    });

  const sendBody = async (res: ServerResponse, path: string, body: Buffer, offset: number, headers: OutgoingHttpHeaders, status: number): Promise<void> => {
    const f = path === '/v2/' ? undefined : claim(path, ['drop', 'corrupt', 'truncate', 'stall', 'slow', 'hold']);
    if (!f) {
      res.writeHead(status, headers);
      res.end(body);
      return;
    }
    switch (f.kind) {
      case 'drop': {
        res.writeHead(status, headers);
        await write(res, body.subarray(0, f.afterBytes));
        await wait(res, 20);
        const sock = res.socket;
        if (sock && !sock.destroyed) sock.resetAndDestroy();
        return;
      }
      case 'truncate': {
        res.writeHead(status, headers);
        await write(res, body.subarray(0, Math.min(f.bytes, Math.max(0, body.length - 1))));
        res.socket?.end();
        return;
      }
      case 'corrupt': {
        const copy = Buffer.from(body);
        const at = (f.atByte ?? Math.floor((offset + body.length) / 2)) - offset;
        if (at >= 0 && at < copy.length) copy[at] = copy[at]! ^ 0xff;
        res.writeHead(status, headers);
        res.end(copy);
        return;
      }
      case 'stall': {
        if (f.afterBytes === undefined) {
          await wait(res, f.ms);
          if (!alive(res)) return;
          res.writeHead(status, headers);
          res.end(body);
          return;
        }
        res.writeHead(status, headers);
        await write(res, body.subarray(0, f.afterBytes));
        await wait(res, f.ms);
        if (!alive(res)) return;
        res.end(body.subarray(f.afterBytes));
        return;
      }
      case 'hold': {
        res.writeHead(status, headers);
        await write(res, body.subarray(0, f.afterBytes));
        const sock = res.socket;
        await new Promise<void>((resolve) => {
          sock?.once('close', () => resolve());
          void f.until.then(() => resolve());
        });
        if (alive(res)) res.end(body.subarray(f.afterBytes));
        return;
      }
      case 'slow': {
        res.writeHead(status, headers);
        const step = Math.max(1, f.bytesPerChunk);
        for (let off = 0; off < body.length; off += step) {
          if (off > 0) await wait(res, f.delayMs);
          if (!alive(res)) return;
          await write(res, body.subarray(off, off + step));
        }
        if (alive(res)) res.end();
        return;
      }
      default:
        res.writeHead(status, headers);
        res.end(body);
    }
  };

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const method = req.method ?? 'GET';
    const rawPath = req.url ?? '/';
    requests.push({ method, path: rawPath, headers: req.headers });
    req.resume();
    const path = rawPath.split('?')[0]!;
    const head = method === 'HEAD';
    const base: OutgoingHttpHeaders = { 'docker-distribution-api-version': 'registry/2.0' };

    const status = claim(rawPath, ['status']);
    if (status && status.kind === 'status') {
      const body = ociError(STATUS_CODES[status.status] ?? 'UNKNOWN', `injected ${status.status}`);
      const headers: OutgoingHttpHeaders = {
        ...base,
        'content-type': 'application/json',
        'content-length': Buffer.byteLength(body),
        ...(status.retryAfter !== undefined ? { 'retry-after': status.retryAfter } : {}),
        ...(status.status === 401 ? { 'www-authenticate': 'Basic realm="wharf-fault-upstream"' } : {}),
      };
      res.writeHead(status.status, headers);
      res.end(head ? undefined : body);
      return;
    }

    const notFound = (code: string, message: string, detail?: unknown): void => {
      const body = ociError(code, message, detail);
      res.writeHead(404, { ...base, 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
      res.end(head ? undefined : body);
    };

    if (method !== 'GET' && !head) {
      const body = ociError('UNSUPPORTED', 'the fault upstream is read-only');
      res.writeHead(405, { ...base, 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
      res.end(body);
      return;
    }

    if (path === '/v2/' || path === '/v2') {
      const body = Buffer.from('{}');
      const headers = { ...base, 'content-type': 'application/json', 'content-length': body.length };
      if (head) {
        res.writeHead(200, headers);
        res.end();
      } else await sendBody(res, '/v2/', body, 0, headers, 200);
      return;
    }

    let m = /^\/v2\/(.+)\/tags\/list$/.exec(path);
    if (m) {
      const repo = m[1]!;
      const tags = [...new Set(content.manifests.filter((x) => x.repo === repo && x.tag).map((x) => x.tag!))].sort();
      if (tags.length === 0 && !content.manifests.some((x) => x.repo === repo)) {
        notFound('NAME_UNKNOWN', 'repository name not known to registry', { name: repo });
        return;
      }
      const body = Buffer.from(JSON.stringify({ name: repo, tags }));
      const headers = { ...base, 'content-type': 'application/json', 'content-length': body.length };
      if (head) {
        res.writeHead(200, headers);
        res.end();
      } else await sendBody(res, rawPath, body, 0, headers, 200);
      return;
    }

    m = /^\/v2\/(.+)\/manifests\/([^/]+)$/.exec(path);
    if (m) {
      const repo = m[1]!;
      const ref = decodeURIComponent(m[2]!);
      const entry = content.manifests.find((x) => x.repo === repo && (x.tag === ref || x.digest === ref));
      if (!entry) {
        notFound('MANIFEST_UNKNOWN', 'manifest unknown', { name: repo, reference: ref });
        return;
      }
      const headers: OutgoingHttpHeaders = {
        ...base,
        'content-type': entry.mediaType,
        'content-length': entry.body.length,
        'docker-content-digest': entry.digest,
        etag: `"${entry.digest}"`,
      };
      if (head) {
        res.writeHead(200, headers);
        res.end();
      } else await sendBody(res, rawPath, entry.body, 0, headers, 200);
      return;
    }

    m = /^\/v2\/(.+)\/blobs\/([^/]+)$/.exec(path);
    if (m) {
      const digest = decodeURIComponent(m[2]!);
      const body = blobs.get(digest);
      if (!body) {
        notFound('BLOB_UNKNOWN', 'blob unknown to registry', { digest });
        return;
      }
      const headers: OutgoingHttpHeaders = {
        ...base,
        'content-type': 'application/octet-stream',
        'docker-content-digest': digest,
        etag: `"${digest}"`,
        ...(upstream.supportsRange ? { 'accept-ranges': 'bytes' } : {}),
      };
      const range = upstream.supportsRange ? req.headers.range : undefined;
      if (range !== undefined) {
        const r = /^bytes=(\d+)-(\d*)$/.exec(range.trim());
        const start = r ? Number(r[1]) : NaN;
        const end = r && r[2] !== '' ? Math.min(Number(r[2]), body.length - 1) : body.length - 1;
        if (!r || start >= body.length || end < start) {
          const err = ociError('RANGE_INVALID', 'requested range not satisfiable');
          res.writeHead(416, {
            ...base,
            'content-type': 'application/json',
            'content-length': Buffer.byteLength(err),
            'content-range': `bytes */${body.length}`,
          });
          res.end(head ? undefined : err);
          return;
        }
        const part = body.subarray(start, end + 1);
        const h = { ...headers, 'content-length': part.length, 'content-range': `bytes ${start}-${end}/${body.length}` };
        if (head) {
          res.writeHead(206, h);
          res.end();
        } else await sendBody(res, rawPath, part, start, h, 206);
        return;
      }
      const h = { ...headers, 'content-length': body.length };
      if (head) {
        res.writeHead(200, h);
        res.end();
      } else await sendBody(res, rawPath, body, 0, h, 200);
      return;
    }

    notFound('NOT_FOUND', 'not found', { path });
  };

  const server = createServer((req, res) => {
    handle(req, res).catch((err: unknown) => {
      if (!res.headersSent && alive(res)) {
        res.writeHead(500, { 'content-type': 'text/plain' });
        res.end(String(err));
      } else res.destroy();
    });
  });
  server.keepAliveTimeout = 5_000;
  server.on('connection', (sock) => {
    if (fault?.kind === 'offline' || closed) {
      sock.destroy();
      return;
    }
    sockets.add(sock);
    sock.on('close', () => sockets.delete(sock));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;

  const close = async (): Promise<void> => {
    if (closed) return;
    closed = true;
    await new Promise<void>((resolve) => {
      server.close(() => resolve());
      for (const s of sockets) s.destroy();
    });
  };
  t.teardown(close);

  const upstream: FaultUpstream = {
    url: `http://127.0.0.1:${port}`,
    host: `127.0.0.1:${port}`,
    requests,
    supportsRange: opts.supportsRange ?? false,
    count(method: string, pathIncludes: string): number {
      const any = method === '' || method === '*';
      return requests.filter((r) => (any || r.method.toUpperCase() === method.toUpperCase()) && r.path.includes(pathIncludes))
        .length;
    },
    setFault(f: Fault | undefined): void {
      fault = f;
      hits = 0;
      if (f?.kind === 'offline') {
        for (const s of sockets) s.destroy();
        sockets.clear();
      }
    },
    faultHits: () => hits,
    close,
  };
  return upstream;
}
