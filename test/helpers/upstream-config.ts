// A complete UpstreamConfig for tests that build an UpstreamClient directly: the schema's defaults,
// short timeouts, and whatever the test sets, in the loaded form (durations in ms, sizes in bytes).
import type { UpstreamConfig } from '../../src/config/schema.js';

export function upstreamConfig(url: string, over: Partial<UpstreamConfig> = {}): UpstreamConfig {
  return {
    name: 'ref',
    url,
    registry: new URL(url).host,
    default: false,
    allowedRealms: [],
    tls: { insecureSkipVerify: false },
    tagTTL: 300_000,
    listTTL: 30_000,
    timeouts: { connect: 5_000, headers: 10_000, bodyIdle: 10_000, minRate: 1024, minRateWindow: 30_000 },
    ...over,
  };
}
