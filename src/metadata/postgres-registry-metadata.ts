// RegistryMetadata on PostgreSQL: repositories, owners, blobs and links, manifests, their references,
// tags and referrers. The statements are those of sqlite-registry-metadata.ts in PostgreSQL's dialect;
// where SQLite relied on its single writer, the comments say what takes its place.
import type { Page } from '../oci/page.js';
import type { ManifestReference } from '../oci/references.js';
import type { PostgresDatabase, Queryable } from './postgres-database.js';
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
  type RepositoryStatsRow,
  type TagDetailRow,
} from './inventory-queries.js';

interface BlobRow {
  digest: string;
  size: number;
  created_at: number;
  last_access_at: number;
  local: boolean;
}

/** The cursor and the limit of a page: '' sorts before every name (COLLATE "C"), a null LIMIT is none. */
function pageArgs(page: Page | undefined): [string, number | null] {
  const n = page?.n;
  if (n !== undefined && (!Number.isInteger(n) || n < 0)) {
    throw new RangeError(`page size must be a non-negative integer, got ${n}`);
  }
  return [page?.last ?? '', n ?? null];
}

function toBlob(row: BlobRow): BlobRecord {
  return { digest: row.digest, size: row.size, createdAt: row.created_at, lastAccessAt: row.last_access_at, local: row.local };
}

const MANIFEST_COLUMNS = 'repo, digest, media_type, size, subject, artifact_type, annotations, created_at, last_access_at';

// The management API's statements (inventory-queries.ts), with PostgreSQL's placeholders.
const REPO_STATS_PAGE = repositoryStatsSql(repositoryPageSql({ repo: '', last: '$1', n: '$2' }));
const REPO_STATS_ONE = repositoryStatsSql(oneRepositorySql({ repo: '$1', last: '', n: '' }));
const TAG_DETAILS = tagDetailsSql({ repo: '$1', last: '$2', n: '$3' });
const MANIFEST_DETAILS = manifestDetailsSql({ repo: '$1', last: '$2', n: '$3' });

const ENSURE_REPO = 'INSERT INTO repositories (name, created_at) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING';
const DELETE_REFS = 'DELETE FROM manifest_refs WHERE repo = $1 AND manifest_digest = $2';

export class PostgresRegistryMetadata implements RegistryMetadata {
  constructor(private readonly db: PostgresDatabase) {}

  async listRepositories(page?: Page): Promise<string[]> {
    const { rows } = await this.db.query<{ name: string }>('SELECT name FROM repositories WHERE name > $1 ORDER BY name LIMIT $2', pageArgs(page));
    return rows.map((r) => r.name);
  }

  async repositoryExists(repo: string): Promise<boolean> {
    return (await this.db.query('SELECT 1 FROM repositories WHERE name = $1', [repo])).rowCount! > 0;
  }

  async repositoryOwner(repo: string): Promise<string | undefined> {
    return (await this.db.query<{ owner: string }>('SELECT owner FROM repository_owners WHERE repo = $1', [repo])).rows[0]?.owner;
  }

  async claimRepository(repo: string, owner: string): Promise<string> {
    // The first claim wins; a concurrent one waits on the same key and then does nothing. The owner
    // is read by a second statement, which sees whichever claim committed.
    await this.db.query('INSERT INTO repository_owners (repo, owner, claimed_at) VALUES ($1, $2, $3) ON CONFLICT (repo) DO NOTHING', [repo, owner, Date.now()]);
    return (await this.repositoryOwner(repo))!;
  }

  async putBlob(digest: string, size: number, opts: { local: boolean }): Promise<void> {
    const now = Date.now();
    await this.db.query(
      `INSERT INTO blobs (digest, size, created_at, last_access_at, local) VALUES ($1, $2, $3, $3, $4)
       ON CONFLICT (digest) DO UPDATE SET
         size = excluded.size,
         last_access_at = GREATEST(blobs.last_access_at, excluded.last_access_at),
         local = blobs.local OR excluded.local`,
      [digest, size, now, opts.local],
    );
  }

  async getBlob(digest: string): Promise<BlobRecord | undefined> {
    const row = (await this.db.query<BlobRow>('SELECT * FROM blobs WHERE digest = $1', [digest])).rows[0];
    return row === undefined ? undefined : toBlob(row);
  }

