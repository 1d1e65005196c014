// What the upstream clients tell whoever watches them (metrics, the statistics of /api/stats): one
// call per exchange with an upstream (headers received, or the request failed) and the body bytes as
// they arrive. Called on the request path: implementations only count.

export interface UpstreamExchange {
  upstream: string;
  method: string;
  /** The response status; undefined when no response came (connection refused, timeout, ...). */
  status?: number;
  /** Time to the response headers (or to the failure). */
  ms: number;
  /** Why it failed, when it did: no response, a 5xx or a 429. */
  error?: string;
}

export interface UpstreamObserver {
  exchange(e: UpstreamExchange): void;
  bytes(upstream: string, n: number): void;
}
