// The shared TTL caches of several nodes (DESIGN.md "Storage": upstream tag confirmations, upstream
// bearer tokens, listings) on keyv with @keyv/postgres, in the `keyv` table of the metadata database,
// with an in-process LRU in front: a key read once is answered from memory until its entry expires,
// so a hot key costs no query. A node sees another's entry on its first read of the key; an entry it
// already holds is kept until it expires (each entry says when, and keyv checks it on every read).
//
// @keyv/postgres opens a module-wide pool of its own; here its statements go through the store's
// pool instead (one set of connections, the configured timeouts, MetadataUnavailableError when the
// server is out of reach). While the server is out of reach, keyv reads miss and writes are kept in
// memory only: the callers then ask the upstream, as on a cold cache.
import KeyvPostgres from '@keyv/postgres';
import Keyv, { type KeyvStoreAdapter, type StoredData } from 'keyv';
import { LRUCache } from 'lru-cache';
import type { PostgresDatabase } from './postgres-database.js';

/** Entries held in memory per cache. */
const FRONT_ENTRIES = 10_000;

/** The expiry keyv wrote into a serialized entry ({"value":...,"expires":ms}), if any. */
function expiresOf(value: unknown): number | undefined {
  if (typeof value !== 'string') return undefined;
  try {
    const expires = (JSON.parse(value) as { expires?: unknown }).expires;
    return typeof expires === 'number' ? expires : undefined;
  } catch {
    return undefined;
  }
}

/** A keyv store: an LRU in this process in front of a shared store. */
class FrontedStore implements KeyvStoreAdapter {
  readonly opts: unknown;
  private readonly front = new LRUCache<string, NonNullable<unknown>>({ max: FRONT_ENTRIES, ttlAutopurge: false });

  constructor(private readonly shared: KeyvStoreAdapter) {
    this.opts = shared.opts;
  }

  get namespace(): string | undefined {
    return this.shared.namespace;
  }

  set namespace(namespace: string | undefined) {
    this.shared.namespace = namespace;
  }

  async get<Value>(key: string): Promise<StoredData<Value> | undefined> {
    const held = this.front.get(key);
    if (held !== undefined) return held;
    const value = await this.shared.get<Value>(key);
    if (value !== undefined && value !== null) this.hold(key, value);
    return value;
  }

  async set(key: string, value: unknown, ttl?: number): Promise<void> {
    if (value !== undefined && value !== null) this.hold(key, value, ttl);
    await this.shared.set(key, value, ttl);
  }

  async delete(key: string): Promise<boolean> {
    const held = this.front.delete(key);
    return (await this.shared.delete(key)) || held;
  }

  async clear(): Promise<void> {
    this.front.clear();
    await this.shared.clear();
  }

  on(event: string, listener: (...args: unknown[]) => void): this {
    this.shared.on(event, listener);
    return this;
  }

  private hold(key: string, value: NonNullable<unknown>, ttl?: number): void {
    const expires = expiresOf(value);
    const left = expires !== undefined ? expires - Date.now() : ttl;
    if (left !== undefined && left <= 0) return;
    this.front.set(key, value, left !== undefined ? { ttl: left } : {});
  }
}

/**
 * A keyv cache shared by every node on `database`, under `namespace` (one per use: 'tokens',
 * 'proxy'). `onError` hears the store's failures (keyv itself answers them as misses).
 */
export function sharedKeyv<T>(database: PostgresDatabase, namespace: string, onError: (err: unknown) => void): Keyv<T> {
  // @keyv/postgres calls connect() from its constructor: this subclass answers it with the store's
  // pool (the closure holds it; the subclass's own fields would not be set yet).
  class OnStorePool extends KeyvPostgres {
    override async connect(): Promise<(sql: string, values?: unknown[]) => Promise<unknown[]>> {
      return async (sql, values) => (await database.query(sql, values)).rows;
    }
  }
  // The table exists already (created with the schema, postgres-database.ts): the adapter's own
  // CREATE ... IF NOT EXISTS changes nothing.
  const store = new OnStorePool({ schema: database.schema, table: 'keyv' });
  const keyv = new Keyv<T>({ store: new FrontedStore(store), namespace });
  keyv.on('error', onError);
  return keyv;
}