  async linkBlob(repo: string, digest: string): Promise<void> {
    // One statement: the repository row and the link (its foreign key is checked at the end of the
    // statement, when the repository row is there).
    await this.db.query(
      `WITH repo AS (INSERT INTO repositories (name, created_at) VALUES ($1, $3) ON CONFLICT (name) DO NOTHING)
       INSERT INTO repo_blobs (repo, digest) VALUES ($1, $2) ON CONFLICT (repo, digest) DO NOTHING`,
      [repo, digest, Date.now()],
    );
  }

  async isBlobLinked(repo: string, digest: string): Promise<boolean> {
    return (await this.db.query('SELECT 1 FROM repo_blobs WHERE repo = $1 AND digest = $2', [repo, digest])).rowCount! > 0;
  }

  async blobRepositories(digest: string, limit: number): Promise<string[]> {
    const { rows } = await this.db.query<{ repo: string }>('SELECT repo FROM repo_blobs WHERE digest = $1 ORDER BY repo LIMIT $2', [digest, limit]);
    return rows.map((r) => r.repo);
  }

  async unlinkBlob(repo: string, digest: string): Promise<boolean> {
    return (await this.db.query('DELETE FROM repo_blobs WHERE repo = $1 AND digest = $2', [repo, digest])).rowCount! > 0;
  }

  async putManifest(input: PutManifestInput): Promise<void> {
    const now = Date.now();
    await this.db.transaction(async (q) => {
      if (input.verify !== undefined) await verifyContent(q, input);
      await q.query(ENSURE_REPO, [input.repo, now]);
      // A re-put makes the row fresh (the collector spares what was touched within its grace) and
      // a local push of a cached manifest makes it local (never evicted by the cache rules).
      await q.query(
        `INSERT INTO manifests
           (repo, digest, media_type, size, subject, artifact_type, annotations, created_at, last_access_at, local)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8, $9)
         ON CONFLICT (repo, digest) DO UPDATE SET
           media_type = excluded.media_type,
           size = excluded.size,
           subject = excluded.subject,
           artifact_type = excluded.artifact_type,
           annotations = excluded.annotations,
           last_access_at = GREATEST(manifests.last_access_at, excluded.last_access_at),
           local = manifests.local OR excluded.local,
           released_at = NULL`,
        [
          input.repo,
          input.digest,
          input.mediaType,
          input.size,
          input.subject,
          input.artifactType,
          input.annotations === null ? null : JSON.stringify(input.annotations),
          now,
          input.local !== false,
        ],
      );
      await q.query(DELETE_REFS, [input.repo, input.digest]);
      if (input.references.length > 0) {
        await q.query(
          `INSERT INTO manifest_refs (repo, manifest_digest, ref_digest, kind)
           SELECT $1, $2, r.digest, r.kind FROM unnest($3::text[], $4::text[]) AS r(digest, kind)
           ON CONFLICT DO NOTHING`,
          [input.repo, input.digest, input.references.map((r) => r.digest), input.references.map((r) => r.kind)],
        );
      }
      if (input.tags.length > 0) {
        await q.query(
          `INSERT INTO tags (repo, tag, digest, updated_at)
           SELECT DISTINCT $1, t, $2, $3::bigint FROM unnest($4::text[]) AS t
           ON CONFLICT (repo, tag) DO UPDATE SET digest = excluded.digest, updated_at = excluded.updated_at`,
          [input.repo, input.digest, now, input.tags],
        );
        await this.db.changes.notify(q, input.tags.map((tag) => ({ kind: 'tag', repo: input.repo, tag })));
      }
    });
  }

  async touchAccess(batch: AccessBatch): Promise<void> {
    // One statement per table for the whole batch; times only move forward, so batches from several
    // nodes may land in any order.
    if (batch.manifests.length > 0) {
      await this.db.query(
        `UPDATE manifests m SET last_access_at = GREATEST(m.last_access_at, v.at), pulled_at = GREATEST(m.pulled_at, v.at)
           FROM (SELECT repo, digest, MAX(at) AS at FROM unnest($1::text[], $2::text[], $3::bigint[]) AS u(repo, digest, at)
                  GROUP BY repo, digest) v
          WHERE m.repo = v.repo AND m.digest = v.digest AND (m.last_access_at < v.at OR m.pulled_at IS NULL OR m.pulled_at < v.at)`,
        [batch.manifests.map((m) => m.repo), batch.manifests.map((m) => m.digest), batch.manifests.map((m) => m.at)],
      );
    }
    if (batch.blobs.length > 0) {
      await this.db.query(
        `UPDATE blobs b SET last_access_at = GREATEST(b.last_access_at, v.at)
           FROM (SELECT digest, MAX(at) AS at FROM unnest($1::text[], $2::bigint[]) AS u(digest, at) GROUP BY digest) v
          WHERE b.digest = v.digest AND b.last_access_at < v.at`,
        [batch.blobs.map((b) => b.digest), batch.blobs.map((b) => b.at)],
      );
    }
  }

