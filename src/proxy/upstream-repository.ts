// An upstream repository as the pull-through cache serves it: which upstream (and its client and
// freshness settings), the name there, and the name its cached content has here.
import type { UpstreamInfo } from './upstream-failure.js';
import type { UpstreamFetcher } from './upstream-fetcher.js';
import type { EventRequest } from '../events/event.js';
import type { CacheOutcome, RequestContext } from '../registry/registry.js';

/** One configured upstream, as every repository routed to it shares it. */
export interface UpstreamSettings {
  readonly upstream: UpstreamInfo;
  readonly client: UpstreamFetcher;
  /** How long a tag's resolution is trusted before it is revalidated (upstreams[].tagTTL). */
  readonly tagTtlMs: number;
  /** How long tag lists and referrers are cached (upstreams[].listTTL). */
  readonly listTtlMs: number;
  /** The slowest blob download worth waiting for (upstreams[].timeouts.minRate). */
  readonly minRate?: { bytesPerSecond: number; windowMs: number };
}

export interface UpstreamRepository extends UpstreamSettings {
  /** Name at the upstream. */
  readonly remote: string;
  /** Name of the cache here. */
  readonly name: string;
  /** The request this repository serves: named in the fill events it causes. */
  readonly request?: EventRequest;
  /** The client request this repository object serves, if any. */
  readonly ctx?: RequestContext;
}

/** Notes how the cache answered the request `repo` serves (its log line and the metrics read it). */
export function noteCache(repo: UpstreamRepository, kind: 'manifest' | 'blob', outcome: CacheOutcome): void {
  if (repo.ctx) repo.ctx.cache = { kind, outcome, upstream: repo.upstream.name };
}
