// The configured stores (the data directory, the metadata database), opened for gc, fsck and token as
// `serve` opens them.
import { existsSync } from 'node:fs';
import type { WharfConfig } from '../config/schema.js';
import type { MetadataStores } from '../stores.js';
import type { BlobStore } from '../storage/blob-store.js';
import { metadataPath } from '../storage/paths.js';
import { helpOption, type CliIo } from './command.js';
import { loadCliConfig } from './config.js';

/** The options of every command that works on a data directory. */
export const storeOptions = {
  ...helpOption,
  config: { type: 'string', short: 'c' },
  data: { type: 'string', short: 'd' },
} as const;

export interface StoreFlags {
  config?: string;
  data?: string;
}

/** The stores of the configured data directory, as `serve` opens them; closed after `fn`. */
export async function withStores<T>(
  io: CliIo,
  flags: StoreFlags,
  fn: (stores: MetadataStores & { config: WharfConfig; blobs: BlobStore }) => Promise<T>,
): Promise<T> {
  return withMetadata(io, flags, async (config, stores) => {
    const { openBlobStore } = await import('../storage/open-blob-store.js');
    return fn({ ...stores, config, blobs: await openBlobStore(config.storage) });
  });
}

/**
 * Runs `fn` against the configured metadata database, the one `serve` opens: the SQLite file in the
 * data directory (which waits on a server's write lock, busy_timeout, instead of failing) or the
 * PostgreSQL database of metadata.postgres.
 */
export async function withMetadata<T>(io: CliIo, flags: StoreFlags, fn: (config: WharfConfig, stores: MetadataStores) => Promise<T>): Promise<T> {
  const config = loadCliConfig(io, flags);
  // These commands work on a store that serve created; opening a place that holds none would create
  // an empty one there and report on it as if all were well (a mistyped --data, a wrong config).
  const file = metadataPath(config.storage.path);
  if (!config.metadata.postgres && !existsSync(file)) {
    throw new Error(`${config.storage.path} holds no Wharf store (no ${file}): check --data, --config or storage.path; wharf serve creates the store`);
  }
  // Loaded here, not at the top: verify-config and print-schema do not need the database driver.
  const { openMetadataStores } = await import('../stores.js');
  const stores = await openMetadataStores(config, { create: false });
  try {
    return await fn(config, stores);
  } finally {
    await stores.close();
  }
}
