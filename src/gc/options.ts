// The collector's options from configuration: one mapping for the schedule, `wharf gc` and /api/gc.
import type { GcOptions } from './collector.js';
import type { WharfConfig } from '../config/schema.js';

export function gcOptionsFrom(config: WharfConfig, dryRun = false): GcOptions {
  return {
    grace: config.gc.grace,
    deleteUntagged: config.gc.deleteUntagged,
    cacheMaxAge: config.cache.maxAge,
    cacheMaxSize: config.cache.maxSize,
    uploadsMaxAge: config.uploads.maxAge,
    dryRun,
  };
}
