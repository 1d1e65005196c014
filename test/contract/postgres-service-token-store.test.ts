// Runs the ServiceTokenStore contract against PostgreSQL (the real server, a schema per test).
import t from 'tap';
import { PostgresServiceTokenStore } from '../../src/auth/postgres-service-token-store.js';
import { PostgresRegistryMetadata } from '../../src/metadata/postgres-registry-metadata.js';
import { openTestDatabase } from '../helpers/postgres.js';
import { serviceTokenStoreContract } from './service-token-store.contract.js';

void serviceTokenStoreContract(t, 'postgres', async (t) => {
  const database = await openTestDatabase(t);
  return { tokens: new PostgresServiceTokenStore(database), metadata: new PostgresRegistryMetadata(database) };
});
