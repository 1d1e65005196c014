// One UpstreamClient per configured upstream, sharing one token store.
import Keyv from 'keyv';
import type { UpstreamProxy, WharfConfig } from '../config/schema.js';
import { UpstreamClient } from './upstream-client.js';
import type { UpstreamLogger } from './upstream-logger.js';
import type { UpstreamObserver } from './upstream-observer.js';

export interface UpstreamsOptions {
  /** Token store shared by every upstream (and every node, when it is PostgreSQL). Default: in memory. */
  tokens?: Keyv;
  /** Rate-limit values shared by every node (through PostgreSQL when configured). Default: none. */
  rateLimits?: Keyv;
  logger?: UpstreamLogger;
  /** Forward proxies for upstream traffic. Default: the configuration's (upstreamProxy), if any. */
  proxy?: UpstreamProxy;
  observer?: UpstreamObserver;
}

/** How long the start-up probe of an upstream may take; it is only a head start. */
const WARM_TIMEOUT_MS = 10_000;

export class Upstreams {
  private readonly clients = new Map<string, UpstreamClient>();
  readonly tokens: Keyv;

  constructor(config: Pick<WharfConfig, 'upstreams' | 'upstreamProxy'>, options: UpstreamsOptions = {}) {
    this.tokens = options.tokens ?? new Keyv();
    for (const u of config.upstreams) {
      if (this.clients.has(u.name)) throw new Error(`two upstreams are named "${u.name}"`);
      this.clients.set(u.name, new UpstreamClient(u, { tokens: this.tokens, rateLimits: options.rateLimits, logger: options.logger, proxy: options.proxy ?? config.upstreamProxy, observer: options.observer }));
    }
  }

  /** The client for a configured upstream; throws for a name that is not configured (a routing bug). */
  get(name: string): UpstreamClient {
    const c = this.clients.get(name);
    if (!c) throw new Error(`no upstream named "${name}" is configured`);
    return c;
  }

  has(name: string): boolean {
    return this.clients.has(name);
  }

  get names(): string[] {
    return [...this.clients.keys()];
  }

  /**
   * Asks every upstream for /v2/ once, in the background. The first pull would otherwise pay for
   * what this does: undici's lazy set-up (its WebAssembly parser compiled on the first connection,
   * ~15 ms), the connection itself (kept alive for the next request), and for an upstream with
   * token auth the 401 round trip that tells its realm. Never throws.
   */
  warm(): void {
    for (const c of this.clients.values()) void c.ping(AbortSignal.timeout(WARM_TIMEOUT_MS));
  }

  async close(): Promise<void> {
    await Promise.all([...this.clients.values()].map((c) => c.close()));
  }
}
