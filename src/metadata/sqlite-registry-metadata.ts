// RegistryMetadata in the shared SQLite database: repositories, owners, blobs and links, manifests,
// their references, tags and referrers.
import type Database from 'better-sqlite3';
import type { Page } from '../oci/page.js';
import type { ManifestReference } from '../oci/references.js';
import type { SqliteDatabase } from './sqlite-database.js';
import { MissingContentError, storageUseOf } from './registry-metadata.js';
import { toManifest, type ManifestRow } from './metadata-rows.js';
import type { AccessBatch, BlobRecord, DeletedRepository, ManifestDetail, ManifestRecord, PutManifestInput, RegistryMetadata, RepositoryStats, StorageUse, TagDetail } from './registry-metadata.js';
import {
  manifestDetailsSql,
  oneRepositorySql,
  repositoryPageSql,
  repositoryStatsSql,
  tagDetailsSql,
  toManifestDetails,
  toRepositoryStats,
  toTagDetail,
  type ManifestDetailRow,
  type Params,
  type RepositoryStatsRow,
  type TagDetailRow,
} from './inventory-queries.js';

const NAMED: Params = { repo: '@repo', last: '@last', n: '@n' };

/** A repository name's first path component, in SQL. */
const NAMESPACE_OF = (column: string) => `CASE WHEN instr(${column}, '/') > 0 THEN substr(${column}, 1, instr(${column}, '/') - 1) ELSE ${column} END`;

interface BlobRow {
  digest: string;
  size: number;
  created_at: number;
  last_access_at: number;
  local: number;
}

function pageArgs(page: Page | undefined): [string, number] {
  const n = page?.n;
  if (n !== undefined && (!Number.isInteger(n) || n < 0)) {
    throw new RangeError(`page size must be a non-negative integer, got ${n}`);
  }
  // '' sorts before every non-empty name; LIMIT -1 means no limit in SQLite.
  return [page?.last ?? '', n ?? -1];
}

function toBlob(row: BlobRow): BlobRecord {
  return {
    digest: row.digest,
    size: row.size,
    createdAt: row.created_at,
    lastAccessAt: row.last_access_at,
    local: row.local === 1,
  };
}

export class SqliteRegistryMetadata implements RegistryMetadata {
  readonly #s;
  readonly #deleteTagTx: (repo: string, tag: string) => boolean;
  readonly #linkBlobTx: (repo: string, digest: string, now: number) => void;
  readonly #putManifestTx: (input: PutManifestInput, now: number) => void;
  readonly #deleteManifestTx: (repo: string, digest: string) => boolean;
  readonly #touchTx: (batch: AccessBatch) => void;
  readonly #deleteRepositoryTx: (repo: string) => DeletedRepository | undefined;

