// A complete UpstreamConfig for tests that build an UpstreamClient directly: the schema's defaults,
// short timeouts, and whatever the test sets.
import type { UpstreamConfig } from '../../src/config/schema.js';

export function upstreamConfig(url: string, over: Partial<UpstreamConfig> = {}): UpstreamConfig {
  return {
    name: 'ref',
    url,
    registry: new URL(url).host,
    default: false,
    allowedRealms: [],
    tagTTL: '5m',
    listTTL: '30s',
    timeouts: { connect: '5s', headers: '10s', bodyIdle: '10s', minRate: '1KiB', minRateWindow: '30s' },
    ...over,
  };
}
