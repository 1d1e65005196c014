// The service tokens on PostgreSQL (the service_tokens table of the metadata schema).
import type { PostgresDatabase } from '../metadata/postgres-database.js';
import type { ServiceTokenRecord, ServiceTokenStore } from './service-token-store.js';
import { toServiceToken, type ServiceTokenRow } from './service-token-row.js';

/** The partial unique index that keeps active names unique (migrations/postgres.ts). */
const ACTIVE_NAME = 'service_tokens_active_name';

export class PostgresServiceTokenStore implements ServiceTokenStore {
  constructor(private readonly db: PostgresDatabase) {}

  async createServiceToken(rec: ServiceTokenRecord): Promise<void> {
    // Two nodes creating the same name at once cannot both pass a check made before the insert, so
    // the unique index on active names decides, and its violation is said as the name being taken.
    try {
      await this.db.query(
        `INSERT INTO service_tokens (id, name, secret_hash, scopes, created_at, expires_at, revoked_at, last_used_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
        [rec.id, rec.name, rec.secretHash, JSON.stringify(rec.scopes), rec.createdAt, rec.expiresAt, rec.revokedAt, rec.lastUsedAt],
      );
    } catch (err) {
      const e = err as { code?: string; constraint?: string };
      if (e.code === '23505' && e.constraint === ACTIVE_NAME) {
        throw new Error(`service token name "${rec.name}" is already taken by an active token`, { cause: err });
      }
      throw err;
    }
  }

  async getServiceToken(id: string): Promise<ServiceTokenRecord | undefined> {
    const row = (await this.db.query<ServiceTokenRow>('SELECT * FROM service_tokens WHERE id = $1', [id])).rows[0];
    return row === undefined ? undefined : toServiceToken(row);
  }

  async listServiceTokens(): Promise<ServiceTokenRecord[]> {
    return (await this.db.query<ServiceTokenRow>('SELECT * FROM service_tokens ORDER BY created_at, id')).rows.map(toServiceToken);
  }

  async revokeServiceToken(id: string, at: number): Promise<boolean> {
    return (await this.db.query('UPDATE service_tokens SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL', [at, id])).rowCount! > 0;
  }

  async touchServiceToken(id: string, at: number): Promise<void> {
    await this.db.query('UPDATE service_tokens SET last_used_at = GREATEST(COALESCE(last_used_at, 0), $1) WHERE id = $2', [at, id]);
  }
}
