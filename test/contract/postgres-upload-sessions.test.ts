// Runs the UploadSessions contract against PostgreSQL (the real server, a schema per test).
import t from 'tap';
import { PostgresRegistryMetadata } from '../../src/metadata/postgres-registry-metadata.js';
import { PostgresUploadSessions } from '../../src/metadata/postgres-upload-sessions.js';
import { openTestDatabase } from '../helpers/postgres.js';
import { uploadSessionsContract } from './upload-sessions.contract.js';

void uploadSessionsContract(t, 'postgres', async (t) => {
  const database = await openTestDatabase(t);
  return { uploads: new PostgresUploadSessions(database), metadata: new PostgresRegistryMetadata(database) };
});
