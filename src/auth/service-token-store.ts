// ServiceTokenStore: where service tokens are kept (src/auth/service-tokens.ts issues and checks them).
// Every driver passes test/contract/service-token-store.contract.ts; the SQLite one is
// sqlite-service-token-store.ts, in the database the metadata stores share.
import type { TokenScope } from './types.js';

/**
 * A service token for automation. The secret itself is never stored: only its hash (the token
 * string is shown once, at creation; see service-tokens.ts).
 */
export interface ServiceTokenRecord {
  /** Short random id, [a-z0-9]{12}; part of the token string, so a token is looked up without scanning. */
  id: string;
  /** The Basic-auth user name to use with the token; unique among tokens that are not revoked. */
  name: string;
  /** Hex SHA-256 of the secret part of the token. */
  secretHash: string;
  scopes: TokenScope[];
  /** Milliseconds since the epoch; null = never. */
  createdAt: number;
  expiresAt: number | null;
  revokedAt: number | null;
  lastUsedAt: number | null;
}

export interface ServiceTokenStore {
  /** Rejects with an Error saying the name is taken when a token that is not revoked has the same name. */
  createServiceToken(rec: ServiceTokenRecord): Promise<void>;
  getServiceToken(id: string): Promise<ServiceTokenRecord | undefined>;
  /** Every token, revoked and expired ones included, ordered by createdAt then id. */
  listServiceTokens(): Promise<ServiceTokenRecord[]>;
  /** Sets revokedAt; false when the token is absent or already revoked (the first revocation time is kept). */
  revokeServiceToken(id: string, at: number): Promise<boolean>;
  /** Sets lastUsedAt, never backwards (processes sharing the store may touch out of order); no-op when absent. */
  touchServiceToken(id: string, at: number): Promise<void>;
}
