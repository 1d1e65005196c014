// The statements behind the management API's view of repositories (RegistryMetadata's
// listRepositoryStats, listTagDetails, listManifestDetails), in SQL both drivers speak: each driver
// hands in its placeholders (`@repo` in SQLite, `$1` in PostgreSQL). One statement answers a whole
// page, whatever the number of repositories or tags on it, and reads only through primary keys:
// manifests (repo, digest), tags (repo, tag) and tags_by_digest, manifest_refs (repo, manifest_digest, ...),
// blobs (digest).
//
// Sizes are bytes stored here: a blob counts once its row exists (a cached layer nobody pulled yet
// does not), and a blob referenced several times counts once.
//   - a repository: its manifests, plus every distinct blob they reference;
//   - a manifest (and the tag on it): itself, the blobs it references and, for an index, the child
//     manifests stored in the repository with their blobs (each distinct blob once).
// SUMs are cast to BIGINT: PostgreSQL sums a BIGINT column as NUMERIC, which its driver returns as text.
import type { ManifestDetail, RepositoryStats, TagDetail } from './registry-metadata.js';

/** Placeholders of a statement's parameters, as the driver writes them. */
export interface Params {
  repo: string;
  last: string;
  n: string;
}

export interface RepositoryStatsRow {
  name: string;
  size: number;
  manifest_count: number;
  tag_count: number;
  last_manifest: number | null;
  last_tag: number | null;
  last_pull: number | null;
}

/**
 * Stats of the repositories `page` selects (a statement with a `name` column): one row each, in name
 * order. Each figure is a subquery on the row's repository, so both databases look its rows up by
 * the repository key (aggregating over the page with IN led PostgreSQL to read whole tables).
 */
export function repositoryStatsSql(page: string): string {
  return `
  WITH page AS (${page})
  SELECT p.name AS name,
         CAST(COALESCE((SELECT SUM(m.size) FROM manifests m WHERE m.repo = p.name), 0)
            + COALESCE((SELECT SUM(bl.size) FROM (SELECT DISTINCT r.ref_digest AS digest FROM manifest_refs r
                                                   WHERE r.repo = p.name AND r.kind = 'blob') d
                                         CROSS JOIN blobs bl WHERE bl.digest = d.digest), 0) AS BIGINT) AS size,
         (SELECT COUNT(*) FROM manifests m WHERE m.repo = p.name) AS manifest_count,
         (SELECT COUNT(*) FROM tags t WHERE t.repo = p.name) AS tag_count,
         (SELECT MAX(m.created_at) FROM manifests m WHERE m.repo = p.name) AS last_manifest,
         (SELECT MAX(t.updated_at) FROM tags t WHERE t.repo = p.name) AS last_tag,
         (SELECT MAX(m.pulled_at) FROM manifests m WHERE m.repo = p.name) AS last_pull
    FROM page p
   ORDER BY p.name`;
}

/** A page of repositories by name (`last` exclusive). */
export const repositoryPageSql = (p: Params): string => `SELECT name FROM repositories WHERE name > ${p.last} ORDER BY name LIMIT ${p.n}`;
/** One repository. */
export const oneRepositorySql = (p: Params): string => `SELECT name FROM repositories WHERE name = ${p.repo}`;

/**
 * What follows a `page` CTE of manifests with a `digest` column in repository `repo`: `closure`
 * (each page manifest as `root`, with itself and the child manifests it reaches) and `sizes` (the
 * bytes of each root, as the header says).
 */
