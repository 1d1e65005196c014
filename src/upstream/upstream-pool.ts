// One UpstreamClient per configured upstream, sharing one token store.
import Keyv from 'keyv';
import type { WharfConfig } from '../config/schema.js';
import { UpstreamClient } from './upstream-client.js';
import type { UpstreamLogger } from './upstream-logger.js';

export interface UpstreamsOptions {
  /** Token store shared by every upstream (and every node, when it is PostgreSQL). Default: in memory. */
  tokens?: Keyv;
  logger?: UpstreamLogger;
}

export class Upstreams {
  private readonly clients = new Map<string, UpstreamClient>();
  readonly tokens: Keyv;

  constructor(config: Pick<WharfConfig, 'upstreams'>, options: UpstreamsOptions = {}) {
    this.tokens = options.tokens ?? new Keyv();
    for (const u of config.upstreams) {
      if (this.clients.has(u.name)) throw new Error(`two upstreams are named "${u.name}"`);
      this.clients.set(u.name, new UpstreamClient(u, { tokens: this.tokens, logger: options.logger }));
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

  async close(): Promise<void> {
    await Promise.all([...this.clients.values()].map((c) => c.close()));
  }
}