  async storageUse(): Promise<StorageUse> {
    const [total, repos, bytes] = await Promise.all([
      this.db.query<{ n: number | null }>('SELECT SUM(size)::bigint AS n FROM blobs'),
      this.db.query<{ ns: string; n: number }>("SELECT split_part(name, '/', 1) AS ns, COUNT(*)::bigint AS n FROM repositories GROUP BY ns"),
      this.db.query<{ ns: string; n: number }>(
        "SELECT l.ns, SUM(b.size)::bigint AS n FROM (SELECT DISTINCT split_part(repo, '/', 1) AS ns, digest FROM repo_blobs) AS l JOIN blobs AS b ON b.digest = l.digest GROUP BY l.ns",
      ),
    ]);
    return storageUseOf(total.rows[0]?.n ?? 0, repos.rows, bytes.rows);
  }

  async refreshBlob(digest: string): Promise<boolean> {
    const r = await this.db.query('UPDATE blobs SET last_access_at = GREATEST(last_access_at, $1) WHERE digest = $2', [Date.now(), digest]);
    return r.rowCount! > 0;
  }

  async getManifest(repo: string, digest: string): Promise<ManifestRecord | undefined> {
    const row = (await this.db.query<ManifestRow>(`SELECT ${MANIFEST_COLUMNS} FROM manifests WHERE repo = $1 AND digest = $2`, [repo, digest])).rows[0];
    return row === undefined ? undefined : toManifest(row);
  }

  async listManifestReferences(repo: string, digest: string): Promise<ManifestReference[]> {
    const { rows } = await this.db.query<ManifestReference>(
      `SELECT ref_digest AS digest, kind FROM manifest_refs
        WHERE repo = $1 AND manifest_digest = $2 ORDER BY kind, ref_digest`,
      [repo, digest],
    );
    return rows;
  }

  async deleteManifest(repo: string, digest: string): Promise<boolean> {
    // References and tags are deleted explicitly (not only by ON DELETE CASCADE) so the statement
    // sequence is the same in every driver.
    return this.db.transaction(async (q) => {
      await q.query('DELETE FROM tags WHERE repo = $1 AND digest = $2', [repo, digest]);
      await q.query(DELETE_REFS, [repo, digest]);
      const deleted = (await q.query('DELETE FROM manifests WHERE repo = $1 AND digest = $2', [repo, digest])).rowCount! > 0;
      if (deleted) await this.db.changes.notify(q, [{ kind: 'manifest', repo, digest }]);
      return deleted;
    });
  }

  async getTag(repo: string, tag: string): Promise<string | undefined> {
    return (await this.db.query<{ digest: string }>('SELECT digest FROM tags WHERE repo = $1 AND tag = $2', [repo, tag])).rows[0]?.digest;
  }

  async listTags(repo: string, page?: Page): Promise<string[]> {
    const { rows } = await this.db.query<{ tag: string }>('SELECT tag FROM tags WHERE repo = $1 AND tag > $2 ORDER BY tag LIMIT $3', [repo, ...pageArgs(page)]);
    return rows.map((r) => r.tag);
  }

  async deleteTag(repo: string, tag: string): Promise<boolean> {
    return this.db.transaction(async (q) => {
      const row = (await q.query<{ digest: string }>('DELETE FROM tags WHERE repo = $1 AND tag = $2 RETURNING digest', [repo, tag])).rows[0];
      if (!row) return false;
      await this.db.changes.notify(q, [{ kind: 'tag', repo, tag }]);
      // Its manifest, if no other tag holds it, is released to the collector. A tag put at the same
      // time either committed before this statement (seen: not released) or updates the manifest row
      // after this transaction commits (and clears released_at).
      await q.query(
        `UPDATE manifests SET released_at = $1 WHERE repo = $2 AND digest = $3
          AND NOT EXISTS (SELECT 1 FROM tags t WHERE t.repo = manifests.repo AND t.digest = manifests.digest)`,
        [Date.now(), repo, row.digest],
      );
      return true;
    });
  }