  constructor(database: SqliteDatabase) {
    const db: Database.Database = database.connection;
    this.#s = {
      ensureRepo: db.prepare<[string, number]>(
        'INSERT INTO repositories (name, created_at) VALUES (?, ?) ON CONFLICT (name) DO NOTHING',
      ),
      totalBytes: db.prepare<[], { n: number | null }>('SELECT SUM(size) AS n FROM blobs'),
      reposPerNamespace: db.prepare<[], { ns: string; n: number }>(
        `SELECT ${NAMESPACE_OF('name')} AS ns, COUNT(*) AS n FROM repositories GROUP BY ns`,
      ),
      bytesPerNamespace: db.prepare<[], { ns: string; n: number }>(
        `SELECT l.ns AS ns, SUM(b.size) AS n FROM (SELECT DISTINCT ${NAMESPACE_OF('repo')} AS ns, digest FROM repo_blobs) AS l JOIN blobs AS b ON b.digest = l.digest GROUP BY l.ns`,
      ),
      listRepos: db.prepare<[string, number], { name: string }>(
        'SELECT name FROM repositories WHERE name > ? ORDER BY name LIMIT ?',
      ),
      repoExists: db.prepare<[string], { one: number }>('SELECT 1 AS one FROM repositories WHERE name = ?'),
      repoOwner: db.prepare<[string], { owner: string }>('SELECT owner FROM repository_owners WHERE repo = ?'),
      claimRepo: db.prepare<[string, string, number]>(
        'INSERT INTO repository_owners (repo, owner, claimed_at) VALUES (?, ?, ?) ON CONFLICT (repo) DO NOTHING',
      ),

      putBlob: db.prepare<[string, number, number, number, number]>(
        `INSERT INTO blobs (digest, size, created_at, last_access_at, local) VALUES (?, ?, ?, ?, ?)
         ON CONFLICT (digest) DO UPDATE SET
           size = excluded.size,
           last_access_at = MAX(blobs.last_access_at, excluded.last_access_at),
           local = MAX(blobs.local, excluded.local)`,
      ),
      getBlob: db.prepare<[string], BlobRow>('SELECT * FROM blobs WHERE digest = ?'),
      linkBlob: db.prepare<[string, string]>(
        'INSERT INTO repo_blobs (repo, digest) VALUES (?, ?) ON CONFLICT (repo, digest) DO NOTHING',
      ),
      isLinked: db.prepare<[string, string], { one: number }>(
        'SELECT 1 AS one FROM repo_blobs WHERE repo = ? AND digest = ?',
      ),
      unlinkBlob: db.prepare<[string, string]>('DELETE FROM repo_blobs WHERE repo = ? AND digest = ?'),
      blobRepos: db.prepare<[string, number], { repo: string }>('SELECT repo FROM repo_blobs WHERE digest = ? ORDER BY repo LIMIT ?'),

      // A re-put makes the row fresh (the collector spares what was touched within its grace) and
      // a local push of a cached manifest makes it local (never evicted by the cache rules).
      putManifest: db.prepare<
        [string, string, string, number, string | null, string | null, string | null, number, number, number]
      >(
        `INSERT INTO manifests
           (repo, digest, media_type, size, subject, artifact_type, annotations, created_at, last_access_at, local)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
         ON CONFLICT (repo, digest) DO UPDATE SET
           media_type = excluded.media_type,
           size = excluded.size,
           subject = excluded.subject,
           artifact_type = excluded.artifact_type,
           annotations = excluded.annotations,
           last_access_at = MAX(manifests.last_access_at, excluded.last_access_at),
           local = MAX(manifests.local, excluded.local),
           released_at = NULL`,
      ),
      blobExists: db.prepare<[string], { one: number }>('SELECT 1 AS one FROM blobs WHERE digest = ?'),
      touchManifest: db.prepare<[number, number, string, string]>(
        'UPDATE manifests SET last_access_at = MAX(last_access_at, ?), pulled_at = MAX(COALESCE(pulled_at, 0), ?) WHERE repo = ? AND digest = ?',
      ),
      touchBlob: db.prepare<[number, string]>('UPDATE blobs SET last_access_at = MAX(last_access_at, ?) WHERE digest = ?'),
      getManifest: db.prepare<[string, string], ManifestRow>('SELECT * FROM manifests WHERE repo = ? AND digest = ?'),
      deleteManifest: db.prepare<[string, string]>('DELETE FROM manifests WHERE repo = ? AND digest = ?'),
      deleteRefs: db.prepare<[string, string]>('DELETE FROM manifest_refs WHERE repo = ? AND manifest_digest = ?'),
      insertRef: db.prepare<[string, string, string, string]>(
        `INSERT INTO manifest_refs (repo, manifest_digest, ref_digest, kind) VALUES (?, ?, ?, ?)
         ON CONFLICT DO NOTHING`,
      ),
      listRefs: db.prepare<[string, string], ManifestReference>(
        `SELECT ref_digest AS digest, kind FROM manifest_refs
         WHERE repo = ? AND manifest_digest = ? ORDER BY kind, ref_digest`,
      ),
      listReferrers: db.prepare<[string, string], ManifestRow>(
        'SELECT * FROM manifests WHERE repo = ? AND subject = ? ORDER BY digest',
      ),
      listReferrersOfType: db.prepare<[string, string, string], ManifestRow>(
        'SELECT * FROM manifests WHERE repo = ? AND subject = ? AND artifact_type = ? ORDER BY digest',
      ),

      upsertTag: db.prepare<[string, string, string, number]>(
        `INSERT INTO tags (repo, tag, digest, updated_at) VALUES (?, ?, ?, ?)
         ON CONFLICT (repo, tag) DO UPDATE SET digest = excluded.digest, updated_at = excluded.updated_at`,
      ),
      getTag: db.prepare<[string, string], { digest: string }>('SELECT digest FROM tags WHERE repo = ? AND tag = ?'),
      listTags: db.prepare<[string, string, number], { tag: string }>(
        'SELECT tag FROM tags WHERE repo = ? AND tag > ? ORDER BY tag LIMIT ?',
      ),
      deleteTag: db.prepare<[string, string], { digest: string }>('DELETE FROM tags WHERE repo = ? AND tag = ? RETURNING digest'),
      releaseManifest: db.prepare<[number, string, string, string]>(
        `UPDATE manifests SET released_at = ? WHERE repo = ? AND digest = ?
          AND NOT EXISTS (SELECT 1 FROM tags t WHERE t.repo = manifests.repo AND t.digest = ?)`,
      ),
      deleteTagsOf: db.prepare<[string, string]>('DELETE FROM tags WHERE repo = ? AND digest = ?'),

      repoStatsPage: db.prepare<[{ last: string; n: number }], RepositoryStatsRow>(repositoryStatsSql(repositoryPageSql(NAMED))),
      repoStatsOne: db.prepare<[{ repo: string }], RepositoryStatsRow>(repositoryStatsSql(oneRepositorySql(NAMED))),
      tagDetails: db.prepare<[{ repo: string; last: string; n: number }], TagDetailRow>(tagDetailsSql(NAMED)),
      manifestDetails: db.prepare<[{ repo: string; last: string; n: number }], ManifestDetailRow>(manifestDetailsSql(NAMED)),
      deleteRepoTags: db.prepare<[string], { tag: string }>('DELETE FROM tags WHERE repo = ? RETURNING tag'),
      deleteRepoRefs: db.prepare<[string]>('DELETE FROM manifest_refs WHERE repo = ?'),
      deleteRepoManifests: db.prepare<[string], { digest: string }>('DELETE FROM manifests WHERE repo = ? RETURNING digest'),
      deleteRepoLinks: db.prepare<[string]>('DELETE FROM repo_blobs WHERE repo = ?'),
      deleteRepo: db.prepare<[string]>('DELETE FROM repositories WHERE name = ?'),
    };

