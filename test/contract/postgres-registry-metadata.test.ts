// Runs the RegistryMetadata contract against PostgreSQL (the real server, a schema per test).
import t from 'tap';
import { PostgresRegistryMetadata } from '../../src/metadata/postgres-registry-metadata.js';
import { openTestDatabase } from '../helpers/postgres.js';
import { registryMetadataContract } from './registry-metadata.contract.js';

void registryMetadataContract(t, 'postgres', async (t) => new PostgresRegistryMetadata(await openTestDatabase(t)));

t.test('rejects a negative or fractional page size', async (t) => {
  const store = new PostgresRegistryMetadata(await openTestDatabase(t));
  await t.rejects(store.listRepositories({ n: -1 }), RangeError);
  await t.rejects(store.listTags('r', { n: 1.5 }), RangeError);
});
