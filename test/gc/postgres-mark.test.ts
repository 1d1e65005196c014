// The collector's mark reads whole tables: on PostgreSQL it runs without statementTimeout (a limit
// meant for requests), on a connection of its own that is closed afterwards, so the pool's
// connections keep their limit.
import t from 'tap';
import { MetadataUnavailableError } from '../../src/metadata/metadata-errors.js';
import { PostgresDatabase, quoteIdent } from '../../src/metadata/postgres-database.js';
import { PostgresGcState } from '../../src/metadata/postgres-gc-state.js';
import { adminQuery, POSTGRES_URL, tempSchema } from '../helpers/postgres.js';

const HOUR = 3_600_000;

t.test('a mark longer than statementTimeout completes; requests keep the limit', async (t) => {
  const open: PostgresDatabase[] = [];
  const schema = await tempSchema(t, () => Promise.all(open.map((d) => d.close())));
  open.push(await PostgresDatabase.open({ url: POSTGRES_URL, schema }));
  // 50,000 untagged manifests, written directly: more than any statement of 1 ms can read.
  const s = quoteIdent(schema);
  await adminQuery(`INSERT INTO ${s}.repositories (name, created_at) VALUES ('r', 0)`);
  await adminQuery(
    `INSERT INTO ${s}.manifests (repo, digest, media_type, size, created_at, last_access_at)
     SELECT 'r', 'sha256:' || lpad(to_hex(i), 64, '0'), 'x', 1, 0, 0 FROM generate_series(1, 50000) AS i`,
  );
  const limited = await PostgresDatabase.open({ url: POSTGRES_URL, schema, statementTimeoutMs: 1 });
  open.push(limited);
  await t.rejects(limited.query('SELECT pg_sleep(0.5)'), MetadataUnavailableError, 'a request statement is cut at 1 ms');
  const gc = new PostgresGcState(limited);
  t.teardown(() => gc.endMark());
  const marked = await gc.mark({ cutoff: Date.now() + HOUR, deleteUntagged: true, activeBlobs: [] });
  t.equal(marked.manifests, 50_000, 'the mark ran to the end');
  await gc.endMark();
  await t.rejects(limited.query('SELECT pg_sleep(0.5)'), MetadataUnavailableError, 'the pool still has its limit');
});
