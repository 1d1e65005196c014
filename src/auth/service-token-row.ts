// A row of the service_tokens table as both drivers read it back, and the record it stands for.
import type { ServiceTokenRecord } from './service-token-store.js';
import type { TokenScope } from './types.js';

export interface ServiceTokenRow {
  id: string;
  name: string;
  secret_hash: string;
  scopes: string;
  created_at: number;
  expires_at: number | null;
  revoked_at: number | null;
  last_used_at: number | null;
}

export function toServiceToken(row: ServiceTokenRow): ServiceTokenRecord {
  return {
    id: row.id,
    name: row.name,
    secretHash: row.secret_hash,
    scopes: JSON.parse(row.scopes) as TokenScope[],
    createdAt: row.created_at,
    expiresAt: row.expires_at,
    revokedAt: row.revoked_at,
    lastUsedAt: row.last_used_at,
  };
}