    const s = this.#s;
    this.#linkBlobTx = db.transaction((repo: string, digest: string, now: number) => {
      s.ensureRepo.run(repo, now);
      s.linkBlob.run(repo, digest);
    });
    this.#putManifestTx = db.transaction((input: PutManifestInput, now: number) => {
      // Checked inside the write transaction: the collector deletes a blob row only when nothing
      // references it, so either it sees the references recorded here or this sees its deletion.
      if (input.verify !== undefined) {
        const missing: string[] = [];
        const self = s.blobExists.get(input.digest) === undefined;
        if (self) missing.push(input.digest);
        if (input.verify === 'references') {
          for (const ref of input.references) {
            const present =
              ref.kind === 'blob' ? s.blobExists.get(ref.digest) !== undefined : s.getManifest.get(input.repo, ref.digest) !== undefined;
            if (!present) missing.push(ref.digest);
          }
        }
        if (missing.length > 0) throw new MissingContentError(missing, self);
      }
      s.ensureRepo.run(input.repo, now);
      s.putManifest.run(
        input.repo,
        input.digest,
        input.mediaType,
        input.size,
        input.subject,
        input.artifactType,
        input.annotations === null ? null : JSON.stringify(input.annotations),
        now,
        now,
        input.local === false ? 0 : 1,
      );
      s.deleteRefs.run(input.repo, input.digest);
      for (const ref of input.references) s.insertRef.run(input.repo, input.digest, ref.digest, ref.kind);
      for (const tag of input.tags) s.upsertTag.run(input.repo, tag, input.digest, now);
    });
    // References and tags are deleted explicitly (not only by ON DELETE CASCADE) so the statement
    // sequence is the same in every driver and does not depend on the foreign_keys pragma.
    this.#deleteManifestTx = db.transaction((repo: string, digest: string) => {
      s.deleteTagsOf.run(repo, digest);
      s.deleteRefs.run(repo, digest);
      return s.deleteManifest.run(repo, digest).changes > 0;
    });
    this.#touchTx = db.transaction((batch: AccessBatch) => {
      for (const m of batch.manifests) s.touchManifest.run(m.at, m.at, m.repo, m.digest);
      for (const b of batch.blobs) s.touchBlob.run(b.at, b.digest);
    });
    // Children before parents, explicitly (as deleteManifest), whatever the foreign_keys pragma.
    this.#deleteRepositoryTx = db.transaction((repo: string): DeletedRepository | undefined => {
      const tags = s.deleteRepoTags.all(repo).map((r) => r.tag);
      s.deleteRepoRefs.run(repo);
      const manifests = s.deleteRepoManifests.all(repo).map((r) => r.digest);
      s.deleteRepoLinks.run(repo);
      if (s.deleteRepo.run(repo).changes === 0) return undefined;
      return { tags: tags.sort(), manifests: manifests.sort() };
    });
    this.#deleteTagTx = db.transaction((repo: string, tag: string): boolean => {
      const row = s.deleteTag.get(repo, tag);
      if (!row) return false;
      // Its manifest, if no other tag holds it, is released to the collector.
      s.releaseManifest.run(Date.now(), repo, row.digest, row.digest);
      return true;
    });
  }

  async listRepositories(page?: Page): Promise<string[]> {
    return this.#s.listRepos.all(...pageArgs(page)).map((r) => r.name);
  }

  async repositoryExists(repo: string): Promise<boolean> {
    return this.#s.repoExists.get(repo) !== undefined;
  }

  async repositoryOwner(repo: string): Promise<string | undefined> {
    return this.#s.repoOwner.get(repo)?.owner;
  }

  async claimRepository(repo: string, owner: string): Promise<string> {
    this.#s.claimRepo.run(repo, owner, Date.now());
    return this.#s.repoOwner.get(repo)!.owner;
  }

  async putBlob(digest: string, size: number, opts: { local: boolean }): Promise<void> {
    const now = Date.now();
    this.#s.putBlob.run(digest, size, now, now, opts.local ? 1 : 0);
  }

  async getBlob(digest: string): Promise<BlobRecord | undefined> {
    const row = this.#s.getBlob.get(digest);
    return row === undefined ? undefined : toBlob(row);
  }

  async linkBlob(repo: string, digest: string): Promise<void> {
    this.#linkBlobTx(repo, digest, Date.now());
  }

  async isBlobLinked(repo: string, digest: string): Promise<boolean> {
    return this.#s.isLinked.get(repo, digest) !== undefined;
  }

  async blobRepositories(digest: string, limit: number): Promise<string[]> {
    return this.#s.blobRepos.all(digest, limit).map((r) => r.repo);
  }

  async unlinkBlob(repo: string, digest: string): Promise<boolean> {
    return this.#s.unlinkBlob.run(repo, digest).changes > 0;
  }

  async putManifest(input: PutManifestInput): Promise<void> {
    this.#putManifestTx(input, Date.now());
  }

  async touchAccess(batch: AccessBatch): Promise<void> {
    if (batch.manifests.length === 0 && batch.blobs.length === 0) return;
    this.#touchTx(batch);
  }

  async refreshBlob(digest: string): Promise<boolean> {
    return this.#s.touchBlob.run(Date.now(), digest).changes > 0;
  }

  async storageUse(): Promise<StorageUse> {
    return storageUseOf(this.#s.totalBytes.get()?.n ?? 0, this.#s.reposPerNamespace.all(), this.#s.bytesPerNamespace.all());
  }

  async getManifest(repo: string, digest: string): Promise<ManifestRecord | undefined> {
    const row = this.#s.getManifest.get(repo, digest);
    return row === undefined ? undefined : toManifest(row);
  }

  async listManifestReferences(repo: string, digest: string): Promise<ManifestReference[]> {
    return this.#s.listRefs.all(repo, digest);
  }

  async deleteManifest(repo: string, digest: string): Promise<boolean> {
    return this.#deleteManifestTx(repo, digest);
  }

  async getTag(repo: string, tag: string): Promise<string | undefined> {
    return this.#s.getTag.get(repo, tag)?.digest;
  }

  async listTags(repo: string, page?: Page): Promise<string[]> {
    return this.#s.listTags.all(repo, ...pageArgs(page)).map((r) => r.tag);
  }

  async deleteTag(repo: string, tag: string): Promise<boolean> {
    return this.#deleteTagTx(repo, tag);
  }

  async listReferrers(repo: string, subject: string, artifactType?: string): Promise<ManifestRecord[]> {
    const rows =
      artifactType === undefined
        ? this.#s.listReferrers.all(repo, subject)
        : this.#s.listReferrersOfType.all(repo, subject, artifactType);
    return rows.map(toManifest);
  }

  async listRepositoryStats(page?: Page): Promise<RepositoryStats[]> {
    const [last, n] = pageArgs(page);
    return this.#s.repoStatsPage.all({ last, n }).map(toRepositoryStats);
  }

  async repositoryStats(repo: string): Promise<RepositoryStats | undefined> {
    const row = this.#s.repoStatsOne.get({ repo });
    return row === undefined ? undefined : toRepositoryStats(row);
  }

  async listTagDetails(repo: string, page?: Page): Promise<TagDetail[]> {
    const [last, n] = pageArgs(page);
    return this.#s.tagDetails.all({ repo, last, n }).map(toTagDetail);
  }

  async listManifestDetails(repo: string, page?: Page): Promise<ManifestDetail[]> {
    const [last, n] = pageArgs(page);
    return toManifestDetails(this.#s.manifestDetails.all({ repo, last, n }));
  }

  async deleteRepository(repo: string): Promise<DeletedRepository | undefined> {
    return this.#deleteRepositoryTx(repo);
  }
}
