// The collector's options from configuration: one mapping for the schedule, `wharf gc` and /api/gc.
import type { GcOptions } from '../gc/collector.js';
import { parseDuration } from './duration.js';
import type { WharfConfig } from './schema.js';
import { parseSize } from './size.js';

export function gcOptionsFrom(config: WharfConfig, dryRun = false): GcOptions {
  return {
    grace: parseDuration(config.gc.grace),
    deleteUntagged: config.gc.deleteUntagged,
    cacheMaxAge: parseDuration(config.cache.maxAge),
    cacheMaxSize: parseSize(config.cache.maxSize),
    uploadsMaxAge: parseDuration(config.uploads.maxAge),
    dryRun,
  };
}
