// The stores of the configured data directory, opened for gc, fsck and token as `serve` opens them.
import { existsSync } from 'node:fs';
import type { WharfConfig } from '../config/schema.js';
import type { MetadataStore } from '../metadata/metadata-store.js';
import type { FsBlobStore } from '../storage/fs-blob-store.js';
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
  fn: (stores: { config: WharfConfig; metadata: MetadataStore; blobs: FsBlobStore }) => Promise<T>,
): Promise<T> {
  return withMetadata(io, flags, async (config, metadata) => {
    const { FsBlobStore } = await import('../storage/fs-blob-store.js');
    return fn({ config, metadata, blobs: await FsBlobStore.open(config.storage.path) });
  });
}

/**
 * Runs `fn` against the metadata database of the configured data directory, the one `serve` opens.
 * The store waits on a server's write lock (busy_timeout) instead of failing.
 */
export async function withMetadata<T>(io: CliIo, flags: StoreFlags, fn: (config: WharfConfig, metadata: MetadataStore) => Promise<T>): Promise<T> {
  const config = loadCliConfig(io, flags);
  // These commands work on a store that serve created; opening a path that holds none would create
  // an empty one there and report on it as if all were well (a mistyped --data, a wrong config).
  const db = metadataPath(config.storage.path);
  if (!existsSync(db)) {
    throw new Error(`${config.storage.path} holds no Wharf store (no ${db}): check --data, --config or storage.path; wharf serve creates the store`);
  }
  // Loaded here, not at the top: verify-config and print-schema do not need the database driver.
  const { SqliteMetadataStore } = await import('../metadata/sqlite-metadata-store.js');
  const metadata = SqliteMetadataStore.open(db);
  try {
    return await fn(config, metadata);
  } finally {
    await metadata.close();
  }
}
