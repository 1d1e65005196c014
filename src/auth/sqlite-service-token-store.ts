// The service tokens in the shared SQLite database (the service_tokens table of the metadata schema).
import type Database from 'better-sqlite3';
import type { SqliteDatabase } from '../metadata/sqlite-database.js';
import type { ServiceTokenRecord, ServiceTokenStore } from './service-token-store.js';
import { toServiceToken, type ServiceTokenRow } from './service-token-row.js';

export class SqliteServiceTokenStore implements ServiceTokenStore {
  readonly #s;
  readonly #createTx: Database.Transaction<(rec: ServiceTokenRecord) => void>;

  constructor(database: SqliteDatabase) {
    const db = database.connection;
    const s = (this.#s = {
      create: db.prepare<[string, string, string, string, number, number | null, number | null, number | null]>(
        `INSERT INTO service_tokens
           (id, name, secret_hash, scopes, created_at, expires_at, revoked_at, last_used_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
      ),
      activeNamed: db.prepare<[string], { id: string }>('SELECT id FROM service_tokens WHERE name = ? AND revoked_at IS NULL'),
      get: db.prepare<[string], ServiceTokenRow>('SELECT * FROM service_tokens WHERE id = ?'),
      list: db.prepare<[], ServiceTokenRow>('SELECT * FROM service_tokens ORDER BY created_at, id'),
      revoke: db.prepare<[number, string]>('UPDATE service_tokens SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL'),
      touch: db.prepare<[number, string]>('UPDATE service_tokens SET last_used_at = MAX(COALESCE(last_used_at, 0), ?) WHERE id = ?'),
    });
    // The name check and the insert share one write transaction, so two processes (server and CLI)
    // cannot both take a name; the partial unique index is the backstop.
    this.#createTx = db.transaction((rec: ServiceTokenRecord) => {
      if (rec.revokedAt === null && s.activeNamed.get(rec.name) !== undefined) {
        throw new Error(`service token name "${rec.name}" is already taken by an active token`);
      }
      s.create.run(rec.id, rec.name, rec.secretHash, JSON.stringify(rec.scopes), rec.createdAt, rec.expiresAt, rec.revokedAt, rec.lastUsedAt);
    });
  }

  async createServiceToken(rec: ServiceTokenRecord): Promise<void> {
    this.#createTx.immediate(rec);
  }

  async getServiceToken(id: string): Promise<ServiceTokenRecord | undefined> {
    const row = this.#s.get.get(id);
    return row === undefined ? undefined : toServiceToken(row);
  }

  async listServiceTokens(): Promise<ServiceTokenRecord[]> {
    return this.#s.list.all().map(toServiceToken);
  }

  async revokeServiceToken(id: string, at: number): Promise<boolean> {
    return this.#s.revoke.run(at, id).changes > 0;
  }

  async touchServiceToken(id: string, at: number): Promise<void> {
    this.#s.touch.run(at, id);
  }
}
