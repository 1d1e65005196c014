// Runs the GcState contract against SQLite, in memory and on a file.
import t from 'tap';
import { SqliteGcState } from '../../src/metadata/sqlite-gc-state.js';
import { SqliteRegistryMetadata } from '../../src/metadata/sqlite-registry-metadata.js';
import { gcStateContract } from './gc-state.contract.js';
import { sqliteTargets } from './sqlite-fixture.js';

for (const [name, open] of sqliteTargets(t).openers) {
  void gcStateContract(t, name, async (t) => {
    const database = open(t);
    return { gc: new SqliteGcState(database), metadata: new SqliteRegistryMetadata(database) };
  });
}
