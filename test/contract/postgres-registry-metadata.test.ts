// Runs the RegistryMetadata contract against PostgreSQL (the real server, a schema per test).
import t from 'tap';
import { PostgresRegistryMetadata } from '../../src/metadata/postgres-registry-metadata.js';
import { openTestDatabase } from '../helpers/postgres.js';
import { registryMetadataContract } from './registry-metadata.contract.js';
import { manifestDetailsSql, repositoryPageSql, repositoryStatsSql, tagDetailsSql } from '../../src/metadata/inventory-queries.js';

void registryMetadataContract(t, 'postgres', async (t) => new PostgresRegistryMetadata(await openTestDatabase(t)));

t.test('rejects a negative or fractional page size', async (t) => {
  const store = new PostgresRegistryMetadata(await openTestDatabase(t));
  await t.rejects(store.listRepositories({ n: -1 }), RangeError);
  await t.rejects(store.listTags('r', { n: 1.5 }), RangeError);
});

t.test("the management API's statements look a page's rows up by key on a populated database, reading no whole table", async (t) => {
  const db = await openTestDatabase(t);
  // 5,000 repositories of 8 manifests, each with one blob and one tag; the planner told their sizes.
  await db.query(`INSERT INTO repositories SELECT 'r' || lpad(i::text, 5, '0'), 0 FROM generate_series(1, 5000) i`);
  await db.query(
    `INSERT INTO manifests (repo, digest, media_type, size, created_at, last_access_at)
     SELECT 'r' || lpad((i % 5000 + 1)::text, 5, '0'), 'sha256:' || lpad(i::text, 64, '0'), 'x', 100, 0, 0 FROM generate_series(1, 40000) i`,
  );
  await db.query(`INSERT INTO blobs SELECT 'b' || i, 10, 0, 0, true FROM generate_series(1, 40000) i`);
  await db.query(`INSERT INTO manifest_refs SELECT repo, digest, 'b' || substr(digest, 8)::bigint, 'blob' FROM manifests`);
  await db.query(`INSERT INTO tags SELECT repo, 't' || substr(digest, 60), digest, 0 FROM manifests`);
  await db.query('ANALYZE repositories, manifests, blobs, manifest_refs, tags');
  const plan = async (sql: string, values: unknown[]) => (await db.query(`EXPLAIN ${sql}`, values)).rows.map((r) => String(r['QUERY PLAN']));
  for (const [name, lines] of [
    ['repository page', await plan(repositoryStatsSql(repositoryPageSql({ repo: '', last: '$1', n: '$2' })), ['r02000', 100])],
    ['tag details', await plan(tagDetailsSql({ repo: '$1', last: '$2', n: '$3' }), ['r02000', '', 100])],
    ['manifest details', await plan(manifestDetailsSql({ repo: '$1', last: '$2', n: '$3' }), ['r02000', '', 100])],
  ] as const) {
    t.notOk(lines.some((l) => /Seq Scan on (repositories|manifests|blobs|manifest_refs|tags)\b/.test(l)), `${name}: no table read whole`, { lines });
  }
  const stats = await new PostgresRegistryMetadata(db).listRepositoryStats({ last: 'r02000', n: 2 });
  t.same(stats.map((r) => [r.name, r.size, r.manifestCount, r.tagCount]), [['r02001', 8 * 110, 8, 8], ['r02002', 8 * 110, 8, 8]]);
});
