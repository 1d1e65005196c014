// Runs the ServiceTokenStore contract against SQLite, in memory and on a file.
import t from 'tap';
import { SqliteServiceTokenStore } from '../../src/auth/sqlite-service-token-store.js';
import { SqliteRegistryMetadata } from '../../src/metadata/sqlite-registry-metadata.js';
import { serviceTokenStoreContract } from './service-token-store.contract.js';
import { sqliteTargets } from './sqlite-fixture.js';

for (const [name, open] of sqliteTargets(t).openers) {
  void serviceTokenStoreContract(t, name, async (t) => {
    const database = open(t);
    return { tokens: new SqliteServiceTokenStore(database), metadata: new SqliteRegistryMetadata(database) };
  });
}
