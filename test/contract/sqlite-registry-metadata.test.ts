// Runs the RegistryMetadata contract against SQLite, in memory and on a file.
import t from 'tap';
import { SqliteRegistryMetadata } from '../../src/metadata/sqlite-registry-metadata.js';
import { SqliteDatabase } from '../../src/metadata/sqlite-database.js';
import { registryMetadataContract } from './registry-metadata.contract.js';
import { sqliteTargets } from './sqlite-fixture.js';

for (const [name, open] of sqliteTargets(t).openers) {
  void registryMetadataContract(t, name, async (t) => new SqliteRegistryMetadata(open(t)));
}

t.test('rejects a negative or fractional page size', async (t) => {
  const database = SqliteDatabase.open(':memory:');
  t.teardown(() => database.close());
  const store = new SqliteRegistryMetadata(database);
  await t.rejects(store.listRepositories({ n: -1 }), RangeError);
  await t.rejects(store.listTags('r', { n: 1.5 }), RangeError);
});
