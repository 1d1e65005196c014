// Runs the UploadSessions contract against SQLite, in memory and on a file.
import t from 'tap';
import { SqliteRegistryMetadata } from '../../src/metadata/sqlite-registry-metadata.js';
import { SqliteUploadSessions } from '../../src/metadata/sqlite-upload-sessions.js';
import { uploadSessionsContract } from './upload-sessions.contract.js';
import { sqliteTargets } from './sqlite-fixture.js';

for (const [name, open] of sqliteTargets(t).openers) {
  void uploadSessionsContract(t, name, async (t) => {
    const database = open(t);
    return { uploads: new SqliteUploadSessions(database), metadata: new SqliteRegistryMetadata(database) };
  });
}
