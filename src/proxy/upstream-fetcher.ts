// What the proxy needs of an upstream client (src/upstream/upstream-client.ts implements it).
import type { Readable } from 'node:stream';
import type { UpstreamLogger } from '../upstream/upstream-logger.js';

export interface UpstreamFetchRequest {
  method: 'GET' | 'HEAD';
  /** Path at the upstream, e.g. /v2/library/alpine/manifests/latest. */
  path: string;
  /** Remote repository name, for the pull scope of a token. */
  repository: string;
  headers?: Record<string, string>;
  /** The logger of the client request this call serves. */
  log?: UpstreamLogger;
}

export interface UpstreamFetchResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  /** Must be consumed or discarded by the caller. */
  body: Readable;
}

export interface UpstreamFetcher {
  request(req: UpstreamFetchRequest): Promise<UpstreamFetchResponse>;
}
