// Runs the GcState contract against PostgreSQL (the real server, a schema per test).
import t from 'tap';
import { PostgresGcState } from '../../src/metadata/postgres-gc-state.js';
import { PostgresRegistryMetadata } from '../../src/metadata/postgres-registry-metadata.js';
import { openTestDatabase } from '../helpers/postgres.js';
import { gcStateContract } from './gc-state.contract.js';

void gcStateContract(t, 'postgres', async (t) => {
  const database = await openTestDatabase(t);
  const gc = new PostgresGcState(database);
  // The mark's connection goes back to the pool before the pool closes.
  t.teardown(() => gc.endMark());
  return { gc, metadata: new PostgresRegistryMetadata(database) };
});
