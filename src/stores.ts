// The metadata stores a configuration names, opened the same way for `serve` (app.ts) and for the
// CLI's gc, fsck and token: the SQLite file in storage.path, or, with metadata.postgres, the
// PostgreSQL database that several nodes share. Part of the composition root, beside app.ts.
import type { PostgresConfig, WharfConfig } from './config/schema.js';
import type { ServiceTokenStore } from './auth/service-token-store.js';
import type { GcState } from './metadata/gc-state.js';
import type { FillLeases } from './metadata/fill-leases.js';
import type { PostgresExpiredRows } from './metadata/postgres-expired-rows.js';
import type { MetadataChangeFeed } from './metadata/metadata-changes.js';
import type Keyv from 'keyv';
import type { RegistryMetadata } from './metadata/registry-metadata.js';
import type { UploadSessions } from './metadata/upload-sessions.js';
import type { SqliteDatabase } from './metadata/sqlite-database.js';
import { metadataPath } from './storage/paths.js';

/** The four stores over one database, and how to close it. */
export interface MetadataStores {
  metadata: RegistryMetadata;
  uploads: UploadSessions;
  gc: GcState;
  tokens: ServiceTokenStore;
  /** Where the metadata is, for messages: the SQLite file, or PostgreSQL's host:port/database. */
  where: string;
  /** Changes made by other nodes sharing the database (PostgreSQL); none for a SQLite file. */
  changes?: MetadataChangeFeed;
  /** A TTL cache shared by the nodes on the database, under `namespace` (PostgreSQL); none for a SQLite file. */
  sharedCache?: (namespace: string, onError: (err: unknown) => void) => Keyv;
  /** Which node fills which cold blob for the cluster (PostgreSQL); none for a SQLite file. */
  fillLeases?: FillLeases;
  /** Purges the expired rows of the shared caches and of fill leases (PostgreSQL); none for a SQLite file. */
  expiredRows?: PostgresExpiredRows;
  /** One trivial query: resolves when the database answers (GET /readyz). */
  ping(): Promise<void>;
  close(): Promise<void>;
}

export interface OpenStoresOptions {
  /** false: refuse a database that holds no Wharf store instead of creating one (the CLI). Default true. */
  create?: boolean;
  /** Errors of idle PostgreSQL connections (the server went away); logged by serve. */
  onIdleError?: (err: Error) => void;
}

/** Opens the configured metadata database and its stores (the schema brought up to date). */
export async function openMetadataStores(config: WharfConfig, opts: OpenStoresOptions = {}): Promise<MetadataStores> {
  const pg: PostgresConfig | undefined = config.metadata.postgres;
  if (pg) return openPostgres(pg, opts);
  const { SqliteDatabase } = await import('./metadata/sqlite-database.js');
  const file = metadataPath(config.storage.path);
  return sqliteStores(SqliteDatabase.open(file), file);
}

/** The stores over an open SQLite database (closed with them). */
export async function sqliteStores(database: SqliteDatabase, where: string): Promise<MetadataStores> {
  // Loaded here: a PostgreSQL node never loads the SQLite stores, and the reverse.
  const [{ SqliteRegistryMetadata }, { SqliteUploadSessions }, { SqliteGcState }, { SqliteServiceTokenStore }] = await Promise.all([
    import('./metadata/sqlite-registry-metadata.js'),
    import('./metadata/sqlite-upload-sessions.js'),
    import('./metadata/sqlite-gc-state.js'),
    import('./auth/sqlite-service-token-store.js'),
  ]);
  return {
    metadata: new SqliteRegistryMetadata(database),
    uploads: new SqliteUploadSessions(database),
    gc: new SqliteGcState(database),
    tokens: new SqliteServiceTokenStore(database),
    where,
    ping: async () => {
      database.connection.prepare('SELECT 1').get();
    },
    close: () => database.close(),
  };
}

async function openPostgres(pg: PostgresConfig, opts: OpenStoresOptions): Promise<MetadataStores> {
  const [{ PostgresDatabase }, { PostgresRegistryMetadata }, { PostgresUploadSessions }, { PostgresGcState }, { PostgresServiceTokenStore }, { sharedKeyv }, { PostgresFillLeases }, { PostgresExpiredRows }] = await Promise.all([
    import('./metadata/postgres-database.js'),
    import('./metadata/postgres-registry-metadata.js'),
    import('./metadata/postgres-upload-sessions.js'),
    import('./metadata/postgres-gc-state.js'),
    import('./auth/postgres-service-token-store.js'),
    import('./metadata/postgres-keyv.js'),
    import('./metadata/postgres-fill-leases.js'),
    import('./metadata/postgres-expired-rows.js'),
  ]);
  const database = await PostgresDatabase.open({
    url: pg.url,
    ...(pg.password !== undefined ? { password: pg.password } : {}),
    poolSize: pg.poolSize,
    connectTimeoutMs: pg.connectTimeout,
    statementTimeoutMs: pg.statementTimeout,
    idleTimeoutMs: pg.idleTimeout,
    create: opts.create ?? true,
    ...(opts.onIdleError ? { onIdleError: opts.onIdleError } : {}),
  });
  return {
    metadata: new PostgresRegistryMetadata(database),
    uploads: new PostgresUploadSessions(database),
    gc: new PostgresGcState(database),
    tokens: new PostgresServiceTokenStore(database),
    where: `PostgreSQL at ${database.where}`,
    changes: database.changes,
    sharedCache: (namespace, onError) => sharedKeyv(database, namespace, onError),
    fillLeases: new PostgresFillLeases(database),
    expiredRows: new PostgresExpiredRows(database),
    ping: async () => {
      await database.query('SELECT 1');
    },
    close: () => database.close(),
  };
}