  async listReferrers(repo: string, subject: string, artifactType?: string): Promise<ManifestRecord[]> {
    const { rows } =
      artifactType === undefined
        ? await this.db.query<ManifestRow>(`SELECT ${MANIFEST_COLUMNS} FROM manifests WHERE repo = $1 AND subject = $2 ORDER BY digest`, [repo, subject])
        : await this.db.query<ManifestRow>(
            `SELECT ${MANIFEST_COLUMNS} FROM manifests WHERE repo = $1 AND subject = $2 AND artifact_type = $3 ORDER BY digest`,
            [repo, subject, artifactType],
          );
    return rows.map(toManifest);
  }

  async listRepositoryStats(page?: Page): Promise<RepositoryStats[]> {
    return (await this.db.query<RepositoryStatsRow>(REPO_STATS_PAGE, pageArgs(page))).rows.map(toRepositoryStats);
  }

  async repositoryStats(repo: string): Promise<RepositoryStats | undefined> {
    const row = (await this.db.query<RepositoryStatsRow>(REPO_STATS_ONE, [repo])).rows[0];
    return row === undefined ? undefined : toRepositoryStats(row);
  }

  async listTagDetails(repo: string, page?: Page): Promise<TagDetail[]> {
    return (await this.db.query<TagDetailRow>(TAG_DETAILS, [repo, ...pageArgs(page)])).rows.map(toTagDetail);
  }

  async listManifestDetails(repo: string, page?: Page): Promise<ManifestDetail[]> {
    return toManifestDetails((await this.db.query<ManifestDetailRow>(MANIFEST_DETAILS, [repo, ...pageArgs(page)])).rows);
  }

  async deleteRepository(repo: string): Promise<DeletedRepository | undefined> {
    // Children before parents, explicitly (as deleteManifest); the repository row is locked first,
    // so two deletions of one repository take turns.
    return this.db.transaction(async (q) => {
      const exists = await q.query('SELECT 1 FROM repositories WHERE name = $1 FOR UPDATE', [repo]);
      if (exists.rowCount === 0) return undefined;
      const tags = (await q.query<{ tag: string }>('DELETE FROM tags WHERE repo = $1 RETURNING tag', [repo])).rows.map((r) => r.tag);
      await q.query('DELETE FROM manifest_refs WHERE repo = $1', [repo]);
      const manifests = (await q.query<{ digest: string }>('DELETE FROM manifests WHERE repo = $1 RETURNING digest', [repo])).rows.map((r) => r.digest);
      await q.query('DELETE FROM repo_blobs WHERE repo = $1', [repo]);
      await q.query('DELETE FROM repositories WHERE name = $1', [repo]);
      // Other nodes drop what they hold of each manifest (and so of the tags on it).
      await this.db.changes.notify(q, manifests.map((digest) => ({ kind: 'manifest' as const, repo, digest })));
      return { tags: tags.sort(), manifests: manifests.sort() };
    });
  }
}

/**
 * putManifest's `verify`, inside its transaction. SQLite's single writer made "check, then insert the
 * references" atomic against the collector; here the rows checked are locked (FOR KEY SHARE, in digest
 * order) until the transaction ends. The collector's sweeps lock a row FOR UPDATE before deleting it
 * and re-check in a later statement (postgres-gc-state.ts), so either the sweep waits for this
 * transaction and then sees its references, or this waits for the sweep and finds the row gone.
 */
async function verifyContent(q: Queryable, input: PutManifestInput): Promise<void> {
  const blobDigests = new Set([input.digest]);
  const children = new Set<string>();
  if (input.verify === 'references') {
    for (const ref of input.references) (ref.kind === 'blob' ? blobDigests : children).add(ref.digest);
  }
  const present = new Set<string>();
  const blobs = await q.query<{ digest: string }>('SELECT digest FROM blobs WHERE digest = ANY($1::text[]) ORDER BY digest FOR KEY SHARE', [[...blobDigests]]);
  for (const r of blobs.rows) present.add(r.digest);
  const presentChildren = new Set<string>();
  if (children.size > 0) {
    const rows = await q.query<{ digest: string }>(
      'SELECT digest FROM manifests WHERE repo = $1 AND digest = ANY($2::text[]) ORDER BY digest FOR KEY SHARE',
      [input.repo, [...children]],
    );
    for (const r of rows.rows) presentChildren.add(r.digest);
  }
  const missing: string[] = [];
  const self = !present.has(input.digest);
  if (self) missing.push(input.digest);
  if (input.verify === 'references') {
    for (const ref of input.references) {
      if (!(ref.kind === 'blob' ? present : presentChildren).has(ref.digest)) missing.push(ref.digest);
    }
  }
  if (missing.length > 0) throw new MissingContentError(missing, self);
}
