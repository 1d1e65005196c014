// Runs the RegistryMetadata contract against SQLite, in memory and on a file.
import t from 'tap';
import { SqliteRegistryMetadata } from '../../src/metadata/sqlite-registry-metadata.js';
import { SqliteDatabase } from '../../src/metadata/sqlite-database.js';
import { registryMetadataContract } from './registry-metadata.contract.js';
import { sqliteTargets } from './sqlite-fixture.js';
import { manifestDetailsSql, oneRepositorySql, repositoryPageSql, repositoryStatsSql, tagDetailsSql } from '../../src/metadata/inventory-queries.js';

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

t.test("the management API's statements look rows up by key, never scanning a table or a repository per row", async (t) => {
  const database = SqliteDatabase.open(':memory:');
  t.teardown(() => database.close());
  const P = { repo: '@repo', last: '@last', n: '@n' };
  const plan = (sql: string, args: Record<string, unknown>): string[] =>
    (database.connection.prepare(`EXPLAIN QUERY PLAN ${sql}`).all(args) as Array<{ detail: string }>).map((r) => r.detail);
  const tables = /^SCAN (repositories|manifests|tags|manifest_refs|blobs|repo_blobs)\b/;
  for (const [name, lines] of [
    ['repository page', plan(repositoryStatsSql(repositoryPageSql(P)), { last: '', n: 10 })],
    ['one repository', plan(repositoryStatsSql(oneRepositorySql(P)), { repo: 'a' })],
  ] as const) {
    // m = manifests, t = tags, r = manifest_refs, bl = blobs: looked up for each repository of the page.
    t.notOk(lines.some((l) => /^SCAN (r|m|bl|t)\b/.test(l) || tables.test(l)), `${name}: no table scanned`, { lines });
    for (const alias of ['m', 't', 'r']) {
      t.ok(lines.some((l) => l.startsWith(`SEARCH ${alias} USING`) && l.includes('(repo=?)')), `${name}: ${alias} by repository`, { lines });
    }
  }
  for (const [name, lines] of [
    ['tag details', plan(tagDetailsSql(P), { repo: 'a', last: '', n: 10 })],
    ['manifest details', plan(manifestDetailsSql(P), { repo: 'a', last: '', n: 10 })],
  ] as const) {
    // r = manifest_refs, m = manifests, bl = blobs, t = tags: each looked up for a row of the page.
    t.notOk(lines.some((l) => /^SCAN (r|m|bl|t)\b/.test(l) || tables.test(l)), `${name}: no table scanned`, { lines });
    const refs = lines.filter((l) => l.startsWith('SEARCH r '));
    t.ok(refs.length >= 2 && refs.every((l) => l.includes('manifest_digest=?')), `${name}: references by manifest, not the whole repository's`, { lines });
  }
});