function sizesOf(p: Params): string {
  // CROSS JOIN ... WHERE: SQLite keeps the page's rows as the outer loop and looks each one up by
  // the primary keys, instead of scanning the repository's references once per row of the closure;
  // for PostgreSQL it is an inner join like any other.
  return `
  closure(root, digest) AS (
    SELECT DISTINCT digest, digest FROM page
    UNION
    SELECT c.root, r.ref_digest FROM closure c
     CROSS JOIN manifest_refs r WHERE r.repo = ${p.repo} AND r.manifest_digest = c.digest AND r.kind = 'manifest'
  ),
  sizes AS (
    SELECT root, CAST(SUM(bytes) AS BIGINT) AS bytes FROM (
      SELECT c.root AS root, m.size AS bytes FROM closure c
       CROSS JOIN manifests m WHERE m.repo = ${p.repo} AND m.digest = c.digest
      UNION ALL
      SELECT x.root AS root, bl.size AS bytes
        FROM (SELECT DISTINCT c.root AS root, r.ref_digest AS digest FROM closure c
               CROSS JOIN manifest_refs r WHERE r.repo = ${p.repo} AND r.manifest_digest = c.digest AND r.kind = 'blob') x
        CROSS JOIN blobs bl WHERE bl.digest = x.digest
    ) s GROUP BY root
  )`;
}

export interface TagDetailRow {
  tag: string;
  digest: string;
  media_type: string;
  size: number;
  updated_at: number;
}

/** A page of a repository's tags (`last` exclusive) with their manifests' media types and sizes. */
export function tagDetailsSql(p: Params): string {
  return `
  WITH RECURSIVE page AS (SELECT tag, digest, updated_at FROM tags WHERE repo = ${p.repo} AND tag > ${p.last} ORDER BY tag LIMIT ${p.n}),
  ${sizesOf(p)}
  SELECT pp.tag AS tag, pp.digest AS digest, m.media_type AS media_type, COALESCE(s.bytes, 0) AS size, pp.updated_at AS updated_at
    FROM page pp
    JOIN manifests m ON m.repo = ${p.repo} AND m.digest = pp.digest
    LEFT JOIN sizes s ON s.root = pp.digest
   ORDER BY pp.tag`;
}

export interface ManifestDetailRow {
  digest: string;
  media_type: string;
  size: number;
  created_at: number;
  pulled_at: number | null;
  /** One row per tag of the manifest; null for an untagged one. */
  tag: string | null;
}

/** A page of a repository's manifests by digest (`last` exclusive), one row per tag (or one untagged). */
export function manifestDetailsSql(p: Params): string {
  return `
  WITH RECURSIVE page AS (SELECT digest, media_type, created_at, pulled_at FROM manifests
                           WHERE repo = ${p.repo} AND digest > ${p.last} ORDER BY digest LIMIT ${p.n}),
  ${sizesOf(p)}
  SELECT pp.digest AS digest, pp.media_type AS media_type, COALESCE(s.bytes, 0) AS size,
         pp.created_at AS created_at, pp.pulled_at AS pulled_at, t.tag AS tag
    FROM page pp
    LEFT JOIN sizes s ON s.root = pp.digest
    LEFT JOIN tags t ON t.repo = ${p.repo} AND t.digest = pp.digest
   ORDER BY pp.digest, t.tag`;
}

export function toRepositoryStats(row: RepositoryStatsRow): RepositoryStats {
  const pushes = [row.last_manifest, row.last_tag].filter((x): x is number => x !== null);
  return {
    name: row.name,
    size: row.size,
    tagCount: row.tag_count,
    manifestCount: row.manifest_count,
    lastPushAt: pushes.length === 0 ? null : Math.max(...pushes),
    lastPullAt: row.last_pull,
  };
}

export function toTagDetail(row: TagDetailRow): TagDetail {
  return { tag: row.tag, digest: row.digest, mediaType: row.media_type, size: row.size, updatedAt: row.updated_at };
}

/** The rows of manifestDetailsSql (ordered by digest), one detail per manifest with its tags. */
export function toManifestDetails(rows: readonly ManifestDetailRow[]): ManifestDetail[] {
  const out: ManifestDetail[] = [];
  for (const row of rows) {
    let last = out[out.length - 1];
    if (last?.digest !== row.digest) {
      last = { digest: row.digest, mediaType: row.media_type, size: row.size, tags: [], createdAt: row.created_at, lastPullAt: row.pulled_at };
      out.push(last);
    }
    if (row.tag !== null) last.tags.push(row.tag);
  }
  return out;
}
